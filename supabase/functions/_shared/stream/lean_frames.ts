/**
 * SSE framing on bytes for StreamWatch, so that the large content events of a long stream are counted without being
 * decoded and parsed (a 10 MB stream cost 106 ms of CPU decoded and parsed whole, 33 ms framed this way:
 * bench/RESULTS.md "Streaming"). An event goes to the exact reader
 * (TextDecoder + eventsource-parser + JSON.parse) when it is small, when it comes before the first output, when it is
 * not a single `data:` line ending in LF LF, or when its JSON names `finish_reason`, `usage` or `error` with a
 * non-null value (found by walking its string tokens: a key is a string token followed by `:`; a key with an escape
 * in it is sent to the exact reader). Any CR in the stream switches to the exact reader for good.
 */
const LF = 10, CR = 13, QUOTE = 34, BACKSLASH = 92, COLON = 58, N = 110;
const WATCHED = ["finish_reason", "usage", "error"].map((k) => new TextEncoder().encode(k));
/** Events up to this size are always parsed exactly (the role chunk, finish and usage chunks, errors, [DONE]). */
const SMALL = 4096;

export class LeanFrames {
  #parts: Uint8Array[] = [];
  #size = 0;
  #lastLf = false;
  #exact = false;
  /** Events counted without parsing. */
  skipped = 0;

  constructor(
    /** Feeds bytes to the exact reader. */
    private readonly exact: (bytes: Uint8Array) => void,
    /** Counts an event without parsing it. */
    private readonly count: () => void,
    /** Whether the exact reader still needs every event (no output seen yet). */
    private readonly needsAll: () => boolean,
  ) {}

  push(bytes: Uint8Array): void {
    if (this.#exact) return this.exact(bytes);
    if (bytes.indexOf(CR) >= 0) {
      this.#exact = true;
      for (const p of this.#parts) this.exact(p);
      this.#parts = [];
      return this.exact(bytes);
    }
    let from = 0;
    if (this.#lastLf && bytes[0] === LF && this.#size > 0) {
      this.#emit(bytes.subarray(0, 1));
      from = 1;
    }
    for (let at = bytes.indexOf(LF, from); at >= 0; at = bytes.indexOf(LF, at + 1)) {
      if (bytes[at + 1] !== LF) continue;
      this.#emit(bytes.subarray(from, at + 2));
      from = at + 2;
      at++;
    }
    if (from < bytes.length) {
      this.#parts.push(bytes.subarray(from));
      this.#size += bytes.length - from;
    }
    this.#lastLf = bytes[bytes.length - 1] === LF;
  }

  #emit(last: Uint8Array): void {
    let event = last;
    if (this.#parts.length) {
      event = new Uint8Array(this.#size + last.length);
      let at = 0;
      for (const p of this.#parts) {
        event.set(p, at);
        at += p.length;
      }
      event.set(last, at);
      this.#parts = [];
      this.#size = 0;
    }
    if (event.length <= SMALL || this.needsAll() || !singleDataLine(event) || namesWatchedKey(event)) {
      return this.exact(event);
    }
    this.skipped++;
    this.count();
  }
}

/** `data:…\n\n` with no other line break. */
function singleDataLine(e: Uint8Array): boolean {
  return e[0] === 100 && e[1] === 97 && e[2] === 116 && e[3] === 97 && e[4] === COLON && e.indexOf(LF) === e.length - 2;
}

/** Whether the JSON names a watched key with a value other than null, or has a key with an escape in it. */
export function namesWatchedKey(b: Uint8Array): boolean {
  for (let open = b.indexOf(QUOTE); open >= 0;) {
    let close = open + 1;
    for (;;) {
      close = b.indexOf(QUOTE, close);
      if (close < 0) return true; // an unterminated string: let the exact reader judge
      let k = close - 1;
      while (b[k] === BACKSLASH) k--;
      if ((close - 1 - k) % 2 === 0) break; // not escaped
      close++;
    }
    let m = close + 1;
    while (b[m] === 32 || b[m] === 9 || b[m] === LF) m++;
    if (b[m] === COLON) {
      const key = b.subarray(open + 1, close);
      if (key.indexOf(BACKSLASH) >= 0) return true;
      if (WATCHED.some((w) => sameBytes(w, key))) {
        m++;
        while (b[m] === 32 || b[m] === 9 || b[m] === LF) m++;
        if (b[m] !== N) return true;
      }
    }
    open = b.indexOf(QUOTE, close + 1);
  }
  return false;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
