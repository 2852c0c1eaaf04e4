import assert from "node:assert/strict";
import fc from "fast-check";
import { systemMessageJson } from "./json_text.ts";

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const p of pieces) parts.push(p);
  return new TextDecoder().decode(await new Blob(parts as BlobPart[]).arrayBuffer());
}

async function* cutAt(bytes: Uint8Array, cuts: number[]) {
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(from, cut);
    from = cut;
  }
  yield bytes.subarray(from);
}

Deno.test("systemMessageJson() equals JSON.stringify of the message byte for byte, however the text is cut", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.string({ unit: "grapheme", maxLength: 60 }).map((s) => s.replaceAll("\u0000", "")),
      fc.array(fc.nat(200), { maxLength: 5 }),
      async (text, cuts) => {
        const bytes = new TextEncoder().encode(text);
        const got = await collect(systemMessageJson(cutAt(bytes, cuts.map((c) => Math.min(c, bytes.length)))));
        assert.equal(got, JSON.stringify({ role: "system", content: text }));
      },
    ),
    { numRuns: 2000 },
  );
  const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") + '"\\/\u007f\u2028';
  assert.equal(
    await collect(systemMessageJson(cutAt(new TextEncoder().encode(controls), [3, 9]))),
    JSON.stringify({ role: "system", content: controls }),
  );
});
