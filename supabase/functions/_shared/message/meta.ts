/**
 * The public JSON shape of a message's metadata (CONTRACT.md §5) and the one mapping to it from a row. The SDK
 * (client/types.ts) uses these types, so server and client agree on the wire shape.
 */
import type { Attempt, FileUse, MessageRow, MessageStatus, MetaRow, WatcherView } from "./row.ts";

export type { Attempt, FileUse, MessageStatus, WatcherView };

/** `GET /message-fetch/<id>/meta`, one element of the list, and the `meta` of a 410 answer. */
export interface MessageMeta {
  transaction_id: string;
  status: MessageStatus;
  tool: string;
  provider: string | null;
  model: string | null;
  session_id: string | null;
  mode: "sync" | "async";
  stream: boolean;
  checksum: string | null;
  payload_size_bytes: number | null;
  stored_size_bytes: number | null;
  compression: "none" | "gzip" | null;
  finish_reason: string | null;
  usage: Record<string, unknown> | null;
  /** Why the message failed (and, for a provider's refusal, which provider and its HTTP status). */
  error: PublicError | null;
  attempts: Attempt[];
  replay_of: string | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  expires_at: string;
  retrieved_at: string | null;
  retrieved_count: number;
  provider_ms: number | null;
  write_ms: number | null;
  watcher: WatcherView | null;
  /** `sha256:<hex>` of the stored request (replay, audit). */
  request_checksum: string | null;
  request_size_bytes: number | null;
  /** The files the message used (chat `input.files`, CONTRACT.md §13); empty when none. */
  files: FileUse[];
}

/** The meta of `row` (read through the view, or the plain row with no observation yet). */
export function metaBody(row: MessageRow | MetaRow): MessageMeta {
  return {
    transaction_id: row.transaction_id,
    status: row.status,
    tool: row.tool,
    provider: row.provider,
    model: row.model,
    session_id: row.session_id,
    mode: row.mode,
    stream: row.stream,
    checksum: row.checksum,
    payload_size_bytes: num(row.payload_size_bytes),
    stored_size_bytes: num(row.stored_size_bytes),
    compression: row.compression,
    finish_reason: row.finish_reason,
    usage: row.usage,
    error: publicError(row.error),
    attempts: row.attempts ?? [],
    replay_of: row.replay_of,
    created_at: iso(row.created_at),
    updated_at: row.updated_at,
    completed_at: row.completed_at ? iso(row.completed_at) : null,
    expires_at: iso(row.expires_at),
    retrieved_at: row.retrieved_at ? iso(row.retrieved_at) : null,
    retrieved_count: row.retrieved_count,
    provider_ms: row.provider_ms,
    write_ms: row.write_ms,
    watcher: "watcher" in row ? row.watcher : null,
    request_checksum: row.request_checksum,
    request_size_bytes: num(row.request_size_bytes),
    files: row.files ?? [],
  };
}

export interface PublicError {
  code: string;
  message: string;
  provider?: string;
  provider_status?: number;
}

/**
 * What callers see of a stored error: `{ code, message }`, with `provider` and `provider_status` when the provider
 * refused (the provider's own error body stays stored, for operators).
 */
export function publicError(error: Record<string, unknown> | null): PublicError | null {
  if (!error) return null;
  const out: PublicError = {
    code: String(error.code ?? "failed"),
    message: String(error.message ?? "The message failed"),
  };
  if (typeof error.provider === "string") out.provider = error.provider;
  if (typeof error.provider_status === "number") out.provider_status = error.provider_status;
  return out;
}

const num = (v: string | number | null) => (v === null ? null : Number(v));
const iso = (d: Date | string) => new Date(d).toISOString();
