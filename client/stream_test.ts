import assert from "node:assert/strict";
import { createBusClient } from "./bus_client.ts";
import { BusClientError, BusNetworkError, BusStreamError, BusTimeoutError } from "./errors.ts";
import { fakeFetch, rejection } from "./_testing.ts";
import { streamBody } from "./stream.ts";
import type { StreamPart } from "./stream_parts.ts";

const URL_ = "http://bus.test";
const ID = "01a1fe64-70be-7fb8-b8b1-1411b3f307c5";
const TOKEN = `e30.${btoa(JSON.stringify({ role: "authenticated", sub: "a11ce000-0000-4000-8000-0000000000a1" }))}.sig`;
const encoder = new TextEncoder();
const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${
    JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finish }] })
  }\n\n`;
const CLEAN = chunk({ content: "Hello" }) + chunk({ content: " world" }, "stop") + "data: [DONE]\n\n";

async function checksumOf(text: string): Promise<string> {
  const buf = await crypto.subtle.digest("SHA-256", encoder.encode(text));
  return `sha256:${Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A client whose endpoint answers `sse` (as a stream of `pieces`) and whose metadata answers `meta()`. */
function client(pieces: string[] | ReadableStream<Uint8Array>, meta: () => Record<string, unknown>) {
  const fetch = fakeFetch((req) => {
    const path = new URL(req.url).pathname;
    if (path.endsWith("/openai/v1/chat/completions")) {
      const body = Array.isArray(pieces) ? ReadableStream.from(pieces.map((p) => encoder.encode(p))) : pieces;
      return new Response(body, { headers: { "content-type": "text/event-stream", "x-bus-transaction-id": ID } });
    }
    if (path.endsWith(`/message-fetch/${ID}/meta`)) {
      const m = meta();
      return Response.json({ transaction_id: ID, ...m }, { status: m.status === "pending" ? 202 : 200 });
    }
    return Response.json({ error: { code: "not_found", message: path } }, { status: 404 });
  });
  return { bus: createBusClient({ url: URL_, key: "anon", accessToken: TOKEN, fetch }), fetch };
}

const input = { messages: [{ role: "user", content: "hi" }] };

Deno.test("streamBody(): model from provider and model, the input's members, stream: true, fallbacks and files", () => {
  assert.deepEqual(streamBody({ provider: "kimi", model: "k2", input, fallbacks: ["glm"] }), {
    model: "kimi/k2",
    messages: input.messages,
    stream: true,
    fallbacks: ["glm"],
  });
  assert.equal(streamBody({ provider: "glm", input }).model, "glm");
  assert.equal(streamBody({ model: "glm/glm-4.6", input }).model, "glm/glm-4.6");
  const f1 = "0f1e0000-0000-4000-8000-000000000001", f2 = "0f1e0000-0000-4000-8000-000000000002";
  assert.deepEqual(streamBody({ provider: "kimi", input: { ...input, files: [f1] } }, [f1, f2]).files, [f1, f2]);
  assert.equal(streamBody({ provider: "kimi", input: { ...input, stream: false } }).stream, true);
});

Deno.test("stream() sends the bus options as headers and POSTs to the openai endpoint", async () => {
  const { bus, fetch } = client([CLEAN], () => ({ status: "completed", checksum: null }));
  const stream = bus.stream({ provider: "kimi", input, session_id: "s-1", ttl_seconds: 600 }, {
    idempotencyKey: "k-1",
  });
  const err = await rejection(async () => {
    for await (const _ of stream) continue;
  }, BusClientError);
  assert.equal(err.code, "invalid_response", "no checksum in the metadata: nothing to verify against");
  const [req] = fetch.requests;
  assert.equal(req.method, "POST");
  assert.equal(req.url, `${URL_}/functions/v1/openai/v1/chat/completions`);
  assert.equal(req.headers.get("idempotency-key"), "k-1");
  assert.equal(req.headers.get("x-bus-session-id"), "s-1");
  assert.equal(req.headers.get("x-bus-ttl-seconds"), "600");
  assert.equal(req.headers.get("authorization"), `Bearer ${TOKEN}`);
  assert.equal((await req.json()).model, "kimi");
});

Deno.test("events split anywhere (mid-event, mid-character) are yielded whole; the end waits for the message to leave pending", async () => {
  const text = chunk({ content: "naïve 漢字 🙂" }, "stop") + "data: [DONE]\n\n";
  const bytes = encoder.encode(text);
  const pieces = new ReadableStream<Uint8Array>({
    start(c) {
      for (let at = 0; at < bytes.length; at += 7) c.enqueue(bytes.subarray(at, at + 7));
      c.close();
    },
  });
  let polls = 0;
  const checksum = await checksumOf(text);
  const { bus } = client(pieces, () => (++polls < 3 ? { status: "pending" } : { status: "completed", checksum }));
  const parts: StreamPart[] = [];
  for await (const part of bus.stream({ provider: "kimi", input })) parts.push(part);
  assert.deepEqual(parts.map((p) => p.type), ["transaction", "content", "finish", "verified"]);
  assert.equal(parts[1].type === "content" && parts[1].text, "naïve 漢字 🙂");
  assert.equal(polls, 3, "polled until completed");
  const last = parts[3];
  assert.ok(last.type === "verified" && last.checksum === checksum && last.size_bytes === bytes.length);
});

Deno.test("a stream that looked clean but whose message failed is a BusStreamError with the message's code", async () => {
  const checksum = await checksumOf(CLEAN);
  const { bus } = client([CLEAN], () => ({
    status: "failed",
    checksum,
    error: { code: "worker_time_limit", message: "out of time" },
  }));
  const err = await rejection(async () => {
    for await (const _ of bus.stream({ provider: "kimi", input })) continue;
  }, BusStreamError);
  assert.equal(err.code, "worker_time_limit");
  assert.equal(err.transactionId, ID);
  assert.equal(err.details?.partial_verified, true);
});

Deno.test("a message still pending past settleTimeoutMs is a BusTimeoutError; a broken connection a BusNetworkError", async () => {
  const { bus } = client([CLEAN], () => ({ status: "pending" }));
  const err = await rejection(async () => {
    for await (const _ of bus.stream({ provider: "kimi", input }, { settleTimeoutMs: 100 })) continue;
  }, BusTimeoutError);
  assert.equal(err.transactionId, ID);

  let pulls = 0;
  const broken = new ReadableStream<Uint8Array>({
    pull(c) {
      // The first read gets an event; the second finds the connection reset (an error drops what is queued).
      if (pulls++ === 0) c.enqueue(encoder.encode(chunk({ content: "Hel" })));
      else c.error(new TypeError("connection reset"));
    },
  });
  const { bus: bus2 } = client(broken, () => ({ status: "completed" }));
  const parts: StreamPart[] = [];
  const err2 = await rejection(async () => {
    for await (const part of bus2.stream({ provider: "kimi", input })) parts.push(part);
  }, BusNetworkError);
  assert.equal(err2.transactionId, ID);
  assert.match(err2.message, /broke off after \d+ bytes/);
  assert.deepEqual(parts.map((p) => p.type), ["transaction", "content"], "what arrived was yielded");
});

Deno.test("a stream is iterated once", () => {
  const { bus } = client([CLEAN], () => ({ status: "completed" }));
  const stream = bus.stream({ provider: "kimi", input });
  stream[Symbol.asyncIterator]();
  assert.throws(() => stream[Symbol.asyncIterator](), /only once/);
});
