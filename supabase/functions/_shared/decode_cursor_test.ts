import assert from "node:assert/strict";
import { cursorKey, DecodeCursor, DecodeCursors } from "./decode_cursor.ts";

/** A source of `pieces` that records whether it was closed. */
function source(pieces: string[]) {
  const state = { closed: false, pulled: 0 };
  const gen = (async function* () {
    try {
      for (const p of pieces) {
        state.pulled++;
        yield new TextEncoder().encode(p);
      }
    } finally {
      state.closed = true;
    }
  })();
  return { gen, state };
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("DecodeCursor: reads ranges across pieces, pulling only as far as needed", async () => {
  const { gen, state } = source(["abcd", "efgh", "ijkl"]);
  const cursor = new DecodeCursor(gen);
  assert.equal(text(await cursor.read(1, 6)), "bcdef");
  assert.equal(state.pulled, 2, "the third piece is not read yet");
  cursor.dropBefore(6);
  assert.equal(cursor.start, 4, "the piece holding position 6 stays");
  assert.equal(text(await cursor.read(5, 12)), "fghijkl");
  assert.equal(text(await cursor.read(11, 40)), "l", "a range past the end gives what there is");
  await assert.rejects(cursor.read(0, 2), RangeError);
  await cursor.close();
  assert.ok(state.closed);
});

Deno.test("DecodeCursors: take removes, only from a servable position; the oldest beyond max is closed", async () => {
  const cursors = new DecodeCursors(2, 60_000);
  const a = source(["aaaa", "bbbb"]), b = source(["cc"]), c = source(["dd"]);
  const ca = new DecodeCursor(a.gen);
  await ca.read(0, 6);
  ca.dropBefore(5);
  cursors.put("a", ca);
  assert.equal(cursors.take("a", 2), undefined, "position 2 was dropped: not servable");
  assert.equal(cursors.take("a", 5), ca);
  assert.equal(cursors.take("a", 5), undefined, "taken out: one reader at a time");
  cursors.put("a", ca);
  cursors.put("b", new DecodeCursor(b.gen));
  const cc = new DecodeCursor(c.gen);
  await cc.read(0, 1); // starts the generator, so that closing it runs its finally
  cursors.put("c", cc);
  assert.equal(cursors.size, 2);
  await new Promise((r) => setTimeout(r, 0));
  assert.ok(a.state.closed, "the oldest cursor was closed when a third was parked");
  await cursors.closeAll();
  assert.equal(cursors.size, 0);
  assert.ok(c.state.closed);
});

Deno.test("DecodeCursors: an idle cursor is closed after idleMs", async () => {
  const cursors = new DecodeCursors(4, 20);
  const a = source(["x", "y"]);
  const ca = new DecodeCursor(a.gen);
  await ca.read(0, 1);
  cursors.put("a", ca);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(cursors.size, 0);
  assert.ok(a.state.closed);
});

Deno.test("cursorKey: differs by caller, message and checksum", () => {
  const u = { role: "authenticated" as const, sub: "u1", claims: {} };
  const v = { role: "authenticated" as const, sub: "u2", claims: {} };
  const keys = new Set([
    cursorKey(u, "t1", "c1"),
    cursorKey(v, "t1", "c1"),
    cursorKey(u, "t2", "c1"),
    cursorKey(u, "t1", "c2"),
    cursorKey({ role: "service_role", claims: {} }, "t1", "c1"),
  ]);
  assert.equal(keys.size, 5);
});
