/**
 * Concurrency slots of a provider (`<NAME>_MAX_CONCURRENCY`, CONTRACT.md §9): leases in Postgres, so the limit holds
 * across every instance and a slot of a worker that died is freed when its lease runs out. A call waits for a slot
 * at most PROVIDER_QUEUE_TIMEOUT_MS, polling with a growing pause (LISTEN/NOTIFY is not available through the
 * transaction pooler, supabase-platform.md §1.11).
 */
import { type Query, withDb } from "../db.ts";

export interface SlotRequest {
  provider: string;
  transactionId: string;
  max: number;
  leaseSeconds: number;
  /** How long to wait for a free slot. */
  timeoutMs: number;
}

/** Takes a slot, waiting up to `timeoutMs`; false when none freed in time. */
export async function acquireSlot(sql: Query, r: SlotRequest, sleep = delay): Promise<boolean> {
  const deadline = Date.now() + r.timeoutMs;
  let pause = 10;
  for (;;) {
    const [{ taken }] = await withDb(
      (sql) =>
        sql<{ taken: boolean }[]>`
        select bus.acquire_provider_slot(${r.provider}, ${r.transactionId}::uuid, ${r.max}, ${r.leaseSeconds}) as taken`,
      sql,
    );
    if (taken) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, 250);
  }
}

/** Frees the slot a message holds of a provider (completing or failing the message frees them all). */
export async function releaseSlot(sql: Query, provider: string, transactionId: string): Promise<void> {
  await withDb((sql) => sql`select bus.release_provider_slot(${provider}, ${transactionId}::uuid)`, sql);
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
