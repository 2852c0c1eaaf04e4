/** The statements that move a message on (schema `bus`, as service_role), each returning the {@link MessageRow}. */
import { asService, type Sql, withDb, withDbReconnecting } from "../db.ts";
import type { StoredPayload } from "../payload_store.ts";
import { type Attempt, MESSAGE_COLUMNS, type MessageRow } from "./row.ts";

/** Reads a message row (service role); undefined when there is none. */
export async function getMessage(sql: Sql, transactionId: string): Promise<MessageRow | undefined> {
  const [row] = await asService(
    (tx) =>
      tx<MessageRow[]>`select ${tx.unsafe(MESSAGE_COLUMNS)} from public.message_bus
                       where transaction_id = ${transactionId}::uuid`,
    sql,
  );
  return row;
}

export interface Completion extends StoredPayload {
  run: number;
  finishReason: string | null;
  usage: Record<string, unknown> | null;
  model: string | null;
  provider?: string;
  providerMs: number;
  writeMs: number;
  metadata: Record<string, unknown>;
  attempts?: Attempt[];
  stream?: boolean;
  /** Streamed answers: milliseconds from the provider request to its first output event. */
  ttftMs?: number | null;
}

/**
 * Completes run `a.run` of a pending message, storing its last chunk with it: one statement (bus.complete_message
 * checks that the chunks add up).
 * @throws the database error when the message is not pending for that run (reaped, or taken by another run).
 */
export async function completeMessage(sql: Sql, transactionId: string, a: Completion): Promise<MessageRow> {
  const [row] = await withDbReconnecting(
    `completing ${transactionId}`,
    (sql) =>
      sql<MessageRow[]>`
      select ${sql.unsafe(MESSAGE_COLUMNS)} from bus.complete_message(
        p_transaction_id => ${transactionId}::uuid, p_payload_size => ${a.payloadSize},
        p_stored_size => ${a.storedSize}, p_compression => ${a.compression}, p_checksum => ${a.checksum},
        p_chunk_count => ${a.chunkCount}, p_finish_reason => ${a.finishReason},
        p_usage => ${a.usage === null ? null : sql.json(a.usage as never)}, p_model => ${a.model},
        p_provider_ms => ${a.providerMs}, p_write_ms => ${a.writeMs}, p_metadata => ${sql.json(a.metadata as never)},
        p_stored_checksum => ${a.storedChecksum}, p_last_chunk => ${a.lastChunk}, p_run => ${a.run},
        p_attempts => ${a.attempts ? sql.json(a.attempts as never) : null}, p_provider => ${a.provider ?? null},
        p_stream => ${a.stream ?? null}, p_ttft_ms => ${a.ttftMs ?? null})`,
    sql,
    async (err) => {
      // 55000 "not pending": completed by the attempt whose answer the lost connection took with it?
      if ((err as { code?: string }).code !== "55000") throw err;
      const done = await withDb((sql) =>
        sql<MessageRow[]>`select ${sql.unsafe(MESSAGE_COLUMNS)} from public.message_bus
                         where transaction_id = ${transactionId}::uuid and status = 'completed'
                           and checksum = ${a.checksum} and run_count = ${a.run}`, sql);
      if (done.length === 0) throw err;
      return done;
    },
  );
  return row;
}

/**
 * Marks run `run` of a pending message failed with `error` (`{ code, message, ... }`: never a raw database or
 * driver error, which goes to the log only). The payload chunks appended so far are dropped, unless `partial`:
 * it is what storePayload returned for the bytes that arrived (a stream that broke off,
 * `stream_incomplete`); its last chunk is stored and the kept bytes recorded (checksum, sizes, compression, chunk
 * count) in the same statement, so that `message-fetch/<id>?partial=1` can serve and verify them.
 */
export async function failMessage(
  sql: Sql,
  transactionId: string,
  error: Record<string, unknown>,
  opts: {
    run: number;
    providerMs?: number | null;
    attempts?: Attempt[];
    partial?: StoredPayload;
  },
): Promise<MessageRow> {
  const p = opts.partial;
  const [row] = await withDb((sql) =>
    sql<MessageRow[]>`
      select ${sql.unsafe(MESSAGE_COLUMNS)} from bus.fail_message(
        p_transaction_id => ${transactionId}::uuid, p_error => ${sql.json(error as never)},
        p_provider_ms => ${opts.providerMs ?? null}, p_run => ${opts.run},
        p_attempts => ${opts.attempts ? sql.json(opts.attempts as never) : null},
        p_keep_partial => ${p !== undefined},
        p_payload_size => ${p?.payloadSize ?? null}, p_stored_size => ${p?.storedSize ?? null},
        p_compression => ${p?.compression ?? null}, p_checksum => ${p?.checksum ?? null},
        p_chunk_count => ${p?.chunkCount ?? null}, p_stored_checksum => ${p?.storedChecksum ?? null},
        p_last_chunk => ${p?.lastChunk ?? null})`, sql);
  return row;
}
