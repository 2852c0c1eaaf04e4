/**
 * The client's side of a relayed stream (CONTRACT.md §10): the run pushes the provider's bytes in as they arrive
 * and the HTTP response reads them out. The run never waits for a client that left: once the response body is
 * cancelled (the client disconnected), pushes are dropped and the run goes on reading the provider to the end, so
 * the message still completes. A slow client holds the run back once `highWaterBytes` are queued for it (bounded
 * memory), and lets it go the moment it leaves.
 *
 * The stream's end is held back until the message is committed: the bytes that carry `data: [DONE]` go out only
 * once the payload is durably stored ({@link StreamRelay.finish}); if storing fails, the client gets the bus's error
 * event instead ({@link StreamRelay.fail}), so a stream whose payload was lost never looks complete.
 */

import { atEventBoundary, errorEvent, nextTail } from "./events.ts";

/** Bytes queued for a slow client before the run waits for it. */
const HIGH_WATER_BYTES = 1024 * 1024;

export class StreamRelay {
  /** The response body. */
  readonly readable: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #gone = false;
  #closed = false;
  #wake: (() => void) | undefined;
  #opened = Promise.withResolvers<void>();
  #held: Uint8Array[] = [];
  #tail = "";
  /** Bytes handed to the client's queue so far. */
  sent = 0;

  constructor(highWaterBytes = HIGH_WATER_BYTES) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#controller = c;
        },
        pull: () => this.#resume(),
        cancel: () => {
          this.#gone = true;
          this.#resume();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: highWaterBytes }),
    );
  }

  /**
   * Resolves once the run committed to a provider's stream (its first event arrived) and the response can start;
   * never rejects (a run that fails before that rejects its own promise).
   */
  get opened(): Promise<void> {
    return this.#opened.promise;
  }

  /** Whether the client has left (its response body was cancelled). */
  get clientGone(): boolean {
    return this.#gone;
  }

  /** Whether the response has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The run committed: from now on there is no retry and no fallback (the client is about to get bytes). */
  open(): void {
    this.#opened.resolve();
  }

  /** Queues `bytes` for the client; waits while the client is slow, never once it is gone. */
  async send(bytes: Uint8Array): Promise<void> {
    if (this.#closed || bytes.length === 0) return;
    if (this.#held.length) {
      this.#held.push(bytes); // nothing overtakes held bytes
      return;
    }
    this.#tail = nextTail(this.#tail, bytes);
    if (this.#gone) return;
    this.#controller.enqueue(bytes);
    this.sent += bytes.length;
    while (!this.#gone && (this.#controller.desiredSize ?? 1) <= 0) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Keeps `bytes` (the stream's end) until {@link finish}, or drops them for {@link fail}'s error event. */
  hold(bytes: Uint8Array): void {
    if (!this.#closed && bytes.length) this.#held.push(bytes);
  }

  /** The message is committed: sends what was held and ends the response. */
  finish(): void {
    if (this.#closed) return;
    for (const bytes of this.#held.splice(0)) this.#push(bytes);
    this.#close();
  }

  /**
   * The stream will not end cleanly after all (storing it failed): drops what was held, sends the bus's error event
   * and ends the response.
   */
  fail(code: string, message: string): void {
    if (this.#closed) return;
    this.#held.length = 0;
    this.#push(errorEvent(code, message, !atEventBoundary(this.#tail)));
    this.#close();
  }

  #push(bytes: Uint8Array): void {
    this.#tail = nextTail(this.#tail, bytes);
    if (this.#gone) return;
    this.#controller.enqueue(bytes);
    this.sent += bytes.length;
  }

  #close(): void {
    this.#closed = true;
    if (this.#gone) return;
    try {
      this.#controller.close();
    } catch (err) {
      // Closing a stream the runtime already errored (the connection broke between two pushes) is the only way here.
      if (!(err instanceof TypeError)) throw err;
      this.#gone = true;
    }
  }

  #resume(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
