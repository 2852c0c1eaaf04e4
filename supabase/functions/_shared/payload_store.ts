/**
 * Stores a payload stream as the bus's chunks, in one transaction with the completion (never a pointer without
 * its payload, nor a payload without its pointer):
 * - SHA-256 computed incrementally over the raw bytes as they stream (`node:crypto`);
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
import type { Tx } from "./db.ts";

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
  checksum: string;
  chunkCount: number;
}

/**
 * Reads `source` to its end and appends its chunks to message `transactionId` inside `tx`.
 * @throws BusError 413 when the payload exceeds `maxBytes` (nothing is kept: the caller's transaction rolls back).
 */
export async function storePayload(
  tx: Tx,
  transactionId: string,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<StoredPayload> {
  const hash = createHash("sha256");
  let payloadSize = 0;
  let storedSize = 0;
  let seq = 0;
  const append = async (block: Uint8Array) => {
    await tx`select bus.append_chunk(${transactionId}::uuid, ${seq}, ${block})`;
    seq += 1;
    storedSize += block.length;
  };

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
  const singleChunk = !head;
  head ??= first.flush() ?? new Uint8Array(0);
  const carried = first.flush(); // bytes of the last read past the full blocks

  let compression: StoredPayload["compression"] = "none";
  if (singleChunk) {
    const gz = head.length > 0 ? gzipSync(head, { level: GZIP_LEVEL }) : head;
    if (head.length > 0 && gz.length <= head.length * (1 - MIN_SAVING)) {
      compression = "gzip";
      await append(gz);
    } else if (head.length > 0) {
      await append(head);
    }
  } else {
    const sample = gzipSync(head, { level: GZIP_LEVEL });
    compression = sample.length <= head.length * (1 - MIN_SAVING) ? "gzip" : "none";
    const rest = (async function* () {
      yield head!;
      yield* moreBlocks;
      if (carried) yield carried;
      yield* raw;
    })();
    if (compression === "gzip") await writeGzip(rest, append);
    else await writeRaw(rest, append);
  }

  return { payloadSize, storedSize, compression, checksum: `sha256:${hash.digest("hex")}`, chunkCount: seq };
}

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
