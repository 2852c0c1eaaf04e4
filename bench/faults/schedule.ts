/**
 * The fault schedule: each fault starts once that fraction of the invokes has been sent, so that every fault meets
 * load whatever the count, and the faults come one after another:
 * the primary provider answers 500, then 429 with Retry-After: 1, then hangs (each for `faultMs`); the functions'
 * database connections are terminated three times; Postgres is killed (SIGKILL of the postmaster, restarted by the
 * stack's supervisor); the whole stack is killed (SIGKILL) and started again on the same data. At least 5 s pass
 * between one fault (and, for the provider's, the primary's recovery) and the next, so that effects are not mixed.
 */
import type { FaultStack } from "./stack.ts";
import type { HealthMonitor } from "./monitor.ts";

/** One fault as it happened (times in ms since epoch). */
export interface FaultRecord {
  name: string;
  /** When the fault began and ended (for the restarts: the kill, and the stack or database answering again). */
  start: number;
  end: number;
  detail: Record<string, unknown>;
}

export interface ScheduleDeps {
  stack: FaultStack;
  monitor: HealthMonitor;
  /** Fraction of the invokes sent so far. */
  progress: () => number;
  /** True once every client has finished. */
  finished: () => boolean;
  faultMs: number;
  log: (m: string) => void;
}

const PRIMARY = "/kimi";
/** At least this long between one fault's end (and the primary's recovery) and the next fault's start. */
const SETTLE_MS = 5_000;

/** Runs the schedule; faults whose turn never comes (the invokes ran out first) are reported as skipped. */
export async function runSchedule(d: ScheduleDeps): Promise<{ faults: FaultRecord[]; skipped: string[] }> {
  const faults: FaultRecord[] = [];
  const skipped: string[] = [];
  const steps: Array<[number, string, () => Promise<FaultRecord>]> = [
    [0.08, "provider_500", () => providerOutage(d, "provider_500", "500")],
    [0.22, "provider_429", () => providerOutage(d, "provider_429", "429", 1)],
    [0.36, "provider_hang", () => providerOutage(d, "provider_hang", "hang")],
    [0.50, "db_terminate", () => terminations(d)],
    [0.60, "postgres_restart", () => postgresRestart(d)],
    [0.75, "stack_restart", () => stackRestart(d)],
  ];
  for (const [at, name, run] of steps) {
    while (d.progress() < at && !d.finished()) await pause(100);
    if (d.finished()) {
      skipped.push(name);
      continue;
    }
    d.log(`fault ${name} at ${(d.progress() * 100).toFixed(0)} % of the invokes sent`);
    const record = await run();
    d.log(`fault ${name} over after ${((record.end - record.start) / 1000).toFixed(1)} s`);
    faults.push(record);
    await pause(SETTLE_MS);
  }
  return { faults, skipped };
}

async function providerOutage(d: ScheduleDeps, name: string, mode: string, retryAfter?: number) {
  const start = Date.now();
  await d.stack.outage(PRIMARY, mode, retryAfter);
  await pause(d.faultMs);
  await d.stack.outage(PRIMARY, "off");
  const end = Date.now();
  // The next fault waits until the primary is back (its circuit closed after a successful trial), bounded, so that
  // the recovery of each fault is its own.
  const deadline = end + 20_000;
  while (Date.now() < deadline && !d.finished() && d.monitor.firstAfter(end, (s) => s.circuit === "closed") === null) {
    await pause(100);
  }
  return { name, start, end, detail: { prefix: PRIMARY, mode, retry_after: retryAfter ?? null } };
}

async function terminations(d: ScheduleDeps): Promise<FaultRecord> {
  const start = Date.now();
  const terminated: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await pause(1_500);
    terminated.push(await d.stack.terminateFunctionConnections());
  }
  return { name: "db_terminate", start, end: Date.now(), detail: { rounds: 3, terminated } };
}

async function postgresRestart(d: ScheduleDeps): Promise<FaultRecord> {
  const start = Date.now();
  const pid = await d.stack.killPostgres();
  // Up again when health answers 200 (the supervisor waits DEVSTACK_PG_RESTART_DELAY_MS, then starts it).
  const deadline = start + 120_000;
  let end: number | null = null;
  while (end === null && Date.now() < deadline) {
    await pause(250);
    end = d.monitor.firstAfter(start + 500, (s) => s.status === 200);
  }
  if (end === null) throw new Error("the bus's health did not answer 200 within 120 s of the Postgres kill");
  return { name: "postgres_restart", start, end, detail: { postmaster_pid: pid, signal: "SIGKILL" } };
}

async function stackRestart(d: ScheduleDeps): Promise<FaultRecord> {
  const start = Date.now();
  // What the killed stack left pending: the dispatcher (async) and the reaper (sync) must finish every one.
  const pending = await d.stack.restart();
  const end = Date.now();
  return {
    name: "stack_restart",
    start,
    end,
    detail: {
      signal: "SIGKILL",
      pending_at_restart: pending.map((p) => p.transaction_id),
      pending_async: pending.filter((p) => p.mode === "async").length,
      pending_sync: pending.filter((p) => p.mode === "sync").length,
    },
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
