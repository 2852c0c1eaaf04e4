import assert from "node:assert/strict";
import fc from "fast-check";
import { assembleStream, StreamAssembler, utf8Length } from "./assemble.ts";

const enc = new TextEncoder();
const sse = (...events: unknown[]) =>
  events.map((e) => (typeof e === "string" ? e : `data: ${JSON.stringify(e)}\n\n`)).join("");
const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1767225600,
  model: "kimi-k2",
  choices,
  ...extra,
});
const delta = (fields: Record<string, unknown>, index = 0, finish: string | null = null) =>
  chunk([{ index, delta: fields, finish_reason: finish }]);

async function assemble(text: string, split = 7) {
  const bytes = enc.encode(text);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += split) parts.push(bytes.subarray(i, i + split));
  return await assembleStream(ReadableStream.from(parts));
}

Deno.test("assembleStream: content and reasoning concatenated, last finish_reason, usage of the final choices: [] chunk", async () => {
  const text = sse(
    delta({ role: "assistant", content: "" }),
    ": OPENROUTER PROCESSING\n\n",
    delta({ reasoning_content: "Let me " }),
    delta({ reasoning_content: "think… é" }),
    delta({ content: "Hello, " }),
    delta({ content: "wörld €" }),
    delta({}, 0, "stop"),
    chunk([], { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }, system_fingerprint: "fp_1" }),
    "data: [DONE]\n\n",
  );
  const { completion, stats } = await assemble(text, 3);
  assert.deepEqual(completion, {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1767225600,
    model: "kimi-k2",
    system_fingerprint: "fp_1",
    choices: [{
      index: 0,
      message: { role: "assistant", content: "Hello, wörld €", reasoning_content: "Let me think… é" },
      finish_reason: "stop",
    }],
    usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
  });
  assert.equal(stats.done, true);
  assert.equal(stats.finished, true);
  assert.equal(stats.events, 8);
  assert.equal(stats.chunks, 7);
  assert.equal(stats.bytes, enc.encode(text).length);
  assert.equal(stats.outputBytes, enc.encode("Let me think… éHello, wörld €").length);
});

Deno.test("content stays null when the stream never sent any; reasoning_content is left out when none came", async () => {
  const { completion } = await assemble(sse(delta({ role: "assistant", content: null }), delta({}, 0, "stop")));
  assert.deepEqual((completion.choices as unknown[])[0], {
    index: 0,
    message: { role: "assistant", content: null },
    finish_reason: "stop",
  });
  assert.equal("usage" in completion, false, "no usage without include_usage");
  const empty = await assemble(sse(delta({ role: "assistant", content: "" }), delta({ reasoning_content: "hm" })));
  const msg = ((empty.completion.choices as Record<string, unknown>[])[0].message) as Record<string, unknown>;
  assert.equal(msg.content, "", "an empty content delta is content");
  assert.equal(msg.reasoning_content, "hm");
  assert.equal((empty.completion.choices as Record<string, unknown>[])[0].finish_reason, null);
});

Deno.test("tool_calls merge by index, interleaved; id, type and name from the first fragment carrying them", async () => {
  const call = (index: number, f: Record<string, unknown>) => delta({ tool_calls: [{ index, ...f }] });
  const { completion } = await assemble(sse(
    delta({ role: "assistant", content: null }),
    call(0, { id: "call_a", type: "function", function: { name: "lookup", arguments: "" } }),
    call(1, { id: "call_b", type: "function", function: { name: "fetch", arguments: '{"u' } }),
    call(0, { function: { arguments: '{"q":' } }),
    call(1, { function: { arguments: 'rl":1}' } }),
    call(0, { function: { arguments: '"x"}' } }),
    delta({}, 0, "tool_calls"),
  ));
  const message = (completion.choices as Record<string, unknown>[])[0].message as Record<string, unknown>;
  assert.deepEqual(message.tool_calls, [
    { id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } },
    { id: "call_b", type: "function", function: { name: "fetch", arguments: '{"url":1}' } },
  ]);
  assert.equal(message.content, null);
});

Deno.test("Moonshot's tool-call deltas without index: an id starts a call, a fragment without one continues it", async () => {
  const frag = (f: Record<string, unknown>) => delta({ tool_calls: [f] });
  const { completion } = await assemble(sse(
    frag({ id: "call_1", type: "function", function: { name: "a", arguments: "" } }),
    frag({ function: { arguments: "[1," } }),
    frag({ function: { arguments: "2]" } }),
    frag({ id: "call_2", type: "function", function: { name: "b", arguments: "{" } }),
    frag({ id: "call_2", function: { arguments: "}" } }), // the same id again continues the call
    chunk([{ index: 0, delta: {}, finish_reason: "tool_calls", usage: { total_tokens: 9 } }]),
  ));
  const choice = (completion.choices as Record<string, unknown>[])[0];
  assert.deepEqual((choice.message as Record<string, unknown>).tool_calls, [
    { id: "call_1", type: "function", function: { name: "a", arguments: "[1,2]" } },
    { id: "call_2", type: "function", function: { name: "b", arguments: "{}" } },
  ]);
  assert.equal(choice.finish_reason, "tool_calls");
  assert.deepEqual(completion.usage, { total_tokens: 9 }, "usage from the choice, as Moonshot sends it");
  assert.equal("usage" in choice, false);
});

Deno.test("several choices are kept apart and ordered by index; logprobs and refusal concatenate", async () => {
  const { completion } = await assemble(sse(
    chunk([
      { index: 1, delta: { role: "assistant", content: "B" }, logprobs: { content: [{ token: "B" }] } },
      { index: 0, delta: { role: "assistant", content: "A" } },
    ]),
    chunk([{ index: 1, delta: { content: "b" }, logprobs: { content: [{ token: "b" }] }, finish_reason: "length" }]),
    chunk([{ index: 0, delta: { refusal: "no" }, finish_reason: null }]),
    chunk([{ index: 0, delta: {}, finish_reason: "stop" }]),
  ));
  assert.deepEqual(completion.choices, [
    { index: 0, message: { role: "assistant", content: "A", refusal: "no" }, finish_reason: "stop" },
    {
      index: 1,
      message: { role: "assistant", content: "Bb" },
      logprobs: { content: [{ token: "B" }, { token: "b" }], refusal: [] },
      finish_reason: "length",
    },
  ]);
});

Deno.test("errors, garbage and a cut last event are counted, not assembled", async () => {
  const text = sse(delta({ content: "par" }), "data: upstream reset\n\n", delta({ content: "tial" })) +
    sse({ error: { message: "cut", type: "stream_incomplete", code: "stream_incomplete" } }) +
    'data: {"choices":[{"delta":{"content":"lost';
  const { completion, stats } = await assemble(text);
  assert.equal(
    ((completion.choices as Record<string, unknown>[])[0].message as Record<string, unknown>).content,
    "partial",
  );
  assert.equal(stats.done, false);
  assert.equal(stats.finished, false);
  assert.equal(stats.invalid, 1);
  assert.equal(stats.firstInvalid, "upstream reset");
  assert.deepEqual(stats.errors, [{ message: "cut", type: "stream_incomplete", code: "stream_incomplete" }]);
  assert.equal(stats.events, 4);
});

Deno.test("an empty stream assembles to a completion without choices", async () => {
  const { completion, stats } = await assemble("");
  assert.deepEqual(completion, { id: null, object: "chat.completion", created: null, model: null, choices: [] });
  assert.equal(stats.events, 0);
});

Deno.test("maxChars keeps the start of each text field, counts the rest and says it clipped", () => {
  const a = new StreamAssembler({ maxChars: 5 });
  a.push(enc.encode(sse(delta({ content: "abc" }), delta({ content: "defg" }), delta({ reasoning_content: "xy" }))));
  const { completion, stats } = a.end();
  const message = (completion.choices as Record<string, unknown>[])[0].message as Record<string, unknown>;
  assert.equal(message.content, "abcde");
  assert.equal(message.reasoning_content, "xy");
  assert.equal(stats.clipped, true);
  assert.equal(stats.outputBytes, 9);
});

Deno.test("property: any split of the stored bytes assembles to the same completion", async () => {
  const pieces = fc.array(fc.string({ unit: "grapheme", maxLength: 12 }), { maxLength: 12 });
  await fc.assert(
    fc.asyncProperty(
      pieces,
      pieces,
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }),
      async (r, c, cuts) => {
        const text = sse(
          delta({ role: "assistant", content: "" }),
          ...r.map((p) => delta({ reasoning_content: p })),
          ...c.map((p) => delta({ content: p })),
          delta({}, 0, "stop"),
          "data: [DONE]\n\n",
        );
        const bytes = enc.encode(text);
        const parts: Uint8Array[] = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const n = cuts[i % cuts.length];
          parts.push(bytes.subarray(at, at + n));
          at += n;
        }
        const { completion, stats } = await assembleStream(ReadableStream.from(parts));
        const message = (completion.choices as Record<string, unknown>[])[0].message as Record<string, unknown>;
        assert.equal(message.content, c.join(""));
        assert.equal(message.reasoning_content, r.length ? r.join("") : undefined);
        assert.equal(stats.done, true);
        assert.equal(stats.outputBytes, enc.encode(r.join("") + c.join("")).length);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("property: utf8Length equals the length of TextEncoder's bytes", () => {
  fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => utf8Length(s) === enc.encode(s).length));
});
