/**
 * A failure answered with a transaction id names a message that survives a Postgres crash (found by the fault
 * benchmark, bench/faults_bench.ts, as its one lost message in a run): a sync invoke's row used to commit without
 * waiting for its WAL flush, on the reasoning that its completion's (or failure's) commit flushes it too. But when
 * Postgres crashes before that and the failure cannot be recorded either, the caller is still answered 500
 * storage_failed with the transaction id (`recorded: false`) — and crash recovery had dropped the row: the caller held
 * the id of a message that never existed. record.ts now waits for the flush of every begin.
 *
 * On a stack of its own, with fsync on: the WAL writer slowed down (wal_writer_delay 10 s) and the pg_cron jobs paused,
 * so that nothing else flushes the WAL; a sync invoke whose provider takes 2 s; once its row is visible, the
 * postmaster is killed (SIGKILL; the stack restarts it after 3 s). Expected: an answer that carries a transaction id
 * names a message the database has after the restart.
 */
import assert from "node:assert/strict";
import { withOwnStack } from "../devstack/testing/own_stack.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const ENV = { DEVSTACK_PG_FAST: "0", DEVSTACK_PG_RESTART_DELAY_MS: "3000", MESSAGE_BUS_INLINE_FALLBACK: "false" };
const log = (m: string) => console.log(`[crash-lost] ${m}`);

Deno.test("a failure answered with a transaction id after a Postgres crash names a message that exists", async () => {
  await withOwnStack(
    { root: ROOT, env: ENV, log, name: "crash-durable-id-test", maxConnections: 1 },
    async (stack, sql, token) => {
      await sql`alter system set wal_writer_delay = '10s'`;
      await sql`select pg_reload_conf()`;
      await sql`update cron.job set active = false`;
      await sql`checkpoint`; // everything before this point is on disk

      const key = `crash-${crypto.randomUUID()}`;
      const answer = fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({
          tool: "chat",
          input: { messages: [{ role: "user", content: `crash ${key} #standin {"latency_ms": 2000}` }] },
        }),
      });
      const started = Date.now();
      while ((await sql`select 1 from public.message_bus where idempotency_key = ${key}`).length === 0) {
        assert.ok(Date.now() - started < 10_000, "the message was not recorded within 10 s");
        await new Promise((r) => setTimeout(r, 20));
      }
      const [{ dir }] = await sql<{ dir: string }[]>`select current_setting('data_directory') as dir`;
      const pid = Number((await Deno.readTextFile(`${dir}/postmaster.pid`)).split("\n")[0]);
      Deno.kill(pid, "SIGKILL");
      log(`recorded; postmaster ${pid} killed`);

      const res = await answer;
      const body = await res.json();
      log(`answered ${res.status} ${JSON.stringify(body)}`);

      // Postgres back (the stack restarts it): does the message the answer names exist?
      const deadline = Date.now() + 60_000;
      let rows: Array<{ transaction_id: string; status: string }> | undefined;
      while (!rows) {
        try {
          rows = [
            ...await sql<{ transaction_id: string; status: string }[]>`
          select transaction_id, status from public.message_bus where idempotency_key = ${key}`,
          ];
        } catch (err) {
          assert.ok(Date.now() < deadline, `Postgres did not come back within 60 s: ${err}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      log(`after the restart: ${JSON.stringify(rows)}`);
      if (body.transaction_id) {
        assert.deepEqual(
          rows.map((r) => r.transaction_id),
          [body.transaction_id],
          `the answer (${res.status}) named ${body.transaction_id}, the database has ${JSON.stringify(rows)}`,
        );
      }
    },
  );
});
