/**
 * The final check of the fault benchmark: every invoke's message, looked up by its owner and Idempotency-Key in
 * Postgres, must be completed (its payload, fetched through message-fetch, matching its checksum and what the
 * client was told) or failed with a recorded reason. Anything else an acknowledged invoke ends in is counted as lost.
 */
import { createHash } from "node:crypto";
import type postgres from "postgres";
import type { InvokePlan, InvokeResult } from "./client.ts";
import type { FaultStack } from "./stack.ts";

/** The stored message of one invoke, as the check reads it. */
export interface StoredMessage {
  transaction_id: string;
  owner_id: string;
  idempotency_key: string;
  status: string;
  mode: string;
  provider: string | null;
  checksum: string | null;
  payload_size_bytes: string | null;
  error: { code?: string; message?: string } | null;
  attempts: Array<{ provider: string; outcome: string; status: number | null; error_code: string | null }>;
  run_count: number;
  created_at: Date;
  completed_at: Date | null;
}

/** One invoke with its plan, the client's result and its message (undefined: none recorded). */
export interface Checked {
  plan: InvokePlan;
  result: InvokeResult;
  row?: StoredMessage;
  /** Why it counts as lost (null: it does not). */
  lost: string | null;
  /** The payload fetched through message-fetch (completed messages only): its status and whether it verified. */
  fetched?: { status: number; verified: boolean };
}

/** Reads every invoke's message by owner and key. */
export async function storedMessages(sql: postgres.Sql, plans: InvokePlan[]): Promise<Map<string, StoredMessage>> {
  const owners = [...new Set(plans.map((p) => p.owner))];
  const rows = await sql<StoredMessage[]>`
    select transaction_id, owner_id, idempotency_key, status, mode, provider, checksum, payload_size_bytes, error,
           attempts, run_count, created_at, completed_at
      from public.message_bus where owner_id = any(${owners}::uuid[])`;
  return new Map(rows.map((r) => [`${r.owner_id} ${r.idempotency_key}`, r]));
}

/**
 * Completed messages of these owners that the watcher has not observed yet, and of those how many are still queued
 * for its sweep (bus.sweep_unobserved sends again after 2 minutes).
 */
export async function unobserved(sql: postgres.Sql, owners: string[]): Promise<{ unobserved: number; queued: number }> {
  const [row] = await sql<{ unobserved: number; queued: number }[]>`
    select count(*)::int as unobserved,
           count(*) filter (where exists (select 1 from bus.watch_queue q where q.transaction_id = m.transaction_id))::int
             as queued
      from public.message_bus m
     where m.owner_id = any(${owners}::uuid[]) and m.status = 'completed'
       and not exists (select 1 from public.message_bus_observations o where o.transaction_id = m.transaction_id)`;
  return row;
}

/** How many messages of these owners are still pending. */
export async function pendingCount(sql: postgres.Sql, owners: string[]): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.message_bus where owner_id = any(${owners}::uuid[]) and status = 'pending'`;
  return n;
}

/**
 * Checks every invoke (payloads fetched by `concurrency` clients through message-fetch with the owner's token).
 * Lost: an acknowledged invoke (the client got its transaction id) whose message is missing, still pending, or
 * completed with a payload that does not verify or disagrees with the 200 the client got.
 */
export async function check(
  stack: FaultStack,
  plans: InvokePlan[],
  results: InvokeResult[],
  concurrency: number,
): Promise<Checked[]> {
  const rows = await storedMessages(stack.sql, plans);
  const checked: Checked[] = plans.map((plan) => ({
    plan,
    result: results[plan.index],
    row: rows.get(`${plan.owner} ${plan.key}`),
    lost: null,
  }));
  let next = 0;
  const worker = async () => {
    while (next < checked.length) {
      const c = checked[next++];
      c.lost = await verdict(stack, c);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return checked;
}

async function verdict(stack: FaultStack, c: Checked): Promise<string | null> {
  const { result, row } = c;
  const acknowledged = result.transactionId !== null;
  if (acknowledged && row && row.transaction_id !== result.transactionId) return "another transaction id";
  if (!row) return acknowledged ? "no message recorded" : null;
  if (row.status === "pending") return acknowledged ? "still pending after the drain" : null;
  if (row.status === "failed") {
    if (result.status === 200) return "answered 200 but failed";
    return row.error?.code && row.error.message ? null : "failed without a recorded reason";
  }
  if (row.status !== "completed") return `status ${row.status}`;
  const res = await fetch(`${stack.apiUrl}/functions/v1/message-fetch/${row.transaction_id}`, {
    headers: { authorization: `Bearer ${c.plan.token}`, "accept-encoding": "identity" },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  c.fetched = { status: res.status, verified: res.status === 200 && digest === row.checksum };
  if (!c.fetched.verified) return `payload does not verify (fetch ${res.status})`;
  if (bytes.length !== Number(row.payload_size_bytes)) return "payload size differs";
  if (result.status === 200) {
    if (result.checksum !== row.checksum) return "the 200's checksum differs from the stored one";
    if (result.answeredBy !== row.provider) return "the 200 named another provider";
  }
  return null;
}
