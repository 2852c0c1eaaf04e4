/**
 * The HTTP operations of the SDK, one per endpoint (CONTRACT.md §4, §5). Each throws a `BusClientError`;
 * `BusClient` turns that into `{ data: null, error }`.
 */
import { BusApiError, BusClientError, BusNetworkError, ErrorCode, isBusClientError } from "./errors.ts";
import { apiError, type HttpConfig, readJson, send } from "./http.ts";
import { readVerified } from "./verify.ts";
import type {
  FetchedCompletion,
  FetchedPayload,
  InvokeRequest,
  InvokeResponse,
  ListOptions,
  MessageMeta,
} from "./types.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `POST /tool-invoke`: 200 completed (sync) or 202 pending (async, or a replay still in flight). */
export async function invoke(
  http: HttpConfig,
  req: InvokeRequest,
  opts: { idempotencyKey?: string; signal?: AbortSignal },
): Promise<InvokeResponse> {
  const headers: Record<string, string> = opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {};
  const res = await send(http, "tool-invoke", { method: "POST", body: req, headers, signal: opts.signal });
  if (res.status !== 200 && res.status !== 202) throw await apiError(res);
  return await readJson<InvokeResponse>(res);
}

/** `GET /message-fetch/<id>/meta`: 200, or 202 while pending (the body is the metadata either way). */
export async function getMeta(http: HttpConfig, id: string, signal?: AbortSignal): Promise<MessageMeta> {
  checkId(id);
  const res = await send(http, `message-fetch/${id}/meta`, { signal });
  if (res.status !== 200 && res.status !== 202) throw await apiError(res, id);
  return await readJson<MessageMeta>(res);
}

/** `GET /message-fetch?since&limit`: the caller's messages changed after `since`, oldest change first. */
export async function listMeta(http: HttpConfig, opts: ListOptions): Promise<MessageMeta[]> {
  const q = new URLSearchParams();
  if (opts.since !== undefined) q.set("since", new Date(opts.since).toISOString());
  if (opts.limit !== undefined) q.set("limit", String(opts.limit));
  const res = await send(http, `message-fetch${q.size ? `?${q}` : ""}`);
  if (res.status !== 200) throw await apiError(res);
  const body = await readJson<{ messages?: MessageMeta[] }>(res);
  if (!Array.isArray(body.messages)) {
    throw new BusClientError("The list answer has no messages array", ErrorCode.InvalidResponse, { status: 200 });
  }
  return body.messages;
}

/**
 * `GET /message-fetch/<id>`, verified while it streams (verify.ts). 202 (pending) is a `message_pending` error,
 * 409 `message_failed`, 410 `expired`, 404 `not_found`; a checksum mismatch found by either side is a
 * `ChecksumMismatchError`. When the answer states no checksum, the metadata's is fetched first. With `partial`
 * (`?partial=1`, CONTRACT.md §10), a failed stream's kept bytes instead of 409 (`partial: true` in the result).
 */
export async function fetchPayload(
  http: HttpConfig,
  id: string,
  opts: {
    signal?: AbortSignal;
    onChunk?: (c: Uint8Array) => void | Promise<void>;
    expectedChecksum?: string;
    partial?: boolean;
  },
): Promise<FetchedPayload> {
  checkId(id);
  const res = await send(http, `message-fetch/${id}${opts.partial ? "?partial=1" : ""}`, { signal: opts.signal });
  await throwUnlessOk(res, id);
  const expected: Array<string | null | undefined> = [opts.expectedChecksum];
  if (!res.headers.has("etag") && !res.headers.has("repr-digest") && !res.headers.has("x-checksum")) {
    expected.push((await getMeta(http, id, opts.signal)).checksum);
  }
  let read;
  try {
    read = await readVerified(res, { transactionId: id, expected, onChunk: opts.onChunk });
  } catch (err) {
    if (isBusClientError(err) || opts.signal?.aborted) throw err;
    // The body broke off: message-fetch aborts a large stream whose bytes fail its own check (CONTRACT.md §5).
    throw new BusNetworkError(`Reading the payload of ${id} failed: ${err instanceof Error ? err.message : err}`, {
      transactionId: id,
      cause: err,
    });
  }
  return {
    ...payload(id, res.headers.get("content-type"), read),
    partial: res.headers.get("x-bus-partial") === "true",
  };
}

/**
 * `GET /message-fetch/<id>/completion` (CONTRACT.md §5): the response as one chat.completion. A non-streamed
 * message's answer is its stored body, verified like `fetch()`; a streamed one's is assembled by the server from the
 * stored events after verifying them (`assembled: true`, `source_checksum` the stream's checksum).
 */
export async function fetchCompletion(
  http: HttpConfig,
  id: string,
  opts: { signal?: AbortSignal } = {},
): Promise<FetchedCompletion> {
  checkId(id);
  const res = await send(http, `message-fetch/${id}/completion`, { signal: opts.signal });
  await throwUnlessOk(res, id);
  if (res.headers.get("x-bus-assembled")) {
    return {
      transaction_id: id,
      assembled: true,
      checksum: null,
      source_checksum: res.headers.get("x-bus-source-checksum"),
      completion: await readJson<Record<string, unknown>>(res),
    };
  }
  const read = await readVerified(res, { transactionId: id });
  return {
    transaction_id: id,
    assembled: false,
    checksum: read.checksum,
    source_checksum: read.checksum,
    completion: payload(id, res.headers.get("content-type"), read).json<Record<string, unknown>>(),
  };
}

/** 202 (pending) as a `message_pending` error, other statuses but 200 as the API's error. */
async function throwUnlessOk(res: Response, id: string): Promise<void> {
  if (res.status === 202) {
    await res.body?.cancel();
    throw new BusApiError(`Message ${id} is still pending`, ErrorCode.MessagePending, {
      status: 202,
      transactionId: id,
    });
  }
  if (res.status !== 200) throw await apiError(res, id);
}

function payload(
  id: string,
  contentType: string | null,
  read: { bytes: Uint8Array; size: number; checksum: string },
): FetchedPayload {
  return {
    transaction_id: id,
    checksum: read.checksum,
    content_type: contentType,
    bytes: read.bytes,
    size: read.size,
    text: () => new TextDecoder().decode(read.bytes),
    json: <T>() => JSON.parse(new TextDecoder().decode(read.bytes)) as T,
  };
}

function checkId(id: string): void {
  if (!UUID.test(id)) {
    throw new BusClientError(
      `Expected a transaction id (a UUID), got ${JSON.stringify(id)}`,
      ErrorCode.InvalidArgument,
    );
  }
}
