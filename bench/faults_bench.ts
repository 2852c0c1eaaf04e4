/**
 * Fault benchmark (issue "Provider routing", item 10): `--count` invokes (default 10,000; tool-invoke, 30 % async,
 * each with an Idempotency-Key) from `--concurrency` clients (default 20) against a stack of its own with two
 * providers (kimi, falling back to glm; both served by the stand-in), while on a schedule (bench/faults/schedule.ts)
 * the primary answers 500, then 429 with Retry-After, then hangs, the functions' database connections are
 * terminated, Postgres is killed and restarted by the stack's supervisor, and the whole stack is killed and started
 * again on the same data. Afterwards every invoke's message is checked (bench/faults/verify.ts): lost = an
 * acknowledged invoke whose message is missing, still pending after the drain, or whose payload does not verify.
 *
 * The mix: 10 % of the invokes name glm directly (the fallback's own latency), 3 % carry a `script: [502, "ok"]`
 * directive (one retry inside the bus), 1 % a provider 400 (failed at once and recorded). Provider time: 0-20 ms for
 * sync, 200-1500 ms for async (so that async runs are in flight when the stack dies); payloads 256 B - 8 KB.
 * The load is paced over 15 × `--fault-secs` (150 s by default: 67 invokes/s, below what this machine sustains
 * without faults) so that every fault meets it; a slower machine just takes longer. The stack runs cleanup every
 * minute (default: hourly), so that sync messages the killed stack left are reaped within the run; async ones are
 * run again by the pg_cron dispatcher (every minute). About 4-5 minutes in all with the defaults.
 *
 * Run: npm run bench -- faults [--count 10000] [--concurrency 20] [--fault-secs 10] [--drain-secs 240] [--keep]
 * (quick: --count 2000 --fault-secs 4; --keep keeps the stack's data and log, as a run with lost > 0 does)
 */
import { mintUserToken } from "../devstack/keys.ts";
import { type InvokePlan, type InvokeResult, submit } from "./faults/client.ts";
import { HealthMonitor } from "./faults/monitor.ts";
import { LOAD_SPAN, runSchedule } from "./faults/schedule.ts";
import { FAULT_STACK_ENV, FaultStack } from "./faults/stack.ts";
import { check, pendingCount, unobserved } from "./faults/verify.ts";
import { report } from "./faults/report.ts";
import { writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const arg = (name: string, fallback: number) => {
  const at = Deno.args.indexOf(`--${name}`);
  const value = at >= 0 ? Number(Deno.args[at + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`Expected --${name} to be a positive number`);
  return value;
};
const COUNT = arg("count", 10_000);
const CONCURRENCY = arg("concurrency", 20);
const FAULT_MS = arg("fault-secs", 10) * 1000;
const DRAIN_MS = arg("drain-secs", 240) * 1000;
const KEEP = Deno.args.includes("--keep");
const began = Date.now();
const log = (m: string) => console.error(`[faults] +${((Date.now() - began) / 1000).toFixed(1)}s ${m}`);

/** A number in [0, 1) fixed by the invoke's index and a salt (the same mix on every run). */
function draw(index: number, salt: number): number {
  let h = Math.imul(index ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

const run = crypto.randomUUID().slice(0, 8);
function plan(index: number, user: { id: string; token: string }): InvokePlan {
  const mode = draw(index, 0) < 0.3 ? "async" : "sync";
  const key = `faults-${run}-${index}`;
  const directive: Record<string, unknown> = {
    bytes: 256 + Math.floor(draw(index, 2) * 7936),
    latency_ms: mode === "sync" ? Math.floor(draw(index, 3) * 20) : 200 + Math.floor(draw(index, 3) * 1300),
  };
  const steer = draw(index, 4);
  if (steer < 0.03) Object.assign(directive, { tag: key, script: [502, "ok"] });
  else if (steer < 0.04) directive.status = 400;
  return {
    index,
    key,
    owner: user.id,
    token: user.token,
    mode,
    provider: draw(index, 1) < 0.1 ? "glm" : "kimi",
    directive,
  };
}

log(`starting a stack (count ${COUNT}, ${CONCURRENCY} clients, provider faults of ${FAULT_MS / 1000} s)`);
const stack = await FaultStack.start(ROOT, log);
let keep = KEEP;
try {
  // Cleanup every minute instead of hourly: the reaper must finish the sync messages the killed stack leaves.
  await stack.sql`select bus.schedule_cleanup('* * * * *')`;
  const users = await Promise.all(
    Array.from({ length: CONCURRENCY + 1 }, async () => {
      const id = crypto.randomUUID();
      return { id, token: await mintUserToken(id, stack.stack.jwtSecret, { expiresInSeconds: 6 * 3600 }) };
    }),
  );
  const warm = users.pop()!;
  for (let i = 0; i < 40; i++) {
    const r = await submit(stack, {
      ...plan(i, warm),
      key: `warm-${run}-${i}`,
      mode: "sync",
      provider: "kimi",
      directive: {},
    });
    if (r.status !== 200) throw new Error(`warm-up invoke answered ${r.status} ${r.code}`);
  }
  log("warmed up");

  const [model] = await stack.sql<
    { model: string }[]
  >`select model from public.message_bus where provider = 'kimi' limit 1`;
  const monitor = new HealthMonitor(stack, `kimi/${model.model}`);
  const plans: InvokePlan[] = [];
  const results: InvokeResult[] = [];
  let sent = 0, done = 0, lastSuccess = 0;
  // Paced: invoke i starts no earlier than i / rate after the start, so that the load spans the whole schedule.
  const loadStarted = Date.now();
  const perInvokeMs = (LOAD_SPAN * FAULT_MS) / COUNT;
  const clients = users.map(async (user) => {
    while (sent < COUNT) {
      const p = plan(sent++, user);
      plans[p.index] = p;
      const wait = loadStarted + p.index * perInvokeMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      results[p.index] = await submit(stack, p);
      if (results[p.index].status === 200) lastSuccess = Math.max(lastSuccess, results[p.index].answeredAt);
      if (++done % 1000 === 0) log(`${done} invokes answered`);
    }
  });
  let finished = false;
  const allDone = Promise.all(clients).then(() => (finished = true));
  const schedule = runSchedule({
    stack,
    monitor,
    loadStart: loadStarted,
    lastSuccess: () => lastSuccess,
    finished: () => finished,
    faultMs: FAULT_MS,
    log,
  }).then((ran) => ({ ran }), (error: unknown) => ({ error })); // an early rejection must not end the process
  await allDone;
  const loadEnded = Date.now();
  log(`all ${COUNT} invokes answered in ${((loadEnded - loadStarted) / 1000).toFixed(1)} s`);
  const scheduled = await schedule;
  if ("error" in scheduled) throw scheduled.error;
  const { faults, skipped } = scheduled.ran;
  await monitor.stop();

  // Drain: the dispatcher and the reaper finish what the faults left pending.
  const owners = users.map((u) => u.id);
  let pending = await pendingCount(stack.sql, owners);
  while (pending > 0 && Date.now() - loadEnded < DRAIN_MS) {
    await new Promise((r) => setTimeout(r, 1_000));
    pending = await pendingCount(stack.sql, owners);
  }
  const drainMs = Date.now() - loadEnded;
  log(`drain: ${pending} pending ${(drainMs / 1000).toFixed(1)} s after the last answer`);

  const checked = await check(stack, plans, results, CONCURRENCY);
  const watcher = await unobserved(stack.sql, owners);
  const { markdown, json } = report({
    env: FAULT_STACK_ENV,
    count: COUNT,
    concurrency: CONCURRENCY,
    faultMs: FAULT_MS,
    loadMs: loadEnded - loadStarted,
    drainMs,
    totalMs: Date.now() - began,
    checked,
    faults,
    skipped,
    samples: monitor.samples,
    backlogs: monitor.backlogs,
    watcher,
  });
  await writeResults("faults", markdown, json);
  console.log(markdown);
  if ((json.lost as number) > 0) {
    keep = true;
    Deno.exitCode = 1; // the headline target is 0
    log(`LOST ${json.lost}: see bench/results/faults.json`);
  }
} catch (err) {
  keep = true;
  throw err;
} finally {
  await stack.stop(keep);
}
