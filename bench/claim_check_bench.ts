/**
 * Claim-check benchmark (issue 3, item 7). In one run, side by side:
 * - invoke overhead: a 1 KB sync invoke through the gateway vs a direct call to the same stand-in provider;
 * - fetch rate at 1 KB, 1, 10 and 100 MB, identity and gzip: message-fetch vs a plain loopback HTTP download of the
 *   same bytes vs a direct SQL read of the stored chunks (claim_check_fetch.ts);
 * - CPU time and peak memory growth of the stack process for a 100 MB invoke and a 100 MB fetch.
 * The stack, the stand-in provider and the loopback server each run in their own process.
 *
 * Run: npm run bench -- claim-check   (or deno run -A bench/claim_check_bench.ts)
 * Options: `--only fetch` measures the fetch part alone (and writes bench/results/claim-check-fetch.json, not
 * RESULTS.md); `--before <rev>` also starts a stack of revision `rev` (a git worktree) and measures its fetches
 * interleaved with this checkout's, request by request. `--only read-path --before <rev>` runs the read path alone
 * (payload_read.ts of both trees, in this process, on payloads stored by this checkout's stack). `--cases "1 KB,10 MB"`
 * measures only those fetch cases.
 */
import postgres from "postgres";
import { createHash } from "node:crypto";
import { freePort, spawnStack, type StackProcess } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { measure } from "./proc.ts";
import { readChunk } from "../supabase/functions/_shared/payload_read.ts";
import { storePayload } from "../supabase/functions/_shared/payload_store.ts";
import { ms, quantile, writeResults } from "./results.ts";
import {
  FETCH_CASES,
  FETCH_NOTES,
  fetchCpu,
  fetchCpuTable,
  type FetchRow,
  type FetchSide,
  fetchTable,
  type InMemoryPayload,
  measureFetch,
  readPathAB,
} from "./claim_check_fetch.ts";
import { git, worktreeOf } from "./worktree.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MB = 1024 * 1024;
const log = (m: string) => console.error(`[bench] ${m}`);
const option = (name: string) => {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 ? Deno.args[at + 1] : undefined;
};
const ONLY = option("only");
if (ONLY !== undefined && ONLY !== "fetch" && ONLY !== "read-path") {
  throw new Error(`--only takes "fetch" or "read-path", not ${ONLY}`);
}
const BEFORE = option("before");
/** The 1-minute load average (/proc/loadavg): this machine is shared, and the figures move with it. */
const loadAverage = () => Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
const LOAD_AT_START = loadAverage();

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

async function drain(res: Response): Promise<{ bytes: number; sha: string }> {
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of res.body!) {
    bytes += chunk.length;
    hash.update(chunk);
  }
  return { bytes, sha: hash.digest("hex") };
}

const standinPort = freePort();
const standin = await spawnServer(["run", "-A", "devstack/provider/server.ts"], {
  PROVIDER_STANDIN_PORT: String(standinPort),
});
const standinUrl = `http://127.0.0.1:${standinPort}/v1`;
const stackEnv = { KIMI_API_KEY: "bench-key", KIMI_BASE_URL: standinUrl, DEVSTACK_PG_FAST: "0" };
const stack = await spawnStack({ root: ROOT, log, env: stackEnv });
const sql = postgres(stack.dbUrl, { prepare: false, max: 2, onnotice: () => {} });
const user = crypto.randomUUID();
const token = await mintUserToken(user, stack.jwtSecret, { expiresInSeconds: 7200 });
const auth = { authorization: `Bearer ${token}` };
const rev = `${await git("rev-parse", "--short", "HEAD")}${(await git("status", "--porcelain")) ? "+changes" : ""}`;
const beforeTree = BEFORE ? await worktreeOf(BEFORE) : undefined;
const beforeStack = beforeTree && ONLY !== "read-path"
  ? await spawnStack({ root: beforeTree.dir, log, env: stackEnv })
  : undefined;

const chatBody = (bytes: number, nonce: string) => ({
  messages: [{ role: "user", content: `bench ${nonce} #standin {"bytes": ${bytes}}` }],
});

async function invoke(bytes: number, nonce: string, on: StackProcess = stack) {
  const res = await fetch(`${on.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ tool: "chat", provider: "kimi", model: "bench-model", input: chatBody(bytes, nonce) }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`invoke ${res.status}: ${JSON.stringify(body)}`);
  return body as { transaction_id: string; checksum: string; payload_size_bytes: number };
}

/**
 * Stores `size` random bytes (incompressible, so stored as they are) as a completed message of the bench user,
 * through the same storePayload and bus functions tool-invoke uses.
 */
async function storeRandom(
  size: number,
  sql: postgres.Sql,
): Promise<{ transaction_id: string; checksum: string }> {
  const random = (async function* () {
    for (let left = size; left > 0; left -= 65_536) {
      yield crypto.getRandomValues(new Uint8Array(Math.min(65_536, left)));
    }
  })();
  return await sql.begin(async (tx) => {
    const [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${user}::uuid, 'chat', 'kimi', 'bench-random', null, null, 3600)`;
    const p = await storePayload(tx, id, random, 2 * size);
    await tx`select bus.complete_message(${id}::uuid, ${p.payloadSize}, ${p.storedSize}, ${p.compression},
               ${p.checksum}, ${p.chunkCount}, 'stop', null, null, 0, 0, '{}', ${p.storedChecksum}, ${p.lastChunk})`;
    return { transaction_id: id, checksum: p.checksum };
  }) as { transaction_id: string; checksum: string };
}

async function direct(bytes: number, nonce: string) {
  const res = await fetch(`${standinUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer bench-key", "content-type": "application/json" },
    body: JSON.stringify({ model: "bench-model", ...chatBody(bytes, nonce) }),
  });
  return await drain(res);
}

/** The 1 KB invoke overhead (steady state) and the same without the watcher. */
async function invokeOverhead() {
  // --- invoke overhead (1 KB) ---
  // Steady state, as gateway benchmarks measure it: V8 compiles the hot paths of the stack and the stand-in during
  // the first few hundred requests (on the same cores), so those are warm-up, not overhead. Then rounds of
  // interleaved pairs (direct, via the bus); the added latency is the median of the rounds' p50 differences, the
  // method of the independent gateway comparison in anchors.md §3.5, and the spread of the rounds is reported.
  const WARMUP = Number(Deno.env.get("BENCH_WARMUP") ?? 300);
  const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);
  const PER_ROUND = Number(Deno.env.get("BENCH_INVOKES") ?? 100);
  for (let i = 0; i < WARMUP; i++) {
    await invoke(1024, `warm${i}`);
    await direct(1024, `warm${i}`);
  }
  const measureInvokes = async (tag: string, rounds: number) => {
    const viaBus: number[] = [];
    const viaDirect: number[] = [];
    const added: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const bus: number[] = [];
      const dir: number[] = [];
      for (let i = 0; i < PER_ROUND; i++) {
        dir.push(await timed(() => direct(1024, `${tag}${r}-${i}`)));
        bus.push(await timed(() => invoke(1024, `${tag}${r}-${i}`)));
      }
      added.push(quantile(bus, 0.5) - quantile(dir, 0.5));
      viaBus.push(...bus);
      viaDirect.push(...dir);
    }
    return {
      rounds,
      per_round: PER_ROUND,
      direct_p50_ms: quantile(viaDirect, 0.5),
      direct_p99_ms: quantile(viaDirect, 0.99),
      invoke_p50_ms: quantile(viaBus, 0.5),
      invoke_p99_ms: quantile(viaBus, 0.99),
      added_p50_ms: quantile(added, 0.5),
      added_p50_rounds_ms: added,
      added_p99_ms: quantile(viaBus, 0.99) - quantile(viaDirect, 0.99),
    };
  };
  const overhead = { warmup: WARMUP, ...(await measureInvokes("n", ROUNDS)) };
  // Diagnostic, not the target: the same run with the watcher trigger off, i.e. without the per-message work
  // (pg_net request, watcher function, observation) that here shares the machine's cores with the next invoke.
  await sql`alter table public.message_bus disable trigger message_bus_watch`;
  let withoutWatcher;
  try {
    withoutWatcher = await measureInvokes("w", 3);
  } finally {
    await sql`alter table public.message_bus enable trigger message_bus_watch`;
  }
  log(`invoke overhead: ${JSON.stringify(overhead)}; watcher off: ${JSON.stringify(withoutWatcher)}`);

  return { overhead, withoutWatcher: withoutWatcher! };
}

/** The 100 MB round trip (stack process only): the invoke, then the fetches of claim_check_fetch.ts. */
async function roundTripOf(fetches: Awaited<ReturnType<typeof fetchCpu>>[number]) {
  const invoke100 = await measure(stack.pid, () => invoke(100 * MB, "cpu"));
  return {
    intact: true,
    invoke_cpu_ms: invoke100.cpuMs,
    invoke_peak_growth_mb: invoke100.peakGrowthBytes / MB,
    fetch_identity_cpu_ms: fetches.identity_cpu_ms,
    fetch_identity_peak_growth_mb: fetches.identity_peak_growth_mb,
    fetch_gzip_cpu_ms: fetches.gzip_cpu_ms,
    fetch_gzip_peak_growth_mb: fetches.gzip_peak_growth_mb,
  };
}

function fullMarkdown(
  { overhead, withoutWatcher }: Awaited<ReturnType<typeof invokeOverhead>>,
  rows: FetchRow[],
  roundTrip: Awaited<ReturnType<typeof roundTripOf>>,
): string {
  const f = (v: number) => v.toFixed(1);
  const md = `## Claim-check core (issue 3)

Run ${
    new Date().toISOString()
  } on ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, load average
${LOAD_AT_START} at the start and ${loadAverage()} at the end (other work on the machine counts).
Stack, stand-in provider and loopback server in separate processes; Postgres with fsync on. Everything — Postgres,
the stack (gateway, all four functions, pg_net and Realtime stand-ins), the stand-in provider and this client —
shares these cores.

### Invoke overhead, 1 KB sync invoke

After ${overhead.warmup} warm-up pairs, ${overhead.rounds} rounds of ${overhead.per_round} interleaved pairs (direct call, then the
same request through the bus). Added p50 = median of the rounds' p50 differences (rounds:
${overhead.added_p50_rounds_ms.map((v) => v.toFixed(2)).join(", ")} ms); p50 and p99 of the paths over all requests.

| path | p50 | p99 |
| --- | --- | --- |
| direct call to the stand-in provider | ${ms(overhead.direct_p50_ms)} | ${ms(overhead.direct_p99_ms)} |
| tool-invoke through the gateway | ${ms(overhead.invoke_p50_ms)} | ${ms(overhead.invoke_p99_ms)} |
| **added by the bus** | **${ms(overhead.added_p50_ms)}** | **${ms(overhead.added_p99_ms)}** |
| added, watcher trigger off (diagnostic, ${withoutWatcher.rounds} rounds) | ${ms(withoutWatcher.added_p50_ms)} | ${
    ms(withoutWatcher.added_p99_ms)
  } |

Target: added p50 ≤ 5 ms. The diagnostic row is the same measurement without the watcher's per-message work
(pg_net request, watcher function, observation and its Realtime event), which runs after each invoke and here
competes with the next one for the same cores; hosted, it runs in Postgres and in another function instance.

### Fetch rate (median of repeated downloads, MB/s of payload)

${fetchTable(rows)}

${FETCH_NOTES}

### 100 MB round trip (stack process: gateway + functions)

| step | CPU time | peak memory growth |
| --- | --- | --- |
| invoke (receive, hash, gzip, store) | ${f(roundTrip.invoke_cpu_ms)} ms | ${f(roundTrip.invoke_peak_growth_mb)} MB |
| fetch, identity (read, gunzip, verify) | ${f(roundTrip.fetch_identity_cpu_ms)} ms | ${
    f(roundTrip.fetch_identity_peak_growth_mb)
  } MB |
| fetch, gzip passed through (read, verify the stored digest) | ${f(roundTrip.fetch_gzip_cpu_ms)} ms | ${
    f(roundTrip.fetch_gzip_peak_growth_mb)
  } MB |

Round trip intact (sha256 of the fetched body = checksum). Targets: ≤ 2000 ms CPU per function request, peak
growth ≤ 64 MB.

### Decisions these figures drove (2026-11-21, same machine)

- gzip level 6 → 1: a 100 MB invoke cost 3430 ms CPU at level 6 (zlib alone: 2944 ms per 100 MB, 13.7 MB out);
  level 1 compresses the same 100 MB in 246 ms to 29.8 MB.
- bytea codec: postgres.js decodes \`\\x…\` hex with \`Buffer\` (25.5 ms per 3 MiB in Deno); \`Uint8Array.fromHex\`
  takes 2.1 ms. The direct SQL read of 10 MB went from 272 to ~550 MB/s, message-fetch 120 → 175 MB/s.
- Read-ahead of one chunk, 256 KiB output blocks, and synchronous gunzip for payloads ≤ 1 MiB: 10 MB fetch
  0.23 → 0.31 × loopback. A second chunk of read-ahead measured within noise (22 → 20 ms for 2.8 MB stored) and
  was not kept.
- Round trips (migration 20261121000500): a one-chunk response is stored and its message completed by one
  statement (was a transaction of four round trips); message-fetch reads metadata, counts the retrieval and reads a
  one-chunk payload in one statement; the watcher reads in one statement and records in one (was four
  transactions); the caller context is a statement without parameters, so postgres.js pipelines it (a
  parameterised statement with \`prepare: false\` takes two round trips and blocks the pipeline). Measured
  alone, \`select $1\` costs 0.28 ms with \`prepare: false\` and 0.14 ms prepared. With the stored digest below: added p50
  7.61 → 5.59 ms, 10 MB identity fetch 0.31 → 0.32 × loopback (the previous run of this benchmark).
- stored_checksum: gzip is passed through verified against the digest of the stored bytes instead of being
  decoded on the way out: CPU of a 100 MB gzip fetch 440 → 180 ms; 10 MB in process 19 ms, where decoding
  to verify takes 47 ms. The watcher shows once per message that those bytes
  decode to the checksum.
- Binary COPY for chunk reads: a query result carries bytea as hex text, which Postgres took 11-14 ms to encode
  for the 2.9 MB stored of a 10 MB payload (psql); \`COPY (select …) TO STDOUT (FORMAT binary)\` sends the bytes as
  they are: 6.8 ms for the same chunks through postgres.js, against ~17 ms as a query. 10 MB fetch, gzip not
  decoded: 0.62 → 0.73-1.33 × loopback (nine runs, median 1.00); identity 0.32 → 0.34-0.49 (median 0.40), where
  gunzip (~20 ms per 10 MB) and hashing (~10 ms) remain. 10 MB of random bytes, stored as they are, come back at
  0.40-0.47 × loopback: one thread receives, hashes and sends every byte. The direct-read column reads the way the
  functions do (a query read 500 MB/s at 10 MB). postgres.js leaves its socket paused when CopyDone arrives with
  the data that filled the stream (porsager/postgres#499): every later query on that connection hung, so readChunk
  resumes it (tested). Two or three chunks of read-ahead measured within noise again.
- Commits: with \`synchronous_commit\` off for the whole database the added p50 fell by ~1.4 ms — commits queue
  behind each other's WAL flush. Two need not wait: a sync invoke's begin_message (nothing is answered before the
  completion's commit, which flushes it too) and the watcher's observation (a crash loses it with its watch_queue
  row, and the sweep asks again). Measured alternately on one long-running stack, 6 runs each (with the pg_net
  stand-in now on prepared statements): median added p50
  4.98 → 4.59 ms. The completion's own commit still waits: the answer promises stored bytes. (2026-11-26: the sync
  begin waits again — the fault benchmark found a failure answered with the id of a sync row that a crash then
  dropped; tests/crash_durable_id_test.ts.)
- Method: the first version measured one pass of 300 pairs after 20 warm-up pairs, so it included V8 compiling the
  stack's hot paths on the same cores: the same code measured 6.71 and 6.16 ms that way, 4.96 and 5.79 ms after
  300 warm-up pairs. Now: 300 warm-up pairs, then rounds (median of the rounds' p50 differences, as in the
  independent gateway comparison of anchors.md §3.5). Nine runs of that session's final code over an hour:
  3.92, 4.61, 4.69, 5.13, 5.33, 5.36, 5.86, 6.12 and 7.61 ms (median 5.33), the watcher-off row 2.97-5.19 ms; the
  direct call itself moved between 0.8 and 1.6 ms over the same hour, so the spread is this shared machine.
- Tried and not kept: each function in its own Worker, as hosted isolates are. The stack's CPU per invoke rose
  from ~5.5 to ~7.5 ms (a body crossing threads as a transferred stream costs ~250 µs against ~95 µs as one
  buffer) and the added latency did not move beyond the noise.
- Where a 1 KB invoke's time goes on this machine: with 2 cores shared by Postgres, the stack, the stand-in and the
  client, the system is busy for most of each sequential invoke (stack ~5.5 ms and Postgres ~4 ms CPU per invoke
  with the watcher on; ~2.5 and ~1.5 ms with it off), so the watcher's work after one invoke delays the next. In
  Postgres (pg_stat_statements) the completion statement takes 0.9 ms, 0.3 ms of it the watcher trigger's pg_net
  request and 0.15 ms its Realtime broadcast; begin_message 0.5 ms. The stack's postgres.js socket writes alone
  were ~1 ms of its CPU per invoke (cpuprofile: ~10 writes at ~90 µs on this VM's TCP loopback).
- Identity gunzip through zlib's own stream in 256 KiB pieces (was \`Duplex.toWeb\` with 16 KiB pieces, re-blocked
  to 256 KiB): 10 MiB decoded and hashed in memory 23 → 17 ms; six runs after it: 10 MB identity 0.39-0.52 ×
  loopback (median 0.47, was 0.40), 100 MB identity CPU 510-660 ms (was 720).
- Why identity stays under 0.7 × loopback here: an Edge Function has one thread (no Web Workers,
  supabase-platform.md §1.7), and per 10 MiB it must gunzip (10.6 ms) and hash what it sends (SHA-256 5.6 ms, at
  SHA-NI speed) besides receiving the COPY data and sending 10 MB, against a 16-18 ms loopback download of the same
  bytes. In process the whole read of a stored 10 MB payload takes 24-27 ms. Deno's zlib binding decodes a whole
  1 MiB input chunk at once (event-loop gaps of 6.3 ms); feeding it 64-256 KiB slices removed the gaps but not the
  time (the thread is busy, not waiting) and was not kept; two chunks of read-ahead measured within noise again.
  Raw-stored bytes are bounded by Postgres itself: a direct COPY of 10 MB of TOAST reads at 310-440 MB/s.
- Fewer queries per message (this run): the watcher reads through \`bus.watch_target\` (migration
  20261121000600), a PL/pgSQL function whose plan Postgres keeps: 0.36 → 0.15 ms of Postgres time per message
  (parse 0.14 + plan 0.19 + execute 0.03 ms before); the Realtime stand-in's notification carries the inserted row
  (rows over the 8000-byte NOTIFY limit still go as keys and are read back), so it no longer reads back the three
  broadcasts of each invoke: ~0.75 ms less CPU per invoke (stack + Postgres, alternating A/B, 2 × 2 runs). The
  added p50 did not move beyond the noise of this machine. Six runs of the final code before this one: 4.73, 7.37,
  6.23, 4.64, 6.03 and 7.34 ms, with the direct call's p50 at 1.15, 1.62, 1.49, 1.12, 1.35 and 1.70 ms: both
  scale with how fast the shared cores are at the time. Over the eighteen runs of this session (its three stages
  of code), where the direct call took ≤ 1.16 ms (5 runs) the added p50 was 4.27-4.91 ms; where it took 1.20-1.28
  ms (2 runs), 5.31-5.55 ms; where it took ≥ 1.30 ms (11 runs), 5.95-7.37 ms.
- Tried and not kept: Postgres over a Unix socket for the pg_net and Realtime stand-ins (a Unix socket saved ~45
  µs of client CPU and ~90 µs of wall time per query in a microbenchmark, but the added p50 did not move in 2 × 2
  alternating runs), and the pg_net stand-in in a process of its own (no change in 2 × 2 runs).
`;
  return md;
}

/** A stack measured by claim_check_fetch.ts. */
function sideOf(label: string, on: StackProcess, onSql: postgres.Sql): FetchSide {
  return {
    label,
    apiUrl: on.apiUrl,
    pid: on.pid,
    auth,
    store: (size, random) => random ? storeRandom(size, onSql) : invoke(size, `fetch${size}-${label}`, on),
    async stored(id) {
      const [row] = await onSql<{ compression: string; stored_size_bytes: number; stored_checksum: string }[]>`
        select compression, stored_size_bytes, stored_checksum from public.message_bus
        where transaction_id = ${id}::uuid`;
      return row;
    },
    async observed(id) {
      for (const deadline = Date.now() + 120_000; Date.now() < deadline;) {
        const [o] = await onSql`select 1 from public.message_bus_observations where transaction_id = ${id}::uuid`;
        if (o) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`the watcher did not observe ${id} within 120 s`);
    },
    // The stored chunks read as the functions read them (binary COPY, one chunk per transaction), no HTTP.
    async directRead(id) {
      const [m] = await onSql<{ chunk_count: number; stored_size_bytes: string }[]>`
        select chunk_count, stored_size_bytes from public.message_bus where transaction_id = ${id}::uuid`;
      let n = 0;
      for (let seq = 0; seq < m.chunk_count; seq++) {
        const data = await onSql.begin((tx) => readChunk(tx, id, seq));
        if (!data) throw new Error(`chunk ${seq} is missing`);
        n += data.length;
      }
      if (n !== Number(m.stored_size_bytes)) throw new Error(`read ${n} of ${m.stored_size_bytes} bytes`);
    },
  };
}

const loopbackServer = (port: number, file: string) =>
  spawnServer(["run", "-A", "bench/loopback_server.ts", String(port), file]);

/** Payloads stored by this checkout's stack, read into memory with their meta (as message-fetch reads it). */
async function inMemoryPayloads(): Promise<InMemoryPayload[]> {
  const out: InMemoryPayload[] = [];
  const caller = { role: "authenticated" as const, sub: user, claims: { role: "authenticated", sub: user } };
  const cases = [
    ["1 MB", MB, false],
    ["10 MB", 10 * MB, false],
    ["100 MB", 100 * MB, false],
    ["10 MB random", 10 * MB, true],
  ] as const;
  for (const [label, size, random] of cases) {
    const msg = random ? await storeRandom(size, sql) : await invoke(size, `read-path${size}`);
    const [m] = await sql<
      {
        checksum: string;
        chunk_count: number;
        compression: "none" | "gzip";
        payload_size_bytes: string;
        stored_checksum: string;
      }[]
    >`select checksum, chunk_count, compression, payload_size_bytes, stored_checksum from public.message_bus
      where transaction_id = ${msg.transaction_id}::uuid`;
    const chunks: Uint8Array[] = [];
    for (let seq = 0; seq < m.chunk_count; seq++) {
      chunks.push((await sql.begin((tx) => readChunk(tx, msg.transaction_id, seq)))!);
    }
    const meta = {
      ...m,
      transaction_id: msg.transaction_id,
      payload_size_bytes: Number(m.payload_size_bytes),
      decode_proven: true,
    };
    out.push({ label, meta, chunks, db: { sql, caller } });
  }
  return out;
}

/** `--only read-path`: payload_read.ts of both trees on the same payloads, in this process. */
async function readPathOnly() {
  if (!beforeTree) throw new Error("--only read-path needs --before <rev>");
  const rows = await readPathAB(
    [{ label: `before (${BEFORE})`, dir: beforeTree.dir }, { label: `after (${rev})`, dir: ROOT }],
    await inMemoryPayloads(),
    Number(option("reps") ?? 21),
  );
  const md = [
    "| payload | encoding | code | wall p50 | CPU p50 |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.payload} | ${r.encoding} | ${r.tree} | ${ms(r.wall_ms)} | ${ms(r.cpu_ms)} |`),
  ].join("\n");
  await Deno.writeTextFile(
    new URL("./results/claim-check-read-path.json", import.meta.url),
    JSON.stringify(rows, null, 2) + "\n",
  );
  console.log(md);
}

/** The benchmark: invoke overhead (unless `--only fetch`), fetch rates and the 100 MB round trip. */
async function measureAll() {
  const invokes = ONLY ? undefined : await invokeOverhead();
  const beforeSql = beforeStack && postgres(beforeStack.dbUrl, { prepare: false, max: 2, onnotice: () => {} });
  const sides = [
    ...(beforeStack ? [sideOf(`before (${BEFORE})`, beforeStack, beforeSql!)] : []),
    sideOf(beforeStack ? `after (${rev})` : rev, stack, sql),
  ];
  try {
    const only = option("cases")?.split(",");
    const cases = only ? FETCH_CASES.filter((c) => only.includes(c.label)) : FETCH_CASES;
    const rows = await measureFetch(sides, cases, loopbackServer, log);
    const cpu = only && !only.includes("100 MB") ? [] : await fetchCpu(sides);
    log(`100 MB fetch CPU: ${JSON.stringify(cpu)}`);
    if (!invokes) {
      const md = `## Claim-check fetch (${sides.map((s) => s.label).join(" vs ")}, ${
        new Date().toISOString()
      }, load average ${LOAD_AT_START} → ${loadAverage()})\n\n${fetchTable(rows)}\n\n${fetchCpuTable(cpu)}\n`;
      await Deno.writeTextFile(
        new URL("./results/claim-check-fetch.json", import.meta.url),
        JSON.stringify({ sides: sides.map((s) => s.label), rows, cpu }, null, 2) + "\n",
      );
      console.log(md);
    } else {
      const roundTrip = await roundTripOf(cpu.at(-1)!);
      log(`100 MB round trip: ${JSON.stringify(roundTrip)}`);
      const md = fullMarkdown(invokes, rows, roundTrip);
      await writeResults("claim-check", md, { ...invokes, fetch: rows, roundTrip });
      console.log(md);
    }
  } finally {
    await beforeSql?.end();
  }
}

try {
  await (ONLY === "read-path" ? readPathOnly() : measureAll());
} finally {
  await sql.end();
  await stack.stop();
  await stack.cleanup();
  if (beforeStack) {
    await beforeStack.stop();
    await beforeStack.cleanup();
  }
  await beforeTree?.remove();
  standin.kill("SIGTERM");
  await standin.status;
}
