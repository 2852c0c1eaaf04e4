import assert from "node:assert/strict";
import { partsOfChunk, ToolCallAssembler, type ToolCallPart } from "./stream_parts.ts";

Deno.test("partsOfChunk(): reasoning before content, tool-call fragments, the finish reason and usage", () => {
  const parts = partsOfChunk({
    choices: [{
      index: 0,
      delta: {
        role: "assistant",
        content: "Hi",
        reasoning_content: "think",
        tool_calls: [{ index: 0, id: "call_1", function: { name: "lookup", arguments: "{" } }],
      },
      finish_reason: "tool_calls",
    }],
    usage: { total_tokens: 3 },
  });
  assert.deepEqual(parts, [
    { type: "reasoning", choice: 0, text: "think" },
    { type: "content", choice: 0, text: "Hi" },
    { type: "tool_call", choice: 0, index: 0, id: "call_1", name: "lookup", arguments: "{" },
    { type: "finish", choice: 0, reason: "tool_calls" },
    { type: "usage", usage: { total_tokens: 3 } },
  ]);
});

Deno.test("partsOfChunk(): empty and role-only deltas yield nothing; usage in the choice (Moonshot) is found", () => {
  assert.deepEqual(partsOfChunk({ choices: [{ index: 0, delta: { role: "assistant", content: "" } }] }), []);
  assert.deepEqual(partsOfChunk({ choices: [] }), []);
  assert.deepEqual(
    partsOfChunk({ choices: [{ index: 1, delta: {}, finish_reason: "stop", usage: { total_tokens: 9 } }] }),
    [
      { type: "finish", choice: 1, reason: "stop" },
      { type: "usage", usage: { total_tokens: 9 } },
    ],
  );
});

Deno.test("ToolCallAssembler joins fragments by index, and without an index by id then order", () => {
  const frag = (p: Partial<ToolCallPart>): ToolCallPart => ({ type: "tool_call", choice: 0, index: null, ...p });
  const byIndex = new ToolCallAssembler();
  for (
    const p of [
      frag({ index: 0, id: "a", name: "one", arguments: "" }),
      frag({ index: 1, id: "b", name: "two", arguments: "[" }),
      frag({ index: 0, arguments: "{}" }),
      frag({ index: 1, arguments: "]" }),
    ]
  ) byIndex.add(p);
  assert.deepEqual(byIndex.calls, [{ id: "a", name: "one", arguments: "{}" }, {
    id: "b",
    name: "two",
    arguments: "[]",
  }]);

  const noIndex = new ToolCallAssembler();
  for (
    const p of [
      frag({ id: "a", name: "one", arguments: '{"x"' }),
      frag({ arguments: ":1}" }),
      frag({ id: "b", name: "two", arguments: "{}" }),
    ]
  ) noIndex.add(p);
  assert.deepEqual(noIndex.calls, [{ id: "a", name: "one", arguments: '{"x":1}' }, {
    id: "b",
    name: "two",
    arguments: "{}",
  }]);
});
