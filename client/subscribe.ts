/**
 * `subscribe()`'s result: an async iterator of the caller's events on `bus:<uid>` (CONTRACT.md §6), fed by the
 * client's shared {@link Feed}. Each event is yielded once per (transaction_id, status), whether it was pushed
 * or found by a catch-up after a reconnect; a status older than one already yielded for a message is dropped.
 */
import { BusClientError, ErrorCode } from "./errors.ts";
import { EventDeduper } from "./events.ts";
import type { Feed, FeedListener } from "./feed.ts";
import type { BusEvent } from "./types.ts";

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** Ends the iteration (the iterator then reports done). */
  signal?: AbortSignal;
  /** Also yield the changes since this time (from the list endpoint) once joined. */
  since?: Date | string;
}

type Waiter = { resolve: (r: IteratorResult<BusEvent>) => void; reject: (err: unknown) => void };

/**
 * A live subscription. Iterate it with `for await`; `close()` (or `break`, or the abort signal) ends it.
 * If the server refuses the join, `ready` rejects and the iterator throws a `RealtimeError`
 * (`code: "realtime_unauthorized"`).
 */
export class Subscription implements AsyncIterableIterator<BusEvent>, FeedListener {
  readonly #feed: Feed;
  readonly #dedupe = new EventDeduper();
  readonly #queue: BusEvent[] = [];
  readonly #waiters: Waiter[] = [];
  /** "joined", or why the channel will never be joined, or undefined while joining. */
  #joinOutcome: "joined" | BusClientError | undefined;
  #readyWaiters: Array<{ resolve: () => void; reject: (err: BusClientError) => void }> = [];
  #error: BusClientError | undefined;
  #done = false;
  #closed = false;
  readonly #signal?: AbortSignal;
  readonly #onAbort = () => {
    this.close().catch((err) => console.error(`[bus client] leaving the channel after abort failed: ${err}`));
  };

  constructor(feed: Feed, opts: SubscribeOptions = {}) {
    this.#feed = feed;
    this.#signal = opts.signal;
    if (opts.signal?.aborted) {
      this.#done = this.#closed = true;
      this.#settleReady(new BusClientError("The subscription was aborted before it started", ErrorCode.Closed));
      return;
    }
    opts.signal?.addEventListener("abort", this.#onAbort, { once: true });
    feed.add(this, opts.since === undefined ? undefined : new Date(opts.since));
  }

  /**
   * Resolves once the channel is joined (the first time); rejects with a `RealtimeError` if the join is refused,
   * or a `BusClientError` (`code: "closed"`) if the subscription ends first.
   */
  get ready(): Promise<void> {
    const outcome = this.#joinOutcome;
    if (outcome === "joined") return Promise.resolve();
    if (outcome) return Promise.reject(outcome);
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  #settleReady(outcome: "joined" | BusClientError): void {
    if (this.#joinOutcome) return;
    this.#joinOutcome = outcome;
    for (const w of this.#readyWaiters.splice(0)) {
      if (outcome === "joined") w.resolve();
      else w.reject(outcome);
    }
  }

  /** @internal FeedListener: a pushed or caught-up event. */
  event(e: BusEvent): void {
    if (this.#done || !this.#dedupe.accept(e)) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ value: e, done: false });
    else this.#queue.push(e);
  }

  /** @internal FeedListener: the channel is joined. */
  joined(): void {
    this.#settleReady("joined");
  }

  /** @internal FeedListener: the feed gave up. */
  failed(err: BusClientError): void {
    this.#settleReady(err);
    this.#error = err;
    this.#finish();
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** @internal FeedListener: the client was closed. */
  ended(): void {
    this.#closed = true;
    this.#end();
  }

  /** The next event; waits for one. Throws the feed's error once, then reports done. */
  next(): Promise<IteratorResult<BusEvent>> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve({ value: queued, done: false });
    if (this.#error) {
      const err = this.#error;
      this.#error = undefined;
      this.#done = true;
      return Promise.reject(err);
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Ends the subscription (called by `break` in `for await`). */
  async return(): Promise<IteratorResult<BusEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the subscription; queued events are dropped, pending `next()` calls report done. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#end();
    await this.#feed.remove(this);
  }

  #end(): void {
    this.#settleReady(
      new BusClientError("The subscription was closed before the channel was joined", ErrorCode.Closed),
    );
    this.#finish();
    this.#queue.length = 0;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  #finish(): void {
    this.#done = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}
