/** Request, response and event types of the bus SDK (the wire shapes of CONTRACT.md §4–§6). */
import type { BusClientError } from "./errors.ts";

/** A call result, supabase-js style: exactly one of `data` and `error` is set. */
export type BusResult<T> = { data: T; error: null } | { data: null; error: BusClientError };

/** The result type of a client: with `throwOnError()` errors are thrown and `data` is always set. */
export type ResultOf<T, Throw extends boolean> = Throw extends true ? { data: T; error: null } : BusResult<T>;

/** Message status, metadata and the watcher's verdict: the server's own types (one model, CONTRACT.md §5). */
export type {
  Attempt,
  MessageMeta,
  MessageStatus,
  PublicError,
  WatcherView as WatcherObservation,
} from "../supabase/functions/_shared/message/meta.ts";
import type { MessageStatus, WatcherView as WatcherObservation } from "../supabase/functions/_shared/message/meta.ts";
import type { ListedFile } from "../supabase/functions/files/read.ts";

/** `POST /functions/v1/tool-invoke` body (CONTRACT.md §4). */
export interface InvokeRequest {
  tool: string;
  /** A provider configured on the server (MESSAGE_BUS_PROVIDERS), e.g. "kimi" or "glm". */
  provider?: string;
  model?: string;
  input: Record<string, unknown>;
  session_id?: string;
  mode?: "sync" | "async";
  ttl_seconds?: number;
  metadata?: Record<string, unknown>;
  /** Providers (or `<provider>/<model>`) tried in order after the requested one fails (CONTRACT.md §4, §9). */
  fallbacks?: string[];
}

/** One of the caller's files, as `listFiles()` returns them: the files function's own type. */
export type FileInfo = ListedFile;

/** The answer to an upload (CONTRACT.md §13): 201 a new file, 200 the same bytes uploaded before. */
export interface UploadedFile extends ListedFile {
  /** True when the owner had uploaded these bytes before: the answer is that file. */
  deduplicated: boolean;
}

/** A file's bytes as `downloadFile()` returns them, verified against its SHA-256. */
export interface FetchedFile {
  file_id: string;
  /** `sha256:<hex>` of `bytes`, verified. */
  checksum: string;
  content_type: string | null;
  /** The file byte for byte (empty when `onChunk` consumed the stream instead). */
  bytes: Uint8Array;
  size: number;
}

/** 200 answer of a sync invoke (or of an idempotent replay of a completed one). */
export interface InvokeCompleted {
  transaction_id: string;
  status: "completed";
  checksum: string;
  payload_size_bytes: number;
  provider: string;
  model: string | null;
  finish_reason: string | null;
  expires_at: string;
}

/** 202 answer of an async invoke (or of a replay while the first request is in flight). */
export interface InvokePending {
  transaction_id: string;
  status: "pending";
}

export type InvokeResponse = InvokeCompleted | InvokePending;

/** Options of `list()`. */
export interface ListOptions {
  /** Only messages whose status changed after this time. */
  since?: Date | string;
  /** At most this many (server default 100, maximum 1000). */
  limit?: number;
}

/** A verified payload, as returned by `fetch()`. */
export interface FetchedPayload {
  transaction_id: string;
  /** `sha256:<hex>` of `bytes`, verified. */
  checksum: string;
  content_type: string | null;
  /** The payload byte for byte (empty when `onChunk` consumed the stream instead). */
  bytes: Uint8Array;
  size: number;
  /** `bytes` decoded as UTF-8. */
  text(): string;
  /** `bytes` parsed as JSON (throws on invalid JSON). */
  json<T = unknown>(): T;
  /** True when these are the bytes a failed stream kept (`fetch(id, { partial: true })`, CONTRACT.md §10). */
  partial?: boolean;
}

/** A message's response as one chat.completion (`completion(id)`, CONTRACT.md §5). */
export interface FetchedCompletion {
  transaction_id: string;
  /** True when the server assembled it from a streamed message's stored events. */
  assembled: boolean;
  /** `sha256:<hex>` of the body, verified (a non-streamed message's stored body); null when assembled. */
  checksum: string | null;
  /** The checksum of the stored payload it came from (the event stream when assembled). */
  source_checksum: string | null;
  /** The OpenAI `chat.completion` object. */
  completion: Record<string, unknown>;
}

/** A status change pushed on `bus:<uid>`, event `message` (CONTRACT.md §6). */
export interface MessageEvent {
  type: "message";
  transaction_id: string;
  status: MessageStatus;
  tool: string | null;
  provider: string | null;
  payload_size_bytes: number | null;
  checksum: string | null;
  finish_reason: string | null;
  updated_at: string;
  /** `realtime` when pushed, `catch_up` when found through the list endpoint after a (re)join. */
  source: "realtime" | "catch_up";
}

/** A watcher observation pushed on `bus:<uid>`, event `observation` (CONTRACT.md §6). */
export interface ObservationEvent extends WatcherObservation {
  type: "observation";
  transaction_id: string;
  source: "realtime" | "catch_up";
}

export type BusEvent = MessageEvent | ObservationEvent;

/** What `call()` returns: the final metadata and the verified payload. */
export interface CallResult {
  transaction_id: string;
  status: "completed";
  payload: FetchedPayload;
}
