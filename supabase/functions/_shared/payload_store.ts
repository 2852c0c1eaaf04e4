/**
 * Stores a payload stream as the bus's chunks, atomically with the message's completion (never a pointer without
 * its payload, nor a payload without its pointer): one statement for a payload of one chunk, one transaction for
 * a larger one.
 * - SHA-256 computed incrementally over the raw bytes as they stream (`node:crypto`), and over the stored bytes
 *   when they are compressed (message-fetch verifies passed-through gzip against that digest);
 * - gzip when it makes the payload smaller: payloads of one chunk or less are compressed whole and kept gzip only
 *   if smaller; for larger ones the first chunk decides (it is a sample of the rest), and `compression` records
 *   what was actually stored;
 * - about 1 MiB a chunk row, written as the bytes arrive, so memory stays bounded whatever the payload size.
 */
import { createHash } from "node:crypto";
import { createGzip, gzipSync } from "node:zlib";
import { Duplex } from "node:stream";
import { Chunker } from "./chunker.ts";
import { payloadTooLarge } from "./errors.ts";
import type { Query, Sql } from "./db.ts";

export const CHUNK_SIZE = 1024 * 1024;
/** Keep gzip only when it saves at least this fraction (below, the CPU spent on every fetch is not worth it). */
const MIN_SAVING = 0.1;
/**
 * zlib level 1: on the stand-in's 100 MB responses it compressed 100 MB in 246 ms to 29.8 MB, where level 6 took
 * 2944 ms (13.7 MB) — over the 2 s CPU budget of a hosted function request (bench/RESULTS.md).
 */
const GZIP_LEVEL = 1;

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

/** How storePayload reaches the database: `sql` for a single statement, `begin` for a transaction. */
export interface PayloadDb {
  sql: Query;
  begin<T>(fn: (tx: Query) => Promise<T>): Promise<T>;
}

/** A PayloadDb on a client: single statements on it, transactions with `sql.begin`. */
export function payloadDb(sql: Sql): PayloadDb {
  return { sql, begin: <T>(fn: (tx: Query) => Promise<T>) => sql.begin(fn) as Promise<T> };
}

/**
 * Reads `source` to its end and stores it as the chunks of message `transactionId`; `complete` runs the statement
 * that completes the message (bus.complete_message with `lastChunk`). A payload of one chunk is read and compressed
 * before anything is written and `complete` runs alone on `db.sql`; a larger one is appended inside `db.begin`,
 * and `complete` runs in that same transaction.
 * @throws BusError 413 when the payload exceeds `maxBytes` (nothing is kept: the transaction rolls back).
 */
export async function storePayload<T>(
  db: PayloadDb,
  transactionId: string,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
  complete: (q: Query, stored: StoredPayload) => Promise<T>,
): Promise<T> {
  const hash = createHash("sha256");
  let payloadSize = 0;
  const raw = (async function* () {
    for await (const bytes of source) {
      payloadSize += bytes.length;
      if (payloadSize > maxBytes) {
        throw payloadTooLarge(`The provider response exceeds the ${maxBytes / 1024 / 1024} MB limit`, {
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
    const gz = whole.length > 0 ? gzipSync(whole, { level: GZIP_LEVEL }) : whole;
    const gzip = whole.length > 0 && gz.length <= whole.length * (1 - MIN_SAVING);
    const block = gzip ? gz : whole;
    const checksum = `sha256:${hash.digest("hex")}`;
    return await complete(db.sql, {
      payloadSize,
      storedSize: block.length,
      compression: gzip ? "gzip" : "none",
      checksum,
      storedChecksum: gzip ? sha256(block) : checksum,
      chunkCount: block.length > 0 ? 1 : 0,
      lastChunk: block.length > 0 ? block : null,
    });
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
  return await db.begin(async (tx) => {
    // Each block is appended once the next one exists, so the last is left for `complete`.
    const storedHash = compression === "gzip" ? createHash("sha256") : undefined;
    let storedSize = 0;
    let seq = 0;
    let held: Uint8Array | undefined;
    const append = async (block: Uint8Array) => {
      storedHash?.update(block);
      storedSize += block.length;
      if (held) {
        await tx`select bus.append_chunk(${transactionId}::uuid, ${seq}, ${held})`;
        seq += 1;
      }
      held = block;
    };
    if (compression === "gzip") await writeGzip(rest, append);
    else await writeRaw(rest, append);
    const checksum = `sha256:${hash.digest("hex")}`;
    return await complete(tx, {
      payloadSize,
      storedSize,
      compression,
      checksum,
      storedChecksum: storedHash ? `sha256:${storedHash.digest("hex")}` : checksum,
      chunkCount: seq + (held ? 1 : 0),
      lastChunk: held ?? null,
    });
  });
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
