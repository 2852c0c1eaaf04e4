/** The bus's SQL API as `tool-invoke` uses it (schema `bus`, executed as service_role). */
import { asService, COMMIT_WITHOUT_FLUSH_WAIT, type Query, type Sql } from "../_shared/db.ts";
import type { StoredPayload } from "../_shared/payload_store.ts";

export interface MessageRow {
  transaction_id: string;
  status: "pending" | "completed" | "failed" | "expired";
  provider: string | null;
  model: string | null;
  checksum: string | null;
  payload_size_bytes: string | number | null;
  finish_reason: string | null;
  expires_at: Date;
  error: Record<string, unknown> | null;
  provider_ms: number | null;
  write_ms: number | null;
}

export interface BeginArgs {
  owner: string;
  tool: string;
  provider: string;
  model: string;
  sessionId?: string;
  idempotencyKey?: string;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  /**
   * True for a sync invoke: nothing is answered before the message's completion (or failure) commits, and that
   * commit flushes this one's WAL too, so this commit need not wait for its own flush (bench/RESULTS.md). Only an
   * idempotent replay that finds the row still pending can answer before that flush; after a database crash it
   * would find no message, as the original caller finds its request failed.
   */
  answerAfterCompletion: boolean;
}

/**
 * Records a pending message; with a used idempotency key returns the existing one (`created: false`).
 * One autocommit statement on the function's service connection (one round trip, one commit: it is on the path
 * of every invoke, see bench/RESULTS.md); `bus.begin_message` is the only write it can make.
 */
export async function beginMessage(sql: Sql, a: BeginArgs): Promise<{ transactionId: string; created: boolean }> {
  const [row] = await sql<{ transaction_id: string; created: boolean }[]>`
    select transaction_id, created from bus.begin_message(
      ${a.owner}::uuid, ${a.tool}, ${a.provider}, ${a.model}, ${a.sessionId ?? null}, ${a.idempotencyKey ?? null},
      ${a.ttlSeconds}, ${sql.json(a.metadata as never)})${
    a.answerAfterCompletion ? sql`, ${sql.unsafe(COMMIT_WITHOUT_FLUSH_WAIT)}` : sql``
  }`;
  return { transactionId: row.transaction_id, created: row.created };
}

/** Reads a message row (service role). */
export async function getMessage(sql: Sql, transactionId: string): Promise<MessageRow> {
  const [row] = await asService(
    (tx) =>
      tx<MessageRow[]>`select transaction_id, status, provider, model, checksum, payload_size_bytes, finish_reason,
                            expires_at, error, provider_ms, write_ms
                     from public.message_bus where transaction_id = ${transactionId}::uuid`,
    sql,
  );
  if (!row) throw new Error(`message ${transactionId} vanished`);
  return row;
}

export interface CompleteArgs extends StoredPayload {
  finishReason: string | null;
  usage: Record<string, unknown> | null;
  model: string | null;
  providerMs: number;
  writeMs: number;
  metadata: Record<string, unknown>;
}

/**
 * Completes a pending message, storing its last chunk with it: on `sql` alone for a payload of one chunk (one
 * statement), or on the transaction that appended the other chunks.
 */
export async function completeMessage(q: Query, transactionId: string, a: CompleteArgs): Promise<MessageRow> {
  const [row] = await q<MessageRow[]>`
    select transaction_id, status, provider, model, checksum, payload_size_bytes, finish_reason, expires_at, error,
           provider_ms, write_ms
    from bus.complete_message(${transactionId}::uuid, ${a.payloadSize}, ${a.storedSize}, ${a.compression},
      ${a.checksum}, ${a.chunkCount}, ${a.finishReason}, ${a.usage ? q.json(a.usage as never) : null}, ${a.model},
      ${a.providerMs}, ${a.writeMs}, ${q.json(a.metadata as never)}, ${a.storedChecksum}, ${a.lastChunk})`;
  return row;
}

/** Marks a pending message failed (its own transaction, so the failure is recorded whatever else happened). */
export async function failMessage(
  sql: Sql,
  transactionId: string,
  error: Record<string, unknown>,
  providerMs: number | null,
): Promise<void> {
  await asService(
    (tx) => tx`select bus.fail_message(${transactionId}::uuid, ${tx.json(error as never)}, ${providerMs})`,
    sql,
  );
}
