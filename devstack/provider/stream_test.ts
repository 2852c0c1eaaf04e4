import assert from "node:assert/strict";
import OpenAI from "openai";
import { chatBody, postChat, readAll, sha256Hex, ssePayloads, withStandin } from "./_testing.ts";
import { utf8Pieces } from "./stream.ts";

type Chunk = OpenAI.ChatCompletionChunk;
type Delta = Chunk["choices"][number]["delta"] & { reasoning_content?: string };

/** Streams `body` through the SDK's create({stream: true}) and returns every chunk. */
async function chunksOf(client: OpenAI, body: ReturnType<typeof chatBody>, includeUsage = true): Promise<Chunk[]> {
  const stream = await client.chat.completions.create({
    ...body,
    stream: true,
    stream_options: includeUsage ? { include_usage: true } : undefined,
  });
  const chunks: Chunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const deltas = (chunks: Chunk[]) => chunks.flatMap((c) => c.choices.map((choice) => choice.delta as Delta));
const joined = (chunks: Chunk[], field: "content" | "reasoning_content") =>
  deltas(chunks).map((d) => d[field] ?? "").join("");

Deno.test("create({stream: true}) iterates role, content deltas, finish_reason, then a usage chunk", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("Stream me an answer, please", undefined, "glm-4.6");
    const whole = await client.chat.completions.create(body);
    const chunks = await chunksOf(client, body);
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    const contentDeltas = deltas(chunks).filter((d) => d.content);
    assert.ok(contentDeltas.length > 3, `only ${contentDeltas.length} content deltas`);
    assert.equal(joined(chunks, "content"), whole.choices[0].message.content);
    const finishes = chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean);
    assert.deepEqual(finishes, ["stop"]);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, whole.usage);
    for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.usage, null);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "glm-4.6"));
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  });
});

Deno.test("without include_usage no chunk carries usage, and the raw stream ends with data: [DONE]", async () => {
  await withStandin(async (served) => {
    const res = await postChat(served, { ...chatBody("raw stream"), stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const text = await res.text();
    assert.ok(text.endsWith("data: [DONE]\n\n"));
    const payloads = ssePayloads(text);
    assert.equal(payloads.at(-1), "[DONE]");
    for (const payload of payloads.slice(0, -1)) assert.ok(!("usage" in JSON.parse(payload)), payload);
  });
});

Deno.test("the stream() helper's finalChatCompletion() matches the non-streamed completion", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("helper", { json: true }, "kimi-k2-0905-preview");
    const whole = await client.chat.completions.create(body);
    const final = await client.chat.completions.stream({ ...body, stream_options: { include_usage: true } })
      .finalChatCompletion();
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
    assert.equal(JSON.parse(final.choices[0].message.content ?? "").ok, true);
    assert.equal(final.choices[0].finish_reason, "stop");
    assert.deepEqual(final.usage, whole.usage);
  });
});

Deno.test("reasoning_content deltas all come before the first content delta", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("think first", { reasoning: true });
    const whole = await client.chat.completions.create(body);
    const ds = deltas(await chunksOf(client, body));
    const lastReasoning = ds.findLastIndex((d) => d.reasoning_content);
    const firstContent = ds.findIndex((d) => d.content);
    assert.ok(lastReasoning > 1 && firstContent > lastReasoning, `${lastReasoning} then ${firstContent}`);
    const message = whole.choices[0].message as { reasoning_content?: string; content: string | null };
    assert.equal(ds.map((d) => d.reasoning_content ?? "").join(""), message.reasoning_content);
    assert.equal(ds.map((d) => d.content ?? "").join(""), message.content);
  });
});

Deno.test("tool calls stream id and name first, then arguments in fragments that join to valid JSON", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("find the weather in Zürich", { finish_reason: "tool_calls", reasoning: true });
    const whole = await client.chat.completions.create(body);
    const chunks = await chunksOf(client, body);
    const fragments = deltas(chunks).flatMap((d) => d.tool_calls ?? []);
    assert.ok(fragments.length >= 3, `${fragments.length} fragments`);
    assert.ok(fragments.every((f) => f.index === 0));
    const [first, ...rest] = fragments;
    const expected = whole.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.match(first.id ?? "", /^call_[0-9a-f]{8}$/);
    assert.equal(first.function?.name, "lookup");
    assert.ok(rest.every((f) => f.id === undefined && f.function?.name === undefined));
    const args = fragments.map((f) => f.function?.arguments ?? "").join("");
    assert.equal(args, expected.function.arguments);
    assert.deepEqual(JSON.parse(args), { query: "find the weather in Zürich" });
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, "tool_calls");
    assert.equal(joined(chunks, "content"), "", "tool calls come without content");

    const final = await client.chat.completions.stream(body).finalChatCompletion();
    const call = final.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.function.arguments, expected.function.arguments);
    assert.equal(final.choices[0].finish_reason, "tool_calls");
  });
});

Deno.test("omit_tool_index drops index (as Moonshot does) and usage_in_choice puts usage in the last choice", async () => {
  await withStandin(async (served, client) => {
    const directive = { finish_reason: "tool_calls", omit_tool_index: true, usage_in_choice: true } as const;
    const body = { ...chatBody("moonshot style", directive), stream: true, stream_options: { include_usage: true } };
    const payloads = ssePayloads(await (await postChat(served, body)).text());
    assert.equal(payloads.pop(), "[DONE]");
    const chunks = payloads.map((p) => JSON.parse(p));
    const fragments = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    assert.ok(fragments.length >= 2 && fragments.every((f: object) => !("index" in f)));
    const last = chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, "tool_calls");
    assert.ok(last.choices[0].usage.total_tokens > 0);
    assert.ok(chunks.every((c) => !("usage" in c)), "no top-level usage, whatever stream_options say");
    // The SDK's own accumulator needs index: a consumer of Moonshot must tolerate its absence.
    const error = await client.chat.completions.stream(chatBody("moonshot style", directive)).finalChatCompletion()
      .then(() => null, (e) => e);
    assert.match(String(error), /tool call index/);
  });
});

Deno.test("a 12 MB stream assembles to exactly the non-streamed content of the same request", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("large stream", { bytes: 12_000_000, seed: 7 });
    const whole = (await client.chat.completions.create(body)).choices[0].message.content!;
    const chunks = await chunksOf(client, body, false);
    const streamed = joined(chunks, "content");
    assert.ok(new TextEncoder().encode(streamed).length > 11_000_000);
    assert.equal(streamed, whole);
    assert.ok(chunks.length < 2_000, `${chunks.length} events: filler deltas are 16 KiB`);
  });
});

Deno.test("reasoning_only with bytes streams the filler as reasoning_content and empty content", async () => {
  await withStandin(async (_served, client) => {
    const body = chatBody("think big", { bytes: 200_000, reasoning_only: true });
    const whole = (await client.chat.completions.create(body)).choices[0].message as {
      content: string | null;
      reasoning_content?: string;
    };
    const chunks = await chunksOf(client, body);
    assert.equal(joined(chunks, "reasoning_content"), whole.reasoning_content);
    assert.equal(joined(chunks, "content"), "");
    assert.equal(whole.content, "");
  });
});

Deno.test("a 1 GiB stream starts at once and a client leaving ends it", async () => {
  await withStandin(async (served) => {
    const started = performance.now();
    const res = await postChat(served, { ...chatBody("huge stream", { bytes: 1024 ** 3 }), stream: true });
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 1024 * 1024) received += (await reader.read()).value!.length;
    assert.ok(performance.now() - started < 5_000, "the first MiB took too long: the stream was built up front");
    await reader.cancel();
    const deadline = Date.now() + 5_000;
    while (served.stats().inFlight !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(served.stats().inFlight, 0);
  });
});

Deno.test("identical stream requests get byte-identical event streams", async () => {
  await withStandin(async (served) => {
    const body = { ...chatBody("same stream", { reasoning: true, bytes: 100_000 }), stream: true };
    const first = (await readAll(await postChat(served, body))).bytes as Uint8Array<ArrayBuffer>;
    const second = (await readAll(await postChat(served, body))).bytes as Uint8Array<ArrayBuffer>;
    assert.ok(first.length > 100_000);
    assert.equal(await sha256Hex(first), await sha256Hex(second));
  });
});

Deno.test("utf8Pieces() never splits a character and respects the size", () => {
  const bytes = new TextEncoder().encode("a🙂é漢字b🙂🙂");
  for (const max of [4, 5, 7, 16]) {
    const pieces = [...utf8Pieces(bytes, max)];
    assert.ok(pieces.every((p) => p.length <= max && p.length > 0));
    const decoded = pieces.map((p) => new TextDecoder("utf-8", { fatal: true }).decode(p));
    assert.equal(decoded.join(""), "a🙂é漢字b🙂🙂");
  }
});
