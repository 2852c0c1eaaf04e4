/**
 * The SDK's file operations (CONTRACT.md §13): upload once (the same bytes again answer the same file,
 * `deduplicated: true`), list, download verified against the file's SHA-256, delete. Each throws a
 * `BusClientError`; `BusClient` turns that into `{ data: null, error }`.
 */
import { BusClientError, ErrorCode } from "./errors.ts";
import { apiError, type HttpConfig, readJson, send } from "./http.ts";
import { readVerified } from "./verify.ts";
import type { FetchedFile, FileInfo, UploadedFile } from "./types.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Options of `uploadFile()`. */
export interface UploadOptions {
  /** The file's name (1-255 characters, not a path); sent percent-encoded, so any characters are fine. */
  filename: string;
  /** Its media type; default: the Blob's type, else `application/octet-stream`. */
  contentType?: string;
  signal?: AbortSignal;
}

/** `POST /files` with the bytes as the raw body (streamed when given a stream or a Blob). */
export async function uploadFile(
  http: HttpConfig,
  data: Uint8Array | Blob | ReadableStream<Uint8Array>,
  opts: UploadOptions,
): Promise<UploadedFile> {
  if (!opts.filename) throw new BusClientError("Expected a filename", ErrorCode.InvalidArgument);
  const type = opts.contentType ?? (data instanceof Blob && data.type ? data.type : "application/octet-stream");
  const res = await send(http, "files", {
    method: "POST",
    raw: data,
    headers: { "x-filename": encodeURIComponent(opts.filename), "content-type": type },
    signal: opts.signal,
  });
  if (res.status !== 200 && res.status !== 201) throw await apiError(res);
  return await readJson<UploadedFile>(res);
}

/** `GET /files?since&limit`: the caller's live files, oldest first. */
export async function listFiles(
  http: HttpConfig,
  opts: { since?: Date | string; limit?: number } = {},
): Promise<FileInfo[]> {
  const q = new URLSearchParams();
  if (opts.since !== undefined) q.set("since", new Date(opts.since).toISOString());
  if (opts.limit !== undefined) q.set("limit", String(opts.limit));
  const res = await send(http, `files${q.size ? `?${q}` : ""}`);
  if (res.status !== 200) throw await apiError(res);
  const body = await readJson<{ files?: FileInfo[] }>(res);
  if (!Array.isArray(body.files)) {
    throw new BusClientError("The list answer has no files array", ErrorCode.InvalidResponse, { status: 200 });
  }
  return body.files;
}

/** `GET /files/<id>`, verified while it streams against the file's SHA-256 (ETag, Repr-Digest, X-Checksum). */
export async function downloadFile(
  http: HttpConfig,
  id: string,
  opts: { signal?: AbortSignal; onChunk?: (c: Uint8Array) => void | Promise<void> } = {},
): Promise<FetchedFile> {
  checkId(id);
  const res = await send(http, `files/${id}`, { signal: opts.signal });
  if (res.status !== 200) throw await apiError(res);
  const read = await readVerified(res, { transactionId: id, onChunk: opts.onChunk });
  return {
    file_id: id,
    checksum: read.checksum,
    content_type: res.headers.get("content-type"),
    bytes: read.bytes,
    size: read.size,
  };
}

/** `DELETE /files/<id>`: 204, or a `not_found` error. */
export async function deleteFile(http: HttpConfig, id: string): Promise<void> {
  checkId(id);
  const res = await send(http, `files/${id}`, { method: "DELETE" });
  if (res.status !== 204) throw await apiError(res);
  await res.body?.cancel();
}

function checkId(id: string): void {
  if (!UUID.test(id)) {
    throw new BusClientError(`Expected a file id (a UUID), got ${JSON.stringify(id)}`, ErrorCode.InvalidArgument);
  }
}
