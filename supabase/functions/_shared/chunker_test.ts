import assert from "node:assert/strict";
import { Chunker } from "./chunker.ts";
import { concatBytes } from "./bytes.ts";

/** Deterministic bytes 0..n-1 (mod 251, so block boundaries never line up with the pattern). */
function bytes(n: number, offset = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i + offset) % 251);
}

/** Pushes `input` cut at `cuts` and returns every block plus the flushed rest. */
function rechunk(size: number, input: Uint8Array, cuts: number[]): Uint8Array[] {
  const chunker = new Chunker(size);
  const blocks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...cuts, input.length]) {
    blocks.push(...chunker.push(input.subarray(from, to)));
    from = to;
  }
  const last = chunker.flush();
  if (last) blocks.push(last);
  return blocks;
}

Deno.test("Chunker: blocks are exactly `size` bytes, the last shorter, whatever the input cuts", () => {
  const input = bytes(10_000);
  const cutsList = [
    [],
    [1],
    [999, 1000, 1001],
    [3, 7, 4096, 4097, 9999],
    Array.from({ length: 99 }, (_, i) => (i + 1) * 100),
  ];
  for (const cuts of cutsList) {
    const blocks = rechunk(1024, input, cuts);
    assert.deepEqual(blocks.map((b) => b.length), [...Array(9).fill(1024), 10_000 - 9 * 1024], `cuts ${cuts}`);
    assert.deepEqual(concatBytes(blocks), input, `bytes survive in order with cuts ${cuts}`);
  }
});

Deno.test("Chunker: one push larger than several blocks yields them all at once", () => {
  const chunker = new Chunker(100);
  const out = chunker.push(bytes(350));
  assert.deepEqual(out.map((b) => b.length), [100, 100, 100]);
  assert.deepEqual(chunker.flush()?.length, 50);
  assert.deepEqual(chunker.flush(), undefined, "flush empties the chunker");
});

Deno.test("Chunker: an exact multiple leaves nothing to flush; empty input yields nothing", () => {
  const chunker = new Chunker(64);
  assert.deepEqual(chunker.push(bytes(128)).length, 2);
  assert.deepEqual(chunker.flush(), undefined);
  assert.deepEqual(chunker.push(new Uint8Array(0)), []);
  assert.deepEqual(chunker.flush(), undefined);
});

Deno.test("Chunker: emitted blocks are copies, not views of the caller's buffer", () => {
  const chunker = new Chunker(8);
  const buffer = bytes(8);
  const [block] = chunker.push(buffer);
  assert.notStrictEqual(block.buffer, buffer.buffer);
  buffer.fill(0);
  assert.deepEqual(block, bytes(8), "a block taken whole from one input does not change with it");
  chunker.push(bytes(3));
  const rest = chunker.flush()!;
  assert.deepEqual(rest, bytes(3));
  assert.deepEqual(rest.byteOffset, 0, "a flushed rest is a fresh array");
});

Deno.test("Chunker: a block assembled from many small pushes has the bytes in order", () => {
  const chunker = new Chunker(10);
  const out: Uint8Array[] = [];
  for (let i = 0; i < 25; i++) out.push(...chunker.push(Uint8Array.of(i)));
  assert.deepEqual(out.length, 2);
  assert.deepEqual([...out[0]], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...out[1]], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  assert.deepEqual([...chunker.flush()!], [20, 21, 22, 23, 24]);
});
