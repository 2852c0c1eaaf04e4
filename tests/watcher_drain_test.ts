/**
 * Watcher drains (migration 20261126000900, supabase/functions/watcher/drain.ts) against the running stack: a drain
 * run here alongside the stack's own drains observes a burst of messages with exactly one observation and one
 * broadcast each; one out of time hands over to a fresh drain; and the drain's statements commit without waiting for
 * their WAL flush.
 */
import assert from "node:assert/strict";
import { adminSql } from "../devstack/testing/env.ts";
import { db } from "../supabase/functions/_shared/db.ts";
import { settings } from "../supabase/functions/_shared/env.ts";
import { drainWatchQueue } from "../supabase/functions/watcher/drain.ts";
import { WATCHER_VERSION } from "../supabase/functions/watcher/findings.ts";
import { completionBody, storeMessage } from "./watch_helpers.ts";

const sql = adminSql();

Deno.test("a drain beside the stack's own observes every message of a burst once, with one broadcast each", async () => {
  const owner = crypto.randomUUID();
  const ids = await Promise.all(
    Array.from({ length: 60 }, (_, i) => storeMessage(sql, owner, completionBody(`burst ${i}`))),
  );
  const here = await drainWatchQueue({ sql: db(), settings: settings() });
  const deadline = Date.now() + 10_000; // the stack's drains may still hold the rest
  let seen: { n: number; events: number; queued: number } | undefined;
  do {
    const [row] = await sql<{ n: number; events: number; queued: number }[]>`
      select (select count(*)::int from public.message_bus_observations where transaction_id = any(${ids}::uuid[])) as n,
             (select count(*)::int from realtime.messages
               where event = 'observation' and topic = ${`bus:${owner}`}) as events,
             (select count(*)::int from bus.watch_queue where transaction_id = any(${ids}::uuid[])) as queued`;
    seen = row;
    if (seen.n === ids.length) break;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < deadline);
  assert.deepEqual(seen, { n: ids.length, events: ids.length, queued: 0 }, `this drain observed ${here.observed}`);
  assert.ok(here.observed <= ids.length);
  await sql`delete from public.message_bus where owner_id = ${owner}::uuid`;
});

Deno.test("a drain out of time wakes a fresh one to take over", async () => {
  const [before] = await sql<{ id: string | null }[]>`select last_request_id as id from bus.watch_wake`;
  const drained = await drainWatchQueue({ sql: db(), settings: settings() }, { budgetMs: -1 });
  assert.deepEqual(drained, { observed: 0, batches: 0, handedOver: true });
  const [after] = await sql<{ id: string | null; woken: boolean }[]>`
    select last_request_id as id, woken_at is not null as woken from bus.watch_wake`;
  assert.ok(after.id !== null && Number(after.id) > Number(before.id ?? 0), "a new wake was queued through pg_net");
  assert.equal(after.woken, true);
});

Deno.test("a drain's statements commit without waiting for their WAL flush", async () => {
  const settingAfter = (run: (tx: typeof sql) => Promise<unknown>) =>
    sql.begin(async (tx) => {
      await tx`set local synchronous_commit = on`;
      await run(tx as unknown as typeof sql);
      const [{ s }] = await tx<{ s: string }[]>`select current_setting('synchronous_commit') as s`;
      return s;
    });
  assert.equal(
    await settingAfter((tx) => tx`select count(*) from bus.take_watch_batch(${WATCHER_VERSION}, 0, 60, 5)`),
    "off",
    "take_watch_batch",
  );
  assert.equal(
    await settingAfter((tx) => tx`select count(*) from bus.record_observations(${WATCHER_VERSION}, '[]'::jsonb)`),
    "off",
    "record_observations",
  );
  // Ending (or not: the stack's drains may be busy) leaves the same setting; a drain it ends is woken again.
  assert.equal(await settingAfter((tx) => tx`select bus.end_watch_drain()`), "off", "end_watch_drain");
});

Deno.test("watcher drain tests: close the database clients", async () => {
  await sql.end({ timeout: 5 });
  await db().end({ timeout: 5 });
});
