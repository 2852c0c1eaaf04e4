import assert from "node:assert/strict";
import { carriesOutput, EventReader, finishReasons, readEvent, type StreamEvent, usageOf } from "./events.ts";

const enc = new TextEncoder();

Deno.test("EventReader: events split anywhere (mid-character too) come out whole; comments skipped; a last event without its blank line is dropped", () => {
  const got: StreamEvent[] = [];
  const r = new EventReader((e) => got.push(e));
  const bytes = enc.encode(
    'data: {"choices":[{"delta":{"content":"é€"}}]}\n\n: keep-alive\n\ndata: [DONE]\n\ndata: {"cut',
  );
  for (let i = 0; i < bytes.length; i += 3) r.push(bytes.subarray(i, i + 3));
  r.end();
  assert.deepEqual(got, [{ kind: "chunk", chunk: { choices: [{ delta: { content: "é€" } }] } }, { kind: "done" }]);
});

Deno.test("readEvent tells chunks, errors, [DONE] and garbage apart", () => {
  assert.deepEqual(readEvent(" [DONE] "), { kind: "done" });
  assert.deepEqual(readEvent('{"error":{"message":"overloaded"}}'), {
    kind: "error",
    error: { message: "overloaded" },
  });
  assert.equal(readEvent('{"choices":[]}').kind, "chunk");
  assert.deepEqual(readEvent("upstream reset"), { kind: "invalid", data: "upstream reset" });
  assert.deepEqual(readEvent("[1]"), { kind: "invalid", data: "[1]" });
});

Deno.test("finishReasons, usageOf (top level or in the choice, as Moonshot) and carriesOutput", () => {
  const last = { choices: [{ index: 0, delta: {}, finish_reason: "length", usage: { total_tokens: 3 } }] };
  assert.deepEqual(finishReasons(last), [{ index: 0, reason: "length" }]);
  assert.deepEqual(usageOf(last), { total_tokens: 3 });
  assert.deepEqual(usageOf({ choices: [], usage: { total_tokens: 4 } }), { total_tokens: 4 });
  assert.equal(usageOf({ choices: [{ delta: { content: "x" } }] }), null);
  assert.equal(carriesOutput({ choices: [{ delta: { role: "assistant", content: "" } }] }), false);
  assert.equal(carriesOutput({ choices: [{ delta: { reasoning_content: "hm" } }] }), true);
  assert.equal(carriesOutput({ choices: [{ delta: { tool_calls: [{ function: { arguments: "{" } }] } }] }), true);
});
