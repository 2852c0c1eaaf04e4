/**
 * The agent SDK: `createBusClient()` and the {@link BusClient} it returns. HTTP goes to the bus's Edge Functions
 * (CONTRACT.md §4, §5); live events come over Supabase Realtime through supabase-js (CONTRACT.md §6).
 */
import { createClient, type RealtimeClientOptions, type SupabaseClient } from "@supabase/supabase-js";
import { BusClientError, ErrorCode, isBusClientError } from "./errors.ts";
import { Feed } from "./feed.ts";
import type { HttpConfig } from "./http.ts";
import { fetchCompletion, fetchPayload, getMeta, invoke, listMeta } from "./operations.ts";
import { deleteFile, downloadFile, listFiles, uploadFile, type UploadOptions } from "./files.ts";
import { type CallOptions, callTool, invokeAndWait } from "./call.ts";
import { ChatStream, type StreamOptions, type StreamRequest } from "./stream.ts";
import { type SubscribeOptions, Subscription } from "./subscribe.ts";
import type {
  CallResult,
  FetchedCompletion,
  FetchedFile,
  FetchedPayload,
  FileInfo,
  InvokeCompleted,
  InvokeRequest,
  InvokeResponse,
  ListOptions,
  MessageMeta,
  ResultOf,
  UploadedFile,
} from "./types.ts";

/** Options of {@link createBusClient}. */
export interface BusClientOptions {
  /** The project URL, e.g. `https://<ref>.supabase.co` or `http://127.0.0.1:54321`. */
  url: string;
  /** The anon / publishable key (sent as `apikey`). Defaults to the access token when that is a string. */
  key?: string;
  /** The user's JWT, or a function returning a fresh one (called before each request and by Realtime). */
  accessToken?: string | (() => Promise<string>);
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
  /** Passed to supabase-js `createClient(..., { realtime })`: e.g. `{ vsn: "1.0.0" }`, or `{ transport: WebSocket }`
   * from `ws` on Node 20. */
  realtime?: RealtimeClientOptions;
  /** Catch-ups start this long before the last `updated_at` seen (default 5000 ms). */
  catchUpMarginMs?: number;
  /** While subscribed, also catch up this often even without a reconnect (default 30000 ms; 0 = never). */
  catchUpIntervalMs?: number;
  /** Warnings (dropped sockets, failed catch-ups); default `console.warn`. */
  onWarning?: (message: string) => void;
}

/**
 * Creates a client for an agent.
 *
 * @example
 * ```ts
 * const bus = createBusClient({ url: Deno.env.get("SUPABASE_URL")!, accessToken: Deno.env.get("BUS_ACCESS_TOKEN")! });
 * const { data, error } = await bus.call({ tool: "chat", input: { messages: [{ role: "user", content: "Hi" }] } });
 * if (error) throw error;
 * console.log(data.payload.json());
 * await bus.close();
 * ```
 */
export function createBusClient(options: BusClientOptions): BusClient {
  return new BusClient(options);
}

/** A bus client. Calls return `{ data, error }`; after `throwOnError()` they throw instead. */
export class BusClient<Throw extends boolean = false> {
  /** The supabase-js client used for Realtime (e.g. `supabase.realtime.disconnect()` in tests). */
  readonly supabase: SupabaseClient;
  readonly #options: BusClientOptions;
  readonly #http: HttpConfig;
  readonly #feed: Feed;
  readonly #throw: boolean;

  constructor(options: BusClientOptions, shared?: { supabase: SupabaseClient; feed: Feed; throwOnError: boolean }) {
    this.#options = options;
    const token = tokenGetter(options);
    const key = options.key ?? (typeof options.accessToken === "string" ? options.accessToken : undefined);
    if (!key) throw new BusClientError("Expected options.key (or a string accessToken)", ErrorCode.InvalidArgument);
    this.#http = { url: options.url, key, token, fetch: options.fetch ?? globalThis.fetch.bind(globalThis) };
    this.#throw = shared?.throwOnError ?? false;
    this.supabase = shared?.supabase ?? createClient(options.url, key, {
      accessToken: options.accessToken === undefined ? undefined : token,
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: options.fetch ? { fetch: options.fetch } : undefined,
      realtime: options.realtime,
    });
    const warn = options.onWarning ?? ((m: string) => console.warn(`[bus client] ${m}`));
    this.#feed = shared?.feed ?? new Feed({
      supabase: this.supabase,
      topic: async () => `bus:${userIdOf(await token())}`,
      list: (since, limit) => listMeta(this.#http, { since, limit }),
      marginMs: options.catchUpMarginMs ?? 5000,
      catchUpIntervalMs: options.catchUpIntervalMs ?? 30_000,
      warn,
    });
  }

  /** The same client, but every call throws its error instead of returning `{ data: null, error }`. */
  throwOnError(): BusClient<true> {
    return new BusClient<true>(this.#options, { supabase: this.supabase, feed: this.#feed, throwOnError: true });
  }

  /**
   * Starts a tool call (CONTRACT.md §4): sync answers with the completed message's metadata, async (`mode:
   * "async"`) with `{ transaction_id, status: "pending" }`. The same `idempotencyKey` returns the same message.
   */
  invoke(req: InvokeRequest, opts: { idempotencyKey?: string; signal?: AbortSignal; files?: string[] } = {}) {
    return this.#run<InvokeResponse>(() => invoke(this.#http, withFiles(req, opts.files), opts));
  }

  /**
   * Uploads a file once (CONTRACT.md §13): the same bytes again answer the same `file_id` with `deduplicated: true`.
   * Pass its id to `invoke(..., { files: [file_id] })` (or `input.files`) to send it with a chat.
   *
   * @example
   * ```ts
   * const { data: file } = await bus.throwOnError().uploadFile(await Deno.readFile("report.pdf"), { filename: "report.pdf" });
   * await bus.invoke({ tool: "chat", input: { messages: [{ role: "user", content: "Summarise it" }] } }, { files: [file.file_id] });
   * ```
   */
  uploadFile(data: Uint8Array | Blob | ReadableStream<Uint8Array>, opts: UploadOptions) {
    return this.#run<UploadedFile>(() => uploadFile(this.#http, data, opts));
  }

  /** The caller's files (created after `since`, at most `limit`, oldest first). */
  listFiles(opts: { since?: Date | string; limit?: number } = {}) {
    return this.#run<FileInfo[]>(() => listFiles(this.#http, opts));
  }

  /** Downloads a file, verified against its SHA-256 while it streams (a mismatch returns no bytes). */
  downloadFile(id: string, opts: { signal?: AbortSignal; onChunk?: (c: Uint8Array) => void | Promise<void> } = {}) {
    return this.#run<FetchedFile>(() => downloadFile(this.#http, id, opts));
  }

  /** Deletes one of the caller's files. */
  deleteFile(id: string) {
    return this.#run<void>(() => deleteFile(this.#http, id));
  }

  /**
   * Downloads a payload and verifies it while it streams (SHA-256 against ETag, Repr-Digest and the metadata's
   * checksum). A mismatch is a `ChecksumMismatchError` and no bytes are returned. With `onChunk`, chunks are handed
   * on as they arrive (not collected) — they count as verified only once the call returns without error.
   * With `partial: true`, a failed stream's kept bytes (CONTRACT.md §10) instead of a `message_failed` error.
   */
  fetch(
    id: string,
    opts: {
      signal?: AbortSignal;
      onChunk?: (c: Uint8Array) => void | Promise<void>;
      expectedChecksum?: string;
      partial?: boolean;
    } = {},
  ) {
    return this.#run<FetchedPayload>(() => fetchPayload(this.#http, id, opts));
  }

  /**
   * The response as one OpenAI `chat.completion` (CONTRACT.md §5): a streamed message's events assembled by the
   * server, or a non-streamed message's stored body (verified like `fetch()`).
   */
  completion(id: string, opts: { signal?: AbortSignal } = {}) {
    return this.#run<FetchedCompletion>(() => fetchCompletion(this.#http, id, opts));
  }

  /** A message's metadata (CONTRACT.md §5), also while pending. */
  meta(id: string, opts: { signal?: AbortSignal } = {}) {
    return this.#run<MessageMeta>(() => getMeta(this.#http, id, opts.signal));
  }

  /** The caller's messages changed after `since`, oldest first (CONTRACT.md §5). */
  list(opts: ListOptions = {}) {
    return this.#run<MessageMeta[]>(() => listMeta(this.#http, opts));
  }

  /**
   * Live events on the caller's private channel `bus:<uid>`: status changes (`type: "message"`) and watcher
   * observations (`type: "observation"`). Reconnects by itself and catches up through `list()`, so no status
   * change is missed; each (transaction_id, status) is yielded once.
   *
   * @example
   * ```ts
   * const sub = bus.subscribe({ signal: AbortSignal.timeout(60_000) });
   * for await (const event of sub) if (event.type === "message" && event.status === "completed") console.log(event);
   * ```
   */
  subscribe(opts: SubscribeOptions = {}): Subscription {
    return new Subscription(this.#feed, opts);
  }

  /**
   * Invoke, wait, fetch, verify: starts the call asynchronously, waits for `completed` or `failed` (pushed events,
   * with a metadata poll as fallback), then fetches and verifies the payload. A failed call returns the error
   * (`code: "message_failed"`).
   */
  call(req: InvokeRequest, opts: CallOptions = {}) {
    return this.#run<CallResult>(() => callTool(this, req, opts));
  }

  /**
   * Invoke and wait, without the fetch: starts the call asynchronously and answers, once it completed, what a sync
   * invoke's 200 would (`transaction_id`, `status`, `checksum`, `payload_size_bytes`, `provider`, `model`,
   * `finish_reason`, `expires_at`). No request stays open while the provider works, so a long generation never meets
   * the gateway's 150 s idle limit (a sync invoke past it gets a 504, although its message completes). A failed call
   * returns the error (`code: "message_failed"`).
   */
  invokeAndWait(req: InvokeRequest, opts: CallOptions = {}) {
    return this.#run<InvokeCompleted>(() => invokeAndWait(this, req, opts));
  }

  /**
   * Streams a chat through the bus's OpenAI-compatible endpoint (CONTRACT.md §10) and verifies it at the end. The
   * result is iterated once: the transaction id first (also `stream.transactionId`), then the deltas (`content`,
   * `reasoning`, `tool_call`, `finish`, `usage`), and last `verified` once every byte received matched the stored
   * checksum. Errors are thrown by the iteration (whatever `throwOnError()` says, as an iterator cannot return
   * them): `ChecksumMismatchError`, `BusStreamError` (cut, failed; with `transactionId`), `BusApiError`.
   *
   * @throws {BusClientError} `invalid_argument` at once, for a request the endpoint cannot take.
   * @example
   * ```ts
   * const stream = bus.stream({ provider: "kimi", input: { messages: [{ role: "user", content: "Hi" }] } });
   * for await (const part of stream) {
   *   if (part.type === "content") await Deno.stdout.write(new TextEncoder().encode(part.text));
   *   if (part.type === "verified") console.error(`\n${part.transaction_id} verified (${part.checksum})`);
   * }
   * ```
   */
  stream(req: StreamRequest, opts: StreamOptions = {}): ChatStream {
    return new ChatStream(this.#http, req, opts);
  }

  /** Ends every subscription (their iterations report done), leaves the channel and closes the socket. */
  async close(): Promise<void> {
    await this.#feed.close();
    await this.supabase.removeAllChannels();
    await this.supabase.realtime.disconnect();
  }

  async #run<T>(op: () => Promise<T>): Promise<ResultOf<T, Throw>> {
    try {
      return { data: await op(), error: null } as ResultOf<T, Throw>;
    } catch (err) {
      if (!isBusClientError(err) || this.#throw) throw err;
      return { data: null, error: err } as ResultOf<T, Throw>;
    }
  }
}

/** The request with `files` added to its tool input (`input.files`), after any the input names already. */
function withFiles(req: InvokeRequest, files: string[] | undefined): InvokeRequest {
  if (!files || files.length === 0) return req;
  const named = Array.isArray(req.input.files) ? (req.input.files as string[]) : [];
  return { ...req, input: { ...req.input, files: [...named, ...files.filter((id) => !named.includes(id))] } };
}

function tokenGetter(options: BusClientOptions): () => Promise<string> {
  const t = options.accessToken;
  if (typeof t === "function") return t;
  const fixed = t ?? options.key;
  if (!fixed) throw new BusClientError("Expected options.accessToken or options.key", ErrorCode.InvalidArgument);
  return () => Promise.resolve(fixed);
}

/** The `sub` claim of a JWT (not verified here: the server does that). */
export function userIdOf(jwt: string): string {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    if (typeof claims.sub === "string" && claims.sub) return claims.sub;
  } catch (err) {
    throw new BusClientError("The access token is not a JWT", ErrorCode.InvalidArgument, { cause: err });
  }
  throw new BusClientError(
    "The access token has no sub claim: subscribing needs a user token",
    ErrorCode.InvalidArgument,
  );
}
