/**
 * How a run's failures are recorded (CONTRACT.md §4, §9): on the message first, then answered; raw database and
 * driver errors go to the log only.
 */
import { BusError } from "../errors.ts";
import { withDb } from "../db.ts";
import { failMessage } from "../message/lifecycle.ts";
import type { Attempt } from "../message/row.ts";
import { failureError } from "./answers.ts";
import type { Route, RunArgs } from "./run.ts";

/** An attempt that was not made (no key, circuit open, provider busy). */
export function skipped(route: Route, why: string): Attempt {
  return { provider: route.provider.name, model: route.model, outcome: "skipped", status: null, error_code: why };
}

/** Drops what a failed attempt stored, before the next attempt stores from chunk 0. */
export async function discardPayload(a: RunArgs): Promise<void> {
  await withDb((sql) => sql`select bus.discard_payload(${a.transactionId}::uuid, ${a.run})`, a.sql);
}

/** A storage failure as recorded: the cause goes to the log, the message says only that it failed. */
export function storageFailed(a: RunArgs, err: unknown): Record<string, unknown> {
  console.error(`[invoke] storing the response of ${a.transactionId} failed:`, err);
  return {
    code: "storage_failed",
    message: "Storing the provider response failed; the cause is in the function log under this transaction id",
  };
}

/**
 * Records the failure and returns the error to answer. If recording fails (the database is gone), the caller still
 * gets the contract's error with the transaction id, marked `recorded: false` (the lease runs out and the reaper
 * records it as `worker_lost`).
 */
export async function recordFailure(
  a: RunArgs,
  error: Record<string, unknown>,
  attempts: Attempt[],
  opts: { status?: 429 | 503; retryAfterSeconds?: number } = {},
): Promise<BusError> {
  const headers: Record<string, string> = opts.retryAfterSeconds
    ? { "retry-after": String(opts.retryAfterSeconds) }
    : {};
  let recorded = true;
  try {
    await failMessage(a.sql, a.transactionId, error, { run: a.run, attempts });
  } catch (err) {
    console.error(`[invoke] recording the failure of ${a.transactionId} (${error.code}) failed:`, err);
    recorded = false;
  }
  const e = failureError(a.transactionId, error, recorded ? {} : { recorded: false });
  return new BusError(opts.status ?? e.status, e.code, e.message, e.details, e.extra, { ...e.headers, ...headers });
}
