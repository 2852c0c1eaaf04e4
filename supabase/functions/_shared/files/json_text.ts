/**
 * A system message whose content is a text given as UTF-8 bytes, written as JSON bytes without decoding the text
 * into a string: `{"role":"system","content":"<text, escaped>"}`. Escaping works on bytes: `"`, `\` and control
 * characters are escaped (RFC 8259 §7) exactly as `JSON.stringify` escapes them, every other byte (UTF-8 sequences
 * included, even when a piece cuts one) passes through as it is, so a text of any size streams through in pieces
 * and the result equals `JSON.stringify({ role: "system", content: text })` byte for byte.
 */

const encoder = new TextEncoder();
const OPEN = encoder.encode('{"role":"system","content":"');
const CLOSE = encoder.encode('"}');
const HEX = "0123456789abcdef";

/** The escape of byte `b`, or undefined when it passes through. */
function escapeOf(b: number): string | undefined {
  if (b === 0x22) return '\\"';
  if (b === 0x5c) return "\\\\";
  if (b >= 0x20) return undefined;
  switch (b) {
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x08:
      return "\\b";
    case 0x0c:
      return "\\f";
    default:
      return `\\u00${HEX[b >> 4]}${HEX[b & 15]}`;
  }
}

const ESCAPES: Array<Uint8Array | undefined> = Array.from({ length: 256 }, (_, b) => {
  const e = escapeOf(b);
  return e === undefined ? undefined : encoder.encode(e);
});

/** The JSON string-body bytes of one piece of UTF-8 text (no quotes around it). */
export function escapeJsonPiece(piece: Uint8Array): Uint8Array {
  let extra = 0;
  for (let i = 0; i < piece.length; i++) {
    const e = ESCAPES[piece[i]];
    if (e) extra += e.length - 1;
  }
  if (extra === 0) return piece;
  const out = new Uint8Array(piece.length + extra);
  let at = 0;
  let from = 0;
  for (let i = 0; i < piece.length; i++) {
    const e = ESCAPES[piece[i]];
    if (!e) continue;
    out.set(piece.subarray(from, i), at);
    at += i - from;
    out.set(e, at);
    at += e.length;
    from = i + 1;
  }
  out.set(piece.subarray(from), at);
  return out;
}

/** The bytes of a system message whose content is the text in `pieces` (UTF-8, checked by the caller). */
export async function* systemMessageJson(pieces: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield OPEN;
  for await (const piece of pieces) yield escapeJsonPiece(piece);
  yield CLOSE;
}
