/**
 * The claim check under concurrency (CONTRACT.md §4): many invokes and fetches at once keep every payload apart
 * and intact, and racing requests with one Idempotency-Key make one message and one provider call.
 */
import assert from "node:assert/strict";
import { newUser, testStack } from "../devstack/testing/env.ts";
import {
  chatBody,
  fetchJson,
  invoke,
  sha256Hex,
  sha256Stream,
  standinCalls,
  standinDirect,
  uniqueTag,
} from "./claim_check_helpers.ts";

Deno.test("50 concurrent invokes and fetches: distinct ids, every payload verified and owned", async () => {
  const users = await Promise.all(Array.from({ length: 5 }, () => newUser()));
  const jobs = Array.from({ length: 50 }, (_, i) => ({
    user: users[i % users.length],
    body: chatBody({ bytes: 2_000 + i * 3_000 }),
  }));
  const results = await Promise.all(jobs.map(async ({ user, body }) => {
    const invoked = await invoke(user.token, body);
    assert.equal(invoked.status, 200, JSON.stringify(invoked.json));
    const res = await fetch(`${testStack().functionsUrl}/message-fetch/${invoked.json.transaction_id}`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    assert.equal(res.status, 200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { user, body, invoked: invoked.json, bytes };
  }));

  const ids = new Set(results.map((r) => r.invoked.transaction_id));
  assert.equal(ids.size, 50, "every invoke got its own transaction id");
  await Promise.all(results.map(async (r, i) => {
    assert.equal(`sha256:${sha256Hex(r.bytes)}`, r.invoked.checksum, `payload ${i} matches its checksum`);
    assert.equal(r.bytes.length, 2_000 + i * 3_000, `payload ${i} has its own size`);
    const direct = new Uint8Array(await (await standinDirect(r.body)).arrayBuffer());
    assert.equal(sha256Hex(direct), sha256Hex(r.bytes), `payload ${i} is its own provider response`);
  }));

  // Each user lists exactly their own ten messages.
  for (const user of users) {
    const list = await fetchJson(user.token, "?limit=1000");
    assert.equal(list.status, 200);
    const own = results.filter((r) => r.user === user).map((r) => r.invoked.transaction_id).sort();
    assert.deepEqual(list.json.messages.map((m: { transaction_id: string }) => m.transaction_id).sort(), own);
  }
});

Deno.test("concurrent fetches of a payload of several chunks, identity and gzip, outnumber the database pool", async () => {
  // Each fetch reads its chunks with binary COPY, one short transaction per chunk; 24 at once share the function's
  // pool (DB_POOL_SIZE, 10 by default), so connections pass from one COPY to the next. A connection left paused
  // after a COPY (porsager/postgres#499) would hang the fetches queued on it.
  const user = await newUser();
  const invoked = await invoke(user.token, chatBody({ bytes: 8 * 1024 * 1024 }));
  assert.equal(invoked.status, 200, JSON.stringify(invoked.json));
  const id = invoked.json.transaction_id;
  const meta = await fetchJson(user.token, `/${id}/meta`);
  // Chunks hold 1 MiB of stored bytes: more than that is more than one chunk.
  assert.ok(meta.json.stored_size_bytes > 1024 * 1024, `stored ${meta.json.stored_size_bytes} bytes`);
  const fetches = (async () => {
    for (let round = 0; round < 2; round++) {
      await Promise.all(Array.from({ length: 24 }, async (_, i) => {
        const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
          // fetch asks for gzip by default and decodes it; the bytes checked are the payload either way.
          headers: { authorization: `Bearer ${user.token}`, ...(i % 2 ? { "accept-encoding": "identity" } : {}) },
        });
        assert.equal(res.status, 200);
        const { hex, size } = await sha256Stream(res.body!);
        assert.equal(size, 8 * 1024 * 1024);
        assert.equal(`sha256:${hex}`, invoked.json.checksum, `fetch ${i} of round ${round}`);
      }));
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the fetches did not finish within 60 s")), 60_000);
  });
  try {
    await Promise.race([fetches, hung]);
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("idempotency race: concurrent requests with one key make one message and one provider call", async () => {
  const user = await newUser();
  const tag = uniqueTag("idem-race");
  const body = chatBody({ tag, latency_ms: 1500, bytes: 5_000 });
  const key = uniqueTag("key");
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => invoke(user.token, body, { "idempotency-key": key })),
  );

  const ids = new Set(answers.map((a) => a.json.transaction_id));
  assert.equal(ids.size, 1, `exactly one transaction id, got ${[...ids].join(", ")}`);
  for (const a of answers) {
    assert.ok([200, 202].includes(a.status), `200 or 202, got ${a.status} ${JSON.stringify(a.json)}`);
  }
  const completed = answers.filter((a) => a.status === 200);
  assert.ok(completed.length >= 1, "the request that made the message answers 200 once the provider answered");
  for (const a of completed) assert.equal(a.json.status, "completed");
  for (const a of answers.filter((a) => a.status === 202)) assert.equal(a.json.status, "pending");
  assert.equal(await standinCalls(tag), 1, "the provider was called once");

  // A replay after completion answers 200 with the same result, still without calling the provider.
  const replay = await invoke(user.token, body, { "idempotency-key": key });
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.json, completed[0].json);
  assert.equal(await standinCalls(tag), 1);

  // The same key from another caller is another message.
  const other = await newUser();
  const theirs = await invoke(other.token, body, { "idempotency-key": key });
  assert.equal(theirs.status, 200);
  assert.notEqual(theirs.json.transaction_id, replay.json.transaction_id);
  assert.equal(await standinCalls(tag), 2);
});
