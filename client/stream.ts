/**
 * `stream()`: a chat streamed through the bus's OpenAI-compatible endpoint (`POST /openai/v1/chat/completions` with
 * `stream: true`, CONTRACT.md §10), read as it arrives and verified at the end. Every byte received is hashed on the
 * way (never collected); once the stream has ended, the message's stored checksum (from its metadata, after it left
 * `pending`) must equal that hash. A stream that ends with the bus's error event, or whose message failed, is never
 * reported as complete.
 */
import { EventReader } from "../supabase/functions/_shared/stream/events.ts";
import {
  BusClientError,
  BusNetworkError,
  BusStreamError,
  BusTimeoutError,
  ChecksumMismatchError,
  ErrorCode,
} from "./errors.ts";
import { apiError, type HttpConfig, send } from "./http.ts";
import { getMeta } from "./operations.ts";
import { partsOfChunk, type StreamPart, type StreamResult } from "./stream_parts.ts";
import { createSha256 } from "./verify.ts";
import type { MessageMeta } from "./types.ts";

/** A chat to stream: the shape of an `InvokeRequest` (CONTRACT.md §4), as the endpoint takes it. */
export interface StreamRequest {
  /** Only `chat` streams (the default). */
  tool?: string;
  /** With `model`, sent as `model: "<provider>/<model>"`; alone, its default model. */
  provider?: string;
  /** Alone, a bare model name (the default provider) or `<provider>/<model>`. One of provider and model is needed. */
  model?: string;
  /** The chat input: `messages`, and anything else OpenAI's request takes (`max_tokens`, `tools`, `stream_options`,
   * ...), plus `files` (file ids, CONTRACT.md §13). */
  input: Record<string, unknown>;
  /** Tried in order before the first byte, when the requested route fails (CONTRACT.md §9). */
  fallbacks?: string[];
  /** Sent as `X-Bus-Session-Id`. */
  session_id?: string;
  /** Sent as `X-Bus-TTL-Seconds`. */
  ttl_seconds?: number;
  /** Ignored: a stream is answered as it is generated. */
  mode?: "sync" | "async";
  /** Not supported: the OpenAI request has no place for it (an `invalid_argument` error). */
  metadata?: Record<string, unknown>;
}

/** Options of `stream()`. */
export interface StreamOptions {
  /** Sent as `Idempotency-Key`: the same key returns the same message (a finished stream is answered from the store). */
  idempotencyKey?: string;
  /** Uploaded file ids to send with the chat (added to `input.files`). */
  files?: string[];
  /** Aborts the request and the reading (the bus keeps reading the provider: the message still completes). */
  signal?: AbortSignal;
  /** How long to wait, after the stream ended, for its message to leave `pending` (default 30000 ms). */
  settleTimeoutMs?: number;
}

/** The JSON body of the request: the input's members, `model`, `stream: true` and the bus's `fallbacks`. */
export function streamBody(req: StreamRequest, files?: string[]): Record<string, unknown> {
  if ((req.tool ?? "chat") !== "chat") {
    throw new BusClientError(`Only the chat tool streams, got ${JSON.stringify(req.tool)}`, ErrorCode.InvalidArgument);
  }
  if (req.metadata !== undefined) {
    throw new BusClientError(
      "A stream cannot carry metadata (the OpenAI request has no field for it)",
      ErrorCode.InvalidArgument,
    );
  }
  const model = req.provider && req.model ? `${req.provider}/${req.model}` : req.provider ?? req.model;
  if (!model) throw new BusClientError("Expected a provider or a model to stream from", ErrorCode.InvalidArgument);
  const named = Array.isArray(req.input.files) ? (req.input.files as string[]) : [];
  const extra = (files ?? []).filter((id) => !named.includes(id));
  return {
    model,
    ...req.input,
    ...(extra.length ? { files: [...named, ...extra] } : {}),
    stream: true,
    ...(req.fallbacks ? { fallbacks: req.fallbacks } : {}),
  };
}

/**
 * A streamed chat. Iterate it once with `for await`: the first part is the transaction id, then the deltas, and the
 * last part (`type: "verified"`) says the bytes matched the stored checksum. The iteration throws
 * `ChecksumMismatchError` on a mismatch, `BusStreamError` (with `transactionId`) when the stream ended with the bus's
 * error event or its message failed, `BusNetworkError` when the connection broke, and the endpoint's errors as
 * `BusApiError`. Leaving the loop early cancels the reading only: the bus still completes and stores the message.
 */
export class ChatStream implements AsyncIterable<StreamPart> {
  readonly #http: HttpConfig;
  readonly #body: Record<string, unknown>;
  readonly #headers: Record<string, string>;
  readonly #opts: StreamOptions;
  #transactionId: string | undefined;
  #result: StreamResult | undefined;
  #iterated = false;

  /** @throws {BusClientError} `invalid_argument` for a request the endpoint cannot take. */
  constructor(http: HttpConfig, req: StreamRequest, opts: StreamOptions = {}) {
    this.#http = http;
    this.#opts = opts;
    this.#body = streamBody(req, opts.files);
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (opts.idempotencyKey) headers["idempotency-key"] = opts.idempotencyKey;
    if (req.session_id !== undefined) headers["x-bus-session-id"] = req.session_id;
    if (req.ttl_seconds !== undefined) headers["x-bus-ttl-seconds"] = String(req.ttl_seconds);
    this.#headers = headers;
  }

  /** The message's id, once the bus answered (before the first delta); undefined until then. */
  get transactionId(): string | undefined {
    return this.#transactionId;
  }

  /** What the end of the stream established, once the iteration finished cleanly. */
  get result(): StreamResult | undefined {
    return this.#result;
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamPart> {
    if (this.#iterated) throw new BusClientError("A stream can be iterated only once", ErrorCode.InvalidArgument);
    this.#iterated = true;
    return this.#parts();
  }

  async *#parts(): AsyncGenerator<StreamPart, void, undefined> {
    const signal = this.#opts.signal;
    const res = await send(this.#http, "openai/v1/chat/completions", {
      method: "POST",
      body: this.#body,
      headers: this.#headers,
      signal,
    });
    const id = res.headers.get("x-bus-transaction-id") ?? undefined;
    if (res.status !== 200) throw await apiError(res, id);
    if (!id || !res.body) {
      await res.body?.cancel();
      throw new BusClientError(
        "The stream's answer has no x-bus-transaction-id or no body",
        ErrorCode.InvalidResponse,
        {
          status: res.status,
        },
      );
    }
    this.#transactionId = id;
    yield { type: "transaction", transaction_id: id };

    const hash = await createSha256();
    let size = 0;
    let queued: StreamPart[] = [];
    let errorEvent: Record<string, unknown> | null = null;
    let finishReason: string | null = null;
    let usage: Record<string, unknown> | null = null;
    const events = new EventReader((event) => {
      if (event.kind === "error") errorEvent = event.error;
      if (event.kind !== "chunk") return;
      for (const part of partsOfChunk(event.chunk)) {
        if (part.type === "finish") finishReason = part.reason;
        if (part.type === "usage") usage = part.usage;
        queued.push(part);
      }
    });
    const reader = res.body.getReader();
    let open = true;
    try {
      for (;;) {
        let read: ReadableStreamReadResult<Uint8Array>;
        try {
          read = await reader.read();
        } catch (err) {
          open = false;
          if (signal?.aborted) throw err;
          throw new BusNetworkError(`The stream of ${id} broke off after ${size} bytes: ${errText(err)}`, {
            transactionId: id,
            details: { received_bytes: size },
            cause: err,
          });
        }
        if (read.done) break;
        hash.update(read.value);
        size += read.value.byteLength;
        events.push(read.value);
        const ready = queued;
        queued = [];
        yield* ready;
      }
      open = false;
    } finally {
      // Only when the loop was left early (the consumer broke off, or threw): the bus reads on regardless.
      if (open) await reader.cancel().catch((err) => console.warn(`[bus client] cancelling the stream: ${err}`));
    }
    events.end();
    yield* queued;

    const checksum = await hash.digest();
    const meta = await this.#settled(id, checksum);
    // A finished stream asked for again (its Idempotency-Key) comes from the store with its checksum in a header.
    const stated = res.headers.get("x-bus-checksum");
    const compared = [
      ...(stated ? [{ from: "x-bus-checksum", checksum: stated }] : []),
      ...(meta.checksum ? [{ from: "metadata", checksum: meta.checksum }] : []),
    ];
    const wrong = compared.find((c) => c.checksum !== checksum);
    if (wrong) {
      throw new ChecksumMismatchError(id, wrong.checksum, checksum, "client", {
        details: { compared_with: wrong.from },
      });
    }
    const broken = errorEvent as Record<string, unknown> | null;
    if (broken || meta.status !== "completed") {
      const code = typeof broken?.code === "string"
        ? broken.code
        : meta.error?.code ?? (meta.status === "failed" ? ErrorCode.MessageFailed : ErrorCode.StreamIncomplete);
      const why = typeof broken?.message === "string"
        ? broken.message
        : meta.error?.message ?? `message ${meta.status}`;
      throw new BusStreamError(`The stream of ${id} did not end cleanly: ${why}`, code, {
        transactionId: id,
        details: {
          error_event: broken,
          message_status: meta.status,
          message_error: meta.error,
          received_bytes: size,
          checksum,
          partial_verified: compared.length > 0,
        },
      });
    }
    if (compared.length === 0) {
      throw new BusClientError(`No stored checksum to verify ${id} against`, ErrorCode.InvalidResponse, {
        transactionId: id,
      });
    }
    this.#result = { transaction_id: id, checksum, size_bytes: size, finish_reason: finishReason, usage };
    yield { type: "verified", ...this.#result };
  }

  /** The message's metadata once it left `pending` (the bus records the outcome just after the last byte). */
  async #settled(id: string, checksum: string): Promise<MessageMeta> {
    const limit = this.#opts.settleTimeoutMs ?? 30_000;
    const deadline = Date.now() + limit;
    for (let pause = 25;; pause = Math.min(pause * 2, 1000)) {
      const meta = await getMeta(this.#http, id, this.#opts.signal);
      if (meta.status !== "pending") return meta;
      if (Date.now() + pause > deadline) {
        throw new BusTimeoutError(`Message ${id} was still pending ${limit} ms after its stream ended`, {
          transactionId: id,
          details: { checksum },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
