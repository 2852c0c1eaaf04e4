/**
 * Deterministic text for the provider stand-in: default answers, reasoning, JSON answers and the seeded filler
 * that makes up large bodies. Everything here depends only on its inputs, so two identical requests get
 * identical bytes back.
 *
 * Every text carries multi-byte UTF-8 ("é", "漢字", "🙂") and a "/" so that a consumer that re-encodes
 * (ASCII-escaping, "\/" escaping, latin-1 round trips) changes the bytes and fails checksum tests.
 */

const encoder = new TextEncoder();

/** FNV-1a 32-bit hash of a string's UTF-8 bytes; used for seeds and short fingerprints. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Eight lowercase hex digits of {@link fnv1a}. */
export function fingerprint(text: string): string {
  return fnv1a(text).toString(16).padStart(8, "0");
}

/** mulberry32: a tiny seeded PRNG returning integers in [0, 2^32). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Filler words. None needs escaping inside a JSON string (no quote, backslash or control character), so a
 * fragment's size in the response body is its UTF-8 size, even when the filler sits inside JSON content that
 * is itself a JSON string.
 */
const FRAGMENTS = [
  "lorem ",
  "ipsum ",
  "café ",
  "déjà vu ",
  "naïve ",
  "漢字 ",
  "日本語 ",
  "🙂 ",
  "über ",
  "façade ",
  "Ωmega ",
  "€5 ",
  "straße ",
  "a/b ",
  "data ",
  "claim-check ",
].map((text) => encoder.encode(text));
const MAX_FRAGMENT = Math.max(...FRAGMENTS.map((f) => f.length));
/** Every filler starts with this, so even a short filler has multi-byte characters. */
const FILLER_HEAD = encoder.encode("Stand-in filler: é 漢字 🙂 ");
const PAD = ".".charCodeAt(0);

/**
 * Yields exactly `size` bytes of seeded filler in chunks of at most `chunkSize` bytes. Chunks always end on a
 * character boundary. Memory use is one chunk, whatever `size` is.
 */
export function* fillerChunks(seed: number, size: number, chunkSize = 64 * 1024): Generator<Uint8Array> {
  const next = prng(seed);
  let left = size;
  const chunk = new Uint8Array(Math.min(chunkSize, Math.max(size, 1)));
  let used = 0;
  const put = (bytes: Uint8Array) => {
    if (used + bytes.length > chunk.length) throw new Error("Filler chunk overflow: fragment larger than chunk");
    chunk.set(bytes, used);
    used += bytes.length;
    left -= bytes.length;
  };
  let first = true;
  while (left > 0) {
    const fragment = first ? FILLER_HEAD : FRAGMENTS[next() % FRAGMENTS.length];
    first = false;
    if (fragment.length > left || left < MAX_FRAGMENT) {
      // The tail: pad with ASCII to land on the exact size without splitting a character.
      const pad = new Uint8Array(Math.min(left, chunk.length - used)).fill(PAD);
      if (pad.length === 0) {
        yield chunk.slice(0, used);
        used = 0;
        continue;
      }
      put(pad);
      continue;
    }
    if (used + fragment.length > chunk.length) {
      yield chunk.slice(0, used);
      used = 0;
    }
    put(fragment);
  }
  if (used > 0) yield chunk.slice(0, used);
}

/** The short answer given when a request carries no directive. */
export function defaultAnswer(model: string, prompt: string): string {
  const words = prompt.split(/\s+/).filter(Boolean).length;
  const excerpt = [...prompt.trim()].slice(0, 60).join("");
  return `Stand-in answer from ${model}: you wrote ${words} words, starting “${excerpt}” ` +
    `(fingerprint ${fingerprint(prompt)}). Voilà — 漢字 🙂 a/b`;
}

/** Reasoning text as a thinking model (kimi-thinking-preview, glm-4.6) returns in `reasoning_content`. */
export function reasoningText(prompt: string): string {
  return `Thinking about the request (fingerprint ${fingerprint(prompt)}): the user wants an answer. ` +
    `Réflexion terminée — 考え中 🤔`;
}

/** A valid JSON document as answer content. */
export function jsonAnswer(model: string, prompt: string): string {
  return JSON.stringify({ answer: defaultAnswer(model, prompt), fingerprint: fingerprint(prompt), ok: true });
}

/** Broken JSON as answer content: an object cut off inside a string. */
export function invalidJsonAnswer(model: string, prompt: string): string {
  return `{"answer": "${defaultAnswer(model, prompt).slice(0, 40)}`;
}

/**
 * A provider error passed off as an answer: the text real gateways put into `content` when they wrap an
 * upstream failure in a 200 (Moonshot's rate-limit error type, `rate_limit_reached_error`).
 */
export const ERROR_AS_CONTENT = "Error code: 429 - {'error': {'message': 'Your account request reached organization " +
  "max RPM: 3, please try again after 1 seconds', 'type': 'rate_limit_reached_error'}}";
