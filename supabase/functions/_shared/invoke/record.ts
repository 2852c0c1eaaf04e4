/**
 * Recording a message before its provider is called: the row (pending, under a lease) and its stored request, in
 * one statement for a request of one chunk (nearly all of them), else the row, the request's chunks and a seal.
 */
import { createHash } from "node:crypto";
import { COMMIT_WITHOUT_FLUSH_WAIT, type Query, withDb } from "../db.ts";
import { CHUNK_SIZE, storedForm, storePayload } from "../payload_store.ts";
import { pieces } from "../bytes.ts";

export interface NewMessage {
  owner: string;
  tool: string;
  provider: string;
  model: string;
  sessionId?: string;
  idempotencyKey?: string;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  mode: "sync" | "async";
  stream?: boolean;
  replayOf?: string;
  /** The request body exactly as received. */
  request: Uint8Array;
  leaseSeconds: number;
  /** Largest request accepted (the door has checked it; the store checks again). */
  maxRequestBytes: number;
}

export interface Recorded {
  transactionId: string;
  /** False when the idempotency key was used before: the message is the earlier one, nothing was recorded. */
  created: boolean;
  status: string;
}

/**
 * Records `m`. A sync message's row commits without waiting for its WAL flush: nothing is answered before its
 * completion (or failure) commits, and that commit flushes this one too (bench/RESULTS.md). Only an idempotent replay
 * that finds the row still pending can answer before that flush; after a database crash it would find no message, as
 * the original caller finds its request failed.
 */
export async function recordMessage(sql: Query, m: NewMessage): Promise<Recorded> {
  const small = m.request.length <= CHUNK_SIZE;
  const stored = small ? storedForm(m.request) : undefined;
  const checksum = small ? sha256(m.request) : null;
  const [row] = await withDb((sql) =>
    sql<{ transaction_id: string; status: string; created: boolean }[]>`
    select transaction_id, status, created from bus.begin_message(
      p_owner => ${m.owner}::uuid, p_tool => ${m.tool}, p_provider => ${m.provider}, p_model => ${m.model},
      p_session_id => ${m.sessionId ?? null}, p_idempotency_key => ${m.idempotencyKey ?? null},
      p_ttl_seconds => ${m.ttlSeconds}, p_metadata => ${sql.json(m.metadata as never)}, p_mode => ${m.mode},
      p_lease_seconds => ${m.leaseSeconds},
      p_request_size => ${small ? m.request.length : null}, p_request_stored_size => ${stored?.bytes.length ?? null},
      p_request_compression => ${stored?.compression ?? null},
      p_request_checksum => ${checksum},
      p_request_chunk_count => ${small ? (stored!.bytes.length > 0 ? 1 : 0) : null},
      p_request_last_chunk => ${stored && stored.bytes.length > 0 ? stored.bytes : null},
      p_stream => ${m.stream ?? false}, p_replay_of => ${m.replayOf ?? null}::uuid)${
      m.mode === "sync" ? sql`, ${sql.unsafe(COMMIT_WITHOUT_FLUSH_WAIT)}` : sql``
    }`, sql);
  const recorded = { transactionId: row.transaction_id, created: row.created, status: row.status };
  if (!row.created || small) return recorded;

  // A request of more than one chunk: its chunks, then the seal that checks they add up.
  const request = await storePayload(
    sql,
    row.transaction_id,
    ReadableStream.from(pieces(m.request)),
    m.maxRequestBytes,
    "request",
  );
  await withDb(
    (sql) =>
      sql`select bus.seal_request(${row.transaction_id}::uuid, ${request.payloadSize}, ${request.storedSize},
      ${request.compression}, ${request.checksum}, ${request.chunkCount}, ${request.lastChunk})`,
    sql,
  );
  return recorded;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
