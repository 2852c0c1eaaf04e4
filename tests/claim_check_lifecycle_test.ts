/**
 * A message's life over HTTP (CONTRACT.md §4-5): async pending → completed, and provider failures recorded
 * (with the SDK's retries). What callers read about messages is in claim_check_meta_test.ts.
 */
import assert from "node:assert/strict";
import { newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import {
  chatBody,
  fetchJson,
  invoke,
  sha256Hex,
  standinCalls,
  standinDirect,
  uniqueTag,
} from "./claim_check_helpers.ts";

/** PROVIDER_MAX_RETRIES of the stack (default 2, env.ts). */
const MAX_RETRIES = Number(Deno.env.get("PROVIDER_MAX_RETRIES") || 2);

async function fetchBytes(token: string, id: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
  });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

Deno.test("async: 202 pending, fetch 202 while pending, then 200 with verified bytes", async () => {
  const user = await newUser();
  const tag = uniqueTag("async");
  const body = chatBody({ tag, latency_ms: 1500, bytes: 20_000 }, { mode: "async" });
  const started = await invoke(user.token, body);
  assert.equal(started.status, 202);
  const id = started.json.transaction_id;
  assert.deepEqual(started.json, { transaction_id: id, status: "pending" });

  const pendingMeta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(pendingMeta.status, 202, "meta answers 202 while pending");
  assert.equal(pendingMeta.json.status, "pending");
  assert.equal(pendingMeta.json.checksum, null);
  const pendingFetch = await fetchJson(user.token, `/${id}`);
  assert.equal(pendingFetch.status, 202);
  assert.deepEqual(pendingFetch.json, { transaction_id: id, status: "pending" });

  const meta = await waitFor(
    "the async message to complete",
    async () => {
      const m = await fetchJson(user.token, `/${id}/meta`);
      return m.json.status === "pending" ? undefined : m;
    },
    20_000,
    100,
  );
  assert.equal(meta.status, 200);
  assert.equal(meta.json.status, "completed");
  assert.ok(Date.parse(meta.json.updated_at) > Date.parse(meta.json.created_at), "updated_at moved on completion");
  assert.ok(meta.json.completed_at !== null);

  const got = await fetchBytes(user.token, id);
  assert.equal(got.status, 200);
  assert.equal(`sha256:${sha256Hex(got.bytes)}`, meta.json.checksum);
  const direct = new Uint8Array(await (await standinDirect(body)).arrayBuffer());
  assert.equal(sha256Hex(direct), sha256Hex(got.bytes), "the stored bytes are the provider's response");
  assert.equal(await standinCalls(tag), 2, "one call by the bus, one by this test's direct comparison");
});

Deno.test("provider failure is recorded: 502 with transaction_id, meta failed with the error, fetch 409", async () => {
  const user = await newUser();
  const tag = uniqueTag("fail500");
  const key = uniqueTag("key");
  const failed = await invoke(user.token, chatBody({ tag, status: 500, retry_after: 0 }), { "idempotency-key": key });
  assert.equal(failed.status, 502, JSON.stringify(failed.json));
  assert.equal(failed.json.status, "failed");
  assert.match(failed.json.transaction_id, /^[0-9a-f-]{36}$/);
  assert.equal(failed.json.error.code, "provider_error");
  assert.equal(failed.json.error.provider_status, 500);
  assert.match(failed.json.error.message, /500/);
  assert.equal(await standinCalls(tag), 1 + MAX_RETRIES, "a 500 is retried by the SDK, then given up");

  const id = failed.json.transaction_id;
  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.status, 200);
  assert.equal(meta.json.status, "failed");
  assert.equal(meta.json.error.code, "provider_error");
  assert.equal(meta.json.error.provider_status, 500);
  assert.equal(meta.json.checksum, null);

  const fetched = await fetchJson(user.token, `/${id}`);
  assert.equal(fetched.status, 409);
  assert.equal(fetched.json.error.code, "message_failed");
  assert.equal(fetched.json.transaction_id, id);

  const replay = await invoke(user.token, chatBody({ tag, status: 500 }), { "idempotency-key": key });
  assert.equal(replay.status, 502, "a replay of a failed message answers its failure");
  assert.equal(replay.json.transaction_id, id);
  assert.equal(replay.json.status, "failed");
  assert.equal(replay.json.error.code, failed.json.error.code);
  assert.equal(await standinCalls(tag), 1 + MAX_RETRIES, "... without calling the provider again");
});

Deno.test("provider failure without retry: a 400 from the provider is not retried", async () => {
  const user = await newUser();
  const tag = uniqueTag("fail400");
  const failed = await invoke(user.token, chatBody({ tag, status: 400 }));
  assert.equal(failed.status, 502);
  assert.equal(failed.json.status, "failed");
  assert.equal(await standinCalls(tag), 1);
});

Deno.test("retries: one 503 then success goes through the SDK retry (2 calls) and stores the answer", async () => {
  const user = await newUser();
  const tag = uniqueTag("retry");
  const invoked = await invoke(user.token, chatBody({ tag, status: 503, fail_times: 1, bytes: 4000 }));
  assert.equal(invoked.status, 200, JSON.stringify(invoked.json));
  assert.equal(invoked.json.status, "completed");
  assert.equal(await standinCalls(tag), 2);
  const got = await fetchBytes(user.token, invoked.json.transaction_id);
  assert.equal(got.bytes.length, 4000);
  assert.equal(`sha256:${sha256Hex(got.bytes)}`, invoked.json.checksum);
});
