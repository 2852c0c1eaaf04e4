/**
 * A JSON reader for request bodies that checks, in one pass over the bytes, everything the bus promises about what
 * it accepts, before any of it reaches the provider or the database:
 * - the bytes are UTF-8 and the text is JSON (RFC 8259), with the same result as `JSON.parse`;
 * - no string holds U+0000 or a lone surrogate (Postgres text and jsonb cannot store them: a NUL in `session_id`
 *   or `metadata` used to reach the database and come back as a 500);
 * - nesting stays within `maxDepth` (a body nested 10,000 deep passed `JSON.parse` and then broke the openai SDK's
 *   `JSON.stringify` with "Maximum call stack size exceeded"); the reader itself keeps an explicit stack;
 * - numbers are finite (`1e400` would become `Infinity`, then `null` in jsonb);
 * - strings longer than `longString` bytes are not decoded where the caller allows it (`elideUnder`: the members of
 *   the top-level object whose values only need their type checked, such as a tool's input): the value then holds
 *   {@link ELIDED} in their place and the caller sends the original bytes on (`members` gives each top-level
 *   member's byte range). A 90 MB prompt is then held once, as the body's bytes, instead of also as a 90 MB (or
 *   180 MB, UTF-16) string and a parsed copy. Elsewhere a string that long is an error.
 *
 * No JSON library offers this: streaming parsers on npm materialise every string, and `JSON.parse` needs the text
 * as a string. The reader is compared with `JSON.parse` on generated documents (json_scan_test.ts).
 */

/** Where a string of the value was left undecoded (see the module doc). */
export const ELIDED = "\u2026(long string, sent as received)\u2026";

export interface ScanOptions {
  /** Deepest nesting of objects and arrays allowed (the top-level value is depth 1). */
  maxDepth: number;
  /** Strings longer than this many bytes are elided under `elideUnder`, refused elsewhere. */
  longString: number;
  /** Top-level members under which long strings are elided; `"*"`: everywhere. */
  elideUnder?: ReadonlySet<string> | "*";
}

/** The byte range of a top-level member's value: `bytes.subarray(start, end)` is its JSON text. */
export interface MemberRange {
  start: number;
  end: number;
}

export interface Scanned {
  value: unknown;
  /** Byte ranges of the members of a top-level object (empty for other values); a repeated key keeps the last. */
  members: Map<string, MemberRange>;
  /** How many strings were elided. */
  elided: number;
}

/** A body that is not acceptable JSON; `path` names where (e.g. `input.messages.0.content`). */
export class JsonInputError extends Error {
  constructor(message: string, readonly offset: number, readonly path: string) {
    super(message);
    this.name = "JsonInputError";
  }
}

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, COLON = 0x3a;
const OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d;

interface Frame {
  array: boolean;
  container: unknown[] | Record<string, unknown>;
  /** The current member's key (objects) or the next index (arrays). */
  key: string | number;
  /** Where the current member's value starts (top-level object only). */
  valueStart: number;
}

const decoder = new TextDecoder();

/**
 * Reads `bytes` as one JSON value.
 * @throws JsonInputError naming the problem, its byte offset and the path of the value.
 * @example
 * const { value, members } = scanJson(new TextEncoder().encode('{"tool":"chat"}'), { maxDepth: 64, longString: 65536 });
 */
export function scanJson(bytes: Uint8Array, opts: ScanOptions): Scanned {
  const b = bytes;
  const len = b.length;
  const stack: Frame[] = [];
  const members = new Map<string, MemberRange>();
  let elided = 0;
  let pos = 0;
  if (len >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) pos = 3; // a UTF-8 BOM, as TextDecoder skips it

  const path = () => stack.map((f) => String(f.key)).join(".") || "(body)";
  const fail = (message: string, at = pos): never => {
    throw new JsonInputError(message, at, path());
  };
  const ws = () => {
    while (pos < len) {
      const c = b[pos];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const expect = (byte: number, what: string) => {
    ws();
    if (b[pos] !== byte) fail(`Expected ${what} at byte ${pos}, got ${describe(b, pos)}`);
    pos++;
  };
  /** Whether a string value read now sits under a member named in `elideUnder`. */
  const mayElide = () =>
    opts.elideUnder === "*" ||
    (stack.length > 0 && !stack[0].array && opts.elideUnder?.has(stack[0].key as string) === true);

  /** Reads the string starting at `pos` (on its opening quote). */
  const readString = (elidable: boolean): string => {
    const start = ++pos;
    let pieces: string[] | undefined;
    let from = start;
    for (;;) {
      if (pos >= len) fail("Unterminated string", start - 1);
      const c = b[pos];
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        pieces ??= [];
        if (pos > from) pieces.push(decoder.decode(b.subarray(from, pos)));
        const e = b[pos + 1];
        pos += 2;
        switch (e) {
          case 0x22:
            pieces.push('"');
            break;
          case 0x5c:
            pieces.push("\\");
            break;
          case 0x2f:
            pieces.push("/");
            break;
          case 0x62:
            pieces.push("\b");
            break;
          case 0x66:
            pieces.push("\f");
            break;
          case 0x6e:
            pieces.push("\n");
            break;
          case 0x72:
            pieces.push("\r");
            break;
          case 0x74:
            pieces.push("\t");
            break;
          case 0x75: {
            const unit = hex4(b, pos);
            if (unit < 0) fail("Invalid \\u escape", pos - 2);
            pos += 4;
            if (unit === 0) fail("Strings may not contain U+0000 (\\u0000): Postgres cannot store it", pos - 6);
            if (unit >= 0xdc00 && unit <= 0xdfff) fail("Lone low surrogate escape: not a Unicode character", pos - 6);
            if (unit >= 0xd800 && unit <= 0xdbff) {
              const low = b[pos] === BACKSLASH && b[pos + 1] === 0x75 ? hex4(b, pos + 2) : -1;
              if (low < 0xdc00 || low > 0xdfff) {
                fail("Lone high surrogate escape: not a Unicode character", pos - 6);
              }
              pieces.push(String.fromCharCode(unit, low));
              pos += 6;
            } else pieces.push(String.fromCharCode(unit));
            break;
          }
          default:
            fail("Invalid escape in string", pos - 2);
        }
        from = pos;
      } else if (c < 0x20) {
        fail("Unescaped control character in string");
      } else if (c < 0x80) {
        pos++;
      } else {
        pos = utf8Sequence(b, pos, len, fail);
      }
    }
    const end = pos++;
    if (end - start > opts.longString) {
      if (!elidable) fail(`String longer than ${opts.longString} bytes`, start - 1);
      elided++;
      return ELIDED;
    }
    if (!pieces) return decoder.decode(b.subarray(start, end));
    if (end > from) pieces.push(decoder.decode(b.subarray(from, end)));
    return pieces.join("");
  };

  const readNumber = (): number => {
    const start = pos;
    if (b[pos] === 0x2d) pos++;
    if (b[pos] === 0x30) pos++;
    else if (b[pos] >= 0x31 && b[pos] <= 0x39) { while (isDigit(b[pos])) pos++; }
    else fail("Invalid number", start);
    if (b[pos] === 0x2e) {
      pos++;
      if (!isDigit(b[pos])) fail("Invalid number: digits expected after the decimal point", start);
      while (isDigit(b[pos])) pos++;
    }
    if (b[pos] === 0x65 || b[pos] === 0x45) {
      pos++;
      if (b[pos] === 0x2b || b[pos] === 0x2d) pos++;
      if (!isDigit(b[pos])) fail("Invalid number: digits expected in the exponent", start);
      while (isDigit(b[pos])) pos++;
    }
    const n = Number(decoder.decode(b.subarray(start, pos)));
    if (!Number.isFinite(n)) fail("Number out of range", start);
    return n;
  };

  const literal = (text: readonly number[], value: unknown): unknown => {
    for (let i = 0; i < text.length; i++) if (b[pos + i] !== text[i]) fail(`Unexpected ${describe(b, pos)}`);
    pos += text.length;
    return value;
  };

  const readKey = (frame: Frame) => {
    ws();
    frame.key = "(property name)"; // what an error path shows while the key itself is read
    if (b[pos] !== QUOTE) fail(`Expected a property name in double quotes at byte ${pos}, got ${describe(b, pos)}`);
    frame.key = readString(false);
    expect(COLON, '":"');
  };

  let root: unknown;
  outer: for (;;) {
    ws();
    if (stack.length === 1 && !stack[0].array) stack[0].valueStart = pos;
    let value: unknown;
    const c = b[pos];
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (stack.length + 1 > opts.maxDepth) fail(`Nested deeper than ${opts.maxDepth} levels`);
      pos++;
      ws();
      const array = c === OPEN_ARRAY;
      if (b[pos] === (array ? CLOSE_ARRAY : CLOSE_OBJECT)) {
        pos++;
        value = array ? [] : {};
      } else {
        const frame: Frame = { array, container: array ? [] : {}, key: 0, valueStart: pos };
        stack.push(frame);
        if (!array) readKey(frame);
        continue;
      }
    } else if (c === QUOTE) value = readString(mayElide());
    else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) value = readNumber();
    else if (c === 0x74) value = literal(TRUE, true);
    else if (c === 0x66) value = literal(FALSE, false);
    else if (c === 0x6e) value = literal(NULL, null);
    else fail(pos >= len ? "Unexpected end of JSON" : `Unexpected ${describe(b, pos)}`);

    // Attach the finished value to its container; close containers as long as they end here.
    for (;;) {
      const frame = stack.at(-1);
      if (!frame) {
        root = value;
        break outer;
      }
      if (frame.array) {
        (frame.container as unknown[]).push(value);
        frame.key = (frame.key as number) + 1;
      } else {
        setMember(frame.container as Record<string, unknown>, frame.key as string, value);
        if (stack.length === 1) members.set(frame.key as string, { start: frame.valueStart, end: pos });
      }
      ws();
      if (b[pos] === COMMA) {
        pos++;
        if (!frame.array) readKey(frame);
        continue outer;
      }
      if (b[pos] !== (frame.array ? CLOSE_ARRAY : CLOSE_OBJECT)) {
        fail(`Expected "," or "${frame.array ? "]" : "}"}" at byte ${pos}, got ${describe(b, pos)}`);
      }
      pos++;
      stack.pop();
      value = frame.container;
    }
  }
  ws();
  if (pos !== len) fail(`Unexpected ${describe(b, pos)} after the JSON value`);
  return { value: root, members, elided };
}

const TRUE = [0x74, 0x72, 0x75, 0x65], FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65], NULL = [0x6e, 0x75, 0x6c, 0x6c];

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** As JSON.parse: the last of repeated keys wins, and `__proto__` is an own property, not the prototype. */
function setMember(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else obj[key] = value;
}

function hex4(b: Uint8Array, at: number): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const c = b[at + i];
    const d = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

/** Checks one multi-byte UTF-8 sequence at `pos` (RFC 3629: no overlong forms, no surrogates, ≤ U+10FFFF). */
function utf8Sequence(b: Uint8Array, pos: number, len: number, fail: (m: string, at?: number) => never): number {
  const c = b[pos];
  let need: number, lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) need = 1;
  else if (c >= 0xe0 && c <= 0xef) {
    need = 2;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 3;
    if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
  } else return fail("Invalid UTF-8", pos);
  if (pos + need >= len) return fail("Invalid UTF-8 (truncated sequence)", pos);
  const second = b[pos + 1];
  if (second < lo || second > hi) return fail("Invalid UTF-8", pos);
  for (let i = 2; i <= need; i++) if ((b[pos + i] & 0xc0) !== 0x80) return fail("Invalid UTF-8", pos);
  return pos + need + 1;
}

function describe(b: Uint8Array, pos: number): string {
  if (pos >= b.length) return "the end of the body";
  const c = b[pos];
  return c >= 0x20 && c < 0x7f ? JSON.stringify(String.fromCharCode(c)) : `byte 0x${c.toString(16).padStart(2, "0")}`;
}
