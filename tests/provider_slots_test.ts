/**
 * Concurrency slots (migration 20261126000910) with three sessions, as pgmq tests its claims: once a provider's slot
 * rows exist, a call taking a slot never waits for another transaction (skip locked), and the limit holds while
 * slots are being taken, uncommitted.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { testStack } from "../devstack/testing/env.ts";

const url = testStack().dbUrl;
const provider = `slots-${crypto.randomUUID().slice(0, 8)}`;
const acquire = (sql: postgres.Sql | postgres.TransactionSql, id: string) =>
  sql<{ ok: boolean }[]>`select bus.acquire_provider_slot(${provider}, ${id}::uuid, 2, 60) as ok`.then((r) => r[0].ok);

Deno.test("a slot being taken by an open transaction is skipped, never waited for, and still counts", async () => {
  const [a, b, c] = [1, 2, 3].map(() => postgres(url, { max: 1, onnotice: () => {} }));
  const ids = [1, 2, 3].map(() => crypto.randomUUID());
  try {
    // The provider's slot rows exist (the first calls of a provider make them, and wait for each other's inserts).
    assert.equal(await acquire(a, ids[0]), true);
    await a`select bus.release_provider_slot(${provider}, ${ids[0]}::uuid)`;
    // A takes a slot and keeps its transaction open (its slot row stays locked).
    let releaseA!: () => void;
    const aHolds = new Promise<void>((r) => releaseA = r);
    let aTook!: (ok: boolean) => void;
    const aResult = new Promise<boolean>((r) => aTook = r);
    const aTx = a.begin(async (tx) => {
      aTook(await acquire(tx, ids[0]));
      await aHolds;
      throw new Error("rolled back on purpose");
    }).catch((err) => {
      if (!String(err).includes("rolled back on purpose")) throw err;
    });
    assert.equal(await aResult, true, "A took slot 1 of 2");
    // Any wait on A's lock would fail these statements after 2 s.
    await b`set lock_timeout = '2s'`;
    await c`set lock_timeout = '2s'`;
    const started = performance.now();
    assert.equal(await acquire(b, ids[1]), true, "B takes the other slot without waiting for A");
    assert.equal(await acquire(c, ids[2]), false, "C finds none: A's uncommitted slot counts");
    assert.ok(performance.now() - started < 1500, "neither waited for A's transaction");
    releaseA();
    await aTx;
    assert.equal(await acquire(c, ids[2]), true, "A rolled back: its slot is free for C");
    const held = await c<
      { n: number }[]
    >`select count(*)::int as n from bus.provider_leases where provider = ${provider}`;
    assert.equal(held[0].n, 2, "two slots held (B and C)");
  } finally {
    await c`delete from bus.provider_slots where provider = ${provider}`;
    await Promise.all([a, b, c].map((s) => s.end({ timeout: 5 })));
  }
});
