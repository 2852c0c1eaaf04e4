/**
 * Streaming benchmark (issue 13, item 9), on its own stack, the provider stand-in in its own process (as a remote
 * provider would be): the same streamed chat completion through the bus (`POST /functions/v1/openai/v1/chat/
 * completions`, a user JWT) and straight from the provider, interleaved so both see the same machine:
 * - time to the first content event (TTFT), the stand-in's first event held back a fixed `first_event_ms`: p50 and
 *   p99 of each path and of the paired difference;
 * - sustained rate of a 10 MB stream (bytes from the first byte to the end), median of several runs each, from the
 *   stand-in (which generates its stream as it goes) and from a replaying provider (the same bytes from memory:
 *   the relay's own ceiling, bench/replay_provider.ts);
 * - integrity: every bus stream's bytes (SHA-256 and size) equal its meta checksum and size; clean streams end
 *   `completed` with `[DONE]`; streams the provider cut end with the bus's error event and `failed`
 *   `stream_incomplete`, never completed.
 * After each bus stream the bench waits for the watcher's verdict on it (at most 5 s, outside the timings): on the
 * devstack the watcher runs in the stack's process and would otherwise inspect stream i while stream i+1 is timed.
 *
 * Run: npm run bench -- streaming   (or deno run -A bench/streaming_bench.ts)
 * Sizes: BENCH_STREAM_WARMUP (pairs, default 50), BENCH_STREAM_SAMPLES (pairs, default 300), BENCH_STREAM_RUNS
 * (10 MB runs per path and provider, default 7). BENCH_STREAM_STACK_ENV: JSON merged into the stack's environment
 * (for trying settings or prototypes on the same harness).
 */
import postgres from "postgres";
import { freePort, spawnStack } from "../devstack/testing/stack_process.ts";
import { standinBaseUrl } from "../devstack/stack.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { cpuMs } from "./proc.ts";
import { quantile } from "./results.ts";
import { readStream, type StreamRead } from "./stream_read.ts";
import { checkIntegrity, type CutCase } from "./streaming_integrity.ts";
import { type RateRun, reportStreaming, type Source, type Ttft } from "./streaming_report.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MB = 1024 * 1024;
const TEN_MB = 10 * MB;
const WARMUP = Number(Deno.env.get("BENCH_STREAM_WARMUP") ?? 50);
const SAMPLES = Number(Deno.env.get("BENCH_STREAM_SAMPLES") ?? 300);
const RUNS = Number(Deno.env.get("BENCH_STREAM_RUNS") ?? 7);
const STACK_ENV = JSON.parse(Deno.env.get("BENCH_STREAM_STACK_ENV") ?? "{}") as Record<string, string>;
/** The stand-in's first event comes this long after its headers, on both paths. */
const TTFT_DIRECTIVE = { first_event_ms: 20 };
const RATE_DIRECTIVE = { bytes: TEN_MB };
/** Streams the provider cuts: early mid-event, after a few 16 KiB events, and inside a 10 MB stream. */
const CUTS: CutCase[] = [
  { first_event_ms: 20, cut_after_bytes: 700 },
  { bytes: 65_536, cut_after_bytes: 20_000 },
  { bytes: 65_536, cut_after_bytes: 50_003 },
  { bytes: TEN_MB, cut_after_bytes: 2 * MB },
  { bytes: TEN_MB, cut_after_bytes: 5 * MB + 123 },
];
const MODEL = "bench-stream";
const log = (m: string) => console.error(`[bench] ${m}`);
const median = (v: number[]) => quantile(v, 0.5);

/** Starts `deno run -A <args>` and waits for its first line of output (its "ready" line). */
async function spawnServer(args: string[], env: Record<string, string> = {}): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), { args, cwd: ROOT, env, stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  if (!value) throw new Error(`${args.join(" ")} exited before it was ready`);
  reader.releaseLock();
  child.stdout.pipeTo(new WritableStream()).catch((err) => log(`server output: ${err}`));
  return child;
}

type Path = "bus" | "direct";
const standinPort = freePort();
const standin = await spawnServer(["run", "-A", "devstack/provider/server.ts"], {
  PROVIDER_STANDIN_PORT: String(standinPort),
});
const standinKimi = standinBaseUrl(`http://127.0.0.1:${standinPort}`, "kimi");

/** The same request each way (the bus adds the route to the model and sends the rest as received). */
function body(path: Path, source: Source, nonce: string, directive: Record<string, unknown>): string {
  const messages = [{ role: "user", content: `bench ${nonce} #standin ${JSON.stringify(directive)}` }];
  if (path === "direct") return JSON.stringify({ messages, model: MODEL, stream: true });
  return JSON.stringify({ model: `${source === "standin" ? "kimi" : "replay"}/${MODEL}`, stream: true, messages });
}

// The replaying provider serves one 10 MB stream of the stand-in, recorded now, from memory.
const recorded = await Deno.makeTempFile({ prefix: "bench-stream-" });
{
  const res = await fetch(`${standinKimi}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer bench-key", "content-type": "application/json" },
    body: body("direct", "standin", "recorded", RATE_DIRECTIVE),
  });
  if (res.status !== 200) throw new Error(`recording the stand-in's stream: ${res.status}`);
  await Deno.writeFile(recorded, new Uint8Array(await res.arrayBuffer()));
}
const replayPort = freePort();
const replay = await spawnServer(["run", "-A", "bench/replay_provider.ts", String(replayPort), recorded]);
const replayBase = `http://127.0.0.1:${replayPort}/v1`;

const stack = await spawnStack({
  root: ROOT,
  log,
  env: {
    DEVSTACK_PG_FAST: "0",
    MESSAGE_BUS_PROVIDERS: "kimi,glm,replay",
    KIMI_API_KEY: "bench-key",
    KIMI_BASE_URL: standinKimi,
    REPLAY_API_KEY: "bench-key",
    REPLAY_BASE_URL: replayBase,
    REPLAY_MODEL: MODEL,
    ...STACK_ENV,
  },
});
const sql = postgres(stack.dbUrl, { prepare: false, max: 1, onnotice: () => {} });
const token = await mintUserToken(crypto.randomUUID(), stack.jwtSecret, { expiresInSeconds: 7200 });
const busUrl = `${stack.apiUrl}/functions/v1/openai/v1/chat/completions`;
const directUrl: Record<Source, string> = {
  standin: `${standinKimi}/chat/completions`,
  replay: `${replayBase}/chat/completions`,
};
let unsettled = 0;

function send(path: Path, source: Source, nonce: string, directive: Record<string, unknown>): Promise<StreamRead> {
  return path === "bus"
    ? readStream(busUrl, { authorization: `Bearer ${token}` }, body(path, source, nonce, directive))
    : readStream(directUrl[source], { authorization: "Bearer bench-key" }, body(path, source, nonce, directive));
}

function expectClean(path: Path, r: StreamRead): void {
  if (r.status !== 200 || r.brokenBody || r.lastEvent !== "[DONE]" || r.ttftMs === null) {
    throw new Error(`${path}: status ${r.status}, broken ${r.brokenBody}, last event ${r.lastEvent?.slice(0, 200)}`);
  }
}

/** Waits (at most 5 s) for the watcher's verdict on a bus stream, so its work is not timed with the next one. */
async function settle(r: StreamRead): Promise<void> {
  if (!r.transactionId) return;
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    const [row] = await sql<{ seen: boolean }[]>`
      select watcher is not null as seen from public.message_bus_meta where transaction_id = ${r.transactionId}::uuid`;
    if (row?.seen) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  unsettled++;
}

/** Interleaved pairs, the order alternating so neither path always runs first. */
async function ttft(): Promise<Ttft & { warm: StreamRead[] }> {
  log(`TTFT: ${WARMUP} warm-up pairs, then ${SAMPLES} pairs (${JSON.stringify(TTFT_DIRECTIVE)})`);
  const out: Ttft & { warm: StreamRead[] } = { bus: [], direct: [], added: [], warm: [] };
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const nonce = crypto.randomUUID();
    const got: Partial<Record<Path, StreamRead>> = {};
    for (const p of (i % 2 ? ["bus", "direct"] : ["direct", "bus"]) as Path[]) {
      const r = got[p] = await send(p, "standin", nonce, TTFT_DIRECTIVE);
      expectClean(p, r);
      if (p === "bus") await settle(r);
    }
    if (i < WARMUP) {
      out.warm.push(got.bus!);
      continue;
    }
    out.bus.push(got.bus!);
    out.direct.push(got.direct!);
    out.added.push(got.bus!.ttftMs! - got.direct!.ttftMs!);
    if ((i - WARMUP + 1) % 100 === 0) {
      log(`  ${i - WARMUP + 1} pairs: added p50 so far ${median(out.added).toFixed(2)} ms`);
    }
  }
  return out;
}

async function rateRun(path: Path, source: Source): Promise<RateRun> {
  const stack0 = cpuMs(stack.pid), standin0 = cpuMs(standin.pid);
  const read = await send(path, source, crypto.randomUUID(), RATE_DIRECTIVE);
  const run = {
    read,
    sustained: read.bytes / ((read.endMs - read.firstByteMs) / 1000),
    stackCpuMs: cpuMs(stack.pid) - stack0,
    standinCpuMs: cpuMs(standin.pid) - standin0,
  };
  expectClean(path, read);
  if (path === "bus") await settle(read);
  return run;
}

type Rates = Record<Source, Record<Path, RateRun[]>>;

/** Rounds of the four (path, provider) runs, in rotating order. */
async function rates(): Promise<Rates> {
  log(`10 MB: one warm-up round, then ${RUNS} rounds of bus and direct, from the stand-in and the replay`);
  const kinds: Array<[Path, Source]> = [["direct", "standin"], ["bus", "standin"], ["direct", "replay"], [
    "bus",
    "replay",
  ]];
  for (const [p, s] of kinds) await rateRun(p, s);
  const out: Rates = { standin: { bus: [], direct: [] }, replay: { bus: [], direct: [] } };
  for (let i = 0; i < RUNS; i++) {
    for (const [p, s] of [...kinds.slice(i % 4), ...kinds.slice(0, i % 4)]) out[s][p].push(await rateRun(p, s));
    const mbs = (s: Source, p: Path) => (out[s][p].at(-1)!.sustained / MB).toFixed(1);
    log(
      `  round ${i + 1}: stand-in bus ${mbs("standin", "bus")} / direct ${mbs("standin", "direct")} MB/s, ` +
        `replay bus ${mbs("replay", "bus")} / direct ${mbs("replay", "direct")} MB/s`,
    );
  }
  return out;
}

async function cuts(): Promise<Array<{ directive: CutCase; read: StreamRead }>> {
  const out = [];
  for (const directive of CUTS) {
    const read = await send("bus", "standin", crypto.randomUUID(), directive);
    await settle(read);
    out.push({ directive, read });
  }
  return out;
}

// Last: the declarations above must be initialised before the top-level run uses them.
try {
  const t = await ttft();
  const r = await rates();
  const c = await cuts();
  const streams = [...t.warm, ...t.bus, ...r.standin.bus.map((x) => x.read), ...r.replay.bus.map((x) => x.read)];
  log(`integrity: ${streams.length} clean and ${c.length} cut bus streams against their meta`);
  const integrity = await checkIntegrity({ sql, apiUrl: stack.apiUrl, token, clean: streams, cut: c });
  await reportStreaming({
    ttft: t,
    rates: r,
    integrity,
    warmup: WARMUP,
    unsettled,
    ttftDirective: TTFT_DIRECTIVE,
    rateDirective: RATE_DIRECTIVE,
    stackEnv: STACK_ENV,
  });
} finally {
  await sql.end();
  const stopped = await stack.stop();
  if (stopped.clean) await stack.cleanup();
  else log(`stack did not stop cleanly; log at ${stack.logPath}`);
  for (const child of [standin, replay]) {
    child.kill("SIGTERM");
    await child.status;
  }
  await Deno.remove(recorded);
}
