/**
 * The one model of a message row: what every function reads of `public.message_bus` (directly, through the view
 * `public.message_bus_meta` with the caller's RLS, or from the row a `bus.*` function returns), always through
 * {@link MESSAGE_COLUMNS}, so the type below and the SQL cannot drift apart. The public JSON shape is in meta.ts.
 */

export type MessageStatus = "pending" | "completed" | "failed" | "expired";

/** One provider attempt as stored in `attempts` (CONTRACT.md §5). */
export interface Attempt {
  provider: string;
  model: string;
  outcome: "ok" | "error" | "skipped";
  /** The provider's HTTP status, or null when none came (timeout, connection error, circuit open). */
  status: number | null;
  error_code: string | null;
}

/** A message row as postgres.js returns {@link MESSAGE_COLUMNS} (bigint as string, timestamptz as Date). */
export interface MessageRow {
  transaction_id: string;
  owner_id: string;
  status: MessageStatus;
  tool: string;
  provider: string | null;
  model: string | null;
  session_id: string | null;
  mode: "sync" | "async";
  stream: boolean;
  checksum: string | null;
  payload_size_bytes: string | null;
  stored_size_bytes: string | null;
  compression: "none" | "gzip" | null;
  chunk_count: number | null;
  /** Null for messages stored before it was kept (migration 20261121000500). */
  stored_checksum: string | null;
  finish_reason: string | null;
  usage: Record<string, unknown> | null;
  /** Why it failed: `{ code, message, ... }` (never a raw database or driver error). */
  error: Record<string, unknown> | null;
  attempts: Attempt[];
  replay_of: string | null;
  created_at: Date;
  /** ISO 8601 with microseconds: a `since` cursor must not lose precision. */
  updated_at: string;
  completed_at: Date | null;
  expires_at: Date;
  retrieved_at: Date | null;
  retrieved_count: number;
  provider_ms: number | null;
  write_ms: number | null;
  content_type: string | null;
  request_checksum: string | null;
  request_size_bytes: string | null;
  /** The files the message used (chat `input.files`), null when none. */
  files: FileUse[] | null;
}

/** A file a message used, as `public.message_bus.files` records it (CONTRACT.md §13). */
export interface FileUse {
  file_id: string;
  sha256: string;
  filename: string;
}

/** What the watcher last said, as `public.message_bus_meta.watcher` shows it. */
export interface WatcherView {
  verdict: "ok" | "warning" | "error";
  findings: Array<{ code: string; message: string }>;
}

/** A row read through `public.message_bus_meta`: status expired by time, and the latest observation. */
export interface MetaRow extends MessageRow {
  watcher: WatcherView | null;
}

/**
 * The select list of {@link MessageRow}; valid on `public.message_bus`, on `public.message_bus_meta` and on the
 * row-returning `bus.*` functions (`select ${MESSAGE_COLUMNS} from bus.complete_message(...)`).
 */
export const MESSAGE_COLUMNS = `transaction_id, owner_id, status, tool, provider, model, session_id, mode, stream,
  checksum, payload_size_bytes, stored_size_bytes, compression, chunk_count, stored_checksum, finish_reason, usage,
  error, attempts, replay_of, created_at,
  to_char(updated_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_at, completed_at, expires_at,
  retrieved_at, retrieved_count, provider_ms, write_ms, metadata ->> 'content_type' as content_type,
  request_checksum, request_size_bytes, files`;

/** {@link MESSAGE_COLUMNS} plus `watcher`, for reads through `public.message_bus_meta`. */
export const META_COLUMNS = `${MESSAGE_COLUMNS}, watcher`;
