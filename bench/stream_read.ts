/**
 * The streaming benchmark's client: one POST whose event stream is read to its end, timed at the headers, the first
 * byte and the first content event, hashed as it arrives, and its last event kept (the bus's error event or
 * `[DONE]`). Both paths (bus and direct) are read by this same code, so the client's own work cancels out of their
 * difference.
 */
import { createHash } from "node:crypto";

/** What one streamed request gave the client. */
export interface StreamRead {
  status: number;
  /** `x-bus-transaction-id` (null for the direct path). */
  transactionId: string | null;
  /** Milliseconds from sending the request to: the response's headers, its first body byte, the first event
   * carrying a non-empty `delta.content` (null if none), and the end of the body. */
  headersMs: number;
  firstByteMs: number;
  ttftMs: number | null;
  endMs: number;
  bytes: number;
  /** Hex SHA-256 of every body byte received. */
  sha256: string;
  /** The data of the last event in the body (`[DONE]`, an error object's JSON, a chunk). */
  lastEvent: string | null;
  /** The body ended with an error (the connection broke) rather than cleanly. */
  brokenBody: string | null;
}

const TAIL_BYTES = 64 * 1024;

/**
 * POSTs `body` to `url` and reads the streamed answer.
 * @example
 * ```ts
 * const r = await readStream(`${standin}/kimi/v1/chat/completions`, { authorization: "Bearer k" }, body);
 * console.log(r.ttftMs, r.bytes);
 * ```
 */
export async function readStream(url: string, headers: Record<string, string>, body: string): Promise<StreamRead> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
    body,
  });
  const headersMs = performance.now() - t0;
  const hash = createHash("sha256");
  const finder = new FirstContent();
  let firstByteMs = NaN, ttftMs: number | null = null, bytes = 0, brokenBody: string | null = null;
  let tail: Uint8Array = new Uint8Array(0);
  const reader = res.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const now = performance.now() - t0;
      if (bytes === 0) firstByteMs = now;
      bytes += value.length;
      hash.update(value);
      if (ttftMs === null && finder.push(value)) ttftMs = now;
      tail = keepTail(tail, value);
    }
  } catch (err) {
    brokenBody = err instanceof Error ? err.message : String(err);
  }
  const endMs = performance.now() - t0;
  return {
    status: res.status,
    transactionId: res.headers.get("x-bus-transaction-id"),
    headersMs,
    firstByteMs: bytes ? firstByteMs : endMs,
    ttftMs,
    endMs,
    bytes,
    sha256: hash.digest("hex"),
    lastEvent: lastEventOf(tail),
    brokenBody,
  };
}

/** Finds the first `data:` event whose chunk carries a non-empty `choices[0].delta.content`. */
class FirstContent {
  #decoder = new TextDecoder();
  #pending = "";

  /** Feeds bytes; true once such an event is complete. */
  push(bytes: Uint8Array): boolean {
    this.#pending += this.#decoder.decode(bytes, { stream: true });
    for (;;) {
      const end = this.#pending.search(/\r?\n\r?\n/);
      if (end < 0) return false;
      const event = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end).replace(/^\r?\n\r?\n/, "");
      if (carriesContent(event)) return true;
    }
  }
}

function carriesContent(event: string): boolean {
  const data = event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join(
    "\n",
  );
  if (!data || data === "[DONE]") return false;
  try {
    const content = JSON.parse(data)?.choices?.[0]?.delta?.content;
    return typeof content === "string" && content.length > 0;
  } catch (err) {
    if (err instanceof SyntaxError) return false; // not a chunk (the bench counts such streams elsewhere)
    throw err;
  }
}

function keepTail(tail: Uint8Array, value: Uint8Array): Uint8Array {
  if (value.length >= TAIL_BYTES) return value.slice(value.length - TAIL_BYTES);
  const keep = Math.min(tail.length, TAIL_BYTES - value.length);
  const out = new Uint8Array(keep + value.length);
  out.set(tail.subarray(tail.length - keep), 0);
  out.set(value, keep);
  return out;
}

/** The data of the last complete-looking event in the body's tail. */
function lastEventOf(tail: Uint8Array): string | null {
  const events = new TextDecoder().decode(tail).split(/\r?\n\r?\n/).filter((e) => e.startsWith("data:"));
  const last = events.at(-1);
  return last === undefined ? null : last.slice(5).trimStart();
}
