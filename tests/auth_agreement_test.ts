/**
 * One set of tokens, three checks that must not drift apart: the gateway (the verify_jwt stand-in, with the
 * function behind it, over HTTP against the running stack), the functions' own check (`authenticate()`, which is
 * all a function deployed with `verify_jwt = false` has), and the Realtime stand-in's token check.
 *
 * The gateway path and the function-side check must agree on every token (both accept or both refuse), so a
 * function never becomes more open when the platform check is off. Each row also says which layer refuses on the
 * gateway path: the platform's check looks at the signature, the algorithm and `exp` (hosted 401
 * `{"code":401,"message":"Invalid JWT"}`), the function additionally at `role` and the uuid `sub` (401
 * `{"error":{"code":"unauthorized",...}}`).
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { testStack } from "../devstack/testing/env.ts";
import { verifyBearer } from "../devstack/gateway/auth.ts";
import { verifyToken } from "../devstack/realtime/auth.ts";
import { authenticate } from "../supabase/functions/_shared/auth.ts";
import { createApp } from "../supabase/functions/_shared/http.ts";

type Verdict = "accept" | "refuse";

interface Row {
  name: string;
  claims: Record<string, unknown>;
  alg?: "HS256" | "HS512";
  secret?: string;
  /** An unsigned token (`alg: none`) instead of a signed one. */
  unsigned?: boolean;
  /** The verify_jwt stand-in alone. */
  platform: Verdict;
  /** The functions' `authenticate()` alone, and therefore the whole gateway path. */
  fn: Verdict;
  /** The Realtime stand-in (accepts HS384/HS512 and any `sub`; supabase-platform.md §3.4). */
  realtime: Verdict;
}

const now = Math.floor(Date.now() / 1000);
const user = crypto.randomUUID();
const ROWS: Row[] = [
  {
    name: "valid user token",
    claims: { role: "authenticated", aud: "authenticated", sub: user, exp: now + 600 },
    platform: "accept",
    fn: "accept",
    realtime: "accept",
  },
  {
    name: "valid service_role token",
    claims: { role: "service_role", exp: now + 600 },
    platform: "accept",
    fn: "accept",
    realtime: "accept",
  },
  {
    name: "no exp",
    claims: { role: "authenticated", sub: user },
    platform: "refuse",
    fn: "refuse",
    realtime: "refuse",
  },
  {
    name: "expired",
    claims: { role: "authenticated", sub: user, exp: now - 60 },
    platform: "refuse",
    fn: "refuse",
    realtime: "refuse",
  },
  {
    name: "signed with another secret",
    claims: { role: "authenticated", sub: user, exp: now + 600 },
    secret: "another-secret-that-is-at-least-32-characters",
    platform: "refuse",
    fn: "refuse",
    realtime: "refuse",
  },
  {
    name: "alg none",
    claims: { role: "authenticated", sub: user, exp: now + 600 },
    unsigned: true,
    platform: "refuse",
    fn: "refuse",
    realtime: "refuse",
  },
  {
    name: "HS512",
    claims: { role: "authenticated", sub: user, exp: now + 600 },
    alg: "HS512",
    platform: "refuse",
    fn: "refuse",
    realtime: "accept",
  },
  {
    name: "role missing",
    claims: { sub: user, exp: now + 600 },
    platform: "accept",
    fn: "refuse",
    realtime: "refuse",
  },
  {
    name: "authenticated without a uuid sub",
    claims: { role: "authenticated", sub: "user-1", exp: now + 600 },
    platform: "accept",
    fn: "refuse",
    realtime: "accept",
  },
];

const b64url = (s: string) => btoa(s).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

function tokenOf(row: Row, jwtSecret: string): Promise<string> {
  if (row.unsigned) {
    return Promise.resolve(`${b64url('{"alg":"none","typ":"JWT"}')}.${b64url(JSON.stringify(row.claims))}.`);
  }
  return new SignJWT(row.claims).setProtectedHeader({ alg: row.alg ?? "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(row.secret ?? jwtSecret));
}

/** The functions' check in-process, behind the functions' own error path (http.ts). */
function functionSide(jwtSecret: string) {
  const app = createApp("probe");
  app.get("/", async (c) => c.json({ role: (await authenticate(c, jwtSecret)).role }));
  return async (token: string): Promise<{ verdict: Verdict; status: number; body: unknown }> => {
    const res = await app.request("/probe", { headers: { authorization: `Bearer ${token}` } });
    return { verdict: res.ok ? "accept" : "refuse", status: res.status, body: await res.json() };
  };
}

Deno.test("the gateway, the functions' own check and Realtime agree on which tokens are valid", async () => {
  const stack = testStack();
  const secret = new TextEncoder().encode(stack.jwtSecret);
  const fnCheck = functionSide(stack.jwtSecret);
  for (const row of ROWS) {
    const token = await tokenOf(row, stack.jwtSecret);

    const platform = await verifyBearer(new Headers({ authorization: `Bearer ${token}` }), secret);
    const res = await fetch(`${stack.functionsUrl}/message-fetch?limit=1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const gatewayBody = await res.json();
    const gateway: Verdict = res.ok ? "accept" : "refuse";
    const fn = await fnCheck(token);
    const realtime: Verdict = await verifyToken(token, secret).then(() => "accept", () => "refuse");

    assert.equal(gateway, fn.verdict, `${row.name}: the gateway path and the function-side check disagree`);
    assert.equal(fn.verdict, row.fn, `${row.name}: function-side check`);
    assert.equal(platform ? "refuse" : "accept", row.platform, `${row.name}: verify_jwt stand-in`);
    assert.equal(realtime, row.realtime, `${row.name}: Realtime stand-in`);
    if (gateway === "accept") {
      assert.equal(res.status, 200, `${row.name}: ${JSON.stringify(gatewayBody)}`);
      assert.ok(Array.isArray(gatewayBody.messages), row.name);
    } else if (row.platform === "refuse") {
      assert.equal(res.status, 401, row.name);
      assert.deepEqual(gatewayBody, { code: 401, message: "Invalid JWT" }, `${row.name}: the hosted 401 body`);
    } else {
      assert.equal(res.status, 401, row.name);
      assert.equal(gatewayBody.error?.code, "unauthorized", `${row.name}: the function's 401 body`);
    }
    if (fn.verdict === "refuse") {
      assert.equal(fn.status, 401, row.name);
      assert.equal((fn.body as { error: { code: string } }).error.code, "unauthorized", row.name);
    }
  }
});
