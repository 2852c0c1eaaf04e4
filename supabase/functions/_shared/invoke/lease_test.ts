/**
 * Lease against the real database: a renewal that finds the message finished marks the lease lost and says so, but
 * one that was still waiting when its worker stopped (the worker finished the message meanwhile) changes nothing
 * and logs nothing. The renewal is held back with a row lock taken by another connection.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { expectLogged } from "../_expect_logged.ts";
import { failMessage } from "../message/lifecycle.ts";
import { Lease } from "./lease.ts";
import { recordMessage } from "./record.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");

/** A pending async message (run 1) and a renewal of its lease held back by a row lock until it is failed. */
async function renewalAcrossFailure(stopFirst: boolean): Promise<{ renewed: boolean; lease: Lease }> {
  const sql = postgres(DB_URL!, { prepare: false, max: 2, onnotice: () => {} });
  try {
    const { transactionId: id } = await recordMessage(sql, {
      owner: crypto.randomUUID(),
      tool: "chat",
      provider: "kimi",
      model: "lease-test",
      ttlSeconds: 600,
      metadata: {},
      mode: "async",
      request: new TextEncoder().encode('{"tool":"chat","input":{}}'),
      leaseSeconds: 30,
      maxRequestBytes: 1 << 20,
    });
    const locker = await sql.reserve();
    try {
      await locker`begin`;
      await locker`select 1 from public.message_bus where transaction_id = ${id}::uuid for update`;
      const lease = new Lease(sql, id, 1, 30);
      const renewal = lease.renew(); // waits for the row lock
      await new Promise((r) => setTimeout(r, 200));
      if (stopFirst) lease.stop();
      await failMessage(locker, id, { code: "test", message: "finished meanwhile" }, { run: 1 });
      await locker`commit`;
      return { renewed: await renewal, lease };
    } finally {
      locker.release();
    }
  } finally {
    await sql.end();
  }
}

Deno.test({
  name: "Lease: a renewal that finds its message finished by someone else marks the lease lost and warns",
  ignore: DB_URL === undefined,
  async fn() {
    const { result } = await expectLogged({ must: [/no longer this run's/] }, () => renewalAcrossFailure(false));
    assert.equal(result.renewed, false);
    assert.equal(result.lease.lost, true);
  },
});

Deno.test({
  name: "Lease: a renewal still in flight when its worker stops changes nothing and logs nothing",
  ignore: DB_URL === undefined,
  async fn() {
    const { result } = await expectLogged({}, () => renewalAcrossFailure(true));
    assert.equal(result.renewed, false);
    assert.equal(result.lease.lost, false, "the worker finished the message itself: its lease was not lost");
  },
});
