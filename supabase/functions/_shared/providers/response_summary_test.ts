import assert from "node:assert/strict";
import { SummaryCollector } from "./response_summary.ts";

const enc = new TextEncoder();

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
}

/** Streams `body` through a collector in pieces of `size`; returns the summary and what came out. */
async function summarise(body: string | Uint8Array, size = 65_536, fullLimit?: number) {
  const bytes = typeof body === "string" ? enc.encode(body) : body;
  const collector = new SummaryCollector(fullLimit);
  const out: number[] = [];
  for await (const chunk of collector.tap(pieces(bytes, size))) out.push(...chunk);
  assert.deepEqual(new Uint8Array(out), bytes, "tap passes every byte through unchanged, in order");
  return collector.summary();
}

function completion(content: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify(
    {
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1767225600,
      model: "kimi-k2-0905-preview",
      choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "length" }],
      usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 } },
      ...extra,
    },
    null,
    1,
  );
}

Deno.test("SummaryCollector: a small completion is parsed whole", async () => {
  const s = await summarise(completion("hello é漢字🙂"), 7);
  assert.deepEqual(s, {
    finishReason: "length",
    usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 } },
    model: "kimi-k2-0905-preview",
    parsed: true,
  });
});

Deno.test("SummaryCollector: bodies that are not a chat completion are reported as not parsed", async () => {
  const none = { finishReason: null, usage: null, model: null, parsed: false };
  assert.deepEqual(await summarise("upstream connect error or disconnect/reset before headers"), none);
  assert.deepEqual(await summarise(completion("cut in half").slice(0, 60)), none);
  assert.deepEqual(await summarise(""), none);
  const noChoices = await summarise(JSON.stringify({ model: "m", error: { message: "x" } }));
  assert.equal(noChoices.parsed, false);
  assert.equal(noChoices.model, "m");
  assert.equal((await summarise("[1,2,3]")).parsed, false);
});

Deno.test("SummaryCollector: missing fields are null, not invented", async () => {
  const s = await summarise(JSON.stringify({ choices: [{ message: { content: "x" } }] }));
  assert.deepEqual(s, { finishReason: null, usage: null, model: null, parsed: true });
});

Deno.test("SummaryCollector: past the full limit the fields come from the head and the tail", async () => {
  const body = completion("x".repeat(300_000) + "漢字🙂".repeat(20_000));
  for (const size of [65_536, 4096, 1000]) {
    const s = await summarise(body, size, 1024);
    assert.equal(s.finishReason, "length", `finish_reason with pieces of ${size}`);
    assert.deepEqual(s.usage, {
      prompt_tokens: 3,
      completion_tokens: 5,
      total_tokens: 8,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    assert.equal(s.model, "kimi-k2-0905-preview");
    assert.equal(s.parsed, true);
  }
});

Deno.test("SummaryCollector: the default full limit is 1 MiB; a larger body still yields its summary", async () => {
  const body = completion("é".repeat(700_000)); // about 1.4 MB
  const s = await summarise(body, 65_536);
  assert.deepEqual([s.finishReason, s.model, s.parsed], ["length", "kimi-k2-0905-preview", true]);
});

Deno.test("SummaryCollector: a large body cut short is not parsed", async () => {
  const body = completion("y".repeat(200_000));
  const s = await summarise(body.slice(0, 150_000), 4096, 1024);
  assert.equal(s.parsed, false);
  assert.equal(s.finishReason, null);
});

Deno.test("SummaryCollector: the last finish_reason in the tail wins (several choices)", async () => {
  const body = JSON.stringify({
    model: "glm-4.5-flash",
    choices: [
      { index: 0, message: { content: "a".repeat(100_000) }, finish_reason: "stop" },
      { index: 1, message: { content: "b" }, finish_reason: "tool_calls" },
    ],
  });
  assert.equal((await summarise(body, 999, 1024)).finishReason, "tool_calls");
  assert.equal((await summarise(body, 999)).finishReason, "stop", "parsed whole: the first choice's reason");
});

Deno.test("SummaryCollector: finish_reason quoted inside the content is not taken for the real one", async () => {
  // A string field after the choices, so that a match inside it would be the last one in the tail.
  const body = completion("z".repeat(100_000), { note: 'the text "finish_reason": "evil" in a string' });
  const s = await summarise(body, 500, 1024);
  assert.equal(s.finishReason, "length");
});

Deno.test("SummaryCollector: the model is found even when the first network read is tiny", async () => {
  const body = enc.encode(completion("w".repeat(100_000)));
  const collector = new SummaryCollector(1024);
  const source = (async function* () {
    yield body.slice(0, 1); // a 1-byte first read, as a slow network can deliver
    yield* pieces(body.slice(1), 65_536);
  })();
  for await (const _ of collector.tap(source)) { /* drain */ }
  assert.equal(collector.summary().model, "kimi-k2-0905-preview");
});
