/**
 * Which commits wait for their WAL flush (bench/RESULTS.md, issue 3): every invoke's begin_message waits (its
 * transaction ID may be answered before anything else commits: an async invoke's at once, a sync invoke's with a
 * failure that could not be recorded, tests/crash_durable_id_test.ts); the watcher's observation does not (a crash loses it together with the
 * removal of its watch_queue row, and the sweep asks again). Each call runs in a transaction that first sets
 * synchronous_commit on, so the setting read back is the one the statement left for the commit.
 */
import assert from "node:assert/strict";
import { adminSql } from "../devstack/testing/env.ts";
import type { Sql } from "../supabase/functions/_shared/db.ts";
import { settings } from "../supabase/functions/_shared/env.ts";
import { recordMessage } from "../supabase/functions/_shared/invoke/record.ts";
import { observeMessage } from "../supabase/functions/watcher/observe.ts";
import { completionBody, storeMessage } from "./watch_helpers.ts";

const sql = adminSql();

async function commitSetting(fn: (tx: Sql) => Promise<unknown>): Promise<string> {
  return await sql.begin(async (tx) => {
    await tx`set local synchronous_commit = on`;
    await fn(tx as unknown as Sql);
    const [{ setting }] = await tx<{ setting: string }[]>`select current_setting('synchronous_commit') as setting`;
    return setting;
  }) as string;
}

Deno.test("every invoke's begin_message, sync or async, commits waiting for its flush", async () => {
  const owner = crypto.randomUUID();
  const ids: string[] = [];
  try {
    for (const [mode, expected] of [["sync", "on"], ["async", "on"]] as const) {
      const setting = await commitSetting(async (tx) => {
        const { transactionId, created } = await recordMessage(tx, {
          owner,
          tool: "chat",
          provider: "kimi",
          model: "m",
          ttlSeconds: 60,
          metadata: {},
          mode,
          request: new TextEncoder().encode('{"tool":"chat","input":{"messages":[]}}'),
          leaseSeconds: 60,
          maxRequestBytes: 1024,
        });
        assert.equal(created, true);
        ids.push(transactionId);
      });
      assert.equal(setting, expected, `mode: ${mode}`);
    }
  } finally {
    await sql`delete from public.message_bus where transaction_id = any(${ids}::uuid[])`;
  }
});

Deno.test("the watcher records its observation without waiting for the flush", async () => {
  const id = await storeMessage(sql, crypto.randomUUID(), completionBody("fine"), { loseWebhook: true });
  try {
    let verdict: string | undefined;
    const setting = await commitSetting(async (tx) => {
      const observation = await observeMessage(id, { sql: tx, settings: settings() });
      assert.equal(observation.created, true);
      verdict = observation.verdict;
    });
    assert.equal(setting, "off");
    assert.equal(verdict, "ok");
    const [row] = await sql`select count(*)::int as n from bus.watch_queue where transaction_id = ${id}::uuid`;
    assert.equal(row.n, 0, "the observation cleared the message's watch_queue row");
  } finally {
    await sql`delete from public.message_bus where transaction_id = ${id}::uuid`;
  }
});

Deno.test("commit flush tests: close the database client", async () => {
  await sql.end();
});
