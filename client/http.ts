/**
 * HTTP to the bus's Edge Functions: the URL, the headers (`Authorization: Bearer <token>`, `apikey`), network
 * failures as {@link BusNetworkError}, and non-2xx answers as {@link BusApiError} with the server's
 * `{ "error": { "code", "message", ... } }` (CONTRACT.md §4) or the gateway's `{ "code", "message" }` (§2).
 */
import { BusApiError, BusClientError, BusNetworkError, ChecksumMismatchError, ErrorCode } from "./errors.ts";

/** Where and as whom requests go. */
export interface HttpConfig {
  /** The project URL, e.g. `http://127.0.0.1:54321`. */
  url: string;
  /** The API key sent as `apikey`. */
  key: string;
  /** The bearer token for a request. */
  token: () => Promise<string>;
  fetch: typeof fetch;
}

/** Sends a request to `/functions/v1/<path>`; answers of any status are returned, network failures thrown. */
export async function send(
  http: HttpConfig,
  path: string,
  init: {
    method?: string;
    /** Sent as JSON. */
    body?: unknown;
    /** Sent as it is (a file upload); a stream is sent with `duplex: "half"`. */
    raw?: Uint8Array | Blob | ReadableStream<Uint8Array>;
    headers?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${await http.token()}`);
  headers.set("apikey", http.key);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const url = `${http.url.replace(/\/+$/, "")}/functions/v1/${path}`;
  try {
    return await http.fetch(url, {
      method: init.method ?? "GET",
      headers,
      body: init.raw !== undefined
        ? init.raw as BodyInit
        : init.body === undefined
        ? undefined
        : JSON.stringify(init.body),
      signal: init.signal,
      ...(init.raw instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new BusNetworkError(`Request to ${url} failed: ${err instanceof Error ? err.message : err}`, { cause: err });
  }
}

/** Reads a JSON body; a body that is not JSON is an `invalid_response` error. */
export async function readJson<T>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new BusClientError(
      `Expected a JSON answer (HTTP ${res.status}), got ${JSON.stringify(text.slice(0, 200))}`,
      ErrorCode.InvalidResponse,
      { status: res.status, cause: err },
    );
  }
}

/**
 * The error for a non-2xx answer. A server-side `checksum_mismatch` (message-fetch refuses to serve bytes that do
 * not match) becomes a {@link ChecksumMismatchError} with `source: "server"`.
 */
export async function apiError(res: Response, transactionId?: string): Promise<BusClientError> {
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch (err) {
    return new BusApiError(`HTTP ${res.status}: ${text.slice(0, 200) || res.statusText}`, `http_${res.status}`, {
      status: res.status,
      transactionId,
      cause: err,
    });
  }
  const inner = (typeof body.error === "object" && body.error !== null ? body.error : body) as Record<string, unknown>;
  const code = typeof inner.code === "string" ? inner.code : `http_${res.status}`;
  const message = typeof inner.message === "string" ? inner.message : `HTTP ${res.status}`;
  const id = typeof body.transaction_id === "string" ? body.transaction_id : transactionId;
  if (code === ErrorCode.ChecksumMismatch) {
    return new ChecksumMismatchError(id ?? "unknown", String(inner.expected), String(inner.actual), "server", {
      status: res.status,
    });
  }
  return new BusApiError(message, code, {
    status: res.status,
    transactionId: id,
    details: { ...inner, ...extra(body) },
  });
}

/** Top-level fields next to `error` (e.g. `status: "failed"`), kept in the details. */
function extra(body: Record<string, unknown>): Record<string, unknown> {
  const { error: _error, ...rest } = body;
  return rest;
}
