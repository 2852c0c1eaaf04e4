/**
 * A byte range of a stored payload, decoded, read as the caller (RLS decides), for readers that page through a
 * payload (the MCP server's `fetch_message`).
 *
 * - Stored as is (`compression = none`): every chunk but the last holds exactly CHUNK_SIZE bytes
 *   (payload_store.ts cuts them with a Chunker), so the chunks holding the range are found by arithmetic and only
 *   they are read: a page anywhere in a 100 MB payload costs the same.
 * - Stored gzip: the payload is one gzip stream cut into chunks, and DEFLATE cannot start in the middle, so a
 *   range is decoded from the first byte and reading stops once the range is complete: a page at offset `k` costs
 *   the decoding of `k` bytes. With `cursors`, the decoding pauses where the range ended and the caller's next
 *   range continues it (decode_cursor.ts): pages read in order cost one decoding in all (bench/RESULTS.md, "MCP").
 *
 * A range that reaches the end of the payload having read it from the first byte is verified against the
 * checksum on the way (verifiedPayload); other ranges cannot be, and say so (`verified: false`): whoever joins the
 * pages checks their SHA-256 against the checksum.
 */
import type { Caller } from "./auth.ts";
import { asCaller, db, type Sql } from "./db.ts";
import { concatBytes } from "./bytes.ts";
import { CHUNK_SIZE } from "./payload_store.ts";
import { cursorKey, DecodeCursor, type DecodeCursors } from "./decode_cursor.ts";
import { MissingChunkError, readChunk, storedChunks, type StoredMeta, verifiedPayload } from "./payload_read.ts";

/** A stored payload whose decoded size is known. */
export type SizedMeta = StoredMeta & { payload_size_bytes: number };

export interface PayloadRange {
  /** The decoded bytes `[start, end)`. */
  bytes: Uint8Array;
  /** True when the whole payload was read and matched its checksum on the way. */
  verified: boolean;
}

export interface RangeOptions {
  sql?: Sql;
  /** The payload's only chunk when it has one and the caller already read it (readMeta `withChunk`). */
  onlyChunk?: Uint8Array | null;
  /** Paused decoders to continue from and to park in (gzip payloads of more than one chunk). */
  cursors?: DecodeCursors;
}

/** Decoded bytes kept behind a parked cursor's position: the next page looks 3 bytes back (payload_page.ts). */
const KEEP_BEHIND = 16;

/**
 * Reads decoded bytes `[start, end)` of the payload of `meta` as `caller`.
 * @throws RangeError when the range is not within the payload; ChecksumMismatchError when a range read from the
 *   first byte to the last does not match the checksum; MissingChunkError when a chunk is missing.
 */
export async function readPayloadRange(
  caller: Caller,
  meta: SizedMeta,
  start: number,
  end: number,
  opts: RangeOptions = {},
): Promise<PayloadRange> {
  const total = meta.payload_size_bytes;
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end && end <= total)) {
    throw new RangeError(`range [${start}, ${end}) is not within the payload of ${total} bytes`);
  }
  const sql = opts.sql ?? db();
  const whole = start === 0 && end === total;
  if (meta.compression === "none" && !whole) {
    return { bytes: await rawRange(caller, meta, start, end, sql, opts.onlyChunk), verified: false };
  }
  // From the first byte (or where a paused decoder stopped): gzip always; a raw payload when the whole of it is
  // asked for (then it is verified too). Only multi-chunk payloads are worth a parked decoder.
  const cursors = opts.onlyChunk || meta.chunk_count <= 1 ? undefined : opts.cursors;
  const key = cursorKey(caller, meta.transaction_id, meta.checksum);
  let cursor = cursors?.take(key, start);
  if (!cursor) {
    const source = opts.onlyChunk ? ReadableStream.from([opts.onlyChunk]) : storedChunks(caller, meta, sql);
    cursor = new DecodeCursor(verifiedPayload(meta, source, "identity"));
  }
  let parked = false;
  try {
    const bytes = await cursor.read(start, end);
    if (cursors && end < total) {
      cursor.dropBefore(end - KEEP_BEHIND);
      cursors.put(key, cursor);
      parked = true;
    }
    // verifiedPayload yields the last piece only once the whole payload matched its checksum.
    return { bytes, verified: end === total };
  } finally {
    if (!parked) await cursor.close();
  }
}

/** `[start, end)` of a payload stored as is: only the chunks holding the range, in one transaction. */
async function rawRange(
  caller: Caller,
  meta: SizedMeta,
  start: number,
  end: number,
  sql: Sql,
  onlyChunk?: Uint8Array | null,
): Promise<Uint8Array> {
  if (start === end) return new Uint8Array(0);
  if (onlyChunk) return onlyChunk.subarray(start, end);
  const first = Math.floor(start / CHUNK_SIZE), last = Math.floor((end - 1) / CHUNK_SIZE);
  const chunks = await asCaller(caller, async (tx) => {
    const out: Uint8Array[] = [];
    for (let seq = first; seq <= last; seq++) {
      const data = await readChunk(tx, meta.transaction_id, seq);
      if (!data) throw new MissingChunkError(meta.transaction_id, seq);
      const expected = seq < meta.chunk_count - 1 ? CHUNK_SIZE : meta.payload_size_bytes - seq * CHUNK_SIZE;
      if (data.length !== expected) {
        throw new Error(`chunk ${seq} of ${meta.transaction_id} holds ${data.length} bytes, expected ${expected}`);
      }
      out.push(data);
    }
    return out;
  }, sql);
  const joined = chunks.length === 1 ? chunks[0] : concatBytes(chunks);
  const base = first * CHUNK_SIZE;
  return joined.subarray(start - base, end - base);
}
