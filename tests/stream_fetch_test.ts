/**
 * message-fetch for streamed messages (CONTRACT.md §5, §10): `/completion` assembles the stored event stream into the
 * provider's non-streamed answer and answers a non-streamed message with its stored body; `?partial=1` serves what a
 * stream that broke off kept, verified; the status rules of the plain fetch hold for both. Streamed messages are
 * stored as the relay stores them (stream_helpers.ts), from the provider stand-in's own streams.
 */
import assert from "node:assert/strict";
import { adminSql, newUser } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke, sha256Hex } from "./claim_check_helpers.ts";
import { freshPrompt, getBytes, standinStream, standinWhole, storeStream } from "./stream_helpers.ts";

const dec = new TextDecoder();

/** The non-streamed answer as the stream assembles to it: the stand-in's ids depend on the request bytes. */
function sameAnswer(got: Record<string, unknown>, whole: Record<string, unknown>) {
  const expected = structuredClone(whole);
  expected.id = got.id;
  const calls = (expected.choices as { message: { tool_calls?: { id: string }[] } }[])[0].message.tool_calls;
  const gotCalls = (got.choices as { message: { tool_calls?: { id: string }[] } }[])[0].message.tool_calls;
  calls?.forEach((call, i) => (call.id = gotCalls![i].id));
  assert.deepEqual(got, expected);
}

Deno.test("/completion assembles a stored stream into the provider's non-streamed answer; the plain fetch gives the events", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser();
    for (
      const directive of [
        { reasoning: true, delta_bytes: 5 },
        { finish_reason: "tool_calls", omit_tool_index: true, usage_in_choice: true },
        { bytes: 8 * 1024 * 1024, reasoning: true }, // several chunks, stored gzip
      ]
    ) {
      const prompt = freshPrompt();
      const { bytes: sse } = await standinStream(prompt, directive);
      const stored = await storeStream(sql, alice.id, sse);
      const plain = await getBytes(alice.token, `/${stored.id}`);
      assert.equal(plain.status, 200);
      assert.deepEqual(plain.bytes, sse, "the plain fetch is the event stream as relayed");
      assert.equal(plain.headers.get("content-type"), "text/event-stream");
      assert.equal(plain.headers.get("etag"), `"${sha256Hex(sse)}"`);

      const res = await getBytes(alice.token, `/${stored.id}/completion`);
      assert.equal(res.status, 200, dec.decode(res.bytes.slice(0, 300)));
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.equal(res.headers.get("etag"), `W/"${sha256Hex(sse)}-completion"`);
      assert.equal(res.headers.get("x-bus-source-checksum"), stored.checksum);
      assert.equal(res.headers.get("x-bus-partial"), null);
      sameAnswer(JSON.parse(dec.decode(res.bytes)), await standinWhole(prompt, directive));
      if (directive.bytes) assert.ok(stored.chunkCount > 1, `${stored.chunkCount} chunks`);

      const again = await getBytes(alice.token, `/${stored.id}/completion`, {
        "if-none-match": `"${sha256Hex(sse)}-completion"`,
      });
      assert.equal(again.status, 304, "a weak match of the ETag answers 304");
    }
  } finally {
    await sql.end();
  }
});

Deno.test("/completion of a non-streamed message is its stored body, byte for byte, with the plain fetch's validators", async () => {
  const alice = await newUser();
  const done = await invoke(alice.token, chatBody({ reasoning: true }));
  assert.equal(done.status, 200, JSON.stringify(done.json));
  const id = done.json.transaction_id;
  const plain = await getBytes(alice.token, `/${id}`);
  const completion = await getBytes(alice.token, `/${id}/completion`);
  assert.equal(completion.status, 200);
  assert.deepEqual(completion.bytes, plain.bytes);
  for (const h of ["content-type", "etag", "repr-digest", "x-checksum"]) {
    assert.equal(completion.headers.get(h), plain.headers.get(h), h);
  }
  assert.equal(`sha256:${sha256Hex(completion.bytes)}`, done.json.checksum);
  const meta = await fetchJson(alice.token, `/${id}/meta`);
  assert.equal(meta.json.retrieved_count, 2, "both reads count as retrievals");
});

Deno.test("?partial=1 serves what a stream that broke off kept, verified; the plain fetch and /completion stay 409", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser();
    const { bytes: arrived, cut } = await standinStream(freshPrompt(), { cut_after_bytes: 900, delta_bytes: 4 });
    assert.ok(cut && arrived.length === 900, `the stand-in cut the stream (${arrived.length} bytes)`);
    const stored = await storeStream(sql, alice.id, arrived, { outcome: "stream_incomplete" });

    const partial = await getBytes(alice.token, `/${stored.id}?partial=1`);
    assert.equal(partial.status, 200);
    assert.deepEqual(partial.bytes, stored.bytes);
    assert.ok(
      dec.decode(partial.bytes).endsWith('"code":"stream_incomplete"}}\n\n'),
      "ends with the bus's error event",
    );
    assert.equal(partial.headers.get("x-bus-partial"), "true");
    assert.equal(partial.headers.get("etag"), `"${sha256Hex(stored.bytes)}"`);
    assert.equal(partial.headers.get("x-checksum"), stored.checksum);

    const meta = await fetchJson(alice.token, `/${stored.id}/meta`);
    assert.equal(meta.json.status, "failed");
    assert.deepEqual(meta.json.error, { code: "stream_incomplete", message: "The provider's stream broke off" });
    assert.equal(meta.json.checksum, stored.checksum, "meta's checksum is the partial payload's");
    assert.equal(meta.json.payload_size_bytes, stored.bytes.length);
    assert.equal(meta.json.stream, true);

    for (const path of [`/${stored.id}`, `/${stored.id}?partial=0`, `/${stored.id}/completion`]) {
      const failed = await fetchJson(alice.token, path);
      assert.equal(failed.status, 409, path);
      assert.equal(failed.json.error.code, "message_failed");
      assert.equal(failed.json.error.cause.code, "stream_incomplete");
    }

    // Bytes that no longer match their checksum are refused, not served as what arrived.
    await sql`update public.message_bus_chunks set data = overlay(data placing '\\x58'::bytea from 3)
              where transaction_id = ${stored.id}::uuid and seq = 0`;
    const tampered = await fetchJson(alice.token, `/${stored.id}?partial=true`);
    assert.equal(tampered.status, 500);
    assert.equal(tampered.json.error.code, "checksum_mismatch");
  } finally {
    await sql.end();
  }
});

Deno.test("?partial=1 of a failure that kept nothing is 409; of a completed message it is the plain fetch", async () => {
  const alice = await newUser();
  const failed = await invoke(alice.token, chatBody({ status: 400 }));
  assert.equal(failed.status, 502, JSON.stringify(failed.json));
  const res = await fetchJson(alice.token, `/${failed.json.transaction_id}?partial=1`);
  assert.equal(res.status, 409);
  assert.match(res.json.error.message, /kept no partial payload/);
  const done = await invoke(alice.token, chatBody({}));
  const plain = await getBytes(alice.token, `/${done.json.transaction_id}`);
  const partial = await getBytes(alice.token, `/${done.json.transaction_id}?partial=1`);
  assert.equal(partial.status, 200);
  assert.deepEqual(partial.bytes, plain.bytes);
  assert.equal(partial.headers.get("x-bus-partial"), null);
});

Deno.test("/completion and ?partial=1 follow the plain fetch's rules: 202, 404, 410, 400", async () => {
  const sql = adminSql();
  try {
    const alice = await newUser(), bob = await newUser();
    const { bytes } = await standinStream(freshPrompt(), {});
    const stored = await storeStream(sql, alice.id, bytes);
    for (const path of [`/${stored.id}/completion`, `/${stored.id}?partial=1`]) {
      assert.equal((await fetchJson(bob.token, path)).status, 404, `${path}: another user's message`);
    }
    assert.equal((await fetchJson(alice.token, `/${crypto.randomUUID()}/completion`)).status, 404);
    const bad = await fetchJson(alice.token, `/not-a-uuid/completion`);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, "invalid_request");
    for (const q of ["?partial=2", "?partial=", "?partial=1&x=1"]) {
      const res = await fetchJson(alice.token, `/${stored.id}${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.json.error.code, "invalid_request");
    }
    assert.equal((await fetchJson(alice.token, `/${stored.id}/completion?partial=1`)).status, 400);

    const pending = await invoke(alice.token, chatBody({ latency_ms: 3000 }, { mode: "async" }));
    assert.equal(pending.status, 202);
    const early = await fetchJson(alice.token, `/${pending.json.transaction_id}/completion`);
    assert.equal(early.status, 202);
    assert.equal(early.json.status, "pending");

    await sql`update public.message_bus set expires_at = now() - interval '1 second'
              where transaction_id = ${stored.id}::uuid`;
    for (const path of [`/${stored.id}/completion`, `/${stored.id}?partial=1`]) {
      const gone = await fetchJson(alice.token, path);
      assert.equal(gone.status, 410, path);
      assert.equal(gone.json.error.code, "expired");
    }
  } finally {
    await sql.end();
  }
});
