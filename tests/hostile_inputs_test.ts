/**
 * The hostile inputs the hardening issue listed, each with what it gets now: a 4xx JSON error naming the problem,
 * no row written, nothing recorded as a provider failure. (JWTs without `exp` and busy ports are tested with the
 * gateway and the stack's start-up; the memory of 8 × 90 MB is measured by bench/.)
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { chatBody } from "./claim_check_helpers.ts";

const sql = adminSql();

// deno-lint-ignore no-explicit-any
async function post(token: string, body: string | Uint8Array<ArrayBuffer>): Promise<{ status: number; json: any }> {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  return { status: res.status, json: await res.json() };
}

async function rowsOf(owner: string): Promise<number> {
  const [{ n }] = await sql<
    { n: number }[]
  >`select count(*)::int as n from public.message_bus where owner_id = ${owner}::uuid`;
  return n;
}

/** The 400 shape: `{ error: { code: invalid_request, message, issues } }` with an issue at `path`. */
// deno-lint-ignore no-explicit-any
function assertNamed(answer: { status: number; json: any }, path: string, message: RegExp, what: string) {
  assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.json)}`);
  assert.equal(answer.json.error.code, "invalid_request", what);
  const issue = answer.json.error.issues.find((i: { path: string }) => i.path.startsWith(path));
  assert.ok(issue, `${what}: an issue names ${path} (got ${JSON.stringify(answer.json.error.issues)})`);
  assert.match(issue.message, message, what);
}

const body = (extra: Record<string, unknown>) => JSON.stringify(chatBody({}, extra));

Deno.test('{"tool":"constructor"} (an inherited property name) is a 400 naming tool, never a 500', async () => {
  const user = await newUser();
  for (const tool of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
    const answer = await post(user.token, JSON.stringify({ tool, input: { messages: [] } }));
    assertNamed(answer, "tool", /must be one of: chat/, tool);
  }
  assert.equal(await rowsOf(user.id), 0);
});

Deno.test("U+0000 in session_id, model or metadata is refused at the door, never at the database", async () => {
  const user = await newUser();
  const cases: Array<[string, string]> = [
    [body({ session_id: "a\u0000b" }), "session_id"],
    [body({ model: "m\u0000" }), "model"],
    [body({ metadata: { note: "x\u0000y" } }), "metadata.note"],
    [body({ metadata: { "k\u0000": 1 } }), "metadata"],
  ];
  for (const [text, path] of cases) assertNamed(await post(user.token, text), path, /U\+0000/, path);
  assert.equal(await rowsOf(user.id), 0);
});

Deno.test("a lone surrogate (escaped or as raw bytes) is refused at the door", async () => {
  const user = await newUser();
  const escaped = body({ session_id: "SURROGATE" }).replace("SURROGATE", "a\\ud800b");
  assertNamed(await post(user.token, escaped), "session_id", /surrogate/, "escaped");
  // The UTF-8 form of U+D800 (ED A0 80) is not UTF-8 at all.
  const bytes = new TextEncoder().encode(body({ session_id: "XXX" }));
  const at = new TextDecoder().decode(bytes).indexOf("XXX");
  bytes.set([0xed, 0xa0, 0x80], at);
  assertNamed(await post(user.token, bytes), "session_id", /UTF-8/, "raw bytes");
  assert.equal(await rowsOf(user.id), 0);
});

Deno.test("JSON nested 10,000 deep is a 400 at the door, not a 502 recorded as a provider failure", async () => {
  const user = await newUser();
  const deep = '{"tool":"chat","input":{"messages":[{"role":"user","content":"x"}],"extra":' +
    "[".repeat(10_000) + "]".repeat(10_000) + "}}";
  assertNamed(await post(user.token, deep), "input.extra", /deeper than 64/, "10,000 deep");
  assert.equal(await rowsOf(user.id), 0, "no message, so no provider failure either");
});

Deno.test("metadata over 16 KB (the issue stored 63 MB per message) is a 400 naming its size", async () => {
  const user = await newUser();
  const big = body({ metadata: { blob: "m".repeat(20 * 1024 * 1024) } });
  // A string that long is refused while it is read, before the member's size is known.
  assertNamed(await post(user.token, big), "metadata.blob", /longer than 65536 bytes/, "20 MB");
  assertNamed(await post(user.token, body({ metadata: { blob: "m".repeat(17_000) } })), "metadata", /16384/, "17 KB");
  assert.equal(await rowsOf(user.id), 0);
  const ok = await post(user.token, body({ metadata: { blob: "m".repeat(15_000) } }));
  assert.equal(ok.status, 200, "15 KB of metadata is fine");
});

Deno.test("metadata keys the bus writes beside the caller's (content_type, wants_json, parsed) are refused, not overwritten", async () => {
  const user = await newUser();
  for (const key of ["content_type", "wants_json", "parsed"]) {
    assertNamed(await post(user.token, body({ metadata: { [key]: "text/html" } })), "metadata", /content_type/, key);
  }
  assert.equal(await rowsOf(user.id), 0);
  const ok = await post(user.token, body({ metadata: { type: "text/html", note: "kept" } }));
  assert.equal(ok.status, 200);
  const [row] = await sql`select metadata from public.message_bus where transaction_id = ${ok.json.transaction_id}`;
  assert.equal(row.metadata.note, "kept");
  assert.match(row.metadata.content_type, /^application\/json/, "the bus's own fact, beside the caller's keys");
});

Deno.test("?since=0000-01-01T00:00:00Z and other out-of-range times are a 400, not a database error", async () => {
  const user = await newUser();
  for (
    const since of ["0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "+275760-09-13T00:00:00Z", "2026-13-01T00:00:00Z"]
  ) {
    const res = await fetch(`${testStack().functionsUrl}/message-fetch?since=${encodeURIComponent(since)}`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    const answer = { status: res.status, json: await res.json() };
    assertNamed(answer, "since", /1970|ISO 8601/, since);
  }
});

Deno.test("an empty body where a member is required (PUT /ops/limits) is a 400 naming it, never a database error", async () => {
  // Found by the fuzz test: an empty body was taken as `{}` without the schema, and the missing
  // requests_per_minute reached postgres.js as undefined (a 500).
  const user = await newUser();
  const res = await fetch(`${testStack().functionsUrl}/ops/limits/${user.id}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${testStack().serviceRoleKey}` },
  });
  assertNamed({ status: res.status, json: await res.json() }, "requests_per_minute", /./, "empty body");
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from bus.user_limits where user_id = ${user.id}`;
  assert.equal(n, 0);
});

Deno.test("hostile input tests: close the database client", async () => {
  await sql.end();
});
