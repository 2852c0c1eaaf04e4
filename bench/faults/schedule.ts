/**
 * The fault schedule, in time from the start of the load (in units of `faultMs`, default 10 s), one fault after
 * another: the primary provider answers 500 (at 1), then 429 with Retry-After: 1 (3.5), then hangs (6), each for
 * `faultMs`; the functions' database connections are terminated three times, 1.5 s apart (8.5); Postgres is killed
 * (SIGKILL of the postmaster, restarted by the stack's supervisor; 10.5); the whole stack is killed (SIGKILL) and
 * started again on the same data (12.5). A fault starts no earlier than 3 s after the previous one is over and the bus
 * has recovered from it (the primary's circuit closed again; an invoke answered 200), so that effects are not mixed.
 * The load is paced to last {@link LOAD_SPAN} units, so that every fault meets it whatever the count.
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
  /** When the load started (ms since epoch). */
  loadStart: number;
  /** When the last invoke answered 200 (ms since epoch; 0 before any). */
  lastSuccess: () => number;
  /** True once every client has finished. */
  finished: () => boolean;
  faultMs: number;
  log: (m: string) => void;
}

/** How long the load is paced to last, in units of `faultMs` (the last fault starts at 12.5). */
export const LOAD_SPAN = 15;

const PRIMARY = "/kimi";
/** At least this long between one fault's end (and the bus's recovery from it) and the next fault's start. */
const SETTLE_MS = 3_000;
/** How long to wait for a recovery before going on anyway. */
const RECOVERY_MS = 30_000;

/** Runs the schedule; faults whose turn never comes (the invokes ran out first) are reported as skipped. */
export async function runSchedule(d: ScheduleDeps): Promise<{ faults: FaultRecord[]; skipped: string[] }> {
  const faults: FaultRecord[] = [];
  const skipped: string[] = [];
  const steps: Array<[number, string, () => Promise<FaultRecord>]> = [
    [1, "provider_500", () => providerOutage(d, "provider_500", "500")],
    [3.5, "provider_429", () => providerOutage(d, "provider_429", "429", 1)],
    [6, "provider_hang", () => providerOutage(d, "provider_hang", "hang")],
    [8.5, "db_terminate", () => terminations(d)],
    [10.5, "postgres_restart", () => postgresRestart(d)],
    [12.5, "stack_restart", () => stackRestart(d)],
  ];
  for (const [at, name, run] of steps) {
    while (Date.now() < d.loadStart + at * d.faultMs && !d.finished()) await pause(100);
    if (d.finished()) {
      skipped.push(name);
      continue;
    }
    d.log(`fault ${name}`);
    const record = await run();
    const recovered = await recovery(d, record);
    d.log(
      `fault ${name} over after ${secs(record.end - record.start)}, recovered ${secs(recovered - record.end)} later`,
    );
    faults.push(record);
    await pause(SETTLE_MS);
  }
  return { faults, skipped };
}

/** When the bus was back after `f` (bounded): the primary's circuit closed again, or for the others an answer 200. */
async function recovery(d: ScheduleDeps, f: FaultRecord): Promise<number> {
  const deadline = f.end + RECOVERY_MS;
  for (;;) {
    const at = f.name.startsWith("provider_")
      ? d.monitor.firstAfter(f.end, (s) => s.circuit === "closed")
      : d.lastSuccess() >= f.end
      ? d.lastSuccess()
      : null;
    if (at !== null || Date.now() > deadline || d.finished()) return at ?? Date.now();
    await pause(100);
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function providerOutage(d: ScheduleDeps, name: string, mode: string, retryAfter?: number) {
  const start = Date.now();
  await d.stack.outage(PRIMARY, mode, retryAfter);
  await pause(d.faultMs);
  await d.stack.outage(PRIMARY, "off");
  const end = Date.now();
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
