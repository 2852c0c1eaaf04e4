/**
 * `GET /message-fetch/<id>/completion` for a streamed message (CONTRACT.md §5): the stored event stream, read chunk
 * by chunk, verified against its checksum and assembled (stream/assemble.ts) into one `chat.completion` JSON object.
 * The whole stream is verified before the status line goes out, so a mismatch is a clean 500 `checksum_mismatch`,
 * never an answer built from bytes that do not match. Non-streamed messages are answered by fetch_payload.ts with
 * the stored body itself.
 */
import type { Context } from "hono";
import type { Caller } from "../_shared/auth.ts";
import type { Sql } from "../_shared/db.ts";
import {
  ChecksumMismatchError,
  integrityError,
  MissingChunkError,
  storedChunks,
  verifiedPayload,
} from "../_shared/payload_read.ts";
import { type FetchRow, markRetrieved } from "../_shared/message/read.ts";
import { assembleStream } from "../_shared/stream/assemble.ts";
import { matchesEtag, storedMeta } from "./answers.ts";

/**
 * Answers a streamed message's stored events as one completion.
 * @param countRetrieval count this as a retrieval (a conditional request that was not answered 304)
 */
export async function assembledCompletion(
  c: Context,
  sql: Sql,
  caller: Caller,
  meta: FetchRow,
  countRetrieval: boolean,
): Promise<Response> {
  const stored = storedMeta(meta);
  const hex = stored.checksum.slice("sha256:".length);
  // Weak: the JSON is derived from the stored bytes (always the same for the same bytes and the same assembler),
  // not stored itself (RFC 9110 §8.8.1).
  const etag = `W/"${hex}-completion"`;
  const headers = new Headers({
    "content-type": "application/json",
    etag,
    "x-transaction-id": meta.transaction_id,
    // The checksum of what it was assembled from (the stored event stream, as message-fetch/<id> serves it).
    "x-bus-source-checksum": stored.checksum,
    "x-bus-assembled": "stream",
    "cache-control": "private",
  });
  if (matchesEtag(c.req.header("if-none-match"), etag)) return new Response(null, { status: 304, headers });
  if (countRetrieval) await markRetrieved(sql, caller, meta.transaction_id);

  const chunks = meta.only_chunk ? ReadableStream.from([meta.only_chunk]) : storedChunks(caller, stored, sql);
  let completion: Record<string, unknown>;
  try {
    ({ completion } = await assembleStream(verifiedPayload(stored, chunks, "identity")));
  } catch (err) {
    if (err instanceof ChecksumMismatchError) throw integrityError(err);
    if (err instanceof MissingChunkError) {
      throw integrityError(new ChecksumMismatchError(meta.transaction_id, stored.checksum, err.message));
    }
    throw err;
  }
  const body = new TextEncoder().encode(JSON.stringify(completion));
  headers.set("content-length", String(body.length));
  return new Response(body, { status: 200, headers });
}
