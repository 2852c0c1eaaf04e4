/**
 * The claim check's edges over HTTP (CONTRACT.md §2, §4-5): who may invoke and fetch, and the answers to bad
 * input — 400 naming every problem, 401, 404 — never a 500. Limits and integrity failures are in
 * claim_check_limits_test.ts.
 */
import assert from "node:assert/strict";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke, type JsonAnswer } from "./claim_check_helpers.ts";

/** Asserts a 400 whose issues name exactly the `paths` given (each at least once). */
function assertBadRequest(a: JsonAnswer, paths: string[], what: string) {
  assert.equal(a.status, 400, `${what}: ${JSON.stringify(a.json)}`);
  assert.equal(a.json.error.code, "invalid_request", what);
  assert.equal(typeof a.json.error.message, "string");
  const named = new Set((a.json.error.issues ?? []).map((i: { path: string }) => i.path));
  for (const p of paths) assert.ok(named.has(p), `${what}: the issues name ${p} (got ${[...named].join(", ")})`);
}

Deno.test("ownership: another user gets 404 on fetch and meta, and does not see the message in the list", async () => {
  const [owner, other] = [await newUser(), await newUser()];
  const invoked = await invoke(owner.token, chatBody({ bytes: 3000 }));
  assert.equal(invoked.status, 200);
  const id = invoked.json.transaction_id;

  for (const path of [`/${id}`, `/${id}/meta`]) {
    const theirs = await fetchJson(other.token, path);
    assert.equal(theirs.status, 404, `${path} for another user`);
    assert.equal(theirs.json.error.code, "not_found");
    assert.equal(JSON.stringify(theirs.json).includes(invoked.json.checksum), false, "nothing of the message leaks");
  }
  const list = await fetchJson(other.token, "");
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.messages, [], "a new user's list is empty");

  const mine = await fetchJson(owner.token, "");
  assert.deepEqual(mine.json.messages.map((m: { transaction_id: string }) => m.transaction_id), [id]);
  assert.equal((await fetchJson(owner.token, `/${id}/meta`)).status, 200);
});

Deno.test("auth: anon key → 401 on invoke and fetch; no token or a bad token → 401", async () => {
  const { anonKey, functionsUrl } = testStack();
  const anon = await invoke(anonKey, chatBody({ bytes: 100 }));
  assert.equal(anon.status, 401);
  assert.equal(anon.json.error.code, "unauthorized");

  const owner = await newUser();
  const invoked = await invoke(owner.token, chatBody({ bytes: 100 }));
  for (const path of [`/${invoked.json.transaction_id}`, `/${invoked.json.transaction_id}/meta`, ""]) {
    const res = await fetchJson(anonKey, path);
    assert.equal(res.status, 401, `anon key on message-fetch${path}: ${JSON.stringify(res.json)}`);
  }

  const none = await fetch(`${functionsUrl}/tool-invoke`, { method: "POST", body: "{}" });
  assert.equal(none.status, 401);
  assert.deepEqual(await none.json(), { code: 401, message: "Missing authorization header" }, "the gateway's own 401");

  const forged = await newUser();
  const badSignature = forged.token.slice(0, -4) + (forged.token.endsWith("AAAA") ? "BBBB" : "AAAA");
  assert.equal((await invoke(badSignature, chatBody({}))).status, 401);
  const expired = await newUser({ expiresInSeconds: -60 });
  assert.equal((await invoke(expired.token, chatBody({}))).status, 401);
});

Deno.test("400: every kind of bad invoke body is named, never a 500", async () => {
  const { token } = await newUser();
  const good = chatBody({ bytes: 100 });
  assertBadRequest(await invoke(token, { ...good, tool: undefined }), ["tool"], "missing tool");
  assertBadRequest(await invoke(token, { ...good, tool: "teleport" }), ["tool"], "unknown tool");
  assertBadRequest(await invoke(token, { ...good, mode: "later" }), ["mode"], "bad mode");
  assertBadRequest(await invoke(token, { ...good, input: { messages: [] } }), ["input.messages"], "empty messages");
  assertBadRequest(await invoke(token, { ...good, input: { messages: [{ role: "wizard", content: "x" }] } }), [
    "input.messages.0.role",
  ], "bad role");
  assertBadRequest(await invoke(token, { ...good, ttl_seconds: 0 }), ["ttl_seconds"], "ttl 0");
  assertBadRequest(await invoke(token, { ...good, ttl_seconds: "long" }), ["ttl_seconds"], "ttl not a number");
  assertBadRequest(await invoke(token, { ...good, ttl_seconds: 5 }), ["ttl_seconds"], "ttl below the minimum");
  assertBadRequest(await invoke(token, { ...good, ttl_seconds: 10 ** 9 }), ["ttl_seconds"], "ttl above the maximum");
  assertBadRequest(await invoke(token, { ...good, provider: "openai" }), ["provider"], "unknown provider");
  assertBadRequest(await invoke(token, { ...good, surprise: 1 }), [], "unknown top-level field");
  assertBadRequest(
    await invoke(token, { ...good, owner_id: crypto.randomUUID() }),
    ["owner_id"],
    "owner_id from a user",
  );

  // Several problems at once: each is named in the one answer.
  assertBadRequest(
    await invoke(token, { tool: "", mode: "later", ttl_seconds: -1, input: "text" }),
    ["tool", "mode", "ttl_seconds", "input"],
    "several problems",
  );

  for (
    const [raw, what] of [["{not json", "malformed JSON"], ["", "empty body"], ["[1,2]", "an array"], ["null", "null"]]
  ) {
    const a = await invoke(token, raw);
    assert.equal(a.status, 400, `${what}: ${JSON.stringify(a.json)}`);
    assert.equal(a.json.error.code, "invalid_request");
  }

  for (const key of ["", "with space", "ü-non-ascii", "k".repeat(256)]) {
    assertBadRequest(
      await invoke(token, good, { "idempotency-key": key }),
      ["Idempotency-Key"],
      `key ${key.slice(0, 20)}`,
    );
  }
});

Deno.test("400 for a malformed id, 404 for an unknown one (fetch and meta)", async () => {
  const { token } = await newUser();
  for (const bad of ["not-a-uuid", "123", "01a1fe64-1140-7d5c-b693-2c45b7a2335", "'; drop table x;--"]) {
    for (const suffix of ["", "/meta"]) {
      const a = await fetchJson(token, `/${encodeURIComponent(bad)}${suffix}`);
      assertBadRequest(a, ["transaction_id"], `malformed id ${bad}${suffix}`);
    }
  }
  const unknown = "01a1fe64-1140-7d5c-b693-2c45b7a23350";
  for (const suffix of ["", "/meta"]) {
    const a = await fetchJson(token, `/${unknown}${suffix}`);
    assert.equal(a.status, 404);
    assert.equal(a.json.error.code, "not_found");
  }
  const upper = await fetchJson(token, `/${unknown.toUpperCase()}`);
  assert.equal(upper.status, 404, "an upper-case id is a valid id (and still unknown)");
});
