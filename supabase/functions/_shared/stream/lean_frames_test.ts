import assert from "node:assert/strict";
import { StreamWatch } from "./watch.ts";
import { namesWatchedKey } from "./lean_frames.ts";

const enc = new TextEncoder();
const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  `data: ${
    JSON.stringify({
      id: "c",
      object: "chat.completion.chunk",
      model: "m",
      choices: [{ index: 0, delta, finish_reason: null, ...extra }],
    })
  }\n\n`;
const big = (n: number) => 'é"x finish_reason": "stop", usage": {'.repeat(n);

/** What the run reads off a watch. */
function view(w: StreamWatch) {
  return JSON.stringify({
    events: w.events,
    done: w.sawDone,
    finish: w.finishReason,
    usage: w.usage,
    model: w.model,
    error: w.error,
    output: w.firstOutputAt !== undefined,
    boundary: w.atBoundary,
    incomplete: w.incomplete(),
    bytes: w.bytes,
  });
}

const streams: Record<string, string> = {
  clean: chunk({ role: "assistant", content: "" }) + chunk({ content: big(400) }) + chunk({ content: big(400) }) +
    chunk({ content: big(400) }) +
    chunk({}, { finish_reason: "stop" }) +
    `data: ${JSON.stringify({ id: "c", choices: [], usage: { total_tokens: 3 } })}\n\n` +
    "data: [DONE]\n\n",
  "finish in a large chunk": chunk({ content: "a" }) + chunk({ content: big(400) }, { finish_reason: "length" }),
  "usage in a large chunk's choice": chunk({ content: "a" }) +
    chunk({ content: big(400) }, { finish_reason: "stop", usage: { total_tokens: 9 } }) + "data: [DONE]\n\n",
  "large error event": chunk({ content: "a" }) +
    `data: ${JSON.stringify({ error: { message: big(400), code: "x" } })}\n\n`,
  "CRLF framing": (chunk({ content: "a" }) + chunk({ content: big(400) }) + "data: [DONE]\n\n").replaceAll(
    "\n",
    "\r\n",
  ),
  "multi-line data": chunk({ content: "a" }) +
    `data: {"id":"c","choices":[{"index":0,\ndata: "delta":{"content":"${
      "y".repeat(9000)
    }"},"finish_reason":"stop"}]}\n\n`,
  "cut mid-event": chunk({ content: "a" }) + chunk({ content: big(400) }).slice(0, 5000),
};

for (const [name, text] of Object.entries(streams)) {
  Deno.test(`StreamWatch records the same with byte framing, however the bytes are split: ${name}`, () => {
    const bytes = enc.encode(text);
    const exact = new StreamWatch({ exact: true });
    exact.push(bytes);
    for (const max of [1, 3, 7, 100, 4097, 16_584, bytes.length]) {
      const framed = new StreamWatch();
      for (let at = 0; at < bytes.length; at += max) framed.push(bytes.subarray(at, at + max));
      assert.equal(view(framed), view(exact), `pieces of ${max} bytes`);
      if (name === "clean") {
        assert.equal(framed.skipped, 2, "the large content events after the first output are counted, not parsed");
      }
    }
  });
}

Deno.test("namesWatchedKey finds keys with values, not words in strings", () => {
  const json = (o: unknown) => enc.encode(JSON.stringify(o));
  assert.equal(namesWatchedKey(json({ choices: [{ delta: { content: big(3) }, finish_reason: null }] })), false);
  assert.equal(namesWatchedKey(json({ choices: [{ delta: { content: big(3) }, finish_reason: "stop" }] })), true);
  assert.equal(namesWatchedKey(json({ usage: { total_tokens: 1 } })), true);
  assert.equal(namesWatchedKey(json({ error: "x" })), true);
  assert.equal(namesWatchedKey(enc.encode('{"finish\\u005freason": "stop"}')), true, "an escaped key is parsed");
  assert.equal(namesWatchedKey(enc.encode('{"usage" : null, "error":\n null}')), false);
});
