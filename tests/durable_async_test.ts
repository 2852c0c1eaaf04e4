/**
 * Async work outlives its worker (issue "Provider routing", item 6): a stack of its own is killed with SIGKILL
 * while 20 async invokes are at the provider; after a restart on the same data, the pg_cron dispatcher
 * (message-bus-dispatch, every minute) claims each message whose lease ran out for a second run, and all 20
 * complete, verified, each called once more at the provider. Kimi runs under KIMI_MAX_CONCURRENCY=20, so the killed
 * stack leaves all 20 concurrency slots held by dead runs: the second runs can only get slots if a SIGKILL never leaks
 * one (issue "Provider routing", item 5).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import postgres from "postgres";
import { spawnStack, type StackProcess } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";

const ROOT = new URL("..", import.meta.url).pathname;
// A short lease, so that the dead run's messages are claimable soon after the restart.
const ENV = {
  MESSAGE_BUS_LEASE_SECS: "5",
  DB_ACQUIRE_TIMEOUT_MS: "1000",
  KIMI_MAX_CONCURRENCY: "20",
  PROVIDER_LEASE_SECS: "5",
};

Deno.test("SIGKILL with 20 async invokes in flight: after a restart all 20 complete, each run again once", async () => {
  const log = (m: string) => console.log(`[durable] ${m}`);
  const first = await spawnStack({ root: ROOT, env: ENV, log });
  let running: StackProcess | undefined = first;
  const dataDir = first.testEnv().DEVSTACK_DATA_DIR;
  let sql: postgres.Sql | undefined;
  let passed = false;
  try {
    const user = crypto.randomUUID();
    const token = await mintUserToken(user, first.jwtSecret, { expiresInSeconds: 3600 });
    const tags = Array.from({ length: 20 }, (_, i) => `durable-${i}-${crypto.randomUUID()}`);
    const ids: string[] = [];
    for (const tag of tags) {
      const res: Response = await fetch(`${first.apiUrl}/functions/v1/tool-invoke`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({
          tool: "chat",
          mode: "async",
          input: { messages: [{ role: "user", content: `durable #standin {"tag":"${tag}","latency_ms":4000}` }] },
        }),
      });
      assert.equal(res.status, 202);
      ids.push((await res.json()).transaction_id);
    }
    // All 20 are at the provider (the stand-in runs in the stack), then the stack dies as a crash would.
    const standin = new URL(first.standinUrl).origin;
    const deadline = Date.now() + 20_000;
    while ((await (await fetch(`${standin}/__standin/stats`)).json()).inFlight < 20) {
      assert.ok(Date.now() < deadline, "the 20 calls did not all reach the provider");
      await new Promise((r) => setTimeout(r, 100));
    }
    await first.kill();
    running = undefined;

    const stack = await spawnStack({ root: ROOT, env: ENV, log, dataDir });
    running = stack;
    sql = postgres(stack.dbUrl, { prepare: false, max: 2, onnotice: () => {} });
    const [{ pending }] = await sql<{ pending: number }[]>`
      select count(*)::int as pending from public.message_bus where transaction_id = any(${ids}::uuid[]) and status = 'pending'`;
    assert.equal(pending, 20, "the crash left all 20 pending");
    const [{ held }] = await sql<{ held: number }[]>`
      select count(*)::int as held from bus.provider_slots where provider = 'kimi' and transaction_id = any(${ids}::uuid[])`;
    assert.equal(held, 20, "the crash left all 20 kimi slots held by the dead runs");

    // The dispatcher runs every minute (pg_cron); each run takes 4 s at the provider.
    const done = Date.now() + 150_000;
    let rows: Array<{ status: string; run_count: number; checksum: string | null }> = [];
    for (;;) {
      rows =
        await sql`select status, run_count, checksum from public.message_bus where transaction_id = any(${ids}::uuid[])`;
      if (rows.every((r) => r.status !== "pending")) break;
      assert.ok(Date.now() < done, `still pending after 150 s: ${rows.filter((r) => r.status === "pending").length}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    assert.deepEqual(rows.map((r) => r.status), Array(20).fill("completed"), "all 20 completed");
    assert.deepEqual(rows.map((r) => r.run_count), Array(20).fill(2), "each by a second run");
    const [slots] = await sql<{ total: number; held: number }[]>`
      select count(*)::int as total, count(*) filter (where transaction_id = any(${ids}::uuid[]) and expires_at > now())::int as held
        from bus.provider_slots where provider = 'kimi'`;
    assert.ok(slots.total <= 20, `kimi has at most its 20 slots: ${slots.total}`);
    assert.equal(slots.held, 0, "no slot is held after the runs finished");
    const [{ jobs }] = await sql<{ jobs: number }[]>`
      select count(*)::int as jobs from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'message-bus-dispatch' and d.status = 'succeeded'`;
    assert.ok(jobs >= 1, "the pg_cron dispatcher did it");

    // Each provider call counted: the restarted stand-in was called exactly once per message.
    const restarted = new URL(stack.standinUrl).origin;
    for (const tag of tags) {
      const { count } = await (await fetch(`${restarted}/__standin/calls?tag=${tag}`)).json();
      assert.equal(count, 1, `${tag}: one call in the second run`);
    }
    // And every answer is whole.
    for (const id of ids) {
      const res: Response = await fetch(`${stack.apiUrl}/functions/v1/message-fetch/${id}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const row: Array<{ checksum: string }> = await sql<
        { checksum: string }[]
      >`select checksum from public.message_bus where transaction_id = ${id}::uuid`;
      assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, row[0].checksum);
    }
    passed = true;
  } finally {
    await sql?.end();
    if (running) {
      const stopped = await running.stop();
      if (stopped.clean && passed) await running.cleanup();
      else console.log(`stack log kept: ${running.logPath}`);
    }
  }
});
