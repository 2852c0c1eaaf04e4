/**
 * `GET /message-fetch/<id>`: the stored payload byte for byte (CONTRACT.md §5), streamed from the database chunk
 * by chunk and verified against its checksum on the way out. `ETag` and `Repr-Digest` (RFC 9530) carry the
 * checksum; stored gzip is passed through as `Content-Encoding: gzip` to clients that accept it.
 * `?partial=1` (CONTRACT.md §10): a failed message that kept what arrived of its stream (`stream_incomplete`,
 * recorded by bus.fail_message) answers those bytes the same way, verified against their recorded checksum, with
 * `X-Bus-Partial: true`. `/completion` answers a completed message as one chat.completion (completion.ts).
 */
import type { Context } from "hono";
import { BusError, notFound } from "../_shared/errors.ts";
import type { Caller } from "../_shared/auth.ts";
import type { Sql } from "../_shared/db.ts";
import { ChecksumMismatchError, integrityError, storedChunks, verifiedPayload } from "../_shared/payload_read.ts";
import { type FetchRow, markRetrieved, readMeta } from "../_shared/message/read.ts";
import { publicError } from "../_shared/message/meta.ts";
import { acceptsGzip, hexToBase64 } from "../_shared/representation.ts";
import { assembledCompletion } from "./completion.ts";
import { gone, matchesEtag, storedMeta } from "./answers.ts";

/** What is asked for: the payload (default), what a failed stream kept, or the response as one completion. */
export interface FetchOptions {
  /** `?partial=1`: a failed message's kept partial payload instead of 409. */
  partial?: boolean;
  /** `/completion`: a streamed payload assembled into one chat.completion (others as stored). */
  completion?: boolean;
}

/** Answers a payload request. */
export async function fetchPayload(
  c: Context,
  sql: Sql,
  caller: Caller,
  id: string,
  opts: FetchOptions = {},
): Promise<Response> {
  // A conditional request counts as a retrieval only when it gets the bytes (not on 304).
  const conditional = c.req.header("if-none-match") !== undefined;
  const meta = await readMeta(sql, caller, id, { markRetrieved: !conditional, withChunk: true });
  if (!meta) throw notFound(`No message ${id}`);
  if (meta.status === "expired") throw gone(meta);
  if (meta.status === "pending") return c.json({ transaction_id: id, status: "pending" }, 202);
  if (meta.status === "failed") {
    if (opts.partial && hasPartial(meta)) return await serveStored(c, sql, caller, meta, { partial: true });
    throw new BusError(
      409,
      "message_failed",
      opts.partial ? "The message failed and kept no partial payload" : "The message failed; it has no payload",
      { cause: publicError(meta.error) },
      { transaction_id: id, status: "failed" },
    );
  }
  if (opts.completion && meta.stream) {
    return await assembledCompletion(c, sql, caller, meta, conditional);
  }
  return await serveStored(c, sql, caller, meta, { partial: false, countRetrieval: conditional });
}

/** Whether a failed message recorded the bytes it kept (bus.fail_message with a partial payload). */
function hasPartial(meta: FetchRow): boolean {
  return meta.checksum !== null && meta.chunk_count !== null && meta.compression !== null &&
    meta.payload_size_bytes !== null;
}

/** The stored bytes, verified as they go out (the whole payload, or a failed stream's partial one). */
async function serveStored(
  c: Context,
  sql: Sql,
  caller: Caller,
  meta: FetchRow,
  opts: { partial: boolean; countRetrieval?: boolean },
): Promise<Response> {
  const id = meta.transaction_id;
  const stored = storedMeta(meta);
  const hex = stored.checksum.slice("sha256:".length);
  const gzipOut = stored.compression === "gzip" && acceptsGzip(c.req.header("accept-encoding"));
  // Validators describe the representation sent (RFC 9110 §8.8.3, RFC 9530): the identity bytes carry the
  // checksum as ETag and Repr-Digest; a gzip answer gets its own ETag and no Repr-Digest (the digest of the gzip
  // bytes is not stored). X-Checksum always names the checksum of the decoded payload.
  const etag = gzipOut ? `"${hex}-gzip"` : `"${hex}"`;
  const headers = new Headers({
    "content-type": meta.content_type ?? (meta.stream ? "text/event-stream" : "application/octet-stream"),
    etag,
    "x-transaction-id": id,
    "x-checksum": stored.checksum,
    // no-transform: the runtime must not re-compress what is already verified (or already gzip).
    "cache-control": "private, no-transform",
    vary: "accept-encoding",
  });
  if (opts.partial) headers.set("x-bus-partial", "true");
  if (!gzipOut) headers.set("repr-digest", `sha-256=:${hexToBase64(hex)}:`);
  if (matchesEtag(c.req.header("if-none-match"), etag)) return new Response(null, { status: 304, headers });
  if (opts.countRetrieval) await markRetrieved(sql, caller, id);

  headers.set("content-length", String(gzipOut ? meta.stored_size_bytes : meta.payload_size_bytes));
  if (gzipOut) headers.set("content-encoding", "gzip");

  // A payload of one chunk came with the metadata (one transaction per fetch); larger ones stream chunk by chunk.
  const chunks = meta.only_chunk ? [meta.only_chunk] : storedChunks(caller, stored, sql);
  const body = verifiedPayload(stored, chunks, gzipOut ? "gzip" : "identity");
  if (stored.chunk_count <= 1) {
    // Small payloads are verified before the status line goes out, so a mismatch is a clean error response.
    const parts: Uint8Array[] = [];
    try {
      for await (const part of body) parts.push(part);
    } catch (err) {
      if (err instanceof ChecksumMismatchError) throw integrityError(err);
      throw err;
    }
    return new Response(parts.length === 1 ? parts[0] as Uint8Array<ArrayBuffer> : new Blob(parts as BlobPart[]), {
      status: 200,
      headers,
    });
  }
  // Larger payloads stream; a mismatch found at the end aborts the stream, so the client sees a transfer error
  // (the body is shorter than Content-Length) instead of a complete response.
  return new Response(ReadableStream.from(body), { status: 200, headers });
}
