/**
 * Stores a payload stream as the bus's chunks for the message's completion, which checks that they add up (never a
 * pointer without its payload, nor a visible payload without its pointer): one statement for a payload of one chunk.
 * - SHA-256 computed incrementally over the raw bytes as they stream (`node:crypto`), and over the stored bytes
 *   when they are compressed (message-fetch verifies passed-through gzip against that digest);
 * - gzip when it makes the payload smaller: payloads of one chunk or less are compressed whole and kept gzip only
 *   if smaller; for larger ones the first chunk decides (it is a sample of the rest), and `compression` records
 *   what was actually stored; payloads under MIN_GZIP_BYTES are stored as they are;
 * - about 1 MiB a chunk row, written as the bytes arrive, so memory stays bounded whatever the payload size.
 */
import { createHash } from "node:crypto";
import { createGzip, gzipSync } from "node:zlib";
import { Duplex } from "node:stream";
import { Chunker } from "./chunker.ts";
import { payloadTooLarge } from "./errors.ts";
import { COMMIT_WITHOUT_FLUSH_WAIT, type Query, type Sql, withDb, withDbReconnecting } from "./db.ts";
import { CopySink, FILE_CHUNKS } from "./copy_chunk.ts";

export const CHUNK_SIZE = 1024 * 1024;
/** Keep gzip only when it saves at least this fraction (below, the CPU spent on every fetch is not worth it). */
const MIN_SAVING = 0.1;
/**
 * Smaller payloads are stored as they are: gzip would save at most this many bytes (less than the message's own
 * metadata row) for ~45 µs of zlib set-up per payload here, twice per invoke (request and answer), and a decode on
 * every read of the payload (bench/RESULTS.md "Invoke path").
 */
export const MIN_GZIP_BYTES = 4096;
/**
 * zlib level 1: on the stand-in's 100 MB responses it compressed 100 MB in 246 ms to 29.8 MB, where level 6 took
 * 2944 ms (13.7 MB) — over the 2 s CPU budget of a hosted function request (bench/RESULTS.md).
 */
const GZIP_LEVEL = 1;

/** What a stored byte stream is: a provider's answer, a message's request, or an uploaded file. */
export type StoredPart = "payload" | "request" | "file";

const PART_NAMES: Record<StoredPart, string> = {
  payload: "The provider response",
  request: "The request",
  file: "The file",
};

export interface StoredPayload {
  payloadSize: number;
  storedSize: number;
  compression: "none" | "gzip";
  /** `sha256:<hex>` of the raw payload. */
  checksum: string;
  /** `sha256:<hex>` of the stored bytes (the chunks in order); equal to `checksum` when nothing was compressed. */
  storedChecksum: string;
  chunkCount: number;
  /**
   * The last chunk, not yet stored: bus.complete_message stores it with the completion, so a payload of one chunk
   * takes one statement. Null for an empty payload.
   */
  lastChunk: Uint8Array | null;
}

/**
 * Reads `source` to its end and stores it as the chunks of pending message `transactionId`, returning what it
 * stored; the caller completes the message with it (bus.complete_message, which takes `lastChunk` and checks that
 * the chunks add up). A payload of one chunk is read and compressed before anything is written, so storing and
 * completing it is one statement. Larger payloads are appended chunk by chunk as they arrive, each append its own
 * short statement that commits without waiting for its WAL flush: the completion's commit waits and flushes them
 * too, and until it commits the message is pending and its chunks are invisible to readers (fetch answers 202), so
 * a payload is never visible in part. No transaction is held open while the provider's body streams in (a
 * thinking model's stream can take minutes). If the store fails, the caller fails the message, which deletes the
 * chunks already appended.
 * @throws BusError 413 when the payload exceeds `maxBytes`.
 */
export async function storePayload(
  sql: Query,
  transactionId: string,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  /**
   * What the bytes are: the provider's answer (default), the request as received (bus.seal_request then), or an
   * uploaded file (`transactionId` is then the file's id, and bus.seal_file completes it).
   */
  part: StoredPart = "payload",
): Promise<StoredPayload> {
  const hash = createHash("sha256");
  let payloadSize = 0;
  const raw = (async function* () {
    for await (const bytes of source) {
      payloadSize += bytes.length;
      if (payloadSize > maxBytes) {
        const what = PART_NAMES[part];
        throw payloadTooLarge(`${what} exceeds the ${maxBytes / 1024 / 1024} MB limit`, {
          limit_bytes: maxBytes,
        });
      }
      hash.update(bytes);
      yield bytes;
    }
  })();

  // Gather the first chunk to decide on compression.
  const first = new Chunker(CHUNK_SIZE);
  let head: Uint8Array | undefined;
  let moreBlocks: Uint8Array[] = [];
  let next = await raw.next();
  while (!next.done) {
    const blocks = first.push(next.value);
    if (blocks.length > 0) {
      [head, ...moreBlocks] = blocks;
      break;
    }
    next = await raw.next();
  }

  if (!head) {
    // The whole payload is at most one chunk: compressed whole, kept gzip only if that is smaller.
    const whole = first.flush() ?? new Uint8Array(0);
    const block = storedForm(whole);
    const checksum = `sha256:${hash.digest("hex")}`;
    return {
      payloadSize,
      storedSize: block.bytes.length,
      compression: block.compression,
      checksum,
      storedChecksum: block.compression === "gzip" ? sha256(block.bytes) : checksum,
      chunkCount: block.bytes.length > 0 ? 1 : 0,
      lastChunk: block.bytes.length > 0 ? block.bytes : null,
    };
  }

  const carried = first.flush(); // bytes of the last read past the full blocks
  const sample = gzipSync(head, { level: GZIP_LEVEL });
  const compression: StoredPayload["compression"] = sample.length <= head.length * (1 - MIN_SAVING) ? "gzip" : "none";
  const rest = (async function* () {
    yield head!;
    yield* moreBlocks;
    if (carried) yield carried;
    yield* raw;
  })();
  // Each block is appended once the next one exists, so the last is left for the completion. One append is in
  // flight while the next block is gathered (receiving, hashing and compressing overlap the database's write; a
  // 50 MiB upload took 1.0 s with each append awaited, bench/RESULTS.md "Files"); the order is kept, and memory
  // stays at a few blocks.
  const storedHash = compression === "gzip" ? createHash("sha256") : undefined;
  let storedSize = 0;
  let seq = 0;
  let held: Uint8Array | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  // File chunks go by binary COPY, one COPY while they keep coming (copy_chunk.ts).
  const sink = part === "file" ? new CopySink(sql as Sql, FILE_CHUNKS, transactionId) : undefined;
  const append = async (block: Uint8Array) => {
    storedHash?.update(block);
    storedSize += block.length;
    if (held) {
      const chunk = held;
      const n = seq++;
      await inFlight;
      inFlight = sink ? sink.write(n, chunk) : appendChunk(sql, part, transactionId, n, chunk);
      inFlight.catch(() => {}); // awaited by the next append or below; never an unhandled rejection meanwhile
    }
    held = block;
  };
  try {
    if (compression === "gzip") await writeGzip(rest, append);
    else await writeRaw(rest, append);
    await inFlight;
    await sink?.flush();
  } catch (err) {
    // Let the writes in flight settle first: the caller drops the chunks written so far, and a late one must not
    // land after that.
    await inFlight.catch((appendErr) => console.error(`[store] append after a failed store: ${appendErr}`));
    await sink?.abort();
    throw err;
  }
  const checksum = `sha256:${hash.digest("hex")}`;
  return {
    payloadSize,
    storedSize,
    compression,
    checksum,
    storedChecksum: storedHash ? `sha256:${storedHash.digest("hex")}` : checksum,
    chunkCount: seq + (held ? 1 : 0),
    lastChunk: held ?? null,
  };
}

/**
 * Stores chunk `seq` of message `id`'s payload or request through their bus functions (which check that the message
 * is pending), committing without waiting for its WAL flush (the completion's commit waits and flushes it too). A
 * lost connection is survived ({@link withDbReconnecting}): if the chunk had been committed before, the repetition
 * finds it stored with the same bytes.
 */
async function appendChunk(sql: Query, part: StoredPart, id: string, seq: number, chunk: Uint8Array): Promise<void> {
  const table = part === "payload" ? "message_bus_chunks" : "message_bus_request_chunks";
  await withDbReconnecting<unknown>(
    `chunk ${seq} of ${id}`,
    (sql) => {
      const noFlushWait = sql.unsafe(COMMIT_WITHOUT_FLUSH_WAIT);
      return part === "payload"
        ? sql`select bus.append_chunk(${id}::uuid, ${seq}, ${chunk}), ${noFlushWait}`
        : sql`select bus.append_request_chunk(${id}::uuid, ${seq}, ${chunk}), ${noFlushWait}`;
    },
    sql,
    async (err) => {
      if ((err as { code?: string }).code !== "23505") throw err; // unique_violation: (transaction_id, seq) is there
      const [same] = await withDb((sql) =>
        sql`select 1 from ${sql("public")}.${sql(table)}
           where transaction_id = ${id}::uuid and seq = ${seq} and data = ${chunk}`, sql);
      if (!same) throw err;
    },
  );
}

/**
 * The bytes as stored: gzip when that saves at least MIN_SAVING, else (and below MIN_GZIP_BYTES) as they are (bytes
 * of at most one chunk).
 */
export function storedForm(whole: Uint8Array): { bytes: Uint8Array; compression: "none" | "gzip" } {
  if (whole.length < MIN_GZIP_BYTES) return { bytes: whole, compression: "none" };
  const gz = gzipSync(whole, { level: GZIP_LEVEL });
  return gz.length <= whole.length * (1 - MIN_SAVING)
    ? { bytes: new Uint8Array(gz.buffer, gz.byteOffset, gz.length), compression: "gzip" }
    : { bytes: whole, compression: "none" };
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

async function writeRaw(source: AsyncIterable<Uint8Array>, append: (b: Uint8Array) => Promise<void>) {
  const chunker = new Chunker(CHUNK_SIZE);
  for await (const bytes of source) for (const block of chunker.push(bytes)) await append(block);
  const last = chunker.flush();
  if (last) await append(last);
}

async function writeGzip(source: AsyncIterable<Uint8Array>, append: (b: Uint8Array) => Promise<void>) {
  const gzip = Duplex.toWeb(createGzip({ level: GZIP_LEVEL })) as unknown as TransformStream<Uint8Array, Uint8Array>;
  const writer = gzip.writable.getWriter();
  const feeding = (async () => {
    try {
      for await (const bytes of source) {
        await writer.ready;
        await writer.write(bytes);
      }
      await writer.close();
    } catch (err) {
      await writer.abort(err);
      throw err;
    }
  })();
  const chunker = new Chunker(CHUNK_SIZE);
  const draining = (async () => {
    for await (const bytes of gzip.readable) for (const block of chunker.push(bytes)) await append(block);
    const last = chunker.flush();
    if (last) await append(last);
  })();
  // A failed append must also stop the feeding side (blocked on backpressure otherwise), which cancels the
  // provider's body through the for-await.
  draining.catch((err) => writer.abort(err).catch((abortErr) => console.error(`aborting gzip: ${abortErr}`)));
  await Promise.all([feeding, draining]);
}
