/**
 * The SDK's `stream()` (client/stream.ts) against the running stack's OpenAI-compatible endpoint (CONTRACT.md §10):
 * the transaction id before the first delta, reasoning / content / tool-call deltas as the stand-in sends them, and
 * the verification at the end (every byte received against the stored checksum). Cut streams, error events, bytes
 * changed in transit and the endpoint's errors are never reported as a clean end.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { rejection } from "../client/_testing.ts";
import {
  BusApiError,
  BusClientError,
  type BusClientOptions,
  BusStreamError,
  ChecksumMismatchError,
  createBusClient,
  type StreamPart,
  type StreamRequest,
  ToolCallAssembler,
} from "../client/mod.ts";
import { EventReader } from "../supabase/functions/_shared/stream/events.ts";
import { partsOfChunk } from "../client/stream_parts.ts";
import { standinCalls, uniqueTag } from "./claim_check_helpers.ts";

/** A fresh user and a client for them. */
async function userClient(extra: Partial<BusClientOptions> = {}) {
  const stack = testStack();
  const user = await newUser();
  const bus = createBusClient({ url: stack.url, key: stack.anonKey, accessToken: user.token, ...extra });
  return { bus, user };
}

/** A chat steered by a `#standin` directive; the prompt is unique. */
const chat = (directive: Record<string, unknown>, extra: Partial<StreamRequest> = {}): StreamRequest => ({
  provider: "kimi",
  model: `sdk-stream-${crypto.randomUUID().slice(0, 8)}`,
  input: {
    messages: [{ role: "user", content: `sdk stream ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}` }],
  },
  ...extra,
});

/** Every part of a stream, and the transaction id as it stood when the first part arrived. */
async function collect(stream: AsyncIterable<StreamPart> & { transactionId?: string }) {
  const parts: StreamPart[] = [];
  let idAtFirst: string | undefined;
  for await (const part of stream) {
    if (parts.length === 0) idAtFirst = stream.transactionId;
    parts.push(part);
  }
  return { parts, idAtFirst };
}

/** The texts of the stored stream's deltas, assembled the bus's way (its own event reading). */
function storedTexts(bytes: Uint8Array) {
  let content = "", reasoning = "";
  const reader = new EventReader((event) => {
    if (event.kind !== "chunk") return;
    for (const part of partsOfChunk(event.chunk)) {
      if (part.type === "content") content += part.text;
      if (part.type === "reasoning") reasoning += part.text;
    }
  });
  reader.push(bytes);
  reader.end();
  return { content, reasoning };
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const textOf = (parts: StreamPart[], type: "content" | "reasoning") =>
  parts.flatMap((p) => (p.type === type ? [p.text] : [])).join("");

Deno.test("stream() yields the transaction id first, then reasoning and content deltas, and ends verified against the stored checksum", async () => {
  const { bus } = await userClient();
  try {
    const session = `sdk-session-${crypto.randomUUID()}`;
    const req = chat({ reasoning: true, bytes: 20_000 }, { session_id: session, ttl_seconds: 3600 });
    const stream = bus.stream({ ...req, input: { ...req.input, stream_options: { include_usage: true } } });
    assert.equal(stream.transactionId, undefined, "no id before the request");
    const { parts, idAtFirst } = await collect(stream);
    const first = parts[0];
    assert.equal(first.type, "transaction");
    const id = first.type === "transaction" ? first.transaction_id : "";
    assert.equal(idAtFirst, id, "transactionId is set when the first part arrives");
    assert.equal(stream.transactionId, id);

    const types = parts.map((p) => p.type);
    assert.ok(
      types.indexOf("reasoning") > 0 && types.indexOf("reasoning") < types.indexOf("content"),
      "reasoning comes first",
    );
    assert.deepEqual(types.slice(-3), ["finish", "usage", "verified"]);
    const verified = parts.at(-1)!;
    assert.equal(verified.type, "verified");
    assert.deepEqual(stream.result, verified.type === "verified" ? (({ type: _t, ...r }) => r)(verified) : null);

    // The bytes as stored: their checksum is the one verified, and their deltas are the ones yielded.
    const { data: payload } = await bus.throwOnError().fetch(id);
    assert.equal(stream.result!.checksum, sha256(payload.bytes));
    assert.equal(stream.result!.size_bytes, payload.size);
    assert.equal(stream.result!.finish_reason, "stop");
    assert.equal(typeof stream.result!.usage?.total_tokens, "number");
    const stored = storedTexts(payload.bytes);
    assert.equal(textOf(parts, "content"), stored.content);
    assert.equal(textOf(parts, "reasoning"), stored.reasoning);
    assert.ok(stored.content.length >= 10_000 && stored.reasoning.length > 0);

    // The bus options went as headers.
    const { data: meta } = await bus.throwOnError().meta(id);
    assert.equal(meta.stream, true);
    assert.equal(meta.session_id, session);
    const ttl = (Date.parse(meta.expires_at) - Date.parse(meta.created_at)) / 1000;
    assert.ok(Math.abs(ttl - 3600) < 5, `ttl ${ttl}`);
  } finally {
    await bus.close();
  }
});

Deno.test("stream() yields tool-call fragments that assemble into the call, with or without their index", async () => {
  const { bus } = await userClient();
  try {
    for (const directive of [{ finish_reason: "tool_calls" }, { finish_reason: "tool_calls", omit_tool_index: true }]) {
      const { parts } = await collect(bus.stream(chat(directive)));
      const fragments = parts.filter((p) => p.type === "tool_call");
      assert.ok(fragments.length >= 2, `${JSON.stringify(directive)}: several fragments`);
      const tools = new ToolCallAssembler();
      for (const f of fragments) if (f.type === "tool_call") tools.add(f);
      assert.equal(tools.calls.length, 1);
      assert.equal(tools.calls[0].name, "lookup");
      assert.match(tools.calls[0].id ?? "", /^call_/);
      assert.equal(typeof JSON.parse(tools.calls[0].arguments), "object");
      assert.equal(parts.at(-1)?.type, "verified");
      const finish = parts.find((p) => p.type === "finish");
      assert.equal(finish?.type === "finish" && finish.reason, "tool_calls");
    }
  } finally {
    await bus.close();
  }
});

Deno.test("a cut stream and a stream ending with an error event throw BusStreamError naming the transaction, after verifying the partial", async () => {
  const { bus } = await userClient();
  try {
    for (const directive of [{ cut_after_bytes: 600, bytes: 4096 }, { error_after_events: 3, bytes: 4096 }]) {
      const stream = bus.stream(chat(directive));
      const parts: StreamPart[] = [];
      const err = await rejection(async () => {
        for await (const part of stream) parts.push(part);
      }, BusStreamError);
      assert.equal(parts[0].type, "transaction");
      assert.ok(!parts.some((p) => p.type === "verified"), "never verified");
      assert.equal(err.code, "stream_incomplete");
      assert.equal(err.transactionId, stream.transactionId);
      assert.equal(err.details?.partial_verified, true, "the bytes received match the stored partial's checksum");
      assert.equal(err.details?.message_status, "failed");
      const { data: meta } = await bus.throwOnError().meta(stream.transactionId!);
      assert.equal(meta.status, "failed");
      assert.equal(meta.error?.code, "stream_incomplete");
      assert.equal(meta.checksum, err.details?.checksum);
      assert.equal(stream.result, undefined);
    }
  } finally {
    await bus.close();
  }
});

Deno.test("bytes changed on their way to the client are a ChecksumMismatchError naming the transaction", async () => {
  // One content byte is changed in transit (still valid JSON and UTF-8): only the checksum can tell.
  const tamper: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (!String(input).includes("/openai/") || !res.body) return res;
    let done = false;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          const at = done ? -1 : new TextDecoder().decode(chunk).indexOf("Stand-in");
          if (at >= 0) {
            chunk = chunk.slice();
            chunk[at] = "Z".charCodeAt(0); // "S" → "Z": one ASCII byte at the same offset
            done = true;
          }
          out.enqueue(chunk);
        },
      }),
    );
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const { bus } = await userClient({ fetch: tamper });
  try {
    const stream = bus.stream(chat({}));
    const parts: StreamPart[] = [];
    const err = await rejection(async () => {
      for await (const part of stream) parts.push(part);
    }, ChecksumMismatchError);
    assert.match(textOf(parts, "content"), /Ztand-in/, "the changed bytes were read");
    assert.equal(err.transactionId, stream.transactionId);
    assert.equal(err.source, "client");
    assert.equal(err.details?.compared_with, "metadata");
    const { data: meta } = await bus.throwOnError().meta(stream.transactionId!);
    assert.equal(meta.status, "completed", "the stored message is fine: the bytes changed on the way");
    assert.equal(err.expected, meta.checksum);
  } finally {
    await bus.close();
  }
});

Deno.test("the same Idempotency-Key after the stream finished: the stored stream again, verified, the provider called once", async () => {
  const { bus } = await userClient();
  try {
    const tag = uniqueTag("sdk-stream-repeat");
    const req = chat({ tag, bytes: 3000 });
    const key = `sdk-stream-${crypto.randomUUID()}`;
    const first = await collect(bus.stream(req, { idempotencyKey: key }));
    const again = await collect(bus.stream(req, { idempotencyKey: key }));
    const result = (r: { parts: StreamPart[] }) => r.parts.find((p) => p.type === "verified");
    assert.ok(result(first) && result(again));
    assert.deepEqual(result(again), result(first), "the same transaction, bytes and checksum");
    assert.equal(textOf(again.parts, "content"), textOf(first.parts, "content"));
    assert.equal(await standinCalls(tag), 1);
  } finally {
    await bus.close();
  }
});

Deno.test("a stream the endpoint refuses throws its BusApiError (with the transaction when one was recorded); a request it cannot take throws at once", async () => {
  const { bus } = await userClient();
  try {
    const refused = bus.stream(chat({ status: 400 }));
    const err = await rejection(async () => {
      for await (const _ of refused) throw new Error("nothing is yielded for a refused stream");
    }, BusApiError);
    assert.equal(err.status, 400, "the provider's own 400 is passed on (CONTRACT.md §10)");
    assert.match(err.transactionId ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(refused.transactionId, undefined);

    const input = { messages: [{ role: "user", content: "hi" }] };
    for (
      const [req, message] of [
        [{ input }, /provider or a model/],
        [{ tool: "echo", provider: "kimi", input }, /Only the chat tool/],
        [{ provider: "kimi", input, metadata: { a: 1 } }, /metadata/],
      ] as const
    ) {
      assert.throws(
        () => bus.stream(req as StreamRequest),
        (e) => e instanceof BusClientError && e.code === "invalid_argument" && message.test(e.message),
      );
    }
  } finally {
    await bus.close();
  }
});

Deno.test("leaving the loop early cancels only the reading: the bus completes the message", async () => {
  const { bus } = await userClient();
  try {
    const stream = bus.stream(chat({ bytes: 200_000, event_delay_ms: 5 }));
    for await (const part of stream) if (part.type === "content") break;
    const id = stream.transactionId!;
    const deadline = Date.now() + 20_000;
    let status = "pending";
    while (status === "pending" && Date.now() < deadline) {
      status = (await bus.throwOnError().meta(id)).data.status;
      if (status === "pending") await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, "completed");
    const { data } = await bus.throwOnError().fetch(id);
    assert.ok(data.size > 200_000);
  } finally {
    await bus.close();
  }
});
