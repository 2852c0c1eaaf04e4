/**
 * One terminated connection does not fail a message whose database is fine (found by the fault benchmark,
 * bench/faults_bench.ts: three rounds of terminating the functions' connections and one Postgres restart failed 26 of
 * 10,000 messages as `storage_failed`, 15 sync answered 500, 11 async failed for good). A chunk append or a completion
 * whose connection is lost runs again on a fresh one (db.ts withDbReconnecting).
 *
 * Each test, on a stack of its own: an invoke whose provider answers 40 MB (stored chunk by chunk, about a second);
 * while it is stored, the backend running one of its chunk appends is terminated (pg_terminate_backend). Expected: the
 * message completes, with a payload that verifies.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import postgres from "postgres";
import type { StackProcess } from "../devstack/testing/stack_process.ts";
import { withOwnStack } from "../devstack/testing/own_stack.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const ENV = { MESSAGE_BUS_LEASE_SECS: "6", DB_ACQUIRE_TIMEOUT_MS: "2000" };
const log = (m: string) => console.log(`[storage-fault] ${m}`);

interface Row {
  status: string;
  error: { code: string } | null;
  run_count: number;
  checksum: string | null;
}

const withStack = (fn: (stack: StackProcess, sql: postgres.Sql, token: string) => Promise<void>) =>
  withOwnStack({ root: ROOT, env: ENV, log, name: "storage-fault-test" }, fn);

function invoke(stack: StackProcess, token: string, mode: "sync" | "async", tag: string): Promise<Response> {
  return fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": tag },
    body: JSON.stringify({
      tool: "chat",
      mode,
      input: { messages: [{ role: "user", content: `storage fault ${tag} #standin {"bytes": 41943040}` }] },
    }),
  });
}

/**
 * Terminates the backend running a chunk append of a pending message (waits for one; the one invoke in flight is
 * the only writer of chunks on this stack).
 */
async function terminateAnAppend(sql: postgres.Sql): Promise<void> {
  const started = Date.now();
  for (;;) {
    assert.ok(Date.now() - started < 60_000, "no chunk append was caught within 60 s");
    const killed = await sql`
      select pg_terminate_backend(pid) from pg_stat_activity
       where state = 'active' and query like '%bus.append_chunk%' and pid <> pg_backend_pid()`;
    if (killed.length > 0) break;
  }
  log("terminated the connection of a chunk append");
}

/** The message's row once it is no longer pending (bounded: the dispatcher runs every minute). */
async function settled(sql: postgres.Sql, key: string): Promise<Row & { transaction_id: string }> {
  const deadline = Date.now() + 150_000;
  for (;;) {
    const [row] = await sql<(Row & { transaction_id: string })[]>`
      select transaction_id, status, error, run_count, checksum from public.message_bus where idempotency_key = ${key}`;
    if (row && row.status !== "pending") {
      log(`ended ${row.status} ${JSON.stringify(row.error)} after run ${row.run_count}`);
      return row;
    }
    assert.ok(Date.now() < deadline, "still pending after 150 s");
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function assertVerifies(stack: StackProcess, token: string, row: Row & { transaction_id: string }) {
  assert.equal(row.status, "completed", `the message ended ${row.status} ${JSON.stringify(row.error)}`);
  const res = await fetch(`${stack.apiUrl}/functions/v1/message-fetch/${row.transaction_id}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(`sha256:${createHash("sha256").update(bytes).digest("hex")}`, row.checksum);
}

Deno.test("async: a chunk append's connection terminated while the answer is stored; the message completes, not storage_failed", async () => {
  await withStack(async (stack, sql, token) => {
    const key = `async-${crypto.randomUUID()}`;
    const res = await invoke(stack, token, "async", key);
    assert.equal(res.status, 202);
    await res.body?.cancel();
    await terminateAnAppend(sql);
    await assertVerifies(stack, token, await settled(sql, key));
  });
});

Deno.test("sync: a chunk append's connection terminated while the answer is stored; 200, not 500 storage_failed", async () => {
  await withStack(async (stack, sql, token) => {
    const key = `sync-${crypto.randomUUID()}`;
    const answer = invoke(stack, token, "sync", key);
    await terminateAnAppend(sql);
    const res = await answer;
    const body = await res.json();
    log(`answered ${res.status} ${JSON.stringify(body.error ?? body.status)}`);
    assert.equal(res.status, 200, `answered ${res.status} ${JSON.stringify(body)}`);
    await assertVerifies(stack, token, await settled(sql, key));
  });
});
