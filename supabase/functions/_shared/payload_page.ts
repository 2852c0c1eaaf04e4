/**
 * Pages of a stored payload for readers that cannot take it whole (MCP clients cut long tool results): a page is
 * `[offset, offset + maxBytes)` of the decoded payload, cut back so that it never ends inside a UTF-8 character, so
 * every page of a UTF-8 payload is valid UTF-8 text by itself and the pages, joined, are the payload byte for byte.
 * A page is empty only at the end of the payload (a character is at most 4 bytes and `maxBytes` at least 4).
 * Bytes that are not UTF-8 are never cut (there is no character to keep whole).
 */
import type { Caller } from "./auth.ts";
import { type RangeOptions, readPayloadRange, type SizedMeta } from "./payload_range.ts";

/** The smallest page: the longest UTF-8 character, so a page always makes progress. */
export const MIN_PAGE_BYTES = 4;

export interface PayloadPage {
  offset: number;
  /** Where the next page starts; null at the end. */
  nextOffset: number | null;
  /** The decoded payload's size. */
  total: number;
  bytes: Uint8Array;
  /** True when this read covered the whole payload and it matched its checksum (see payload_range.ts). */
  verified: boolean;
}

/** An offset that cannot start a page: past the end, or inside a character (`charStart` is where it begins). */
export class PageOffsetError extends Error {
  constructor(message: string, readonly charStart?: number) {
    super(message);
    this.name = "PageOffsetError";
  }
}

/**
 * Reads the page at `offset` of at most `maxBytes` bytes.
 * @throws PageOffsetError for an offset past the end or inside a UTF-8 character; whatever readPayloadRange throws.
 */
export async function readPayloadPage(
  caller: Caller,
  meta: SizedMeta,
  offset: number,
  maxBytes: number,
  opts: RangeOptions = {},
): Promise<PayloadPage> {
  if (maxBytes < MIN_PAGE_BYTES) throw new RangeError(`maxBytes must be at least ${MIN_PAGE_BYTES}`);
  const total = meta.payload_size_bytes;
  if (offset > total) {
    throw new PageOffsetError(`offset ${offset} is past the end of the payload (${total} bytes)`);
  }
  const end = Math.min(offset + maxBytes, total);
  // Three bytes before the page (is the offset inside a character?) and one after it (does the page end inside one?).
  const windowStart = Math.max(0, offset - 3);
  const windowEnd = Math.min(total, end + 1);
  const { bytes: window, verified } = await readPayloadRange(caller, meta, windowStart, windowEnd, opts);
  const byteAt = (pos: number) => window[pos - windowStart];
  const inside = characterStart(byteAt, windowStart, offset);
  if (offset < total && inside !== null) {
    throw new PageOffsetError(
      `offset ${offset} falls inside a UTF-8 character that starts at ${inside}: start pages at 0 or at a next_offset`,
      inside,
    );
  }
  let pageEnd = end;
  if (end < total) {
    const cut = characterStart(byteAt, windowStart, end);
    if (cut !== null && cut > offset) pageEnd = cut;
  }
  return {
    offset,
    nextOffset: pageEnd < total ? pageEnd : null,
    total,
    bytes: window.subarray(offset - windowStart, pageEnd - windowStart),
    // A window that reached the end was verified only when it was read from the first byte (readPayloadRange).
    verified: verified && windowEnd === total,
  };
}

/**
 * Where the UTF-8 character that `pos` falls inside begins, or null when `pos` starts a character (or the bytes
 * there are not UTF-8). Looks at most 3 bytes back, not before `lowest`.
 */
export function characterStart(byteAt: (pos: number) => number, lowest: number, pos: number): number | null {
  if (!isContinuation(byteAt(pos))) return null;
  for (let back = 1; back <= 3 && pos - back >= lowest; back++) {
    const b = byteAt(pos - back);
    if (isContinuation(b)) continue;
    return sequenceLength(b) > back ? pos - back : null;
  }
  return null;
}

const isContinuation = (b: number) => (b & 0xc0) === 0x80;

/** The length of the UTF-8 sequence that lead byte `b` starts; 0 for a byte that starts none. */
function sequenceLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 0;
}
