/**
 * What the bus records about a chat completion (finish_reason, usage, model) without holding a large response in
 * memory: bodies up to `fullLimit` are parsed whole; for larger ones the fields are read from the last bytes,
 * where providers put `finish_reason` and `usage`.
 */
import { concatBytes } from "../bytes.ts";
const TAIL_BYTES = 64 * 1024;
const HEAD_BYTES = 4096;

export interface ResponseSummary {
  finishReason: string | null;
  usage: Record<string, unknown> | null;
  model: string | null;
  /** False when the body is not a JSON chat completion (the watcher reports it). */
  parsed: boolean;
}

/** Collects the bytes needed for a summary while the body streams through `tap`. */
export class SummaryCollector {
  #full: Uint8Array[] = [];
  #fullSize = 0;
  #tail = new Uint8Array(0);
  #head = new Uint8Array(0);

  constructor(readonly fullLimit = 1024 * 1024) {}

  /** Passes `source` through, keeping what the summary needs. */
  async *tap(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      if (this.#head.length < HEAD_BYTES) {
        // The head may span several reads (a first network read can be a few bytes).
        const more = chunk.subarray(0, HEAD_BYTES - this.#head.length);
        const head = new Uint8Array(this.#head.length + more.length);
        head.set(this.#head, 0);
        head.set(more, this.#head.length);
        this.#head = head;
      }
      if (this.#fullSize <= this.fullLimit) {
        this.#full.push(chunk);
        this.#fullSize += chunk.length;
      }
      const joined = new Uint8Array(Math.min(TAIL_BYTES, this.#tail.length + chunk.length));
      const fromChunk = chunk.subarray(Math.max(0, chunk.length - joined.length));
      const fromTail = this.#tail.subarray(this.#tail.length - (joined.length - fromChunk.length));
      joined.set(fromTail, 0);
      joined.set(fromChunk, fromTail.length);
      this.#tail = joined;
      if (this.#fullSize > this.fullLimit) this.#full = [];
      yield chunk;
    }
  }

  /** The summary of what went through. */
  summary(): ResponseSummary {
    const decoder = new TextDecoder();
    if (this.#fullSize <= this.fullLimit) {
      const text = decoder.decode(concatBytes(this.#full));
      try {
        const body = JSON.parse(text);
        return {
          finishReason: body?.choices?.[0]?.finish_reason ?? null,
          usage: isObject(body?.usage) ? body.usage : null,
          model: typeof body?.model === "string" ? body.model : null,
          parsed: isObject(body) && Array.isArray(body.choices),
        };
      } catch (err) {
        if (err instanceof SyntaxError) return { finishReason: null, usage: null, model: null, parsed: false };
        throw err;
      }
    }
    const tail = decoder.decode(this.#tail);
    const head = decoder.decode(this.#head);
    const finishes = [...tail.matchAll(/"finish_reason"\s*:\s*"([^"]{1,40})"/g)];
    const usageMatch = /"usage"\s*:\s*(\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\})/.exec(tail);
    let usage: Record<string, unknown> | null = null;
    if (usageMatch) {
      try {
        usage = JSON.parse(usageMatch[1]);
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
      }
    }
    const model = /"model"\s*:\s*"([^"]{1,200})"/.exec(head)?.[1] ?? null;
    return {
      finishReason: finishes.at(-1)?.[1] ?? null,
      usage,
      model,
      parsed: /^\s*\{/.test(head) && /\}\s*$/.test(tail),
    };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
