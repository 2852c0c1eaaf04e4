/**
 * Cleanup benchmark (issue 5 item 6, issue 17 item 4), on its own stack (Postgres with fsync on):
 * 1. seed N expired messages (default 1,000,000; 1 KB payload each, 1,000 owners) straight into the tables;
 * 2. insert load alone: tool-invoke's write path (begin_message, append_chunk, complete_message as service_role,
 *    with every trigger) at a fixed rate, open loop, latency measured from the scheduled start;
 * 3. the same load while `POST /functions/v1/cleanup` runs again and again (default settings) until a run reports
 *    `complete`: total cleanup time, WAL written, Postgres CPU, and insert p99 with vs without cleanup;
 *    CLEANUP_BENCH_RUNS (default 1) repeats 1-3 and reports the runs side by side;
 * 4. where the time goes, on a fresh 100,000: the payload phase, marking as migration 400 did it (per-row ops
 *    trigger) and as bus.expire_messages does it now, and the alternative for payloads: dropping a whole partition
 *    of a chunk table partitioned by expiry, against deleting its rows.
 *
 * Run: npm run bench -- cleanup   (or deno run -A bench/cleanup_bench.ts; CLEANUP_BENCH_N=100000 for a quick run)
 */
import postgres from "postgres";
import { spawnStack } from "../devstack/testing/stack_process.ts";
import { settingsSchema } from "../supabase/functions/_shared/env.ts";
import { cpuMs } from "./proc.ts";
import { ms, quantile, writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const N = Number(Deno.env.get("CLEANUP_BENCH_N") ?? 1_000_000);
const RUNS = Number(Deno.env.get("CLEANUP_BENCH_RUNS") ?? 1);
const RATE = 100; // inserts per second
const BASELINE_S = 30; // insert load alone, before and again after the cleanup (the machine is shared and noisy)
const PAYLOAD = 1024;
const BREAKDOWN_N = 100_000;
const SKIP_BREAKDOWN = Deno.env.get("CLEANUP_BENCH_BREAKDOWN") === "off";
const log = (m: string) => console.error(`[bench] ${new Date().toISOString().slice(11, 19)} ${m}`);

const TUNING_KEYS = [
  "CLEANUP_BATCH_SIZE",
  "CLEANUP_MARK_BATCH_SIZE",
  "CLEANUP_ROUND_MS",
  "CLEANUP_PAUSE_MS",
  "CLEANUP_BUDGET_MS",
] as const;
const tuning = Object.fromEntries(TUNING_KEYS.flatMap((k) => (Deno.env.get(k) ? [[k, Deno.env.get(k)!]] : [])));
/** The settings the cleanup function runs with: its defaults (env.ts), with any override given to this bench. */
const effective = Object.fromEntries(
  TUNING_KEYS.map((k) => [k, tuning[k] ? Number(tuning[k]) : settingsSchema.shape[k].parse(undefined)]),
);
const stack = await spawnStack({ root: ROOT, log, env: { DEVSTACK_PG_FAST: "0", ...tuning } });
const sql = postgres(stack.dbUrl, { prepare: false, max: 12, onnotice: () => {} });

/** Seeds `n` completed messages that expired an hour ago, in batches of 100,000 (triggers off while seeding). */
async function seed(n: number, tag: string): Promise<void> {
  for (let done = 0; done < n; done += 100_000) {
    const count = Math.min(100_000, n - done);
    await sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`
        with ids as (
          select bus.uuid_v7() as id, ('0bec0000-0000-4000-8000-' || lpad((i % 1000)::text, 12, '0'))::uuid as owner
               , now() - interval '1 hour' - (${done}::int + i) * interval '1 millisecond' as expires_at
          from generate_series(1, ${count}::int) i
        ), m as (
          insert into public.message_bus (transaction_id, owner_id, tool, provider, model, status, payload_size_bytes,
            stored_size_bytes, compression, checksum, chunk_count, finish_reason, usage, created_at, updated_at,
            completed_at, expires_at, metadata)
          select id, owner, 'chat', 'kimi', ${tag}, 'completed', ${PAYLOAD}, ${PAYLOAD}, 'none', 'sha256:' || repeat('0', 64),
                 1, 'stop', '{"prompt_tokens": 10, "completion_tokens": 250, "total_tokens": 260}'::jsonb,
                 now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', expires_at,
                 '{"content_type": "application/json", "wants_json": false, "parsed": true}'::jsonb
          from ids returning transaction_id, owner_id, expires_at
        )
        insert into public.message_bus_chunks (transaction_id, seq, owner_id, data, expires_at)
        select transaction_id, 0, owner_id, decode(repeat(md5(transaction_id::text), ${PAYLOAD / 16}::int), 'hex'),
               expires_at
        from m`;
    });
    log(`seeded ${done + count} / ${n}`);
  }
  await sql`vacuum analyze public.message_bus, public.message_bus_chunks`;
  await sql`checkpoint`;
}

/** Fixed-rate insert load until `until()` is true; returns each insert's latency (ms, from its scheduled start). */
async function insertLoad(until: () => boolean): Promise<Array<{ at: number; ms: number }>> {
  const latencies: Array<{ at: number; ms: number }> = [];
  const inflight = new Set<Promise<void>>();
  const start = performance.now();
  for (let i = 0; !until(); i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const p = insertOne().then(() => {
      latencies.push({ at: due, ms: performance.now() - due });
    }).finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  return latencies;
}

const owner = crypto.randomUUID();
const body = new Uint8Array(PAYLOAD).fill(0x61);
async function insertOne(): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select set_config('role', 'service_role', true)`;
    const [{ transaction_id: id }] = await tx`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'load', null, null, 3600)`;
    await tx`select bus.append_chunk(${id}::uuid, 0, ${body})`;
    await tx`select bus.complete_message(${id}::uuid, ${PAYLOAD}, ${PAYLOAD}, 'none', ${"sha256:" + "0".repeat(64)}, 1,
                                         'stop', null, 'load', 1, 1)`;
  });
}

async function cleanupRun(): Promise<Record<string, number | boolean>> {
  const res = await fetch(`${stack.apiUrl}/functions/v1/cleanup`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.keys.serviceRole}` },
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`cleanup answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

async function timed(query: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await query();
  return performance.now() - t;
}

/** CPU time (ms) of the whole Postgres cluster: the postmaster, its live children and those it has reaped. */
async function clusterCpuMs(): Promise<number> {
  const [{ pid }] = await sql`select pid from pg_stat_activity where backend_type = 'checkpointer'`;
  const postmaster = Number(Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ")[1]);
  let total = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const fields = Deno.readTextFileSync(`/proc/${entry.name}/stat`).split(") ")[1].split(" ");
      if (Number(fields[1]) === postmaster) total += cpuMs(Number(entry.name));
      if (Number(entry.name) === postmaster) {
        total += ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / 100;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // a process that exited while we read /proc
    }
  }
  return total;
}

const walLsn = async () => (await sql`select pg_current_wal_lsn()::text as lsn`)[0].lsn as string;
const walMbSince = async (lsn: string) =>
  (await sql`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::float8 as b`)[0].b / 1024 / 1024;

/** bus_messages{status="expired"} after a fold: what the ops scrape reports. */
async function expiredTotal(): Promise<number> {
  await sql`select bus.ops_fold()`;
  const [row] = await sql`select value::int as v from bus.ops_event_totals
                           where metric = 'messages' and labels = '{"status": "expired"}'::jsonb`;
  return row?.v ?? 0;
}

const stats = (xs: number[]) => ({
  n: xs.length,
  p50_ms: quantile(xs, 0.5),
  p99_ms: quantile(xs, 0.99),
  max_ms: Math.max(...xs),
});

/** One full measurement: seed, load alone, cleanup under load, load alone again, check. */
async function oneRun(run: number) {
  log(`run ${run}: seeding ${N} expired messages`);
  const seedMs = await timed(() => seed(N, "bench"));
  const [{ bytes }] = await sql`select pg_total_relation_size('public.message_bus_chunks') as bytes`;

  const loadAlone = async () => {
    const stopAt = performance.now() + BASELINE_S * 1000;
    const cpu0 = await clusterCpuMs();
    const samples = (await insertLoad(() => performance.now() >= stopAt)).map((l) => l.ms);
    return { samples, cpuMsPerS: (await clusterCpuMs() - cpu0) / BASELINE_S };
  };
  log(`insert load alone, ${BASELINE_S} s at ${RATE}/s`);
  const before = await loadAlone();
  log(`baseline before ${JSON.stringify(stats(before.samples))}`);

  const expiredBefore = await expiredTotal();
  log("cleanup under the same load");
  let cleaning = true;
  const loaded = insertLoad(() => !cleaning);
  const runs: Array<Record<string, number | boolean>> = [];
  const lsn = await walLsn();
  const cpu0 = await clusterCpuMs();
  const cleanupStart = performance.now();
  let payloadsGoneMs = NaN;
  const probe = (async () => {
    while (cleaning) {
      // The first entry of the expiry index (exists() would be planned as a scan of the whole table: stale statistics).
      const [{ left }] = await sql`select (select expires_at from public.message_bus_chunks where expires_at <= now()
                                           order by expires_at limit 1) is not null as left`;
      if (!left) return (payloadsGoneMs = performance.now() - cleanupStart);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    for (let i = 0; i < 200; i++) {
      const r = await cleanupRun();
      runs.push(r);
      log(`cleanup run ${i + 1}: ${JSON.stringify(r)}`);
      if (r.complete) break;
    }
  } finally {
    cleaning = false;
  }
  const cleanupWallMs = performance.now() - cleanupStart;
  const cleanupCpuMs = await clusterCpuMs() - cpu0;
  const cleanupWalMb = await walMbSince(lsn);
  await probe;
  const samples = await loaded;
  const during = stats(samples.map((l) => l.ms));
  log(`insert load alone again, ${BASELINE_S} s`);
  const after = await loadAlone();
  const baseline = stats([...before.samples, ...after.samples]);
  log(`baseline after ${JSON.stringify(stats(after.samples))}`);
  const payloadPhase = stats(samples.filter((l) => l.at < cleanupStart + payloadsGoneMs).map((l) => l.ms));
  const markingPhase = stats(samples.filter((l) => l.at >= cleanupStart + payloadsGoneMs).map((l) => l.ms));
  const expired = runs.reduce((n, r) => n + Number(r.expired), 0);
  const [check] =
    await sql`select count(*) filter (where status = 'expired' and payload_deleted_at is not null)::int as expired,
                                   count(*)::int as total from public.message_bus where model = 'bench'`;
  const [{ left }] = await sql`select count(*)::int as left from public.message_bus_chunks c
                               join public.message_bus m using (transaction_id) where m.model = 'bench'`;
  if (check.expired !== N || left !== 0) throw new Error(`cleanup incomplete: ${JSON.stringify({ check, left })}`);
  // The ops rollups saw every expiry (bus_messages{status}): expire_messages counts them per batch.
  if (await expiredTotal() - expiredBefore !== N) {
    throw new Error(`ops counted ${await expiredTotal() - expiredBefore} expiries, not ${N}`);
  }
  const baselineCpuMsPerS = (before.cpuMsPerS + after.cpuMsPerS) / 2;
  const result = {
    seed_ms: seedMs,
    chunk_table_mb: Number(bytes) / 1024 / 1024,
    baseline,
    baseline_before: stats(before.samples),
    baseline_after: stats(after.samples),
    during_cleanup: during,
    during_payload_phase: payloadPhase,
    during_marking_phase: markingPhase,
    p99_ratio: during.p99_ms / baseline.p99_ms,
    cleanup_wall_ms: cleanupWallMs,
    cleanup_run_ms: runs.reduce((t, r) => t + Number(r.duration_ms), 0),
    payloads_gone_ms: payloadsGoneMs,
    cleanup_wal_mb: cleanupWalMb,
    cleanup_cpu_ms: cleanupCpuMs,
    /** Postgres CPU during the cleanup beyond what the insert load alone used in as long. */
    cleanup_extra_cpu_ms: cleanupCpuMs - baselineCpuMsPerS * (cleanupWallMs / 1000),
    baseline_cpu_ms_per_s: baselineCpuMsPerS,
    expired,
    cleanup_runs: runs,
  };
  log(`run ${run} ${JSON.stringify({ ...result, cleanup_runs: undefined })}`);
  await sql`delete from public.message_bus where model in ('bench', 'load')`;
  await sql`vacuum public.message_bus, public.message_bus_chunks`;
  return result;
}

/** Where the time goes, on BREAKDOWN_N fresh expired messages: one statement or function call each, no load. */
async function breakdown(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const one = postgres(stack.dbUrl, { prepare: false, max: 1, onnotice: () => {} });
  try {
    const [{ pid }] = await one`select pg_backend_pid() as pid`;
    const step = async (name: string, query: () => Promise<unknown>) => {
      await one`checkpoint`;
      const [{ lsn }] = await one`select pg_current_wal_lsn()::text as lsn`;
      const cpu0 = cpuMs(pid);
      out[`${name}_ms`] = await timed(query);
      out[`${name}_cpu_ms`] = cpuMs(pid) - cpu0;
      const [{ b }] = await one`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn}::pg_lsn)::float8 as b`;
      out[`${name}_wal_mb`] = b / 1024 / 1024;
      log(
        `breakdown ${name}: ${out[`${name}_ms`].toFixed(0)} ms, cpu ${out[`${name}_cpu_ms`]} ms, ${
          out[`${name}_wal_mb`].toFixed(0)
        } MB WAL`,
      );
    };
    const fresh = async (tag: string) => {
      await sql`delete from public.message_bus where model like 'breakdown%'`;
      await sql`vacuum public.message_bus, public.message_bus_chunks`;
      await seed(BREAKDOWN_N, tag);
    };

    await fresh("breakdown");
    await step("payload_delete", () => one`select bus.delete_expired_payloads(5000, 600000)`);
    // Marking as migration 400 did it: batches of locked rows, one update each, the ops row trigger firing per row.
    await step("mark_before", () =>
      one`do $$
        declare v_ids uuid[];
        begin
          loop
            select array_agg(s.transaction_id) into v_ids from (
              select m.transaction_id from public.message_bus m
               where m.payload_deleted_at is null and m.expires_at <= now() and m.status <> 'pending'
               order by m.expires_at limit 5000 for update skip locked) s;
            exit when v_ids is null;
            delete from public.message_bus_chunks where transaction_id = any (v_ids);
            update public.message_bus
               set status = 'expired', payload_deleted_at = clock_timestamp(), updated_at = clock_timestamp()
             where transaction_id = any (v_ids);
            exit when cardinality(v_ids) < 5000;
          end loop;
        end $$`);
    await fresh("breakdown2");
    await one`select bus.delete_expired_payloads(5000, 600000)`;
    await step("mark_now", () => one`select bus.expire_messages(5000, 600000)`);

    // The alternative for payloads: a chunk table partitioned by expiry, whose expired partition is dropped whole.
    await one`drop table if exists public.bench_chunks_by_expiry`;
    await one`create table public.bench_chunks_by_expiry (like public.message_bus_chunks including storage)
              partition by range (expires_at)`;
    await one`create table public.bench_chunks_expired partition of public.bench_chunks_by_expiry
              for values from (minvalue) to (date_trunc('hour', now()))`;
    await one`create table public.bench_chunks_live partition of public.bench_chunks_by_expiry
              for values from (date_trunc('hour', now())) to (maxvalue)`;
    await one`alter table public.bench_chunks_by_expiry add primary key (transaction_id, seq, expires_at)`;
    await one`create index on public.bench_chunks_by_expiry (expires_at)`;
    await one`insert into public.bench_chunks_by_expiry
              select gen_random_uuid(), 0, gen_random_uuid(), decode(repeat(md5(i::text), ${PAYLOAD / 16}::int), 'hex'),
                     date_trunc('hour', now()) - interval '10 minutes' - i * interval '1 millisecond'
                from generate_series(1, ${BREAKDOWN_N}::int) i`;
    await one`vacuum analyze public.bench_chunks_by_expiry`;
    await step("partition_drop", () => one`drop table public.bench_chunks_expired`);
    await one`drop table public.bench_chunks_by_expiry`;
    await sql`delete from public.message_bus where model like 'breakdown%'`;
  } finally {
    await one.end({ timeout: 5 });
  }
  return out;
}

const fmtS = (v: number) => `${(v / 1000).toFixed(1)} s`;

try {
  const results: Array<Awaited<ReturnType<typeof oneRun>>> = [];
  for (let r = 1; r <= RUNS; r++) results.push(await oneRun(r));
  const bd = SKIP_BREAKDOWN ? null : await breakdown();
  const json = {
    n: N,
    payload_bytes: PAYLOAD,
    insert_rate_per_s: RATE,
    settings: effective,
    runs: results,
    breakdown_n: BREAKDOWN_N,
    breakdown: bd,
  };
  const cols = results.map((_, i) => `run ${i + 1}`);
  const row = (label: string, f: (r: typeof results[number]) => string, target = "") =>
    `| ${label} | ${results.map(f).join(" | ")} | ${target} |`;
  const perRow = (key: string) => `${((bd![`${key}_ms`] * 1000) / BREAKDOWN_N).toFixed(1)} µs`;
  const perRowCpu = (key: string) => `${((bd![`${key}_cpu_ms`] * 1000) / BREAKDOWN_N).toFixed(1)} µs`;
  const walRow = (key: string) => `${((bd![`${key}_wal_mb`] * 1024 * 1024) / BREAKDOWN_N).toFixed(0)} B`;
  const md = `## Cleanup (issues 5 and 17)

Run ${new Date().toISOString()} on ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores; its own
stack, Postgres with fsync on. ${N.toLocaleString("en")} expired messages of ${PAYLOAD} bytes (chunk table
${results[0].chunk_table_mb.toFixed(0)} MB), cleaned by repeated \`POST /functions/v1/cleanup\` runs with the default
settings (${JSON.stringify(effective)}) while ${RATE} inserts/s (tool-invoke's write path with all triggers) ran.
${RUNS > 1 ? `${RUNS} consecutive runs, each on a fresh seed.` : ""}

| measure | ${cols.join(" | ")} | target |
| --- | ${cols.map(() => "---").join(" | ")} | --- |
${row(`payloads of all ${N.toLocaleString("en")} deleted after`, (r) => fmtS(r.payloads_gone_ms), "≤ 10 s")}
${row("fully cleaned (payloads gone, rows marked expired) after", (r) => fmtS(r.cleanup_wall_ms), "≤ 60 s")}
${row("cleanup runs (each ≤ CLEANUP_BUDGET_MS)", (r) => String(r.cleanup_runs.length))}
${row("rows marked per second", (r) => Math.round(r.expired / (r.cleanup_wall_ms / 1000)).toLocaleString("en"))}
${row("WAL written during the cleanup", (r) => `${r.cleanup_wal_mb.toFixed(0)} MB`)}
${row("Postgres CPU during the cleanup beyond the load's own", (r) => fmtS(r.cleanup_extra_cpu_ms))}
${
    row(`insert p50 / p99 without cleanup (${BASELINE_S} s before + ${BASELINE_S} s after)`, (r) =>
      `${ms(r.baseline.p50_ms)} / ${ms(r.baseline.p99_ms)}`)
  }
${row("insert p50 / p99 during cleanup", (r) => `${ms(r.during_cleanup.p50_ms)} / ${ms(r.during_cleanup.p99_ms)}`)}
${
    row("… while payloads are deleted", (r) =>
      `${ms(r.during_payload_phase.p50_ms)} / ${ms(r.during_payload_phase.p99_ms)} (${r.during_payload_phase.n})`)
  }
${
    row("… while rows are marked", (r) =>
      `${ms(r.during_marking_phase.p50_ms)} / ${ms(r.during_marking_phase.p99_ms)} (${r.during_marking_phase.n})`)
  }
${row("p99 during ÷ without", (r) => r.p99_ratio.toFixed(2), "≤ 2")}

${
    bd
      ? `Where the time goes (${
        BREAKDOWN_N.toLocaleString("en")
      } expired messages, one call each, no load, right after a
checkpoint; CPU is the backend's own, which the shared machine disturbs less than wall time):

| step | wall | per message | CPU per message | WAL per message |
| --- | --- | --- | --- | --- |
| payload phase: \`bus.delete_expired_payloads\` (row deletes) | ${ms(bd.payload_delete_ms)} | ${
        perRow("payload_delete")
      } | ${perRowCpu("payload_delete")} | ${walRow("payload_delete")} |
| payload alternative: drop the expired partition of a chunk table partitioned by expiry | ${
        ms(bd.partition_drop_ms)
      } | ${perRow("partition_drop")} | ${perRowCpu("partition_drop")} | ${walRow("partition_drop")} |
| marking as before (migration 400: locked batches, the ops row trigger per row) | ${ms(bd.mark_before_ms)} | ${
        perRow("mark_before")
      } | ${perRowCpu("mark_before")} | ${walRow("mark_before")} |
| marking now: \`bus.expire_messages\` (migration 20261126000800) | ${ms(bd.mark_now_ms)} | ${perRow("mark_now")} | ${
        perRowCpu("mark_now")
      } | ${walRow("mark_now")} |
`
      : ""
  }
<!-- notes:cleanup -->
`;
  await writeResults("cleanup", keepNotes(md), json);
  console.log(md);
} finally {
  await sql.end({ timeout: 5 });
  await stack.stop();
  await stack.cleanup();
}

/** The hand-written notes after `<!-- notes:cleanup -->` in RESULTS.md (before/after, decisions) survive a rerun. */
function keepNotes(md: string): string {
  const text = Deno.readTextFileSync(new URL("./RESULTS.md", import.meta.url));
  const section = text.slice(text.indexOf("<!-- section:cleanup -->"), text.indexOf("<!-- /section:cleanup -->"));
  const at = section.indexOf("<!-- notes:cleanup -->");
  return at < 0 ? md : md.replace("<!-- notes:cleanup -->\n", section.slice(at).trimEnd() + "\n");
}
