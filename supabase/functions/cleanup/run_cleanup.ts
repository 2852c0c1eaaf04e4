/**
 * One cleanup run: rounds of `bus.run_cleanup` (one short transaction each, at most CLEANUP_ROUND_MS) until no work
 * is left or CLEANUP_BUDGET_MS is spent, then one row in bus.maintenance_log with the totals. A run cut short by
 * its budget says so (`complete: false`); the next run carries on.
 *
 * Expired payloads are deleted first, flat out (cheap: migration 400, phase 1). Marking the metadata rows expired costs
 * a row update each (~30 µs and ~1.5 KB of WAL: migration 20261126000800), so once the payloads are gone a round
 * marks for its whole CLEANUP_ROUND_MS and CLEANUP_PAUSE_MS follows it, which leaves concurrent writers room
 * (bench/RESULTS.md, "Cleanup").
 */
import { asService, type Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { deleteProviderCopies } from "../_shared/files/provider_deletions.ts";

export interface CleanupCounts {
  /** Metadata rows marked expired. */
  expired: number;
  purged: number;
  reaped: number;
  /** Stored chunks of expired messages deleted. */
  payload_chunks_deleted: number;
  http_responses_deleted: number;
  cron_runs_deleted: number;
  bookkeeping_deleted: number;
  /** Uploaded files deleted: expired and used by no unexpired message, or uploads that stopped. */
  files_deleted: number;
  file_chunks_deleted: number;
  /** Provider copies of deleted files deleted at the provider (and failures, tried again next run). */
  provider_files_deleted: number;
  provider_file_deletions_failed: number;
}

export interface CleanupResult extends CleanupCounts {
  /** False when the time budget ran out before all work was done. */
  complete: boolean;
  rounds: number;
  duration_ms: number;
  /** The bus.maintenance_log row of this run. */
  run_id: number;
}

type Round = CleanupCounts & { more: boolean; payloads_left: boolean };

const KEYS = [
  "expired",
  "purged",
  "reaped",
  "payload_chunks_deleted",
  "http_responses_deleted",
  "cron_runs_deleted",
  "bookkeeping_deleted",
  "files_deleted",
  "file_chunks_deleted",
  "provider_files_deleted",
  "provider_file_deletions_failed",
] as const;

/**
 * Runs the cleanup with the settings' retention, reaping age, batch size, budgets and pacing.
 * @throws the database error of a failed round, after logging the run with that error.
 */
export async function runCleanup(sql: Sql, s: Settings, job = "cleanup"): Promise<CleanupResult> {
  const startedAt = new Date();
  const started = performance.now();
  const totals = Object.fromEntries(KEYS.map((k) => [k, 0])) as unknown as CleanupCounts;
  let rounds = 0;
  let more = true;
  const left = () => s.CLEANUP_BUDGET_MS - (performance.now() - started);
  const log = (complete: boolean, error: string | null) =>
    asService((tx) =>
      tx<{ id: string }[]>`select bus.log_maintenance(${job}, ${startedAt}, ${rounds}, ${complete},
                                                      ${tx.json(totals as never)}, ${error}) as id`, sql);
  try {
    while (more && left() > 0) {
      const [{ round }] = await asService((tx) =>
        tx<{ round: Round }[]>`
        select bus.run_cleanup(
          make_interval(days => ${s.MESSAGE_BUS_RETENTION_DAYS}),
          make_interval(mins => ${s.MESSAGE_BUS_REAP_PENDING_MINUTES}),
          ${s.CLEANUP_BATCH_SIZE},
          ${Math.max(1, Math.min(s.CLEANUP_ROUND_MS, Math.floor(left())))},
          make_interval(mins => ${s.CLEANUP_HTTP_RESPONSES_KEEP_MINUTES}),
          make_interval(days => ${s.CLEANUP_CRON_HISTORY_DAYS}),
          ${s.CLEANUP_MARK_BATCH_SIZE},
          ${s.MESSAGE_BUS_MAX_ATTEMPTS}) as round`, sql);
      // Files (issue #16): expired files no unexpired message uses, in the same round's budget.
      const [{ files }] = await asService(
        (tx) =>
          tx<{ files: { files_deleted: number; file_chunks_deleted: number; more: boolean } }[]>`
        select bus.cleanup_files(${s.CLEANUP_BATCH_SIZE}, ${
            Math.max(1, Math.min(s.CLEANUP_ROUND_MS, Math.floor(left())))
          })
          as files`,
        sql,
      );
      rounds++;
      for (const key of KEYS) {
        totals[key] += Number(round[key] ?? 0) + Number((files as Record<string, unknown>)[key] ?? 0);
      }
      more = round.more || files.more;
      if (more && !round.payloads_left && s.CLEANUP_PAUSE_MS > 0 && left() > s.CLEANUP_PAUSE_MS) {
        await new Promise((r) => setTimeout(r, s.CLEANUP_PAUSE_MS));
      }
    }
    // The provider copies of files deleted now or before (HTTP calls, after the database work, within the budget).
    const copies = await deleteProviderCopies(sql, s, started + s.CLEANUP_BUDGET_MS);
    totals.provider_files_deleted += copies.provider_files_deleted;
    totals.provider_file_deletions_failed += copies.provider_file_deletions_failed;
  } catch (err) {
    await log(false, err instanceof Error ? err.message : String(err)).catch((logErr) =>
      console.error(`[cleanup] logging the failed run failed too: ${logErr}`)
    );
    throw err;
  }
  const [{ id }] = await log(!more, null);
  return {
    ...totals,
    complete: !more,
    rounds,
    duration_ms: Math.round(performance.now() - started),
    run_id: Number(id),
  };
}
