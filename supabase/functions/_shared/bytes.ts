/**
 * Joins byte arrays into one. A single part is returned as is (not copied): callers treat the result as
 * read-only.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * `bytes` as views of at most `size` bytes each, without copying: a large buffer handed to a stream in one piece is
 * copied whole by whatever consumes it (fetch's request body, the chunker), in pieces only a piece at a time.
 */
export function* pieces(bytes: Uint8Array, size = 64 * 1024): Generator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, Math.min(bytes.length, at + size));
}
