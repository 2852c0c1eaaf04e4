/** storableJson: what jsonb refuses becomes U+FFFD; everything else is JSON.stringify's text, byte for byte. */
import assert from "node:assert/strict";
import postgres from "postgres";
import { jsonType, storableJson } from "./storable_json.ts";

Deno.test("storableJson() is JSON.stringify for text jsonb takes, escapes and backslashes included", () => {
  for (
    const value of [
      { a: "plain", n: 1, nested: [{ b: "emoji 🙂 and 漢字" }] },
      { path: "C:\\u0000 is a backslash, not a NUL" },
      "\\ud83d written out",
      null,
      [1, "two", { three: 3 }],
    ]
  ) {
    assert.equal(storableJson(value), JSON.stringify(value));
  }
});

Deno.test("storableJson() replaces lone surrogates and U+0000, in values and keys, with U+FFFD", () => {
  const cut = "🙂".slice(0, 1); // a lone high surrogate
  assert.equal(
    storableJson({ message: `Unexpected token '${cut}'`, low: "\udc00", nul: "a\u0000b", [`k${cut}`]: 1 }),
    JSON.stringify({ message: "Unexpected token '\uFFFD'", low: "\uFFFD", nul: "a\uFFFDb", "k\uFFFD": 1 }),
  );
  assert.equal(storableJson([cut + "🙂"]), JSON.stringify(["\uFFFD🙂"]), "a whole pair after it is kept");
});

Deno.test("a jsonb parameter with a lone surrogate is stored (as U+FFFD), where the default serializer is refused", async () => {
  const url = Deno.env.get("SUPABASE_DB_URL");
  assert.ok(url, "SUPABASE_DB_URL (npm test sets it)");
  const plain = postgres(url, { prepare: false, max: 1, onnotice: () => {} });
  const storing = postgres(url, { prepare: false, max: 1, onnotice: () => {}, types: { json: jsonType } });
  const finding = {
    code: "not_chat_completion",
    message: `The body is not JSON (Unexpected token '${"🙂".slice(0, 1)}')`,
  };
  try {
    await assert.rejects(
      plain`select ${plain.json(finding as never)}::jsonb`,
      (err: { code?: string; detail?: string }) => err.code === "22P02" && /surrogate/.test(err.detail ?? ""),
    );
    const [row] = await storing`select (${storing.json(finding as never)}::jsonb) ->> 'message' as message`;
    assert.equal(row.message, "The body is not JSON (Unexpected token '\uFFFD')");
  } finally {
    await plain.end();
    await storing.end();
  }
});
