/**
 * What the bus learns from a provider's stream while relaying it, without keeping its text: how many events, the
 * first one (the commit point), whether `[DONE]` and a `finish_reason` came, an error event, usage and model, and
 * when the first output arrived (time to first token). At the end it says whether the stream ended cleanly
 * (CONTRACT.md §10): a stream that ends without `[DONE]` or a `finish_reason`, or with an error event, is never
 * a clean end.
 */
import { LeanFrames } from "./lean_frames.ts";
import {
  atEventBoundary,
  carriesOutput,
  EventReader,
  finishReasons,
  nextTail,
  type StreamEvent,
  usageOf,
} from "./events.ts";

export class StreamWatch {
  events = 0;
  first: StreamEvent | undefined;
  sawDone = false;
  finishReason: string | null = null;
  usage: Record<string, unknown> | null = null;
  model: string | null = null;
  /** The first error event's error object. */
  error: Record<string, unknown> | null = null;
  /** Data that was neither a chunk, an error nor [DONE]. */
  invalid = 0;
  /** performance.now() of the first event carrying content, reasoning or tool-call text. */
  firstOutputAt: number | undefined;
  /** Bytes seen, and whether they end on an event boundary (a blank line). */
  bytes = 0;
  #tail = "";
  #reader = new EventReader((event) => this.#see(event));
  // What the run records needs every small event and each event before the first output, but of a large content
  // event only whether it names a finish_reason, usage or error: the others are counted, not parsed.
  #frames: LeanFrames | undefined;

  /** @param opts.exact parse every event (the reference the byte framing is tested against) */
  constructor(opts: { exact?: boolean } = {}) {
    if (!opts.exact) {
      this.#frames = new LeanFrames(
        (bytes) => this.#reader.push(bytes),
        () => this.events++,
        () => this.firstOutputAt === undefined,
      );
    }
  }

  /** Large events counted without being parsed. */
  get skipped(): number {
    return this.#frames?.skipped ?? 0;
  }

  /** Feeds the next bytes, as they arrived. */
  push(bytes: Uint8Array): void {
    this.bytes += bytes.length;
    if (this.#frames) this.#frames.push(bytes);
    else this.#reader.push(bytes);
    this.#tail = nextTail(this.#tail, bytes);
  }

  /** Whether the bytes so far end between two events (so that an event appended now stands on its own). */
  get atBoundary(): boolean {
    return atEventBoundary(this.#tail);
  }

  /**
   * Why the stream, ended now, is not a clean end; null when it is. `transport` is what ended it when it was not
   * the provider closing normally.
   */
  incomplete(transport?: string): string | null {
    if (transport) return transport;
    if (this.error) {
      const message = typeof this.error.message === "string" ? `: ${this.error.message}` : "";
      return `the provider sent an error event${message}`;
    }
    if (!this.sawDone && this.finishReason === null) {
      return "the stream ended without data: [DONE] or a finish_reason";
    }
    return null;
  }

  #see(event: StreamEvent): void {
    this.events++;
    this.first ??= event;
    switch (event.kind) {
      case "done":
        this.sawDone = true;
        return;
      case "error":
        this.error ??= event.error;
        return;
      case "invalid":
        this.invalid++;
        return;
      case "chunk": {
        const chunk = event.chunk;
        if (typeof chunk.model === "string") this.model ??= chunk.model;
        const reasons = finishReasons(chunk);
        if (reasons.length) this.finishReason = reasons.at(-1)!.reason;
        this.usage = usageOf(chunk) ?? this.usage;
        if (this.firstOutputAt === undefined && carriesOutput(chunk)) this.firstOutputAt = performance.now();
      }
    }
  }
}
