/**
 * Claim-check benchmark (issue 3, item 7). In one run, side by side:
 * - invoke overhead: a 1 KB sync invoke through the gateway vs a direct call to the same stand-in provider;
 * - fetch rate at 1, 10 and 100 MB: message-fetch vs a plain loopback HTTP download of the same bytes vs a
 *   direct SQL read of the stored chunks;
 * - CPU time and peak memory growth of the stack process for a 100 MB invoke and a 100 MB fetch.
 * The stack, the stand-in provider and the loopback server each run in their own process.
 *
 * Run: npm run bench -- claim-check   (or deno run -A bench/claim_check_bench.ts)
 */
import postgres from "postgres";
import { createHash } from "node:crypto";
import { get as httpGet } from "node:http";
import { freePort, spawnStack } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { measure } from "./proc.ts";
import { byteaType } from "../supabase/functions/_shared/bytea.ts";
import { ms, quantile, writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MB = 1024 * 1024;
const log = (m: string) => console.error(`[bench] ${m}`);

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

/** GET with node:http, which (unlike fetch) does not decode gzip: the bytes as they go over the wire. */
function drainRaw(url: string, headers: Record<string, string>): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
      const hash = createHash("sha256");
      let bytes = 0;
      res.on("data", (chunk: Uint8Array) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      res.on("end", () => resolve({ bytes, sha: hash.digest("hex") }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

const standinPort = freePort();
const standin = await spawnServer(["run", "-A", "devstack/provider/server.ts"], {
  PROVIDER_STANDIN_PORT: String(standinPort),
});
const standinUrl = `http://127.0.0.1:${standinPort}/v1`;
const stack = await spawnStack({
  root: ROOT,
  log,
  env: { KIMI_API_KEY: "bench-key", KIMI_BASE_URL: standinUrl, DEVSTACK_PG_FAST: "0" },
});
// The direct-read baseline uses the same bytea codec as the functions.
const sql = postgres(stack.dbUrl, { prepare: false, max: 2, onnotice: () => {}, types: { bytea: byteaType } });
const user = crypto.randomUUID();
const token = await mintUserToken(user, stack.jwtSecret, { expiresInSeconds: 7200 });
const auth = { authorization: `Bearer ${token}` };

const chatBody = (bytes: number, nonce: string) => ({
  messages: [{ role: "user", content: `bench ${nonce} #standin {"bytes": ${bytes}}` }],
});

async function invoke(bytes: number, nonce: string) {
  const res = await fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ tool: "chat", provider: "kimi", model: "bench-model", input: chatBody(bytes, nonce) }),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`invoke ${res.status}: ${JSON.stringify(body)}`);
  return body as { transaction_id: string; checksum: string; payload_size_bytes: number };
}

async function direct(bytes: number, nonce: string) {
  const res = await fetch(`${standinUrl}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer bench-key", "content-type": "application/json" },
    body: JSON.stringify({ model: "bench-model", ...chatBody(bytes, nonce) }),
  });
  return await drain(res);
}

try {
  // --- invoke overhead (1 KB) ---
  const N = Number(Deno.env.get("BENCH_INVOKES") ?? 300);
  for (let i = 0; i < 20; i++) {
    await invoke(1024, `warm${i}`);
    await direct(1024, `warm${i}`);
  }
  const measureInvokes = async (tag: string) => {
    const viaBus: number[] = [];
    const viaDirect: number[] = [];
    for (let i = 0; i < N; i++) {
      viaDirect.push(await timed(() => direct(1024, `${tag}${i}`)));
      viaBus.push(await timed(() => invoke(1024, `${tag}${i}`)));
    }
    return {
      direct_p50_ms: quantile(viaDirect, 0.5),
      direct_p99_ms: quantile(viaDirect, 0.99),
      invoke_p50_ms: quantile(viaBus, 0.5),
      invoke_p99_ms: quantile(viaBus, 0.99),
      added_p50_ms: quantile(viaBus, 0.5) - quantile(viaDirect, 0.5),
      added_p99_ms: quantile(viaBus, 0.99) - quantile(viaDirect, 0.99),
    };
  };
  const overhead = { n: N, ...(await measureInvokes("n")) };
  // Diagnostic, not the target: the same run with the watcher trigger off, i.e. without the per-message work
  // (pg_net request, watcher function, observation) that here shares the machine's cores with the next invoke.
  await sql`alter table public.message_bus disable trigger message_bus_watch`;
  let withoutWatcher;
  try {
    withoutWatcher = await measureInvokes("w");
  } finally {
    await sql`alter table public.message_bus enable trigger message_bus_watch`;
  }
  log(`invoke overhead: ${JSON.stringify(overhead)}; watcher off: ${JSON.stringify(withoutWatcher)}`);

  // --- fetch rates ---
  const rates: Array<Record<string, number | string>> = [];
  let big: { transaction_id: string } | undefined;
  for (const sizeMb of [1, 10, 100]) {
    const msg = await invoke(sizeMb * MB, `fetch${sizeMb}`);
    if (sizeMb === 100) big = msg;
    const url = `${stack.apiUrl}/functions/v1/message-fetch/${msg.transaction_id}`;
    const file = await Deno.makeTempFile();
    const loopbackPort = freePort();
    const res = await fetch(url, { headers: auth });
    const bodyBytes = new Uint8Array(await res.arrayBuffer());
    await Deno.writeFile(file, bodyBytes);
    const loopback = await spawnServer(["run", "-A", "bench/loopback_server.ts", String(loopbackPort), file]);
    const reps = sizeMb === 100 ? 3 : sizeMb === 10 ? 7 : 15;
    const [stored] = await sql`select compression, stored_size_bytes, stored_checksum from public.message_bus
                               where transaction_id = ${msg.transaction_id}::uuid`;
    const t = {
      fetch: [] as number[],
      fetchGzip: [] as number[],
      fetchGzipRaw: [] as number[],
      loopback: [] as number[],
      sql: [] as number[],
    };
    for (let r = 0; r < reps; r++) {
      t.fetch.push(
        await timed(async () => {
          const d = await drain(await fetch(url, { headers: { ...auth, "accept-encoding": "identity" } }));
          if (`sha256:${d.sha}` !== msg.checksum) throw new Error("fetched bytes do not match the checksum");
        }),
      );
      // What the SDK and browsers get: fetch asks for gzip and decodes it; the decoded bytes are verified.
      t.fetchGzip.push(
        await timed(async () => {
          const d = await drain(await fetch(url, { headers: auth }));
          if (`sha256:${d.sha}` !== msg.checksum) throw new Error("decoded bytes do not match the checksum");
        }),
      );
      // The stored gzip bytes as they go over the wire, not decoded (verified against their own digest).
      t.fetchGzipRaw.push(
        await timed(async () => {
          const d = await drainRaw(url, { ...auth, "accept-encoding": "gzip" });
          if (`sha256:${d.sha}` !== stored.stored_checksum) throw new Error("gzip bytes do not match their digest");
        }),
      );
      t.loopback.push(await timed(() => fetch(`http://127.0.0.1:${loopbackPort}/`).then(drain)));
      t.sql.push(
        await timed(async () => {
          let n = 0;
          await sql`select data from public.message_bus_chunks where transaction_id = ${msg.transaction_id}::uuid order by seq`
            .cursor(1, ([row]) => {
              n += row.data.length;
            });
          if (n === 0) throw new Error("no chunks read");
        }),
      );
    }
    loopback.kill("SIGTERM");
    await loopback.status;
    await Deno.remove(file);
    const rate = (xs: number[]) => (sizeMb * MB) / MB / (quantile(xs, 0.5) / 1000);
    rates.push({
      size_mb: sizeMb,
      stored: `${stored.compression}, ${(Number(stored.stored_size_bytes) / MB).toFixed(2)} MB`,
      fetch_mb_s: rate(t.fetch),
      fetch_gzip_mb_s: rate(t.fetchGzip),
      fetch_gzip_raw_mb_s: rate(t.fetchGzipRaw),
      loopback_mb_s: rate(t.loopback),
      sql_mb_s: rate(t.sql),
      fetch_vs_loopback: quantile(t.loopback, 0.5) / quantile(t.fetch, 0.5),
      fetch_gzip_vs_loopback: quantile(t.loopback, 0.5) / quantile(t.fetchGzip, 0.5),
      fetch_gzip_raw_vs_loopback: quantile(t.loopback, 0.5) / quantile(t.fetchGzipRaw, 0.5),
    });
    log(`fetch ${sizeMb} MB: ${JSON.stringify(rates.at(-1))}`);
  }

  // --- CPU and memory of a 100 MB round trip (stack process only) ---
  const invoke100 = await measure(stack.pid, () => invoke(100 * MB, "cpu"));
  const fetch100 = await measure(stack.pid, async () => {
    const d = await drain(
      await fetch(`${stack.apiUrl}/functions/v1/message-fetch/${invoke100.result.transaction_id}`, {
        headers: { ...auth, "accept-encoding": "identity" },
      }),
    );
    if (`sha256:${d.sha}` !== invoke100.result.checksum) throw new Error("100 MB round trip is not intact");
    return d.bytes;
  });
  const fetch100gz = await measure(
    stack.pid,
    () =>
      fetch(`${stack.apiUrl}/functions/v1/message-fetch/${big!.transaction_id}`, {
        headers: { ...auth, "accept-encoding": "gzip" },
      }).then(drain),
  );
  const roundTrip = {
    intact: true,
    invoke_cpu_ms: invoke100.cpuMs,
    invoke_peak_growth_mb: invoke100.peakGrowthBytes / MB,
    fetch_identity_cpu_ms: fetch100.cpuMs,
    fetch_identity_peak_growth_mb: fetch100.peakGrowthBytes / MB,
    fetch_gzip_cpu_ms: fetch100gz.cpuMs,
    fetch_gzip_peak_growth_mb: fetch100gz.peakGrowthBytes / MB,
  };
  log(`100 MB round trip: ${JSON.stringify(roundTrip)}`);

  const f = (v: number) => v.toFixed(1);
  const md = `## Claim-check core (issue 3)

Run ${new Date().toISOString()} on ${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores.
Stack, stand-in provider and loopback server in separate processes; Postgres with fsync on. Everything — Postgres,
the stack (gateway, all four functions, pg_net and Realtime stand-ins), the stand-in provider and this client —
shares these cores.

### Invoke overhead, 1 KB sync invoke (${N} sequential requests each)

| path | p50 | p99 |
| --- | --- | --- |
| direct call to the stand-in provider | ${ms(overhead.direct_p50_ms)} | ${ms(overhead.direct_p99_ms)} |
| tool-invoke through the gateway | ${ms(overhead.invoke_p50_ms)} | ${ms(overhead.invoke_p99_ms)} |
| **added by the bus** | **${ms(overhead.added_p50_ms)}** | **${ms(overhead.added_p99_ms)}** |
| added, watcher trigger off (diagnostic) | ${ms(withoutWatcher.added_p50_ms)} | ${ms(withoutWatcher.added_p99_ms)} |

Target: added p50 ≤ 5 ms. The diagnostic row is the same measurement without the watcher's per-message work
(pg_net request, watcher function, observation and its Realtime event), which runs after each invoke and here
competes with the next one for the same cores; hosted, it runs in Postgres and in another function instance.

### Fetch rate (median of repeated downloads, MB/s of payload)

| size | stored as | identity (server decodes) | gzip, decoded by fetch (SDK, browsers) | gzip bytes, not decoded | loopback HTTP | direct SQL read | ÷ loopback: identity / decoded / not decoded |
| --- | --- | --- | --- | --- | --- | --- | --- |
${
    rates.map((r) =>
      `| ${r.size_mb} MB | ${r.stored} | ${f(r.fetch_mb_s as number)} | ${f(r.fetch_gzip_mb_s as number)} | ${
        f(r.fetch_gzip_raw_mb_s as number)
      } | ${f(r.loopback_mb_s as number)} | ${f(r.sql_mb_s as number)} | ${
        (r.fetch_vs_loopback as number).toFixed(2)
      } / ${(r.fetch_gzip_vs_loopback as number).toFixed(2)} / ${(r.fetch_gzip_raw_vs_loopback as number).toFixed(2)} |`
    ).join("\n")
  }

Target: 10 MB fetch ≥ 0.7 × loopback. Every column's client hashes what it receives, as the loopback's does; the
"decoded" client (plain \`fetch\`, which asks for gzip and decodes it) also checks the decoded bytes against the
checksum. "Not decoded" (node:http) receives the stored gzip as it goes over the wire and checks it against its
stored digest; its MB/s counts the payload size, not the bytes moved.

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
- Where a 1 KB invoke's time goes on this machine: the invoke's own statements take ~0.5 ms each in Postgres
  (psql); the stack process spends ~6 ms CPU and Postgres ~4 ms CPU per invoke with the watcher on, ~3 ms and
  ~2 ms with it off — the difference is the watcher's per-message work. A 10 MB fetch is bounded by reading
  the stored bytes (Postgres encodes bytea as hex text, ~5.5 ms per MiB here; postgres.js has no binary
  results) and, for identity, by gunzip (~20 ms per 10 MB).
`;
  await writeResults("claim-check", md, { overhead, withoutWatcher, rates, roundTrip });
  console.log(md);
} finally {
  await sql.end();
  await stack.stop();
  await stack.cleanup();
  standin.kill("SIGTERM");
  await standin.status;
}
