import assert from "node:assert/strict";
import { bodyBytes, bodyChunks, type CompletionParts, planBody } from "./body.ts";
import { fillerChunks } from "./content.ts";

const parts = (content: CompletionParts["content"], reasoning?: CompletionParts["reasoning"]): CompletionParts => ({
  id: "chatcmpl-test",
  created: 1767225600,
  model: "glm-4.6",
  content,
  reasoning,
  finishReason: "stop",
  promptTokens: 3,
});
const fill = { kind: "fill" as const, seed: 7, prefix: "", suffix: "" };

Deno.test("fillerChunks() yields exactly the size asked for, in whole UTF-8 characters per chunk", () => {
  for (const size of [0, 1, 5, 29, 30, 31, 1000, 200_003]) {
    let total = 0;
    for (const chunk of fillerChunks(42, size, 4096)) {
      assert.ok(chunk.length <= 4096);
      new TextDecoder("utf-8", { fatal: true }).decode(chunk); // throws on a split character
      total += chunk.length;
    }
    assert.equal(total, size, `size ${size}`);
  }
});

Deno.test("fillerChunks() is deterministic per seed and contains multi-byte characters", () => {
  const text = (seed: number) => [...fillerChunks(seed, 5000)].map((c) => new TextDecoder().decode(c)).join("");
  assert.equal(text(1), text(1));
  assert.notEqual(text(1), text(2));
  for (const needle of ["é", "漢字", "🙂"]) assert.ok(text(1).includes(needle), needle);
});

Deno.test("planBody() hits the requested size exactly and stays valid JSON", () => {
  for (const target of [2_000, 65_537, 1_000_000]) {
    const plan = planBody(parts(fill), target);
    assert.equal(plan.size, target);
    const bytes = bodyBytes(plan);
    assert.equal(bytes.length, target);
    const body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    assert.equal(
      body.usage.completion_tokens,
      Math.ceil(new TextEncoder().encode(body.choices[0].message.content).length / 4),
    );
  }
});

Deno.test("planBody() puts a filled reasoning_content next to empty content", () => {
  const plan = planBody(parts("", { ...fill, prefix: "«", suffix: "»" }), 10_000);
  const body = JSON.parse(new TextDecoder().decode(bodyBytes(plan)));
  assert.equal(body.choices[0].message.content, "");
  assert.match(body.choices[0].message.reasoning_content, /^«Stand-in filler: é 漢字 🙂 .*»$/s);
});

Deno.test("planBody() formats with provider key order, 1-space indent, raw UTF-8 and a trailing newline", () => {
  const text = new TextDecoder().decode(bodyBytes(planBody(parts("é 漢字 🙂"))));
  assert.ok(text.startsWith('{\n "id": "chatcmpl-test",\n "object": "chat.completion",\n "created": 1767225600,'));
  assert.ok(text.includes('"content": "é 漢字 🙂"'));
  assert.ok(text.endsWith("}\n"));
  assert.notEqual(text, JSON.stringify(JSON.parse(text)), "a re-serialisation must change the bytes");
});

Deno.test("bodyChunks() stops after the limit, giving a truncated body", () => {
  const plan = planBody(parts(fill), 300_000);
  const total = [...bodyChunks(plan, 123_457)].reduce((n, c) => n + c.length, 0);
  assert.equal(total, 123_457);
  assert.throws(() => JSON.parse(new TextDecoder().decode(bodyBytes(plan, 123_457))), SyntaxError);
});
