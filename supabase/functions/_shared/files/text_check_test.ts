import assert from "node:assert/strict";
import fc from "fast-check";
import { TextCheck } from "./text_check.ts";

/** The verdict of a TextCheck fed `bytes` cut at `cuts`. */
function verdict(bytes: Uint8Array, cuts: number[]): boolean {
  const check = new TextCheck();
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    check.push(bytes.subarray(from, cut));
    from = cut;
  }
  check.push(bytes.subarray(from));
  return check.finish();
}

const strict = (bytes: Uint8Array) => {
  try {
    return !new TextDecoder("utf-8", { fatal: true }).decode(bytes).includes("\u0000");
  } catch (err) {
    if (err instanceof TypeError) return false;
    throw err;
  }
};

Deno.test("TextCheck agrees with a fatal TextDecoder (and no NUL) however the bytes are cut", () => {
  const pieces = fc.tuple(
    fc.oneof(
      fc.string({ unit: "binary", maxLength: 40 }).map((s) => new TextEncoder().encode(s)),
      fc.uint8Array({ maxLength: 40 }),
    ),
    fc.array(fc.nat(40), { maxLength: 6 }),
  );
  fc.assert(
    fc.property(pieces, ([bytes, cuts]) => {
      assert.equal(verdict(bytes, cuts.map((c) => Math.min(c, bytes.length))), strict(bytes));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("TextCheck: a sequence cut by the end of the stream, or a NUL, is not text", () => {
  const euro = new TextEncoder().encode("a€"); // € is 3 bytes
  assert.equal(verdict(euro, [2, 3]), true, "cut inside the sequence, completed by the next pieces");
  assert.equal(verdict(euro.subarray(0, 3), []), false, "cut by the end");
  assert.equal(verdict(new Uint8Array([0x61, 0x00, 0x62]), []), false);
  assert.equal(verdict(new Uint8Array(0), []), true, "an empty file is text");
});
