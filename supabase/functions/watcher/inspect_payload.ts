/**
 * Reads a stored payload back for the watcher: every byte is streamed through the checksum (payload_read.ts, the
 * same verification message-fetch uses), whatever the size; only what the content checks need is kept — the whole
 * body up to the analysis cap, above it the first and last EDGE_BYTES — so memory stays bounded.
 */
import { createHash } from "node:crypto";
import { ChecksumMismatchError, MissingChunkError, type StoredMeta, verifiedPayload } from "../_shared/payload_read.ts";
import { type Finding, finding } from "./findings.ts";
import { concatBytes } from "../_shared/bytes.ts";

/** How much of the head and of the tail is kept above the analysis cap. */
export const EDGE_BYTES = 1024 * 1024;

export interface PayloadSample {
  /** The checksum_mismatch finding, or undefined when every byte matched. */
  integrity?: Finding;
  /** Raw (decompressed) bytes streamed through the checksum. */
  bytesRead: number;
  /** The whole body, when it is not above the cap. */
  whole?: Uint8Array;
  /** Above the cap: the first and last EDGE_BYTES. */
  head?: Uint8Array;
  tail?: Uint8Array;
}

/**
 * Streams `source` (the stored chunks of `meta`) through the checksum and keeps a sample for the content checks.
 * Stored gzip is also checked against `stored_checksum`, the digest message-fetch verifies it by when it passes it
 * through undecoded: this is where that digest is shown to belong to bytes that decode to the checksum.
 * Data errors (checksum mismatch, gzip that no longer decompresses, a missing chunk) become the `integrity`
 * finding; anything else (the database is down) is rethrown, so that no observation is recorded and the sweep
 * retries later.
 */
export async function inspectPayload(
  meta: StoredMeta,
  source: AsyncIterable<Uint8Array>,
  capBytes: number,
  edgeBytes = EDGE_BYTES,
): Promise<PayloadSample> {
  const parts: Uint8Array[] = [];
  let head: Uint8Array | undefined;
  const tail = new TailBuffer(edgeBytes);
  let bytesRead = 0;
  let whole = true;
  const { integrity } = await readVerified(meta, source, (chunk) => {
    bytesRead += chunk.length;
    if (whole && bytesRead > capBytes) {
      whole = false;
      head = concatBytes(parts).subarray(0, edgeBytes).slice();
      parts.length = 0;
    }
    if (whole) parts.push(chunk);
    else if (head!.length < edgeBytes) head = concatBytes([head!, chunk.subarray(0, edgeBytes - head!.length)]);
    tail.push(chunk);
  });
  if (integrity) return { integrity, bytesRead };
  return whole ? { bytesRead, whole: concatBytes(parts) } : { bytesRead, head, tail: tail.bytes() };
}

/**
 * Streams `source` (the stored chunks of `meta`) through the checksum, handing each decoded piece to `onChunk` as it
 * passes; the `integrity` finding when the bytes do not match (checksum, stored gzip's own checksum, missing chunk).
 * The pieces handed on count as verified only when no finding comes back. Other errors are rethrown.
 */
export async function readVerified(
  meta: StoredMeta,
  source: AsyncIterable<Uint8Array>,
  onChunk: (chunk: Uint8Array) => void,
): Promise<{ integrity?: Finding; bytesRead: number }> {
  let bytesRead = 0;
  const storedHash = meta.compression === "gzip" && meta.stored_checksum ? createHash("sha256") : undefined;
  const stored = storedHash
    ? (async function* () {
      for await (const chunk of source) {
        storedHash.update(chunk);
        yield chunk;
      }
    })()
    : source;
  try {
    // Never `decode_proven`: this read is the proof (the decoded bytes are hashed against the checksum).
    for await (const chunk of verifiedPayload({ ...meta, decode_proven: false }, stored, "identity")) {
      bytesRead += chunk.length;
      onChunk(chunk);
    }
  } catch (err) {
    const integrity = integrityFinding(err);
    if (!integrity) throw err;
    return { integrity, bytesRead };
  }
  const storedActual = storedHash && `sha256:${storedHash.digest("hex")}`;
  if (storedActual && storedActual !== meta.stored_checksum) {
    const integrity = finding(
      "checksum_mismatch",
      `The stored gzip bytes decode to the checksum but do not match their own stored checksum (stored ${meta.stored_checksum}, read ${storedActual}): clients that accept gzip would be refused them`,
    );
    return { integrity, bytesRead };
  }
  return { bytesRead };
}

function integrityFinding(err: unknown): Finding | undefined {
  if (err instanceof ChecksumMismatchError) {
    return finding(
      "checksum_mismatch",
      `The stored bytes no longer match their checksum: stored ${err.expected}, read ${err.actual}`,
    );
  }
  if (err instanceof MissingChunkError) {
    return finding("checksum_mismatch", `The stored payload is incomplete: chunk ${err.seq} is missing`);
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith("Z_")) {
    return finding(
      "checksum_mismatch",
      `The stored gzip bytes no longer decompress (${code}: ${(err as Error).message})`,
    );
  }
  return undefined;
}

/** Keeps the last `size` bytes of a stream. */
class TailBuffer {
  #parts: Uint8Array[] = [];
  #length = 0;

  constructor(readonly size: number) {}

  push(chunk: Uint8Array): void {
    this.#parts.push(chunk.length > this.size ? chunk.subarray(chunk.length - this.size) : chunk);
    this.#length += Math.min(chunk.length, this.size);
    while (this.#parts.length > 1 && this.#length - this.#parts[0].length >= this.size) {
      this.#length -= this.#parts.shift()!.length;
    }
  }

  bytes(): Uint8Array {
    const all = concatBytes(this.#parts);
    return all.subarray(Math.max(0, all.length - this.size)).slice();
  }
}
