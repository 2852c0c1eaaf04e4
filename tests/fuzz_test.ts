/**
 * The door under fire: at least 10,000 generated bad requests (fast-check) across every route of every function
 * (tests/fuzz/routes.ts), each from every kind of caller. For each: no 5xx, and every error is JSON in the
 * functions' shape `{ error: { code, message } }` (or the gateway's own `{ code, message }` 401). Afterwards every
 * function still answers health, and no row was written by any of them.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { mintUserToken, signJwt } from "../devstack/keys.ts";
import { type Auth, type FuzzRequest, ROUTES } from "./fuzz/routes.ts";
import { closeRawRequests, rawRequest } from "./fuzz/raw_request.ts";

const RUNS = 10_000;
const SERVICE_OWNER = "00000000-0000-0000-0000-000000000000";
const FUNCTIONS = ["tool-invoke", "message-fetch", "watcher", "cleanup", "mcp", "files", "ops", "openai"];

Deno.test(`the door: ${RUNS} generated bad requests across every route get no 5xx, JSON errors and write nothing`, async () => {
  const stack = testStack();
  const sql = adminSql();
  const user = await newUser();
  const now = Math.floor(Date.now() / 1000);
  const tokens: Record<Auth, string | undefined> = {
    none: undefined,
    garbage: "Bearer not.a.jwt",
    anon: `Bearer ${stack.anonKey}`,
    user: `Bearer ${user.token}`,
    service: `Bearer ${stack.serviceRoleKey}`,
    expired: `Bearer ${await mintUserToken(user.id, stack.jwtSecret, { expiresInSeconds: -60 })}`,
    "other-secret": `Bearer ${await signJwt(
      { role: "service_role", exp: now + 3600 },
      "another-secret-of-at-least-thirty-two-characters",
    )}`,
  };
  const [{ started }] = await sql<{ started: Date }[]>`select clock_timestamp() as started`;
  const statuses = new Map<number, number>();
  let sent = 0;

  const send = async (r: FuzzRequest) => {
    const headers = { ...r.headers };
    const token = tokens[r.auth];
    if (token) headers.authorization = token;
    const res = await rawRequest(stack.url, r.method, `/functions/v1${r.path}`, headers, r.body);
    const text = res.body;
    sent++;
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    const what = `${r.method} ${r.path.slice(0, 120)} as ${r.auth} → ${res.status} ${text.slice(0, 300)}`;
    assert.ok(res.status < 500, what);
    if (res.status >= 400) {
      assert.match(res.contentType, /^application\/json/, what);
      const body = JSON.parse(text);
      const functionShape = typeof body?.error?.code === "string" && typeof body?.error?.message === "string";
      const gatewayShape = res.status === 401 && body?.code === 401 && typeof body?.message === "string";
      // OpenAI's shape on the openai function (CONTRACT.md §10).
      const openAiShape = r.path.startsWith("/openai") && typeof body?.error?.type === "string" &&
        typeof body?.error?.message === "string" && "code" in body.error;
      // The MCP SDK answers protocol errors as JSON-RPC error objects, which MCP clients read (CONTRACT.md §11).
      const jsonRpcShape = r.path.startsWith("/mcp") && body?.jsonrpc === "2.0" &&
        Number.isInteger(body?.error?.code) && typeof body?.error?.message === "string";
      assert.ok(functionShape || gatewayShape || jsonRpcShape || openAiShape, `error shape: ${what}`);
    }
  };

  try {
    await fc.assert(
      fc.asyncProperty(fc.oneof(...ROUTES.map((r) => r.request)), send),
      { numRuns: RUNS, endOnFailure: true },
    );
    assert.ok(sent >= RUNS, `${sent} requests sent`);

    for (const name of FUNCTIONS) {
      const res = await fetch(`${stack.functionsUrl}/${name}/health`, { headers: { authorization: tokens.anon! } });
      assert.equal(res.status, 200, `${name} still answers health`);
      await res.body?.cancel();
    }
    const [written] = await sql<{ messages: number; maintenance: number; files: number; limits: number }[]>`
      select (select count(*)::int from public.message_bus
               where owner_id in (${user.id}::uuid, ${SERVICE_OWNER}::uuid) and created_at >= ${started}) as messages,
             (select count(*)::int from bus.maintenance_log where started_at >= ${started}) as maintenance,
             (select count(*)::int from public.message_bus_files where created_at >= ${started}) as files,
             (select count(*)::int from bus.user_limits where updated_at >= ${started}) as limits`;
    assert.deepEqual(written, { messages: 0, maintenance: 0, files: 0, limits: 0 }, "no rejected request wrote a row");
    console.log(
      `fuzz: ${sent} requests over ${ROUTES.length} routes; statuses ${
        JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))
      }`,
    );
  } finally {
    closeRawRequests();
    await sql.end();
  }
});
