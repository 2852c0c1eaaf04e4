/**
 * Operations benchmark (issue 15, item 7), on its own stack (Postgres with fsync on):
 * 1. the cost of operations on the invoke path: a 1 KB sync invoke vs a direct call to the same stand-in provider
 *    (the added p50, as bench/claim_check_bench.ts measures it), in alternating rounds with the ops triggers and
 *    pg_cron jobs on ("after") and off ("before");
 * 2. scrape time (`GET /ops/metrics` through the gateway, and bus.ops_metric_rows alone) at 10,000 and at
 *    1,000,000 messages, with /ops/providers and /ops/series beside it; the messages are seeded straight into the
 *    table over the last 24 hours (4 routes, 5 % failed) and folded once, and the fold of one minute at 1,000
 *    invokes/s (60,000 messages) is timed too;
 * 3. alert latency: with ALERT_WEBHOOK_URL pointing at a sink on 127.0.0.1 and pg_cron running as it does, how long
 *    from a circuit opening (and closing again) until the webhook receives the firing (the resolution).
 *
 * Run: npm run bench -- ops   (or deno run -A bench/ops_bench.ts; OPS_BENCH_N=100000 for a quicker run,
 * OPS_BENCH_ALERTS=off to skip the minute-long alert timing)
 */
import postgres from "postgres";
import { freePort, spawnStack } from "../devstack/testing/stack_process.ts";
import { ms, quantile, writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const N = Number(Deno.env.get("OPS_BENCH_N") ?? 1_000_000);
const ALERTS = Deno.env.get("OPS_BENCH_ALERTS") !== "off";
const log = (m: string) => console.error(`[bench] ${new Date().toISOString().slice(11, 19)} ${m}`);

async function spawnServer(args: string[], env: Record<string, string> = {}): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), { args, cwd: ROOT, env, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  if (!value) throw new Error(`${args.join(" ")} exited before it was ready`);
  reader.releaseLock();
  child.stdout.pipeTo(new WritableStream()).catch((err) => log(`server output: ${err}`));
  return child;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

// The webhook sink: every POST body with its arrival time.
const hooks: Array<{ at: number; body: Record<string, unknown> }> = [];
const sink = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
  hooks.push({ at: Date.now(), body: await req.json() });
  return new Response("ok");
});

const standinPort = freePort();
const standin = await spawnServer(["run", "-A", "devstack/provider/server.ts"], {
  PROVIDER_STANDIN_PORT: String(standinPort),
});
const standinUrl = `http://127.0.0.1:${standinPort}/v1`;
const stack = await spawnStack({
  root: ROOT,
  log,
  env: {
    KIMI_API_KEY: "bench-key",
    KIMI_BASE_URL: standinUrl,
    DEVSTACK_PG_FAST: "0",
    ALERT_WEBHOOK_URL: `http://127.0.0.1:${sink.addr.port}/hook`,
  },
});
const sql = postgres(stack.dbUrl, { prepare: false, max: 4, onnotice: () => {} });
const service = { authorization: `Bearer ${stack.keys.serviceRole}` };

const chatBody = (nonce: string) => ({
  messages: [{ role: "user", content: `bench ${nonce} #standin {"bytes": 1024}` }],
});

async function invoke(nonce: string) {
  const res = await fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { ...service, "content-type": "application/json" },
    body: JSON.stringify({
      tool: "chat",
      provider: "kimi",
      model: "bench-model",
      owner_id: "0bec0000-0000-4000-8000-000000000001",
      input: chatBody(nonce),
    }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`invoke ${res.status}: ${JSON.stringify(body)}`);
}

async function direct(nonce: string) {
  const res = await fetch(`${standinUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer bench-key", "content-type": "application/json" },
    body: JSON.stringify({ model: "bench-model", ...chatBody(nonce) }),
  });
  await res.arrayBuffer();
}

const OPS_TRIGGERS = [
  ["public.message_bus", "message_bus_ops_expiry"],
  ["public.message_bus", "message_bus_ops_purge"],
  ["public.message_bus", "message_bus_error_group"],
  ["public.message_bus_observations", "message_bus_observations_error_group"],
];
const OPS_JOBS = ["message-bus-ops-fold", "message-bus-ops-alerts"];

/** Operations on (its triggers and pg_cron jobs, as migrated) or off (the invoke path as before it). */
async function setOps(on: boolean): Promise<void> {
  for (const [table, trigger] of OPS_TRIGGERS) {
    await sql.unsafe(`alter table ${table} ${on ? "enable" : "disable"} trigger ${trigger}`);
  }
  await sql`update cron.job set active = ${on} where jobname in ${sql(OPS_JOBS)}`;
}

async function scrapeTimes(label: string, count: number) {
  const get = async (path: string) => {
    const res = await fetch(`${stack.apiUrl}/functions/v1/ops${path}`, { headers: service });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${path} ${res.status}: ${text.slice(0, 200)}`);
    return text.length;
  };
  for (let i = 0; i < 20; i++) await get("/metrics"); // warm the function and the plans
  const http: number[] = [], rows: number[] = [], providers: number[] = [], series: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 100; i++) {
    http.push(await timed(async () => (bytes = await get("/metrics"))));
    rows.push(await timed(() => sql`select * from bus.ops_metric_rows()`));
    if (i % 4 === 0) {
      providers.push(await timed(() => get("/providers")));
      series.push(await timed(() => get("/series?minutes=60")));
    }
  }
  const [sizes] = await sql`select
    (select count(*) from bus.ops_requests)::int as minute_rows, (select count(*) from bus.ops_buckets)::int as bucket_rows,
    (select count(*) from bus.ops_requests_total)::int as total_rows,
    (select count(*) from bus.ops_buckets_total)::int as total_bucket_rows,
    (select count(*) from public.message_bus)::int as messages`;
  const r = {
    label,
    messages: count,
    table_rows: sizes.messages,
    scrape_bytes: bytes,
    metrics_http_p50_ms: quantile(http, 0.5),
    metrics_http_p95_ms: quantile(http, 0.95),
    metric_rows_sql_p50_ms: quantile(rows, 0.5),
    metric_rows_sql_p95_ms: quantile(rows, 0.95),
    providers_http_p50_ms: quantile(providers, 0.5),
    series_http_p50_ms: quantile(series, 0.5),
    rollup_rows: sizes,
  };
  log(`scrape at ${label}: ${JSON.stringify(r)}`);
  return r;
}

/**
 * Seeds `n` finished messages created over the last 24 hours straight into the table (triggers off while seeding,
 * as the cleanup benchmark does): 4 routes, 5 % failed, provider time 200-3000 ms.
 */
async function seed(n: number): Promise<void> {
  for (let done = 0; done < n; done += 100_000) {
    const count = Math.min(100_000, n - done);
    await sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`
        insert into public.message_bus (owner_id, tool, provider, model, status, payload_size_bytes,
          stored_size_bytes, compression, checksum, chunk_count, finish_reason, error, provider_ms, created_at,
          updated_at, completed_at, expires_at, metadata)
        select ('0bec0000-0000-4000-8000-' || lpad((i % 1000)::text, 12, '0'))::uuid, 'chat',
               case when i % 2 = 0 then 'kimi' else 'glm' end, 'seed-model-' || (i % 4 / 2),
               case when i % 20 = 0 then 'failed' else 'completed' end,
               case when i % 20 = 0 then null else 1024 + i % 4000 end,
               case when i % 20 = 0 then null else 1024 + i % 4000 end,
               case when i % 20 = 0 then null else 'none' end,
               case when i % 20 = 0 then null else 'sha256:' || repeat('0', 64) end,
               case when i % 20 = 0 then null else 1 end, case when i % 20 = 0 then null else 'stop' end,
               case when i % 20 = 0 then '{"code": "provider_error", "message": "seeded"}'::jsonb end,
               200 + (i::bigint * 7919) % 2800, t, t, t + interval '2 seconds', now() + interval '1 day', '{}'::jsonb
          from generate_series(${done + 1}::int, ${done + count}::int) i,
               lateral (select now() - interval '24 hours' + (i::float8 / ${n}) * interval '24 hours' as t) c`;
    });
    log(`seeded ${done + count} / ${n}`);
  }
  await sql`vacuum analyze public.message_bus`;
}

async function foldNow(): Promise<Record<string, number>> {
  const [{ fold }] = await sql`select bus.ops_fold(p_settle => '0 seconds', p_max_window => null) as fold`;
  return fold;
}

try {
  // --- 1. the invoke path, operations on and off ---
  const WARMUP = Number(Deno.env.get("BENCH_WARMUP") ?? 300);
  const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 8);
  const PER_ROUND = Number(Deno.env.get("BENCH_INVOKES") ?? 100);
  log(`warm-up: ${WARMUP} pairs`);
  for (let i = 0; i < WARMUP; i++) {
    await invoke(`warm${i}`);
    await direct(`warm${i}`);
  }
  const added: Record<"on" | "off", number[]> = { on: [], off: [] };
  const invokeP50: Record<"on" | "off", number[]> = { on: [], off: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const mode = r % 2 === 0 ? "off" : "on";
    await setOps(mode === "on");
    const bus: number[] = [], dir: number[] = [];
    for (let i = 0; i < PER_ROUND; i++) {
      dir.push(await timed(() => direct(`r${r}-${i}`)));
      bus.push(await timed(() => invoke(`r${r}-${i}`)));
    }
    added[mode].push(quantile(bus, 0.5) - quantile(dir, 0.5));
    invokeP50[mode].push(quantile(bus, 0.5));
    log(`round ${r} (ops ${mode}): added p50 ${ms(added[mode].at(-1)!)}`);
  }
  await setOps(true);

  // The same question without HTTP and the stand-in's noise: the invoke path's two statements (begin_message, then
  // complete_message with a 1 KB chunk) straight on Postgres, in alternating blocks with operations on and off.
  const owner = "0bec0000-0000-4000-8000-000000000002";
  const chunk = new Uint8Array(1024).fill(0x61);
  const statements = async () => {
    const [{ transaction_id: id }] = await sql`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'sql-bench', null, null, 3600)`;
    await sql`select 1 from bus.complete_message(${id}::uuid, 1024, 1024, 'none', ${"sha256:" + "0".repeat(64)}, 1,
                                                 'stop', null, 'sql-bench', 1, 1, p_last_chunk => ${chunk})`;
  };
  const sqlPath: Record<"on" | "off", number[]> = { on: [], off: [] };
  for (let i = 0; i < 200; i++) await statements();
  for (let b = 0; b < 8; b++) {
    const mode = b % 2 === 0 ? "off" : "on";
    await setOps(mode === "on");
    const times: number[] = [];
    for (let i = 0; i < 300; i++) times.push(await timed(statements));
    sqlPath[mode].push(quantile(times, 0.5));
  }
  await setOps(true);
  const statementsPath = {
    blocks: 8,
    per_block: 300,
    p50_off_ms: quantile(sqlPath.off, 0.5),
    p50_on_ms: quantile(sqlPath.on, 0.5),
    difference_ms: quantile(sqlPath.on, 0.5) - quantile(sqlPath.off, 0.5),
    p50_off_blocks_ms: sqlPath.off,
    p50_on_blocks_ms: sqlPath.on,
  };
  log(`invoke statements: ${JSON.stringify(statementsPath)}`);
  const invokePath = {
    rounds: ROUNDS,
    per_round: PER_ROUND,
    added_p50_off_ms: quantile(added.off, 0.5),
    added_p50_on_ms: quantile(added.on, 0.5),
    difference_ms: quantile(added.on, 0.5) - quantile(added.off, 0.5),
    added_p50_off_rounds_ms: added.off,
    added_p50_on_rounds_ms: added.on,
    invoke_p50_off_ms: quantile(invokeP50.off, 0.5),
    invoke_p50_on_ms: quantile(invokeP50.on, 0.5),
  };
  log(`invoke path: ${JSON.stringify(invokePath)}`);
  await sql`select bus.ops_fold(p_settle => '0 seconds')`;

  // --- 2. scrapes at 10,000 and N messages ---
  const [{ n: already }] = await sql`select count(*)::int as n from public.message_bus`;
  await seed(Math.max(0, 10_000 - already));
  let t = performance.now();
  await foldNow();
  const fold10k = performance.now() - t;
  const small = await scrapeTimes("10,000", 10_000);
  await seed(N - 10_000);
  t = performance.now();
  await foldNow();
  const foldAll = performance.now() - t;
  log(`fold of ${N - 10_000} seeded messages: ${ms(foldAll)}`);
  const large = await scrapeTimes(N.toLocaleString("en"), N);
  // One minute at 1,000 invokes/s: 60,000 messages created in the last minute, then one fold.
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into public.message_bus (owner_id, tool, provider, model, status, payload_size_bytes, stored_size_bytes,
        compression, checksum, chunk_count, finish_reason, provider_ms, created_at, updated_at, completed_at,
        expires_at)
      select gen_random_uuid(), 'chat', 'kimi', 'minute-model', 'completed', 1024, 1024, 'none',
             'sha256:' || repeat('0', 64), 1, 'stop', 300, now() - interval '30 seconds',
             now(), now(), now() + interval '1 day'
        from generate_series(1, 60000)`;
  });
  t = performance.now();
  const minuteFold = await foldNow();
  const foldMinute = performance.now() - t;
  log(`fold of one minute at 1,000/s: ${ms(foldMinute)} (${JSON.stringify(minuteFold)})`);

  // --- 3. alert latency through pg_cron, the ops function and pg_net ---
  let alerts: Record<string, number> | null = null;
  if (ALERTS) {
    const provider = "bench-alert";
    const waitHook = async (status: string, since: number) => {
      const deadline = Date.now() + 150_000;
      while (Date.now() < deadline) {
        const hit = hooks.find((h) =>
          h.at >= since && h.body.status === status && (h.body.labels as Record<string, string>)?.provider === provider
        );
        if (hit) return hit.at - since;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`no ${status} webhook within 150 s`);
    };
    // Start right after a cron tick, so the wait is the whole schedule: the worst case, not a lucky one.
    const [{ wait }] = await sql`select 60 - extract(second from now())::float8 as wait`;
    await new Promise((r) => setTimeout(r, (Number(wait) + 2) * 1000));
    let since = Date.now();
    await sql`insert into bus.routes (provider, model, state) values (${provider}, 'm', 'open')`;
    const firing = await waitHook("firing", since);
    log(`firing reached the webhook after ${(firing / 1000).toFixed(1)} s`);
    since = Date.now();
    await sql`update bus.routes set state = 'closed' where provider = ${provider}`;
    const resolved = await waitHook("resolved", since);
    log(`resolution reached the webhook after ${(resolved / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 65_000)); // one more tick: nothing may be sent twice
    const sent = hooks.filter((h) => (h.body.labels as Record<string, string>)?.provider === provider).length;
    alerts = { firing_s: firing / 1000, resolved_s: resolved / 1000, webhook_posts: sent };
  }

  const json = {
    date: new Date().toISOString(),
    invoke_path: invokePath,
    invoke_statements: statementsPath,
    fold_ms: { seeded_10k: fold10k, [`seeded_${N}`]: foldAll, one_minute_at_1000_per_s: foldMinute },
    scrape: [small, large],
    alerts,
  };
  const row = (r: typeof small) =>
    `| ${r.label} | ${ms(r.metrics_http_p50_ms)} | ${ms(r.metrics_http_p95_ms)} | ${ms(r.metric_rows_sql_p50_ms)} | ${
      ms(r.providers_http_p50_ms)
    } | ${
      ms(r.series_http_p50_ms)
    } | ${r.rollup_rows.minute_rows} / ${r.rollup_rows.bucket_rows} | ${r.scrape_bytes} |`;
  const markdown = `## Operations (\`npm run bench -- ops\`)

${json.date.slice(0, 10)}, fsync on, 2 shared cores. Method and decisions: bench/ops_bench.ts and migration
20261126000420 (the fold).

**The invoke path.** A 1 KB sync invoke vs a direct call to the same stand-in, ${ROUNDS} alternating rounds of
${PER_ROUND} pairs after ${WARMUP} warm-up pairs; ops *off* = its triggers disabled and its pg_cron jobs paused (the
invoke path as before), *on* = as migrated. The added p50 is the median of the rounds' p50 differences.

| | added p50 (median of rounds) | rounds |
| --- | --- | --- |
| ops off (before) | ${ms(invokePath.added_p50_off_ms)} | ${
    invokePath.added_p50_off_rounds_ms.map((v) => v.toFixed(2)).join(", ")
  } |
| ops on (after) | ${ms(invokePath.added_p50_on_ms)} | ${
    invokePath.added_p50_on_rounds_ms.map((v) => v.toFixed(2)).join(", ")
  } |
| **difference** | **${ms(invokePath.difference_ms)}** | target ≤ 0.30 ms |

The invoke path's two statements alone (begin_message, complete_message with a 1 KB chunk; 4 + 4 alternating blocks of
300 on Postgres): p50 ${ms(statementsPath.p50_off_ms)} off, ${ms(statementsPath.p50_on_ms)} on, difference
**${ms(statementsPath.difference_ms)}** (blocks: off ${
    statementsPath.p50_off_blocks_ms.map((v) => v.toFixed(3)).join(", ")
  }; on ${statementsPath.p50_on_blocks_ms.map((v) => v.toFixed(3)).join(", ")}).

Nothing of operations runs on the success path: the rollups are folded by pg_cron from the primary key, and the
three triggers on public.message_bus have WHEN clauses that are false for every change an invoke makes (they fire on
failure, expiry and purge). The difference is the noise of this machine.

**Scrapes.** \`GET /ops/metrics\` through the gateway (100 scrapes after 20 warm-up), bus.ops_metric_rows alone, and
the dashboard's reads; messages seeded over the last 24 hours (4 routes, 5 % failed) and folded.

| messages | /ops/metrics p50 | p95 | SQL alone p50 | /ops/providers p50 | /ops/series p50 | minute rows / bucket rows | scrape bytes |
| --- | --- | --- | --- | --- | --- | --- | --- |
${row(small)}
${row(large)}

Target: /ops/metrics ≤ 50 ms at 1,000,000 messages. The scrape reads the totals (one row per label set and bucket)
and small tables only, so its time does not depend on the number of messages. /ops/providers and /ops/series are not
targets (25 samples each, taken right after the seeding and its fold, while autovacuum works on the seeded table);
they read 5- and 60-minute windows of the per-minute rollups.

**Folds.** Catching up on the seeded 10,000: ${ms(fold10k)}; on ${(N - 10_000).toLocaleString("en")}: ${
    ms(foldAll)
  } (once, at the migration or after a long outage:
at most 10 minutes of creation time per fold afterwards). One minute at 1,000 invokes/s (60,000 messages):
${ms(foldMinute)} — what pg_cron spends every minute at that rate, off the invoke path.
${
    alerts
      ? `
**Alerts.** pg_cron → pg_net → \`POST /ops/alerts/evaluate\` → bus.evaluate_alerts → pg_net → a webhook sink on
127.0.0.1; the circuit opened (and closed) just after a cron tick, so the wait is the whole schedule: firing reached the
webhook after ${alerts.firing_s.toFixed(1)} s, the resolution after ${alerts.resolved_s.toFixed(1)} s (target ≤ 90 s
each); POSTs received for the alert over one more minute: ${alerts.webhook_posts} (one firing, one resolution).
`
      : ""
  }`;
  await writeResults("ops", markdown, json);
  console.log(markdown);
} finally {
  await sql.end({ timeout: 5 });
  await stack.stop();
  await stack.cleanup();
  standin.kill();
  await standin.status;
  await sink.shutdown();
}
