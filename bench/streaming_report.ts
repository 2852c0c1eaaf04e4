/**
 * The streaming benchmark's summary and its section of bench/RESULTS.md (with bench/results/streaming.json). The
 * section can be written again from the JSON after editing the notes below:
 * `deno run -A bench/streaming_report.ts bench/results/streaming.json`.
 */
import { ms, quantile, writeResults } from "./results.ts";
import type { StreamRead } from "./stream_read.ts";
import type { Integrity } from "./streaming_integrity.ts";
import { PROFILE_NOTES } from "./streaming_notes.ts";

const MB = 1024 * 1024;

/** Where a 10 MB stream comes from: the stand-in (generating as it goes) or the replaying provider. */
export type Source = "standin" | "replay";

export interface Ttft {
  bus: StreamRead[];
  direct: StreamRead[];
  /** bus − direct, per pair. */
  added: number[];
}

export interface RateRun {
  read: StreamRead;
  /** Bytes per second from the first body byte to the end. */
  sustained: number;
  /** CPU milliseconds the stack process (gateway and functions) and the stand-in process spent meanwhile. */
  stackCpuMs: number;
  standinCpuMs: number;
}

interface PathRate {
  medianMBs: number;
  runsMBs: number[];
  bytes: number;
  stackCpuMs: number;
  standinCpuMs: number;
}

/** What the section is written from (and what the JSON keeps). */
export interface StreamingSummary {
  at: string;
  cpus: number;
  loadavg: number[];
  stackEnv: Record<string, string>;
  unsettled: number;
  ttft: {
    directive: Record<string, unknown>;
    warmup: number;
    samples: number;
    bus: { headersP50: number; p50: number; p99: number };
    direct: { headersP50: number; p50: number; p99: number };
    added: { p50: number; p99: number; min: number; max: number };
    /** The bus's own record (ttft_ms: its provider request to the first output event), over the bench's streams. */
    recordedP50: number;
    raw: { bus: number[]; direct: number[] };
  };
  rates: {
    directive: Record<string, unknown>;
    runs: number;
    standin: { bus: PathRate; direct: PathRate; ratio: number };
    replay: { bus: PathRate; direct: PathRate; ratio: number };
  };
  integrity: Omit<Integrity, "recordedTtftMs">;
}

/** Summarises a run and writes the section and the JSON. */
export async function reportStreaming(x: {
  ttft: Ttft;
  rates: Record<Source, Record<"bus" | "direct", RateRun[]>>;
  integrity: Integrity;
  warmup: number;
  unsettled: number;
  ttftDirective: Record<string, unknown>;
  rateDirective: Record<string, unknown>;
  stackEnv: Record<string, string>;
}): Promise<void> {
  const ttftOf = (reads: StreamRead[]) => ({
    headersP50: quantile(reads.map((r) => r.headersMs), 0.5),
    p50: quantile(reads.map((r) => r.ttftMs!), 0.5),
    p99: quantile(reads.map((r) => r.ttftMs!), 0.99),
  });
  const rateOf = (runs: RateRun[]): PathRate => ({
    medianMBs: quantile(runs.map((r) => r.sustained / MB), 0.5),
    runsMBs: runs.map((r) => r.sustained / MB),
    bytes: runs[0].read.bytes,
    stackCpuMs: quantile(runs.map((r) => r.stackCpuMs), 0.5),
    standinCpuMs: quantile(runs.map((r) => r.standinCpuMs), 0.5),
  });
  const ratesOf = (s: Source) => {
    const bus = rateOf(x.rates[s].bus), direct = rateOf(x.rates[s].direct);
    return { bus, direct, ratio: bus.medianMBs / direct.medianMBs };
  };
  const { recordedTtftMs, ...integrity } = x.integrity;
  const summary: StreamingSummary = {
    at: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    loadavg: Deno.loadavg(),
    stackEnv: x.stackEnv,
    unsettled: x.unsettled,
    ttft: {
      directive: x.ttftDirective,
      warmup: x.warmup,
      samples: x.ttft.added.length,
      bus: ttftOf(x.ttft.bus),
      direct: ttftOf(x.ttft.direct),
      added: {
        p50: quantile(x.ttft.added, 0.5),
        p99: quantile(x.ttft.added, 0.99),
        min: Math.min(...x.ttft.added),
        max: Math.max(...x.ttft.added),
      },
      recordedP50: quantile(recordedTtftMs, 0.5),
      raw: { bus: x.ttft.bus.map((r) => round(r.ttftMs!)), direct: x.ttft.direct.map((r) => round(r.ttftMs!)) },
    },
    rates: {
      directive: x.rateDirective,
      runs: x.rates.standin.bus.length,
      standin: ratesOf("standin"),
      replay: ratesOf("replay"),
    },
    integrity,
  };
  await writeSection(summary);
}

const round = (v: number) => Math.round(v * 100) / 100;

/** Writes the section of RESULTS.md and the JSON from a summary. */
export async function writeSection(s: StreamingSummary): Promise<void> {
  const t = s.ttft, r = s.rates, i = s.integrity;
  const verdict = (ok: boolean) => (ok ? "met" : "**missed**");
  const mbs = (v: number) => `${v.toFixed(1)} MB/s`;
  const rateRow = (name: string, x: StreamingSummary["rates"]["standin"]) =>
    `| ${name} | ${mbs(x.direct.medianMBs)} | ${mbs(x.bus.medianMBs)} | **${x.ratio.toFixed(2)}×** | ${
      x.bus.stackCpuMs.toFixed(0)
    } ms | ${x.direct.stackCpuMs.toFixed(0)} ms | ${x.bus.runsMBs.map((v) => v.toFixed(1)).join(", ")} / ${
      x.direct.runsMBs.map((v) => v.toFixed(1)).join(", ")
    } |`;
  const env = Object.keys(s.stackEnv).length
    ? `\n\n**This run used extra stack settings ${JSON.stringify(s.stackEnv)}: not the code as it stands.**`
    : "";
  const md = `## Streaming (issue 13)

Run ${s.at} on ${Deno.build.os}/${Deno.build.arch}, ${s.cpus} cores shared by Postgres (fsync on), the stack process
(gateway, every function, the watcher), the provider stand-in and the replaying provider (each its own process), this
client, and other work on the machine (load average at the end: ${s.loadavg.map((v) => v.toFixed(2)).join(", ")}). Both
paths are read by the same client code (\`fetch\`, the body hashed as it arrives). After each bus stream the bench waits
for the watcher's verdict (outside the timings; ${s.unsettled} waits gave up after 5 s).${env}

### Time to the first content event

The same request through the bus (\`POST /functions/v1/openai/v1/chat/completions\`, model \`kimi/${"bench-stream"}\`, a
user JWT) and straight from the stand-in (\`POST <stand-in>/kimi/v1/chat/completions\`), directive
\`#standin ${JSON.stringify(t.directive)}\` in the last user message: the stand-in sends its headers at once and its
first event ${String(t.directive.first_event_ms)} ms later, on both paths. TTFT = from sending the request to the
first \`data:\` event whose \`choices[0].delta.content\` is non-empty. ${t.warmup} warm-up pairs, then ${t.samples}
interleaved pairs (order alternating); added = bus − direct per pair.

| path                                   | headers p50 | TTFT p50 | TTFT p99 |
| -------------------------------------- | ----------- | -------- | -------- |
| direct from the stand-in               | ${ms(t.direct.headersP50)} | ${ms(t.direct.p50)} | ${ms(t.direct.p99)} |
| through the bus                        | ${ms(t.bus.headersP50)} | ${ms(t.bus.p50)} | ${ms(t.bus.p99)} |
| **added by the bus (paired)**          |             | **${ms(t.added.p50)}** | **${ms(t.added.p99)}** |

Target: added TTFT ≤ 3 ms at p50 — ${verdict(t.added.p50 <= 3)}. The bus answers its headers with the first event (it
commits to a provider at its first event, so a failure before it can still fall back), hence headers = TTFT on the bus
path. The bus's own record of these streams (\`ttft_ms\`: from its provider request to the first output event) has
p50 ${t.recordedP50} ms, so what it adds lies before its provider request and after the first event (below).

### Sustained rate of a 10 MB stream

Directive \`#standin ${JSON.stringify(r.directive)}\` (${(r.standin.direct.bytes / MB).toFixed(2)} MB of events, 16 KiB
of content each); rate = bytes ÷ (last byte − first byte); median of ${r.runs} runs each, in rounds of the four runs
(order rotating) after one warm-up round. "Replay" is bench/replay_provider.ts answering the same 10 MB stream from
memory, one event per write: no generation cost, so the bus's own ceiling shows.

| provider | direct | through the bus | bus ÷ direct | stack CPU per bus stream | stack CPU per direct stream | runs, bus / direct (MB/s) |
| -------- | ------ | --------------- | ------------ | ------------------------ | --------------------------- | ------------------------- |
${rateRow("stand-in", r.standin)}
${rateRow("replay", r.replay)}

Target: ≥ 0.8 × the direct rate (the stand-in) — ${verdict(r.standin.ratio >= 0.8)}. CPU is the stack process's
(/proc, 10 ms ticks) while the stream ran; on a direct stream it is the stack's background work. The stand-in itself
spent ${r.standin.direct.standinCpuMs.toFixed(0)} ms of CPU per direct stream.

### Integrity

- Clean bus streams: ${i.clean}; relayed bytes = stored bytes (SHA-256 and size of what the client received = the
  meta's \`checksum\` and \`payload_size_bytes\`): **${i.cleanEqual} / ${i.clean}**; \`completed\`: ${i.cleanCompleted} / ${i.clean}.
- Streams the provider cut (\`cut_after_bytes\`): ${i.cut}; relayed = stored: **${i.cutEqual} / ${i.cut}**; ended with the
  bus's error event and \`failed\` \`stream_incomplete\`: **${i.cutFailedIncomplete} / ${i.cut}**; reported completed:
  **${i.completedButCut}**.${i.mismatches.length ? `\n- Problems: ${JSON.stringify(i.mismatches.slice(0, 10))}` : ""}

| cut directive | bytes received | status | error code | last event (start) |
| ------------- | -------------- | ------ | ---------- | ------------------ |
${
    i.cutDetails.map((c) =>
      `| \`${JSON.stringify(c.directive)}\` | ${c.bytes} | ${c.status} | ${c.code} | \`${c.lastEvent.slice(0, 60)}…\` |`
    ).join("\n")
  }

${PROFILE_NOTES.trim()}
`;
  await writeResults("streaming", md, s);
}

if (import.meta.main) {
  const file = Deno.args[0] ?? new URL("./results/streaming.json", import.meta.url).pathname;
  await writeSection(JSON.parse(await Deno.readTextFile(file)) as StreamingSummary);
  console.error(`rewrote the streaming section of bench/RESULTS.md from ${file}`);
}
