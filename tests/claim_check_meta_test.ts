/**
 * What callers read about their messages over HTTP (CONTRACT.md §5): the meta document, the catch-up list,
 * retrieval counting, conditional GETs, expiry (410) and messages the service role made for a user.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke, MODEL, sha256Hex } from "./claim_check_helpers.ts";

async function fetchBytes(token: string, id: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

Deno.test("meta: every field of CONTRACT.md §5, consistent with the invoke answer", async () => {
  const user = await newUser();
  const before = Date.now();
  const invoked = await invoke(
    user.token,
    chatBody({ bytes: 50_000, finish_reason: "length" }, { ttl_seconds: 3600, session_id: "session-7" }),
  );
  assert.equal(invoked.status, 200);
  assert.deepEqual(Object.keys(invoked.json).sort(), [
    "checksum",
    "expires_at",
    "finish_reason",
    "model",
    "payload_size_bytes",
    "provider",
    "status",
    "transaction_id",
  ]);
  assert.equal(invoked.json.finish_reason, "length");
  assert.equal(invoked.json.provider, "kimi");
  assert.equal(invoked.json.model, MODEL);

  const { status, json: m } = await fetchJson(user.token, `/${invoked.json.transaction_id}/meta`);
  assert.equal(status, 200);
  for (
    const key of [
      "transaction_id",
      "status",
      "tool",
      "provider",
      "model",
      "checksum",
      "payload_size_bytes",
      "stored_size_bytes",
      "compression",
      "finish_reason",
      "created_at",
      "expires_at",
      "retrieved_count",
      "watcher",
    ]
  ) assert.ok(key in m, `meta has ${key}`);
  assert.equal(m.transaction_id, invoked.json.transaction_id);
  assert.equal(m.status, "completed");
  assert.equal(m.tool, "chat");
  assert.equal(m.provider, "kimi");
  assert.equal(m.model, MODEL);
  assert.equal(m.checksum, invoked.json.checksum);
  assert.equal(m.payload_size_bytes, 50_000);
  assert.ok(["none", "gzip"].includes(m.compression));
  assert.ok(Number.isInteger(m.stored_size_bytes) && m.stored_size_bytes > 0);
  if (m.compression === "none") assert.equal(m.stored_size_bytes, m.payload_size_bytes);
  assert.equal(m.finish_reason, "length");
  assert.equal(m.retrieved_count, 0);
  assert.equal(m.watcher === null || typeof m.watcher === "object", true);
  assert.equal(m.expires_at, invoked.json.expires_at);
  const created = Date.parse(m.created_at);
  assert.ok(created >= before - 2000 && created <= Date.now() + 2000, "created_at is now");
  assert.ok(Math.abs(Date.parse(m.expires_at) - created - 3600_000) < 1000, "expires_at is created_at + ttl_seconds");
  assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

Deno.test("list: the caller's messages oldest change first, with since and limit", async () => {
  const user = await newUser();
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await invoke(user.token, chatBody({ bytes: 500 + i }))).json.transaction_id);

  const all = await fetchJson(user.token, "?since=1970-01-01T00:00:00Z&limit=1000");
  assert.equal(all.status, 200);
  const listed = all.json.messages;
  assert.deepEqual(listed.map((m: { transaction_id: string }) => m.transaction_id), ids);
  assert.ok(listed.every((m: { status: string; checksum: string }) => m.status === "completed" && m.checksum));

  const two = await fetchJson(user.token, "?limit=2");
  assert.deepEqual(two.json.messages.map((m: { transaction_id: string }) => m.transaction_id), ids.slice(0, 2));

  // The listed updated_at has millisecond precision (the database keeps microseconds): one past it is after it.
  const since = encodeURIComponent(new Date(Date.parse(listed[1].updated_at) + 1).toISOString());
  const after = await fetchJson(user.token, `?since=${since}`);
  assert.deepEqual(after.json.messages.map((m: { transaction_id: string }) => m.transaction_id), [ids[2]]);
  const offset = await fetchJson(user.token, `?since=${encodeURIComponent("2000-01-01T01:00:00+01:00")}`);
  assert.equal(offset.json.messages.length, 3, "a since with a time zone offset is accepted");

  for (
    const [query, path] of [["?since=yesterday", "since"], ["?limit=0", "limit"], ["?limit=1001", "limit"], [
      "?limit=x",
      "limit",
    ]]
  ) {
    const bad = await fetchJson(user.token, query);
    assert.equal(bad.status, 400, query);
    assert.ok(bad.json.error.issues.some((i: { path: string }) => i.path === path), `${query} names ${path}`);
  }
});

Deno.test("retrieved_count counts payload fetches (not meta reads); If-None-Match answers 304", async () => {
  const user = await newUser();
  // Above MIN_GZIP_BYTES (payload_store.ts), so that it is stored gzip and has a gzip representation too.
  const invoked = await invoke(user.token, chatBody({ bytes: 5000 }));
  const id = invoked.json.transaction_id;
  const hex = invoked.json.checksum.slice("sha256:".length);

  await fetchBytes(user.token, id);
  await fetchJson(user.token, `/${id}/meta`);
  await fetchBytes(user.token, id);
  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.json.retrieved_count, 2);
  assert.ok(meta.json.retrieved_at !== null);

  // The identity representation's validator is the checksum (CONTRACT.md §5).
  const identity = { "accept-encoding": "identity" };
  for (const tag of [`"${hex}"`, `W/"${hex}"`, `"other", "${hex}"`, "*"]) {
    const notModified = await fetchBytes(user.token, id, { ...identity, "if-none-match": tag });
    assert.equal(notModified.status, 304, `If-None-Match: ${tag}`);
    assert.equal(notModified.bytes.length, 0);
    assert.equal(notModified.headers.get("etag"), `"${hex}"`);
  }
  // The stored gzip, passed through, is another representation with its own validator (RFC 9110 §8.8.3).
  const gzipped = { "accept-encoding": "gzip" };
  const gzNotModified = await fetchBytes(user.token, id, { ...gzipped, "if-none-match": `"${hex}-gzip"` });
  assert.equal(gzNotModified.status, 304);
  assert.equal(gzNotModified.headers.get("etag"), `"${hex}-gzip"`);
  const gzChanged = await fetchBytes(user.token, id, { ...gzipped, "if-none-match": `"${hex}"` });
  assert.equal(gzChanged.status, 200, "the identity validator does not match the gzip representation");
  assert.equal(sha256Hex(gzChanged.bytes), hex, "fetch decodes gzip: the decoded bytes match the checksum");
  const changed = await fetchBytes(user.token, id, { ...identity, "if-none-match": `"${"0".repeat(64)}"` });
  assert.equal(changed.status, 200);
  assert.equal(sha256Hex(changed.bytes), hex);
  const after = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(after.json.retrieved_count, 4, "only the two conditional requests that got the bytes counted");
});

Deno.test("410 once expires_at has passed (before any cleanup); meta and list say expired", async () => {
  const user = await newUser();
  const invoked = await invoke(user.token, chatBody({ bytes: 1500 }));
  const id = invoked.json.transaction_id;
  assert.equal((await fetchBytes(user.token, id)).status, 200);

  const sql = adminSql();
  try {
    await sql`update public.message_bus set expires_at = now() - interval '1 second' where transaction_id = ${id}::uuid`;
  } finally {
    await sql.end();
  }
  const gone = await fetchJson(user.token, `/${id}`);
  assert.equal(gone.status, 410);
  assert.equal(gone.json.error.code, "expired");
  assert.equal(gone.json.transaction_id, id);
  assert.equal(gone.json.status, "expired");
  const conditional = await fetchBytes(user.token, id, { "if-none-match": `"${invoked.json.checksum.slice(7)}"` });
  assert.equal(conditional.status, 410, "an expired payload is gone even for a conditional request");

  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.status, 200);
  assert.equal(meta.json.status, "expired");
  assert.equal(meta.json.checksum, invoked.json.checksum, "the audit trail stays until purged");
  const list = await fetchJson(user.token, "");
  assert.deepEqual(list.json.messages.map((m: { status: string }) => m.status), ["expired"]);
  const other = await newUser();
  assert.equal((await fetchJson(other.token, `/${id}`)).status, 404, "expired or not, another user gets 404");
});

Deno.test("service role: invokes on behalf of a user (owner_id), who then owns the message", async () => {
  const user = await newUser();
  const invoked = await invoke(testStack().serviceRoleKey, chatBody({ bytes: 800 }, { owner_id: user.id }));
  assert.equal(invoked.status, 200, JSON.stringify(invoked.json));
  const got = await fetchBytes(user.token, invoked.json.transaction_id);
  assert.equal(got.status, 200);
  assert.equal(`sha256:${sha256Hex(got.bytes)}`, invoked.json.checksum);
  const stranger = await newUser();
  assert.equal((await fetchJson(stranger.token, `/${invoked.json.transaction_id}/meta`)).status, 404);
});
