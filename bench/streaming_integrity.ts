/**
 * The streaming benchmark's integrity check (issue 13 targets): after the timed part, every stream the bench read
 * through the bus is compared with what the bus recorded for it, through message-fetch's meta (CONTRACT.md §5):
 * the SHA-256 and size of the bytes the client received must be the meta's checksum and payload size; a clean
 * stream must be `completed`, and a stream the provider cut must be `failed` with `stream_incomplete`, its last
 * event the bus's error event and no `[DONE]`.
 */
import type postgres from "postgres";
import type { StreamRead } from "./stream_read.ts";

/** A `#standin` directive with `cut_after_bytes`. */
export type CutCase = Record<string, number>;

interface Meta {
  status: string;
  checksum: string | null;
  payload_size_bytes: number | null;
  error: { code?: string } | null;
}

/** One stream that did not check out, and why. */
export interface Mismatch {
  transactionId: string | null;
  problem: string;
}

export interface Integrity {
  /** Clean streams checked, and how many had relayed bytes equal to the stored checksum and size. */
  clean: number;
  cleanEqual: number;
  cleanCompleted: number;
  /** Cut streams checked; equal bytes; failed as stream_incomplete with the bus's error event last. */
  cut: number;
  cutEqual: number;
  cutFailedIncomplete: number;
  /** Streams reported `completed` although the client did not get a clean end (the target is 0). */
  completedButCut: number;
  cutDetails: Array<{ directive: CutCase; bytes: number; status: string; code: string | null; lastEvent: string }>;
  /** The bus's own TTFT record (ms from its provider request to the first output event) of the clean streams. */
  recordedTtftMs: number[];
  mismatches: Mismatch[];
}

/** Checks every bus stream against its meta (polled until the message has left `pending`). */
export async function checkIntegrity(opts: {
  sql: postgres.Sql;
  apiUrl: string;
  token: string;
  clean: StreamRead[];
  cut: Array<{ directive: CutCase; read: StreamRead }>;
}): Promise<Integrity> {
  const out: Integrity = {
    clean: opts.clean.length,
    cleanEqual: 0,
    cleanCompleted: 0,
    cut: opts.cut.length,
    cutEqual: 0,
    cutFailedIncomplete: 0,
    completedButCut: 0,
    cutDetails: [],
    recordedTtftMs: [],
    mismatches: [],
  };
  const metaOf = (r: StreamRead) => finishedMeta(opts.apiUrl, opts.token, r.transactionId);
  const equal = (r: StreamRead, m: Meta) => m.checksum === `sha256:${r.sha256}` && m.payload_size_bytes === r.bytes;

  await inBatches(opts.clean, 4, async (r) => {
    const m = await metaOf(r);
    if (equal(r, m)) out.cleanEqual++;
    else {out.mismatches.push({
        transactionId: r.transactionId,
        problem: `clean stream: bytes ≠ stored (${m.checksum})`,
      });}
    if (m.status === "completed") out.cleanCompleted++;
    else out.mismatches.push({ transactionId: r.transactionId, problem: `clean stream ended ${m.status}` });
  });
  for (const { directive, read } of opts.cut) {
    const m = await metaOf(read);
    const closing = parseError(read.lastEvent);
    if (equal(read, m)) out.cutEqual++;
    else out.mismatches.push({ transactionId: read.transactionId, problem: `cut stream: bytes ≠ stored` });
    if (m.status === "completed") out.completedButCut++;
    if (m.status === "failed" && m.error?.code === "stream_incomplete" && closing === "stream_incomplete") {
      out.cutFailedIncomplete++;
    } else {
      out.mismatches.push({
        transactionId: read.transactionId,
        problem: `cut stream: ${m.status} ${m.error?.code}, last event ${read.lastEvent?.slice(0, 120)}`,
      });
    }
    out.cutDetails.push({
      directive,
      bytes: read.bytes,
      status: m.status,
      code: m.error?.code ?? null,
      lastEvent: (read.lastEvent ?? "").slice(0, 160),
    });
  }
  const ids = opts.clean.map((r) => r.transactionId!);
  const rows = await opts.sql<{ ttft_ms: number | null }[]>`
    select ttft_ms from public.message_bus where transaction_id = any(${ids}::uuid[])`;
  out.recordedTtftMs = rows.map((r) => r.ttft_ms).filter((v): v is number => v !== null);
  return out;
}

/** The `code` of an error event's data (`{"error": {...}}`), else null. */
function parseError(data: string | null): string | null {
  if (!data?.startsWith("{")) return null;
  try {
    return JSON.parse(data)?.error?.code ?? null;
  } catch (err) {
    if (err instanceof SyntaxError) return null;
    throw err;
  }
}

async function finishedMeta(apiUrl: string, token: string, id: string | null): Promise<Meta> {
  if (!id) throw new Error("a bus stream came without x-bus-transaction-id");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${apiUrl}/functions/v1/message-fetch/${id}/meta`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const meta = await res.json() as Meta;
    if (res.status !== 200 && res.status !== 202) {
      throw new Error(`meta of ${id}: ${res.status} ${JSON.stringify(meta)}`);
    }
    if (meta.status !== "pending") return meta;
    if (Date.now() > deadline) throw new Error(`message ${id} still pending after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let at = 0; at < items.length; at += width) await Promise.all(items.slice(at, at + width).map(fn));
}
