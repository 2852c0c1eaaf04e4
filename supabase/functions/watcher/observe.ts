/**
 * Observes one message: reads its row, verifies and samples its payload, runs the content checks and the optional
 * model review, and records the observation (bus.record_observation: once per watcher version, broadcast as event
 * `observation` on the owner's topic). A message observed before is answered from the stored observation.
 */
import { COMMIT_WITHOUT_FLUSH_WAIT, type Sql } from "../_shared/db.ts";
import type { Settings } from "../_shared/env.ts";
import { BusError, notFound } from "../_shared/errors.ts";
import { storedChunks, type StoredMeta } from "../_shared/payload_read.ts";
import { checkBody, checkEdges, type CompletionView, type MessageFacts } from "./checks.ts";
import { type Finding, finding, publicFindings, verdictOf, WATCHER_VERSION } from "./findings.ts";
import { EDGE_BYTES, inspectPayload, readVerified } from "./inspect_payload.ts";
import { StreamAssembler, type StreamStats } from "../_shared/stream/assemble.ts";
import { checkStream, incompleteFinding } from "./stream_checks.ts";
import { maybeReview, type Review } from "./review.ts";
import type { MessageRow } from "../_shared/message/row.ts";

export interface ObserveDeps {
  sql: Sql;
  settings: Settings;
  /** Provider HTTP for the model review, injectable for tests. */
  fetch?: typeof fetch;
}

export interface Observation {
  transaction_id: string;
  observation_id: number;
  /** False when the message had been observed before (by this watcher version). */
  created: boolean;
  watcher_version: string;
  verdict: "ok" | "warning" | "error";
  findings: Array<{ code: string; message: string }>;
  partial: boolean;
  analysed_bytes: number | null;
  review: Review | null;
}

/** What bus.watch_target returns: part of the message row, and what the watcher needs besides. */
export type WatchTarget =
  & Pick<
    MessageRow,
    | "transaction_id"
    | "status"
    | "checksum"
    | "stored_checksum"
    | "chunk_count"
    | "compression"
    | "payload_size_bytes"
    | "finish_reason"
    | "usage"
    | "error"
    | "stream"
  >
  & {
    metadata: Record<string, unknown>;
    expired: boolean;
    observation: StoredObservation | null;
    /** The payload's bytes when it is one chunk. */
    only_chunk: Uint8Array | null;
  };

/** An observation as stored (message_bus_observations). */
export interface StoredObservation {
  observation_id: number | string;
  watcher_version: string;
  verdict: Observation["verdict"];
  findings: Finding[];
  partial: boolean;
  analysed_bytes: number | string | null;
  review: Review | null;
}

const SERVICE = { role: "service_role" as const, claims: { role: "service_role" } };

/**
 * Observes `transactionId` (or returns its existing observation).
 * @throws BusError 404 (no such message), 409 (still pending), 410 (payload expired).
 */
export async function observeMessage(
  transactionId: string,
  deps: ObserveDeps,
  opts: { review?: boolean } = {},
): Promise<Observation> {
  const started = performance.now();
  // One call for everything the checks need: the row, an existing observation and, for a payload of one chunk
  // (most tool responses), its bytes. The watcher runs for every message, so its round trips and Postgres's
  // planning count (they competed with tool-invoke for the same CPUs); bus.watch_target keeps its plan
  // (migration 20261121000600, bench/RESULTS.md).
  const [row] = await deps.sql<WatchTarget[]>`
    select * from bus.watch_target(${transactionId}::uuid, ${WATCHER_VERSION})`;
  if (!row) throw notFound(`No message ${transactionId}`);
  if (row.observation) return observationOf(transactionId, row.observation);
  if (row.status === "pending") throw new BusError(409, "not_finished", `Message ${transactionId} is still pending`);
  if (row.expired || row.status === "expired") {
    throw new BusError(410, "expired", `Message ${transactionId} has expired`);
  }

  const { verdict, findings, partial, analysed, review } = await inspectTarget(row, deps, opts);
  // Committed without waiting for its WAL flush: the observation and the removal of the message's watch_queue row
  // are one transaction, so a database crash loses both and bus.sweep_unobserved asks again; nothing is lost.
  // Meanwhile the invokes' own commits do not queue behind this one's flush (bench/RESULTS.md). Hosted Realtime
  // reads the `observation` broadcast from the WAL, so it goes out once the WAL writer has flushed it (within
  // wal_writer_delay, 200 ms by default, or at the next commit that waits).
  const [recorded] = await deps.sql<{ observation_id: string; created: boolean }[]>`
    select observation_id, created from bus.record_observation(
      ${transactionId}::uuid, ${WATCHER_VERSION}, ${verdict}, ${deps.sql.json(findings as never)}, ${analysed},
      ${partial}, ${review ? deps.sql.json(review as never) : null}, ${review?.usage?.total_tokens ?? null},
      ${Math.round(performance.now() - started)}), ${deps.sql.unsafe(COMMIT_WITHOUT_FLUSH_WAIT)}`;
  if (!recorded.created) return (await readObservation(deps.sql, transactionId))!; // a concurrent call won
  return {
    transaction_id: transactionId,
    observation_id: Number(recorded.observation_id),
    created: true,
    watcher_version: WATCHER_VERSION,
    verdict,
    findings: publicFindings(findings),
    partial,
    analysed_bytes: analysed,
    review,
  };
}

/** What the checks found in one message (finished, not expired): the observation to record. */
export interface Inspected {
  verdict: Observation["verdict"];
  findings: Finding[];
  partial: boolean;
  analysed: number | null;
  review: Review | null;
}

/**
 * Runs the checks on a finished message that has not expired, as bus.watch_target (or bus.take_watch_batch)
 * answered it: integrity, content, and the model review when sampled or forced.
 */
export async function inspectTarget(
  row: WatchTarget,
  deps: ObserveDeps,
  opts: { review?: boolean } = {},
): Promise<Inspected> {
  const transactionId = row.transaction_id;
  let findings: Finding[];
  let partial = false;
  let analysed: number | null = null;
  let review: Review | null = null;
  if (row.status === "failed" && row.error?.code === "stream_incomplete") {
    ({ findings, analysed } = await inspectIncomplete(row, deps));
  } else if (row.status === "failed") {
    const why = typeof row.error?.message === "string" ? row.error.message : JSON.stringify(row.error);
    findings = [finding("message_failed", `The message failed (${row.error?.code ?? "unknown"}): ${why}`)];
  } else {
    const result = row.stream ? await inspectStreamed(row, deps) : await inspectCompleted(row, deps);
    ({ findings, partial, analysed } = result);
    if (result.view && !findings.some((f) => f.code === "empty_content")) {
      const reviewed = await maybeReview(
        transactionId,
        result.view,
        {
          finishReason: row.finish_reason,
          wantsJson: facts(row).wantsJson,
          findings,
        },
        deps,
        opts.review === true,
      );
      if (reviewed) {
        review = reviewed.review;
        if (reviewed.finding) findings.push(reviewed.finding);
      }
    }
  }

  return { verdict: verdictOf(findings), findings, partial, analysed, review };
}

/** The stored payload's description (a completed message's, or the partial payload a failed stream kept). */
function storedMeta(row: WatchTarget): StoredMeta {
  return {
    transaction_id: row.transaction_id,
    checksum: row.checksum!,
    chunk_count: row.chunk_count!,
    compression: row.compression!,
    payload_size_bytes: row.payload_size_bytes === null ? undefined : Number(row.payload_size_bytes),
    stored_checksum: row.stored_checksum,
  };
}

function chunksOf(row: WatchTarget, meta: StoredMeta, deps: ObserveDeps): AsyncIterable<Uint8Array> {
  return row.only_chunk ? ReadableStream.from([row.only_chunk]) : storedChunks(SERVICE, meta, deps.sql);
}

const skippedChecks = () =>
  finding("partial_analysis", "The content checks were skipped: the stored bytes cannot be trusted");

/**
 * A streamed message: its events, verified, assembled into one completion (text fields kept up to the analysis cap)
 * and checked as a completion.
 */
async function inspectStreamed(row: WatchTarget, deps: ObserveDeps) {
  const s = deps.settings;
  const meta = storedMeta(row);
  const assembler = new StreamAssembler({ maxChars: s.WATCHER_CONTENT_CAP_MB * 1024 * 1024 });
  const read = await readVerified(meta, chunksOf(row, meta, deps), (chunk) => assembler.push(chunk));
  if (read.integrity) {
    return { findings: [read.integrity, skippedChecks()], partial: true, analysed: 0, view: undefined };
  }
  const assembled = assembler.end();
  const limits = { sizeWarningBytes: s.WATCHER_SIZE_WARNING_MB * 1024 * 1024 };
  const { findings, view } = checkStream(assembled, facts(row), limits);
  return { findings, partial: assembled.stats.clipped, analysed: read.bytesRead, view };
}

/** A stream that broke off: what arrived of it (the kept partial payload, verified), as one finding. */
async function inspectIncomplete(row: WatchTarget, deps: ObserveDeps) {
  const kept = row.checksum !== null && row.chunk_count !== null && row.compression !== null;
  if (!kept) return { findings: [incompleteFinding(row.error, null)], analysed: null };
  const meta = storedMeta(row);
  // Only the statistics are wanted: no text is kept.
  const assembler = new StreamAssembler({ maxChars: 0 });
  const read = await readVerified(meta, chunksOf(row, meta, deps), (chunk) => assembler.push(chunk));
  const stats: StreamStats | null = read.integrity ? null : assembler.end().stats;
  const findings = [incompleteFinding(row.error, stats)];
  if (read.integrity) findings.push(read.integrity);
  return { findings, analysed: read.bytesRead };
}

async function inspectCompleted(row: WatchTarget, deps: ObserveDeps) {
  const s = deps.settings;
  const meta = storedMeta(row);
  const capBytes = s.WATCHER_CONTENT_CAP_MB * 1024 * 1024;
  const limits = { sizeWarningBytes: s.WATCHER_SIZE_WARNING_MB * 1024 * 1024 };
  const sample = await inspectPayload(meta, chunksOf(row, meta, deps), capBytes);
  const f = facts(row);
  if (sample.integrity) {
    return {
      findings: [sample.integrity, skippedChecks()],
      partial: true,
      analysed: 0,
      view: undefined as CompletionView | undefined,
    };
  }
  const decoder = new TextDecoder();
  if (sample.whole) {
    const { findings, view } = checkBody(decoder.decode(sample.whole), f, limits);
    return { findings, partial: false, analysed: sample.bytesRead, view };
  }
  const head = decoder.decode(sample.head), tail = decoder.decode(sample.tail);
  const findings = checkEdges(head, tail, f, limits);
  findings.push(finding(
    "partial_analysis",
    `The payload (${
      (sample.bytesRead / 1024 / 1024).toFixed(1)
    } MB) is above the ${s.WATCHER_CONTENT_CAP_MB} MB analysis cap: ` +
      `the content checks read its first and last ${EDGE_BYTES / 1024 / 1024} MiB only; ` +
      `the checksum covered every byte`,
  ));
  return { findings, partial: true, analysed: sample.head!.length + sample.tail!.length, view: undefined };
}

function facts(row: WatchTarget): MessageFacts {
  return {
    finishReason: row.finish_reason,
    wantsJson: row.metadata?.wants_json === true || row.metadata?.wants_json === "true",
    parsed: row.metadata?.parsed === false || row.metadata?.parsed === "false"
      ? false
      : row.metadata?.parsed === true
      ? true
      : null,
    payloadSize: Number(row.payload_size_bytes ?? 0),
    usage: row.usage,
  };
}

/** The observation a concurrent call recorded first. */
async function readObservation(sql: Sql, transactionId: string): Promise<Observation | undefined> {
  const [o] = await sql<StoredObservation[]>`
    select id as observation_id, watcher_version, verdict, findings, partial, analysed_bytes, review
    from public.message_bus_observations
    where transaction_id = ${transactionId}::uuid and watcher_version = ${WATCHER_VERSION}`;
  return o && observationOf(transactionId, o);
}

function observationOf(transactionId: string, o: StoredObservation): Observation {
  return {
    transaction_id: transactionId,
    observation_id: Number(o.observation_id),
    created: false,
    watcher_version: o.watcher_version,
    verdict: o.verdict,
    findings: publicFindings(o.findings),
    partial: o.partial,
    analysed_bytes: o.analysed_bytes === null ? null : Number(o.analysed_bytes),
    review: o.review,
  };
}
