/**
 * Reads a stored payload back, chunk by chunk, as the caller (RLS decides), and verifies it on the way out: every
 * byte served is covered by a digest checked on the way, or the stream fails instead of ending normally — a
 * mismatch is never served as good data.
 * - Stored as it is: the SHA-256 of the bytes must equal `checksum`.
 * - Stored gzip, passed through as is (no decompress/recompress): its bytes are verified against `stored_checksum`
 *   (the SHA-256 of the stored bytes, kept since migration 20261121000500), or, for older messages, decompressed on
 *   the side, chunk by chunk, to verify the checksum.
 * - Stored gzip, decoded: the SHA-256 of the decoded bytes must equal `checksum`; or, once the watcher has shown
 *   that the stored bytes decode to `checksum` (`decode_proven`), the stored bytes are verified against
 *   `stored_checksum` instead and gzip's own trailer (CRC-32 and length, checked by zlib) and the decoded length
 *   check the decode: the same guarantee for a fifth of the hashing (bench/RESULTS.md).
 */
import { createHash } from "node:crypto";
import { createGunzip, gunzipSync } from "node:zlib";
import { db, type Sql, type Tx } from "./db.ts";
import type { Caller } from "./auth.ts";
import { concatBytes } from "./bytes.ts";
import { BusError } from "./errors.ts";
import { COPY_SIGNATURE } from "./copy_signature.ts";
import { copyOutParts } from "./copy_out.ts";
import { readChunkRange } from "./chunk_range_read.ts";

/**
 * Size of the pieces a decompressed payload is streamed in: zlib fills one piece per call, so larger pieces mean
 * fewer calls (10 MiB decoded in 1 MiB pieces took less CPU than in 256 KiB ones, bench/RESULTS.md).
 */
const OUTPUT_BLOCK = 1024 * 1024;
/** Raw size up to which a stored gzip payload is decompressed in one call. */
const SYNC_GUNZIP_LIMIT = 1024 * 1024;

export interface StoredMeta {
  transaction_id: string;
  checksum: string;
  chunk_count: number;
  compression: "none" | "gzip";
  /** The raw size, when known: payloads of at most one chunk are decompressed in one synchronous call. */
  payload_size_bytes?: number;
  /** `sha256:<hex>` of the stored bytes, when known. */
  stored_checksum?: string | null;
  /**
   * The watcher has read these stored bytes and shown that they match `stored_checksum` and decode to `checksum`
   * (see {@link decodeProven}): decoding them can then be verified by `stored_checksum`. Never set by the watcher
   * itself, which is that proof.
   */
  decode_proven?: boolean;
}

/**
 * Whether the watcher's latest observation of a completed message proves its decode: every observation of a
 * completed message streamed its stored bytes through both digests (watcher/inspect_payload.ts: the decoded bytes
 * against `checksum`, the stored bytes against `stored_checksum`), and any mismatch, undecodable gzip or missing
 * chunk was recorded as a `checksum_mismatch` finding. No observation yet (the watcher runs just after the
 * completion), or one with that finding: not proven.
 */
export function decodeProven(watcher: { findings: ReadonlyArray<{ code: string }> } | null | undefined): boolean {
  return !!watcher && !watcher.findings.some((f) => f.code === "checksum_mismatch");
}

/** The columns of a message row that describe its stored payload (MessageRow and FetchRow have them). */
export interface StoredColumns {
  transaction_id: string;
  checksum: string | null;
  chunk_count: number | null;
  compression: "none" | "gzip" | null;
  payload_size_bytes: string | number | null;
  stored_checksum: string | null;
}

/** The stored-payload description of a row whose payload (or partial payload) is recorded. */
export function storedMetaOf(row: StoredColumns): StoredMeta & { payload_size_bytes: number } {
  return {
    transaction_id: row.transaction_id,
    checksum: row.checksum!,
    chunk_count: row.chunk_count!,
    compression: row.compression!,
    payload_size_bytes: Number(row.payload_size_bytes),
    stored_checksum: row.stored_checksum,
  };
}

/** Thrown (into the stream) when the bytes do not match the checksum. */
export class ChecksumMismatchError extends Error {
  constructor(readonly transactionId: string, readonly expected: string, readonly actual: string) {
    super(`Checksum mismatch for ${transactionId}: stored ${expected}, read ${actual}`);
    this.name = "ChecksumMismatchError";
  }
}

/**
 * The 500 `checksum_mismatch` answer for stored bytes that no longer match their checksum; `idKey` names the id in
 * the body (`transaction_id` for a message, `file_id` for a file).
 */
export function integrityError(err: ChecksumMismatchError, idKey = "transaction_id"): BusError {
  return new BusError(
    500,
    "checksum_mismatch",
    "The stored bytes do not match their checksum; refusing to serve them",
    { expected: err.expected, actual: err.actual },
    { [idKey]: err.transactionId },
  );
}

/** Thrown when a stored chunk is missing (the metadata promises more chunks than are stored). */
export class MissingChunkError extends Error {
  constructor(readonly transactionId: string, readonly seq: number) {
    super(`Chunk ${seq} of ${transactionId} is missing`);
    this.name = "MissingChunkError";
  }
}

/** Where stored chunks live: a message's payload (default), or an uploaded file's bytes (`transaction_id` = file id). */
export type ChunkSource = "payload" | "file";

const CHUNK_TABLES: Record<ChunkSource, { table: string; key: string }> = {
  payload: { table: "public.message_bus_chunks", key: "transaction_id" },
  file: { table: "public.message_bus_file_chunks", key: "file_id" },
};

/**
 * Chunks read per round trip: a run of this many (1 MiB each, stored) in one COPY, with the next run on its way
 * while this one is sent. Reading one chunk per transaction took three round trips per MiB (BEGIN, the caller context
 * with the COPY, COMMIT), each a wake-up of both processes (bench/RESULTS.md).
 */
export const CHUNKS_PER_READ = 4;

/**
 * The stored chunks of a message (or file), in order, read as `caller` in runs of `chunksPerRead`, each run in one
 * round trip (chunk_range_read.ts).
 */
export async function* storedChunks(
  caller: Caller,
  meta: StoredMeta,
  sql: Sql = db(),
  source: ChunkSource = "payload",
  chunksPerRead = CHUNKS_PER_READ,
): AsyncGenerator<Uint8Array> {
  const read = async (from: number) => {
    const to = Math.min(meta.chunk_count, from + chunksPerRead);
    const rows = await readChunkRange(caller, CHUNK_TABLES[source], meta.transaction_id, from, to, sql);
    const run: Uint8Array[] = [];
    for (let seq = from; seq < to; seq++) {
      const data = rows.get(seq);
      if (!data) throw new MissingChunkError(meta.transaction_id, seq);
      run.push(data);
    }
    return run;
  };
  // One run of read-ahead: the next run is on its way from the database while this one is sent, and memory stays
  // at two runs. A read-ahead that is never consumed (the consumer stopped) still settles; its error, if any, is
  // logged rather than left unhandled.
  let next: Promise<Uint8Array[]> | undefined = meta.chunk_count > 0 ? read(0) : undefined;
  try {
    for (let from = 0; from < meta.chunk_count; from += chunksPerRead) {
      const run: Uint8Array[] = await next!;
      next = from + chunksPerRead < meta.chunk_count ? read(from + chunksPerRead) : undefined;
      yield* run;
    }
  } finally {
    next?.catch((err) => console.error(`read-ahead of ${meta.transaction_id} after the consumer stopped: ${err}`));
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Chunk `seq` of a message (undefined when there is none visible to the transaction's role), read with
 * `COPY (select …) TO STDOUT (FORMAT binary)`: a query result carries bytea as hex text, which Postgres took ~4 ms
 * per MiB to encode here, where COPY's binary format sends the bytes as they are (bench/RESULTS.md). The select
 * runs as the transaction's role, so row-level security applies as to any query. COPY takes no parameters: the
 * ID is checked to be a UUID and `seq` an integer before they are written into the statement.
 */
export async function readChunk(
  tx: Tx,
  transactionId: string,
  seq: number,
  source: ChunkSource = "payload",
): Promise<Uint8Array | undefined> {
  if (!UUID.test(transactionId)) throw new Error(`not a transaction ID: ${JSON.stringify(transactionId)}`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`not a chunk number: ${seq}`);
  const { table, key } = CHUNK_TABLES[source];
  const parts = await copyOutParts(tx.unsafe(
    `copy (select data from ${table} where ${key} = '${transactionId}' and seq = ${seq}) to stdout (format binary)`,
  ));
  return copiedBytea(concatBytes(parts), transactionId, seq);
}

export { COPY_SIGNATURE };

/** The one bytea field of the one row (or none) of a binary COPY (PostgreSQL docs, "COPY", Binary Format). */
export function copiedBytea(copy: Uint8Array, transactionId: string, seq: number): Uint8Array | undefined {
  const view = new DataView(copy.buffer, copy.byteOffset, copy.byteLength);
  const malformed = (what: string) => new Error(`binary COPY of chunk ${seq} of ${transactionId}: ${what}`);
  if (copy.length < 21 || COPY_SIGNATURE.some((b, i) => copy[i] !== b)) throw malformed("no signature");
  let at = 15 + 4 + view.getUint32(15); // flags, then the header extension's length and bytes
  const fields = view.getInt16(at);
  if (fields === -1) return undefined; // the trailer right away: no row
  if (fields !== 1) throw malformed(`${fields} fields`);
  const length = view.getInt32(at + 2);
  at += 6;
  if (length < 0 || at + length + 2 !== copy.length || view.getInt16(at + length) !== -1) {
    throw malformed("not one bytea row followed by the trailer");
  }
  return new Uint8Array(copy.buffer, copy.byteOffset + at, length); // a plain Uint8Array view, not a Buffer
}

/** Stored chunks in order: streamed from the database, or in hand (a chunk that came with the metadata). */
export type Chunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * The payload as `encoding`, verified as it streams (see the module's description for which digest covers what).
 * @param source the stored chunks (see storedChunks)
 */
export function verifiedPayload(
  meta: StoredMeta,
  source: Chunks,
  encoding: "identity" | "gzip",
): AsyncGenerator<Uint8Array> {
  if (meta.compression === "none") return hashedPassThrough(meta, meta.checksum, source);
  if (encoding === "gzip") {
    return meta.stored_checksum ? hashedPassThrough(meta, meta.stored_checksum, source) : gzipPassThrough(meta, source);
  }
  return gunzipped(meta, source, meta.decode_proven && meta.stored_checksum ? meta.stored_checksum : undefined);
}

// Each variant passes the bytes on one piece behind and yields the last piece only once the checksum matched:
// a mismatch then leaves a streamed body short of its Content-Length, which clients see as a failed transfer
// (were the last piece already sent, the response would look complete).

/** The stored bytes as they are, verified against `expected` (the checksum, or the stored bytes' own). */
async function* hashedPassThrough(meta: StoredMeta, expected: string, source: Chunks) {
  const hash = createHash("sha256");
  let held: Uint8Array | undefined;
  for await (const chunk of source) {
    hash.update(chunk);
    if (held) yield held;
    held = chunk;
  }
  check(meta, hash.digest("hex"), expected);
  if (held) yield held;
}

/**
 * The stored gzip decoded. Verified by the SHA-256 of the decoded bytes against `checksum`, or, given
 * `storedDigest`, by the SHA-256 of the stored bytes against it, with zlib checking gzip's trailer (CRC-32 and
 * length of the decoded bytes) and the decoded length checked against `payload_size_bytes`.
 */
async function* gunzipped(meta: StoredMeta, source: Chunks, storedDigest?: string) {
  const hash = createHash("sha256");
  const verify = () => {
    if (!storedDigest) return check(meta, hash.digest("hex"));
    check(meta, hash.digest("hex"), storedDigest);
    if (meta.payload_size_bytes !== undefined && decoded !== meta.payload_size_bytes) {
      const err = new ChecksumMismatchError(meta.transaction_id, meta.checksum, `${decoded} bytes decoded`);
      console.error(err.message);
      throw err;
    }
  };
  let decoded = 0;
  if (meta.payload_size_bytes !== undefined && meta.payload_size_bytes <= SYNC_GUNZIP_LIMIT) {
    // Small payloads (the common case): one synchronous gunzip instead of a stream; the raw size bounds the
    // memory it takes.
    const stored: Uint8Array[] = [];
    for await (const chunk of source) stored.push(chunk);
    const gz = concatBytes(stored);
    let raw: Uint8Array;
    try {
      // Output in one piece of the known raw size: zlib's default 16 KiB pieces are joined at the end, a copy more.
      raw = stored.length === 0
        ? new Uint8Array(0)
        : gunzipSync(gz, { chunkSize: Math.max(1024, meta.payload_size_bytes) });
    } catch (err) {
      throw undecodable(meta, err);
    }
    decoded = raw.length;
    hash.update(storedDigest ? gz : raw);
    verify();
    yield raw;
    return;
  }
  // zlib's own stream, emitting OUTPUT_BLOCK pieces: the HTTP layer takes them as they are. (Through Duplex.toWeb,
  // 16 KiB pieces and a re-blocking step, a 10 MiB payload took 23 ms here instead of 17: bench/RESULTS.md.)
  const gunzip = createGunzip({ chunkSize: OUTPUT_BLOCK });
  const feeding = feed(gunzip, storedDigest ? hashed(source, hash) : source);
  let held: Uint8Array | undefined;
  try {
    for await (const out of gunzip as AsyncIterable<Uint8Array>) {
      const piece = new Uint8Array(out.buffer, out.byteOffset, out.byteLength); // zlib's Buffer as a plain view
      if (!storedDigest) hash.update(piece);
      decoded += piece.length;
      if (held) yield held;
      held = piece;
    }
  } catch (err) {
    throw undecodable(meta, err);
  } finally {
    // An error, or a consumer that stopped early: stop the gunzip, and with it the feeding (and the chunk reads).
    if (!gunzip.writableFinished || !gunzip.readableEnded) gunzip.destroy();
    await feeding;
  }
  verify();
  if (held) yield held;
}

/** `source`, each chunk added to `hash` as it passes. */
async function* hashed(source: Chunks, hash: ReturnType<typeof createHash>) {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

/**
 * Writes `source` into `gunzip` with backpressure and ends it. A failing source destroys the gunzip with its
 * error, so the reader of the gunzip fails with it; a gunzip destroyed by its reader stops the feeding.
 * Settles without rejecting: every error reaches the reader through the gunzip.
 */
async function feed(gunzip: ReturnType<typeof createGunzip>, source: Chunks): Promise<void> {
  try {
    for await (const chunk of source) {
      if (gunzip.destroyed) return;
      if (!gunzip.write(chunk)) await drainedOrClosed(gunzip);
      // Destroyed while waiting (the reader stopped early, e.g. after one page): stop before reading another chunk.
      if (gunzip.destroyed) return;
    }
    gunzip.end();
  } catch (err) {
    if (!gunzip.destroyed) gunzip.destroy(err as Error);
    else console.error(`reading stored chunks after the gunzip stopped: ${err}`);
  }
}

function drainedOrClosed(stream: ReturnType<typeof createGunzip>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** Stored gzip that no longer decodes (zlib checks its CRC-32 and length) is an integrity failure too. */
function undecodable(meta: StoredMeta, err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string" || !code.startsWith("Z_")) return err;
  const mismatch = new ChecksumMismatchError(meta.transaction_id, meta.checksum, `undecodable gzip (${code})`);
  console.error(mismatch.message);
  return mismatch;
}

async function* gzipPassThrough(meta: StoredMeta, source: Chunks) {
  if (meta.payload_size_bytes !== undefined && meta.payload_size_bytes <= SYNC_GUNZIP_LIMIT) {
    const stored: Uint8Array[] = [];
    for await (const chunk of source) stored.push(chunk);
    const gz = concatBytes(stored);
    check(meta, createHash("sha256").update(gz.length ? gunzipSync(gz) : gz).digest("hex"));
    yield gz;
    return;
  }
  const hash = createHash("sha256");
  const gunzip = createGunzip({ chunkSize: OUTPUT_BLOCK });
  // Settles with the gunzip's error instead of rejecting: nothing awaits it while chunks are passed on, and an
  // unhandled rejection (corrupted stored gzip) would end the whole process instead of failing this stream.
  const hashing = (async () => {
    for await (const out of gunzip as AsyncIterable<Uint8Array>) hash.update(out);
  })().then(() => undefined, (err: unknown) => err ?? new Error("gunzip failed"));
  let held: Uint8Array | undefined;
  try {
    for await (const chunk of source) {
      if (gunzip.destroyed) break; // it failed; `hashing` has its error
      if (!gunzip.write(chunk)) await drainedOrClosed(gunzip);
      if (held) yield held;
      held = chunk;
    }
    if (!gunzip.destroyed) gunzip.end();
  } finally {
    // An error, or a consumer that stopped early: stop the verifying gunzip too.
    if (!gunzip.writableEnded) gunzip.destroy();
  }
  const gunzipError = await hashing;
  if (gunzipError) throw undecodable(meta, gunzipError);
  check(meta, hash.digest("hex"));
  if (held) yield held;
}

function check(meta: StoredMeta, hex: string, expected = meta.checksum): void {
  const actual = `sha256:${hex}`;
  if (actual !== expected) {
    const err = new ChecksumMismatchError(meta.transaction_id, expected, actual);
    console.error(err.message);
    throw err;
  }
}
