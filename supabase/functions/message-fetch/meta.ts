/** Message metadata as callers see it (CONTRACT.md §5), read through `message_bus_meta` with the caller's RLS. */
import { asCaller, COMMIT_WITHOUT_FLUSH_WAIT, type Sql } from "../_shared/db.ts";
import type { Caller } from "../_shared/auth.ts";

export interface MetaRow {
  transaction_id: string;
  status: "pending" | "completed" | "failed" | "expired";
  tool: string;
  provider: string | null;
  model: string | null;
  session_id: string | null;
  checksum: string | null;
  payload_size_bytes: string | null;
  stored_size_bytes: string | null;
  compression: "none" | "gzip" | null;
  chunk_count: number | null;
  finish_reason: string | null;
  usage: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  created_at: Date;
  /** ISO 8601 with microseconds: a `since` cursor must not lose precision. */
  updated_at: string;
  completed_at: Date | null;
  expires_at: Date;
  retrieved_at: Date | null;
  retrieved_count: number;
  provider_ms: number | null;
  write_ms: number | null;
  watcher: { verdict: string; findings: Array<{ code: string; message: string }> } | null;
  /** Null for messages stored before it was kept (migration 20261121000500). */
  stored_checksum: string | null;
  content_type: string | null;
  /** The payload when it is one chunk and was asked for (readMeta's `withChunk`). */
  only_chunk?: Uint8Array | null;
}

const COLUMNS = `transaction_id, status, tool, provider, model, session_id, checksum, payload_size_bytes,
  stored_size_bytes, compression, chunk_count, finish_reason, usage, error, created_at,
  to_char(updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_at, completed_at,
  expires_at, retrieved_at, retrieved_count, provider_ms, write_ms, watcher, stored_checksum, content_type`;

// A retrieval count is a statistic: its commit need not wait for the WAL flush (one fsync less per fetch).
const MARK_RETRIEVED = `case when m.status = 'completed'
  then (select bus.mark_retrieved(m.transaction_id)::text || ${COMMIT_WITHOUT_FLUSH_WAIT}) end`;

/**
 * One message's metadata, or undefined when it does not exist or is not the caller's: one statement in a
 * transaction as the caller (RLS). `markRetrieved` counts a retrieval of a completed message in the same statement;
 * `withChunk` also reads the payload when it is a single chunk (most tool responses), so a fetch needs no second
 * transaction. The row shows the retrieval count from before this retrieval.
 */
export async function readMeta(
  sql: Sql,
  caller: Caller,
  id: string,
  opts: { markRetrieved?: boolean; withChunk?: boolean } = {},
): Promise<MetaRow | undefined> {
  const mark = opts.markRetrieved === true;
  return await asCaller(caller, async (tx) => {
    const [row] = await tx.unsafe<MetaRow[]>(
      `select ${COLUMNS},
         ${mark ? MARK_RETRIEVED : "null"} as marked,
         ${
        opts.withChunk
          ? `(select c.data from public.message_bus_chunks c where c.transaction_id = m.transaction_id and c.seq = 0
                and m.status = 'completed' and m.chunk_count = 1)`
          : "null::bytea"
      } as only_chunk
       from public.message_bus_meta m where transaction_id = $1::uuid`,
      [id],
    );
    return row;
  }, sql);
}

/** Counts one retrieval of a completed message by the caller (a conditional request that got the bytes). */
export async function markRetrieved(sql: Sql, caller: Caller, id: string): Promise<void> {
  await asCaller(
    caller,
    (tx) => tx`select ${tx.unsafe(COMMIT_WITHOUT_FLUSH_WAIT)}, bus.mark_retrieved(${id}::uuid)`,
    sql,
  );
}

/** The caller's messages changed after `since`, oldest change first (for catching up after a disconnect). */
export async function listMeta(sql: Sql, caller: Caller, since: string, limit: number): Promise<MetaRow[]> {
  return await asCaller(caller, (tx) =>
    tx.unsafe<MetaRow[]>(
      `select ${COLUMNS} from public.message_bus_meta m
       where m.updated_at > $1::timestamptz order by m.updated_at, transaction_id limit $2`,
      [since, limit],
    ), sql);
}

/** The public JSON shape of a meta row. */
export function metaBody(row: MetaRow) {
  return {
    transaction_id: row.transaction_id,
    status: row.status,
    tool: row.tool,
    provider: row.provider,
    model: row.model,
    session_id: row.session_id,
    checksum: row.checksum,
    payload_size_bytes: row.payload_size_bytes === null ? null : Number(row.payload_size_bytes),
    stored_size_bytes: row.stored_size_bytes === null ? null : Number(row.stored_size_bytes),
    compression: row.compression,
    finish_reason: row.finish_reason,
    usage: row.usage,
    error: row.error,
    created_at: iso(row.created_at),
    updated_at: row.updated_at,
    completed_at: row.completed_at ? iso(row.completed_at) : null,
    expires_at: iso(row.expires_at),
    retrieved_at: row.retrieved_at ? iso(row.retrieved_at) : null,
    retrieved_count: row.retrieved_count,
    provider_ms: row.provider_ms,
    write_ms: row.write_ms,
    watcher: row.watcher,
  };
}

const iso = (d: Date) => new Date(d).toISOString();
