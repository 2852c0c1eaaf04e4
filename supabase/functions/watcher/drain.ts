/**
 * A watcher drain (migration 20261126000900): takes bus.watch_queue in batches, observes each message and records
 * each batch's observations in one statement, until the queue is empty and no completion is in flight. One wake
 * (one pg_net request, one call) serves every message that finishes while the drain runs, where each message had
 * a request, a call and two statements of its own (bench/RESULTS.md "Invoke path").
 */
import { WATCHER_VERSION } from "./findings.ts";
import { inspectTarget, type ObserveDeps, type WatchTarget } from "./observe.ts";

/** Messages per batch: one statement takes them, one records them. */
const BATCH = 50;
/** A drain holds what it took this long; a drain that dies leaves its rows to the next one after it. */
const CLAIM_SECONDS = 60;
/** Takes per message before it is left to an operator (as the sweep's default). */
const MAX_ATTEMPTS = 5;
/** A drain hands over to a fresh one after this (well within the platform's wall clock, supabase-platform.md §1.7). */
const BUDGET_MS = 30_000;
/**
 * When the queue is empty, the drain waits this long once before it tries to stop: messages finishing meanwhile
 * join the next batch instead of costing a new wake (a wake is a pg_net request and a function call).
 */
const LINGER_MS = 25;

/** One element of bus.record_observations' input. */
type Outcome =
  | {
    transaction_id: string;
    verdict: string;
    findings: unknown[];
    analysed_bytes: number | null;
    partial: boolean;
    review: unknown;
    review_tokens: number | null;
    duration_ms: number;
  }
  | { transaction_id: string; drop: true };

export interface DrainOptions {
  /** Waits between tries (a fake clock in tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Overrides BUDGET_MS (tests). */
  budgetMs?: number;
}

/** What a drain did. */
export interface Drained {
  observed: number;
  batches: number;
  /** True when it stopped on its budget and woke a fresh drain to go on. */
  handedOver: boolean;
}

/**
 * Drains the watch queue. Failures of one message are logged and its row is left to a later drain (its claim runs
 * out; attempts are bounded); a failure to take or record a batch is thrown (the rows' claims run out, and the
 * next wake or the sweep takes them again).
 */
export async function drainWatchQueue(deps: ObserveDeps, opts: DrainOptions = {}): Promise<Drained> {
  const sql = deps.sql;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = performance.now();
  const drained: Drained = { observed: 0, batches: 0, handedOver: false };
  let lingered = false;
  for (;;) {
    if (performance.now() - started > (opts.budgetMs ?? BUDGET_MS)) {
      await sql`select bus.end_watch_drain(${MAX_ATTEMPTS}, true)`;
      drained.handedOver = true;
      return drained;
    }
    const rows = await sql<WatchTarget[]>`
      select * from bus.take_watch_batch(${WATCHER_VERSION}, ${BATCH}, ${CLAIM_SECONDS}, ${MAX_ATTEMPTS})`;
    if (rows.length === 0) {
      if (!lingered) {
        lingered = true;
        await sleep(LINGER_MS);
        continue;
      }
      const [{ ended }] = await sql<{ ended: boolean }[]>`select bus.end_watch_drain(${MAX_ATTEMPTS}) as ended`;
      if (ended) return drained;
      await sleep(LINGER_MS); // completions in flight: their rows are coming
      continue;
    }
    lingered = false;
    drained.batches++;
    const outcomes: Outcome[] = [];
    for (const row of rows) {
      const outcome = await observeTaken(row, deps);
      if (outcome) outcomes.push(outcome);
    }
    drained.observed += outcomes.filter((o) => !("drop" in o)).length;
    await record(deps, outcomes);
  }
}

/** The observation of one taken message, `drop` when there is nothing to check, undefined to leave it. */
async function observeTaken(row: WatchTarget, deps: ObserveDeps): Promise<Outcome | undefined> {
  const id = row.transaction_id;
  // Observed before (a direct call), or its payload is gone: only its queue row is left to clear.
  if (row.observation || row.expired || row.status === "expired") return { transaction_id: id, drop: true };
  if (row.status === "pending") return undefined; // not finished (cannot be queued so): left to its claim
  const started = performance.now();
  try {
    const o = await inspectTarget(row, deps);
    return {
      transaction_id: id,
      verdict: o.verdict,
      findings: o.findings,
      analysed_bytes: o.analysed,
      partial: o.partial,
      review: o.review,
      review_tokens: o.review?.usage?.total_tokens ?? null,
      duration_ms: Math.round(performance.now() - started),
    };
  } catch (err) {
    console.error(`[watcher] observing ${id} failed (left to a later drain):`, err);
    return undefined;
  }
}

/** Records a batch in one statement (which commits without waiting for its WAL flush: migration 20261126000900). */
async function record(deps: ObserveDeps, outcomes: Outcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  await deps.sql`select count(*) from bus.record_observations(${WATCHER_VERSION}, ${deps.sql.json(outcomes as never)})`;
}
