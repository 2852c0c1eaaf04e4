/**
 * Message metadata as callers see it (CONTRACT.md §5), read through `message_bus_meta` with the caller's RLS: what
 * message-fetch and the MCP server read before they read a payload.
 */
import { asCaller, asCallerInOneTrip, COMMIT_WITHOUT_FLUSH_WAIT, type Sql } from "../db.ts";
import type { Caller } from "../auth.ts";
import { META_COLUMNS, type MetaRow } from "./row.ts";

/** A meta row as fetch reads it: the payload too when it is one chunk and was asked for (`withChunk`). */
export interface FetchRow extends MetaRow {
  only_chunk?: Uint8Array | null;
}

// A retrieval count is a statistic: its commit need not wait for the WAL flush (one fsync less per fetch).
const MARK_RETRIEVED = `case when m.status = 'completed'
  then (select bus.mark_retrieved(m.transaction_id)::text || ${COMMIT_WITHOUT_FLUSH_WAIT}) end`;

/**
 * The largest stored payload read with the metadata: a query result carries bytea as hex text, which Postgres
 * encodes at ~4 ms per MiB here, so a larger chunk goes by binary COPY (one more round trip) instead.
 */
const ONLY_CHUNK_MAX_BYTES = 64 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * One message's metadata, or undefined when it does not exist or is not the caller's: one statement as the caller
 * (RLS), in one round trip (asCallerInOneTrip: the ID goes in as a literal, checked to be a UUID first).
 * `markRetrieved` counts a retrieval of a completed message in the same statement; `withChunk` also reads the
 * payload when it is a single chunk of at most 64 KiB stored (most tool responses), so such a fetch needs no second
 * round trip. The row shows the retrieval count from before this retrieval.
 * @throws Error when `id` is not a UUID (the door checks it before).
 */
export async function readMeta(
  sql: Sql,
  caller: Caller,
  id: string,
  opts: { markRetrieved?: boolean; withChunk?: boolean } = {},
): Promise<FetchRow | undefined> {
  if (!UUID.test(id)) throw new Error(`not a transaction ID: ${JSON.stringify(id)}`);
  const mark = opts.markRetrieved === true;
  const [row] = await asCallerInOneTrip<FetchRow>(
    caller,
    `select ${META_COLUMNS},
       ${mark ? MARK_RETRIEVED : "null"} as marked,
       ${
      opts.withChunk
        ? `(select c.data from public.message_bus_chunks c where c.transaction_id = m.transaction_id and c.seq = 0
              and m.status = 'completed' and m.chunk_count = 1 and m.stored_size_bytes <= ${ONLY_CHUNK_MAX_BYTES})`
        : "null::bytea"
    } as only_chunk
     from public.message_bus_meta m where transaction_id = '${id}'::uuid`,
    sql,
  );
  return row;
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
      `select ${META_COLUMNS} from public.message_bus_meta m
       where m.updated_at > $1::timestamptz order by m.updated_at, transaction_id limit $2`,
      [since, limit],
    ), sql);
}

/** The caller's latest messages in `status`, most recently changed first (the MCP server's resource list). */
export async function listRecent(
  sql: Sql,
  caller: Caller,
  status: MetaRow["status"],
  limit: number,
): Promise<MetaRow[]> {
  return await asCaller(caller, (tx) =>
    tx.unsafe<MetaRow[]>(
      `select ${META_COLUMNS} from public.message_bus_meta m
       where m.status = $1 order by m.updated_at desc, transaction_id desc limit $2`,
      [status, limit],
    ), sql);
}
