/**
 * Payload verification: SHA-256 computed while the body streams, compared with every checksum the answer
 * carries — `ETag: "<hex>"`, `Repr-Digest: sha-256=:<base64>:` (RFC 9530), `X-Checksum: sha256:<hex>` — and the
 * checksum from the message's metadata (CONTRACT.md §5). A mismatch is a {@link ChecksumMismatchError}; the
 * bytes are not returned.
 */
import { BusClientError, ChecksumMismatchError, ErrorCode } from "./errors.ts";

/** An incremental SHA-256. */
export interface Sha256 {
  update(chunk: Uint8Array): void;
  /** `sha256:<64 hex>`. */
  digest(): Promise<string>;
}

type NodeHash = { update(data: Uint8Array): unknown; digest(encoding: "hex"): string };
type NodeCrypto = { createHash(algorithm: "sha256"): NodeHash };

let nodeCrypto: Promise<NodeCrypto | null> | undefined;

/** node:crypto where the runtime has it (Deno, Node), else null (browsers). */
function loadNodeCrypto(): Promise<NodeCrypto | null> {
  const g = globalThis as { Deno?: unknown; process?: { versions?: { node?: string } } };
  // Browsers would log a failed module load for the attempt: do not try there.
  if (!g.Deno && !g.process?.versions?.node) return Promise.resolve(null);
  // A computed specifier, so that browser bundlers do not try to resolve node:crypto.
  const specifier = ["node", "crypto"].join(":");
  nodeCrypto ??= import(specifier).then(
    (m: NodeCrypto) => m,
    () => null, // no node:crypto in this runtime: WebCrypto over the collected bytes instead
  );
  return nodeCrypto;
}

/**
 * A SHA-256 that hashes chunk by chunk with node:crypto (Deno, Node); in browsers, where WebCrypto has no
 * incremental digest, it keeps the chunks and digests them at the end.
 */
export async function createSha256(opts: { webCryptoOnly?: boolean } = {}): Promise<Sha256> {
  const nodeMod = opts.webCryptoOnly ? null : await loadNodeCrypto();
  if (nodeMod) {
    const hash = nodeMod.createHash("sha256");
    return {
      update: (chunk) => void hash.update(chunk),
      digest: () => Promise.resolve(`sha256:${hash.digest("hex")}`),
    };
  }
  const parts: Uint8Array[] = [];
  return {
    update: (chunk) => void parts.push(chunk),
    async digest() {
      const all = concat(parts);
      const buf = await crypto.subtle.digest("SHA-256", all as Uint8Array<ArrayBuffer>);
      return `sha256:${toHex(new Uint8Array(buf))}`;
    },
  };
}

/** The checksums an answer states, each as `sha256:<hex>`, with where they came from. Unparseable ones are skipped. */
export function statedChecksums(headers: Headers): Array<{ from: string; checksum: string }> {
  const out: Array<{ from: string; checksum: string }> = [];
  // message-fetch tags a gzip-coded answer "<hex>-gzip": a different representation, the same decoded bytes.
  const etag = /^(?:W\/)?"([0-9a-f]{64})(?:-gzip)?"$/i.exec(headers.get("etag")?.trim() ?? "");
  if (etag) out.push({ from: "etag", checksum: `sha256:${etag[1].toLowerCase()}` });
  // RFC 9530: Repr-Digest covers the representation, content coding included; only an unencoded one is the payload.
  const coding = headers.get("content-encoding")?.trim().toLowerCase();
  const coded = !!coding && coding !== "identity";
  const digest = coded ? null : /(?:^|,)\s*sha-256=:([A-Za-z0-9+/]{43}=):/i.exec(headers.get("repr-digest") ?? "");
  if (digest) out.push({ from: "repr-digest", checksum: `sha256:${toHex(fromBase64(digest[1]))}` });
  const header = /^sha256:([0-9a-f]{64})$/i.exec(headers.get("x-checksum")?.trim() ?? "");
  if (header) out.push({ from: "x-checksum", checksum: `sha256:${header[1].toLowerCase()}` });
  return out;
}

/** Options of {@link readVerified}. */
export interface ReadVerifiedOptions {
  transactionId: string;
  /** Checksums known from elsewhere (metadata, the invoke answer, an event), compared too. */
  expected?: Array<string | null | undefined>;
  /** Receives each chunk as it arrives; the bytes are then not collected. Unverified until the call resolves. */
  onChunk?: (chunk: Uint8Array) => void | Promise<void>;
  /** Force the WebCrypto path (for tests of the browser fallback). */
  webCryptoOnly?: boolean;
}

/**
 * Reads `res.body` to the end, hashing as it goes, and checks the result against every stated and expected
 * checksum. Needs at least one checksum to compare with.
 *
 * @returns the collected bytes (empty with `onChunk`), their size and checksum.
 * @throws {ChecksumMismatchError} when any checksum differs from the bytes read.
 * @throws {BusClientError} `invalid_response` when no checksum is known.
 * @throws {TypeError} when the body breaks off (a network error).
 */
export async function readVerified(
  res: Response,
  opts: ReadVerifiedOptions,
): Promise<{ bytes: Uint8Array; size: number; checksum: string }> {
  const expected = [
    ...statedChecksums(res.headers),
    ...(opts.expected ?? []).filter((c): c is string => !!c).map((checksum) => ({ from: "metadata", checksum })),
  ];
  if (expected.length === 0) {
    throw new BusClientError(`No checksum to verify ${opts.transactionId} against`, ErrorCode.InvalidResponse, {
      transactionId: opts.transactionId,
    });
  }
  const hash = await createSha256({ webCryptoOnly: opts.webCryptoOnly });
  const parts: Uint8Array[] = [];
  let size = 0;
  // A reader loop rather than `for await`: not every browser can iterate a ReadableStream.
  const reader = res.body?.getReader();
  try {
    for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
      hash.update(r.value);
      size += r.value.byteLength;
      if (opts.onChunk) await opts.onChunk(r.value);
      else parts.push(r.value);
    }
  } catch (err) {
    // Stop the download too (e.g. onChunk could not write); the original error is what the caller needs.
    await reader?.cancel(err).catch((cancelErr) => console.warn(`[bus client] cancelling the body: ${cancelErr}`));
    throw err;
  }
  const actual = await hash.digest();
  const wrong = expected.find((e) => e.checksum !== actual);
  if (wrong) {
    throw new ChecksumMismatchError(opts.transactionId, wrong.checksum, actual, "client", {
      details: { compared_with: wrong.from },
    });
  }
  return { bytes: concat(parts), size, checksum: actual };
}

/** Joins byte arrays (a single part is returned as is). */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Decodes base64 (Node 20 has no `Uint8Array.fromBase64`). */
export function fromBase64(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
