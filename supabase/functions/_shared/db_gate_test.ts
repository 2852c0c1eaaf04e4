/** DbGate: a unit of database work waits for a slot at most the acquire timeout, then 503 database_busy. */
import assert from "node:assert/strict";
import { DbGate } from "./db.ts";
import { BusError } from "./errors.ts";

Deno.test("DbGate runs at most `slots` units at once and hands a freed slot to the next waiter", async () => {
  const gate = new DbGate(2, 1_000);
  let running = 0, most = 0;
  const unit = () =>
    gate.run(async () => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
    });
  await Promise.all(Array.from({ length: 10 }, unit));
  assert.equal(most, 2);
  assert.equal(gate.busy, 0);
});

Deno.test("DbGate answers 503 database_busy with Retry-After when no slot frees within the timeout", async () => {
  const gate = new DbGate(1, 30);
  let finish!: () => void;
  const holding = gate.run(() => new Promise<void>((r) => (finish = r)));
  const waited = await gate.run(() => Promise.resolve("ran")).catch((err: unknown) => err);
  assert.ok(waited instanceof BusError, `a BusError, got ${waited}`);
  assert.equal(waited.status, 503);
  assert.equal(waited.code, "database_busy");
  assert.equal(waited.headers["retry-after"], "1");
  finish();
  await holding;
  assert.equal(await gate.run(() => Promise.resolve("ran")), "ran", "the slot is free again");
  assert.equal(gate.busy, 0);
});
