/**
 * MCP benchmark (issue 14, item 7), on its own stack:
 * - added latency of an MCP `chat` call over a tool-invoke of the same 1 KB request: interleaved triples of
 *   tool-invoke (fetch), MCP tools/call over plain HTTP (fetch, the 2026-07-28 envelope: the same client as for
 *   tool-invoke, so the difference is the server's), and the official v2 SDK client's callTool;
 * - rate of reading a 10 MB result whole through fetch_message pages with the SDK helper (readMessageViaMcp, which
 *   verifies the checksum), at the default page size (64 KiB) and at 1 MiB pages;
 * - what a page costs the server, measured in this process against the stack's database: a gzip payload decodes
 *   from its first byte (DEFLATE cannot start in the middle), so a page at offset k costs the decoding of k bytes
 *   unless a paused decoder continues (decode_cursor.ts); a raw payload seeks its chunks.
 *
 * Run: npm run bench -- mcp   (or deno run -A bench/mcp_bench.ts)
 */
import postgres from "postgres";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { spawnStack } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { readMessageViaMcp } from "../client/mod.ts";
import { asService, type Sql } from "../supabase/functions/_shared/db.ts";
import type { Caller } from "../supabase/functions/_shared/auth.ts";
import { storePayload } from "../supabase/functions/_shared/payload_store.ts";
import { PageOffsetError, readPayloadPage } from "../supabase/functions/_shared/payload_page.ts";
import type { SizedMeta } from "../supabase/functions/_shared/payload_range.ts";
import { DecodeCursors } from "../supabase/functions/_shared/decode_cursor.ts";
import { ms, quantile, writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MB = 1024 * 1024;
const TEN_MB = 10 * MB;
const WARMUP = Number(Deno.env.get("BENCH_MCP_WARMUP") ?? 100);
const ROUNDS = Number(Deno.env.get("BENCH_MCP_ROUNDS") ?? 5);
const PER_ROUND = Number(Deno.env.get("BENCH_MCP_PER_ROUND") ?? 100);
const log = (m: string) => console.error(`[bench] ${m}`);
const median = (v: number[]) => quantile(v, 0.5);

const stack = await spawnStack({ root: ROOT, log, env: { DEVSTACK_PG_FAST: "0" } });
const sql = postgres(stack.dbUrl, { prepare: false, max: 3, onnotice: () => {} });
const owner = crypto.randomUUID();
const token = await mintUserToken(owner, stack.jwtSecret, { expiresInSeconds: 7200 });
const caller: Caller = { role: "authenticated", sub: owner, claims: { role: "authenticated", sub: owner } };
const functions = `${stack.apiUrl}/functions/v1`;
const client = new Client({ name: "bench", version: "1.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });

// ---------------------------------------------------------------------------------------------------------------

type Path = "invoke" | "mcp_http" | "mcp_sdk";

/** The same 1 KB request each way; `i` makes every prompt unique (the stand-in answers alike). */
function prompt(i: number, path: Path): string {
  return `${path} ${i} ${"lorem ipsum dolor sit amet ".repeat(36)}`.slice(0, 960);
}

const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "bench-http", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};

async function once(path: Path, i: number): Promise<number> {
  const t0 = performance.now();
  if (path === "invoke") {
    const body = JSON.stringify({ tool: "chat", input: { messages: [{ role: "user", content: prompt(i, path) }] } });
    const res = await fetch(`${functions}/tool-invoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`tool-invoke ${res.status}: ${text}`);
  } else if (path === "mcp_http") {
    const res = await fetch(`${functions}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "chat",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: i,
        method: "tools/call",
        params: { name: "chat", arguments: { prompt: prompt(i, path) }, _meta: ENVELOPE },
      }),
    });
    const text = await res.text();
    if (res.status !== 200 || !text.includes('"status":"completed"')) throw new Error(`mcp ${res.status}: ${text}`);
  } else {
    const r = await client.callTool({ name: "chat", arguments: { prompt: prompt(i, path) } });
    if (r.isError) throw new Error(`mcp sdk: ${JSON.stringify(r)}`);
  }
  return performance.now() - t0;
}

interface Latency {
  p50: Record<Path, number>;
  p99: Record<Path, number>;
  addedHttp: number[];
  addedSdk: number[];
  pairDiffHttp: number;
}

async function latencyTriples(): Promise<Latency> {
  const paths: Path[] = ["invoke", "mcp_http", "mcp_sdk"];
  log(`latency: ${WARMUP} warm-up triples, then ${ROUNDS} × ${PER_ROUND}`);
  for (let i = 0; i < WARMUP; i++) for (const p of paths) await once(p, -i - 1);
  const all: Record<Path, number[]> = { invoke: [], mcp_http: [], mcp_sdk: [] };
  const addedHttp: number[] = [], addedSdk: number[] = [], diffs: number[] = [];
  let i = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const r: Record<Path, number[]> = { invoke: [], mcp_http: [], mcp_sdk: [] };
    for (let k = 0; k < PER_ROUND; k++, i++) {
      // Rotating order: no path always runs first (or right after another's background work).
      const order = [...paths.slice(i % 3), ...paths.slice(0, i % 3)];
      const t: Partial<Record<Path, number>> = {};
      for (const p of order) t[p] = await once(p, i);
      for (const p of paths) r[p].push(t[p]!);
      diffs.push(t.mcp_http! - t.invoke!);
    }
    addedHttp.push(median(r.mcp_http) - median(r.invoke));
    addedSdk.push(median(r.mcp_sdk) - median(r.invoke));
    for (const p of paths) all[p].push(...r[p]);
    log(`round ${round + 1}: added p50 http ${addedHttp.at(-1)!.toFixed(2)} ms, sdk ${addedSdk.at(-1)!.toFixed(2)} ms`);
  }
  const stat = (q: number) => Object.fromEntries(paths.map((p) => [p, quantile(all[p], q)])) as Record<Path, number>;
  return { p50: stat(0.5), p99: stat(0.99), addedHttp, addedSdk, pairDiffHttp: median(diffs) };
}

// ---------------------------------------------------------------------------------------------------------------

interface Paged {
  pageBytes: number;
  pages: number;
  seconds: number[];
  transactionId: string;
  storedBytes: number;
}

async function pagedReads(): Promise<Paged[]> {
  const r = await client.callTool({
    name: "chat",
    arguments: { prompt: `bench 10 MB ${crypto.randomUUID()} #standin {"bytes": ${TEN_MB}}` },
  });
  const { transaction_id: id, checksum } = r.structuredContent as { transaction_id: string; checksum: string };
  const [{ stored_size_bytes: stored }] = await sql<{ stored_size_bytes: string }[]>`
    select stored_size_bytes from public.message_bus where transaction_id = ${id}::uuid`;
  const out: Paged[] = [];
  for (const pageBytes of [65_536, MB]) {
    const seconds: number[] = [];
    let pages = 0;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      const read = await readMessageViaMcp(client, id, { pageBytes });
      if (read.error) throw read.error;
      if (read.data.checksum !== checksum || read.data.size !== TEN_MB) throw new Error("paged read not intact");
      seconds.push((performance.now() - t0) / 1000);
      pages = read.data.pages;
    }
    log(`paged read at ${pageBytes} B: ${pages} pages, median ${median(seconds).toFixed(2)} s`);
    out.push({ pageBytes, pages, seconds, transactionId: id, storedBytes: Number(stored) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

interface ServerCost {
  gzipStoredBytes: number;
  pageAt: Array<{ offset: number; ms: number }>;
  passes: Array<{ payload: "gzip" | "raw"; pageBytes: number; cursors: boolean; pages: number; seconds: number }>;
}

async function metaOf(id: string): Promise<SizedMeta> {
  const [m] = await sql<
    { checksum: string; chunk_count: number; compression: "none" | "gzip"; size: string; stored: string | null }[]
  >`select checksum, chunk_count, compression, payload_size_bytes as size, stored_checksum as stored
    from public.message_bus where transaction_id = ${id}::uuid`;
  return {
    transaction_id: id,
    checksum: m.checksum,
    chunk_count: m.chunk_count,
    compression: m.compression,
    payload_size_bytes: Number(m.size),
    stored_checksum: m.stored,
  };
}

async function pass(meta: SizedMeta, pageBytes: number, cursors?: DecodeCursors) {
  const t0 = performance.now();
  let offset: number | null = 0, pages = 0;
  while (offset !== null) {
    offset = (await readPayloadPage(caller, meta, offset, pageBytes, { sql: sql as unknown as Sql, cursors }))
      .nextOffset;
    pages++;
  }
  return { pages, seconds: (performance.now() - t0) / 1000 };
}

/** A raw (incompressible) 10 MB payload of the bench user, stored as storePayload stores it. */
async function storeRaw(): Promise<string> {
  const bytes = new Uint8Array(TEN_MB);
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  return await asService(async (tx) => {
    const [{ transaction_id: id }] = await tx<{ transaction_id: string }[]>`
      select transaction_id from bus.begin_message(${owner}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`;
    const s = await storePayload(
      tx,
      id,
      (async function* () {
        yield bytes;
      })(),
      200 * MB,
    );
    await tx`select bus.complete_message(${id}::uuid, ${s.payloadSize}, ${s.storedSize}, ${s.compression},
               ${s.checksum}, ${s.chunkCount}, 'stop', null, null, 1, 1, '{}', ${s.storedChecksum}, ${s.lastChunk})`;
    return id;
  }, sql as unknown as Sql);
}

/** `near`, or the start of the character it falls inside (pages start at character boundaries). */
async function characterBoundary(meta: SizedMeta, near: number): Promise<number> {
  try {
    await readPayloadPage(caller, meta, near, 4, { sql: sql as unknown as Sql });
    return near;
  } catch (err) {
    if (err instanceof PageOffsetError && err.charStart !== undefined) return err.charStart;
    throw err;
  }
}

async function serverPageCost(): Promise<ServerCost> {
  const r = await client.callTool({
    name: "chat",
    arguments: { prompt: `bench pages ${crypto.randomUUID()} #standin {"bytes": ${TEN_MB}}` },
  });
  const gzip = await metaOf((r.structuredContent as { transaction_id: string }).transaction_id);
  if (gzip.compression !== "gzip") throw new Error("expected the stand-in's 10 MB answer to be stored gzip");
  const raw = await metaOf(await storeRaw());
  if (raw.compression !== "none") throw new Error("expected random bytes to be stored raw");
  const [{ stored }] = await sql<{ stored: string }[]>`
    select stored_size_bytes as stored from public.message_bus where transaction_id = ${gzip.transaction_id}::uuid`;

  const pageAt: ServerCost["pageAt"] = [];
  for (const near of [0, 5 * MB, TEN_MB - 65_536]) {
    const offset = await characterBoundary(gzip, near);
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = performance.now();
      await readPayloadPage(caller, gzip, offset, 65_536, { sql: sql as unknown as Sql });
      times.push(performance.now() - t0);
    }
    pageAt.push({ offset, ms: median(times) });
  }
  const passes: ServerCost["passes"] = [];
  for (const pageBytes of [65_536, MB]) {
    for (const withCursors of [false, true]) {
      const cursors = withCursors ? new DecodeCursors() : undefined;
      const p = await pass(gzip, pageBytes, cursors);
      await cursors?.closeAll();
      passes.push({ payload: "gzip", pageBytes, cursors: withCursors, ...p });
      log(`server pass gzip ${pageBytes} B cursors=${withCursors}: ${p.pages} pages in ${p.seconds.toFixed(2)} s`);
    }
    const p = await pass(raw, pageBytes);
    passes.push({ payload: "raw", pageBytes, cursors: false, ...p });
  }
  return { gzipStoredBytes: Number(stored), pageAt, passes };
}

// ---------------------------------------------------------------------------------------------------------------

async function report(l: Latency, paging: Paged[], s: ServerCost) {
  const cpus = navigator.hardwareConcurrency;
  const rate = (p: Paged) => (TEN_MB / MB / median(p.seconds)).toFixed(1);
  const kib = (b: number) => (b >= MB ? `${b / MB} MiB` : `${b / 1024} KiB`);
  const md = `## MCP (issue 14)

Run ${new Date().toISOString()} on ${Deno.build.os}/${Deno.build.arch}, ${cpus} cores shared by Postgres (fsync on), the
stack process (gateway and every function), the stand-in provider and this client.

### Added latency of an MCP \`chat\` call, 1 KB request

${WARMUP} warm-up triples, then ${ROUNDS} rounds of ${PER_ROUND} interleaved triples (order rotating): tool-invoke and MCP
\`tools/call\` over plain HTTP with the same client (\`fetch\`), so their difference is what the MCP server adds; and the
official v2 SDK client (\`callTool\`, protocol 2026-07-28), which adds its own work on the client. Added p50 = median of
the rounds' p50 differences (rounds, HTTP: ${l.addedHttp.map((v) => v.toFixed(2)).join(", ")} ms; SDK:
${l.addedSdk.map((v) => v.toFixed(2)).join(", ")} ms); median of the per-triple differences (HTTP):
${ms(l.pairDiffHttp)}.

| path                                      | p50                 | p99                 |
| ----------------------------------------- | ------------------- | ------------------- |
| tool-invoke (fetch)                       | ${ms(l.p50.invoke)} | ${ms(l.p99.invoke)} |
| MCP chat, plain HTTP (fetch)              | ${ms(l.p50.mcp_http)} | ${ms(l.p99.mcp_http)} |
| MCP chat, v2 SDK client                   | ${ms(l.p50.mcp_sdk)} | ${ms(l.p99.mcp_sdk)} |
| **added by the MCP server (HTTP − invoke)** | **${ms(median(l.addedHttp))}** | |
| added with the SDK client (SDK − invoke)  | ${ms(median(l.addedSdk))} | |

Target: MCP chat adds ≤ 3 ms p50 over tool-invoke for the same 1 KB request. The MCP path runs the same invoke
(checkInvokeRequest, submitInvoke); what it adds is the body door, a fresh McpServer per request (the SDK's stateless
mode), the SDK's envelope checks, zod validation of the arguments and of the structured result, and JSON-RPC framing.

### Reading a 10 MB result through fetch_message pages

The stand-in's 10 MB answer, stored gzip (${(paging[0].storedBytes / MB).toFixed(2)} MB), read whole with
\`readMessageViaMcp\` (v2 SDK client; the SHA-256 of the joined pages checked against the checksum); median of 3 reads.

| page size | pages | time | MB/s |
| --------- | ----- | ---- | ---- |
${paging.map((p) => `| ${kib(p.pageBytes)} | ${p.pages} | ${median(p.seconds).toFixed(2)} s | ${rate(p)} |`).join("\n")}

### What a page costs the server

Measured in this process with the functions' own readers (readPayloadPage) against the stack's database, as the
owner. Stored gzip is one DEFLATE stream cut into 1 MiB chunks, so a page at offset k decodes k bytes first:

| gzip 10 MB (${(s.gzipStoredBytes / MB).toFixed(2)} MB stored), one 64 KiB page, no paused decoder | time |
| --- | --- |
${s.pageAt.map((p) => `| at offset ${(p.offset / MB).toFixed(2)} MiB | ${ms(p.ms)} |`).join("\n")}

| payload | page size | paused decoders | pages | whole pass |
| ------- | --------- | --------------- | ----- | ---------- |
${
    s.passes.map((p) =>
      `| ${p.payload === "gzip" ? "gzip 10 MB" : "raw 10 MB (random bytes)"} | ${kib(p.pageBytes)} | ${
        p.payload === "raw" ? "n/a (chunks seeked)" : p.cursors ? "yes" : "no"
      } | ${p.pages} | ${p.seconds.toFixed(2)} s |`
    ).join("\n")
  }

"Whole pass" counts the payload reads only; each MCP page also reads the message's meta (one transaction) and crosses
HTTP and the SDKs (the table above). Paging a gzip payload without a paused decoder costs n²/2 decoding (n pages); the
MCP server therefore parks the decoder where a page ended (at most 8 per instance, closed after 60 s idle, keyed by caller, message and checksum) and
the caller's next page continues it, so a read in order costs one decoding. A page read out of order, or on another
instance, decodes from the first byte again — correct, only slower. Raw payloads seek the chunks that hold the page.
`;
  await writeResults("mcp", md, { latency: l, paging, server: s, at: new Date().toISOString(), cpus });
  log("wrote bench/RESULTS.md (section mcp) and bench/results/mcp.json");
}

// Last: the declarations above must be initialised before the top-level run uses them.
try {
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${functions}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  await client.listTools(); // the SDK checks results against the output schemas it listed
  const latency = await latencyTriples();
  const paging = await pagedReads();
  const server = await serverPageCost();
  await report(latency, paging, server);
} finally {
  await client.close().catch((err) => log(`closing the MCP client: ${err}`));
  await sql.end();
  const stopped = await stack.stop();
  if (stopped.clean) await stack.cleanup();
  else log(`stack did not stop cleanly; log at ${stack.logPath}`);
}
