/**
 * One client's live feed of `bus:<uid>` (CONTRACT.md §6), shared by all its subscriptions: the private Realtime
 * channel plus catch-up through the list endpoint (CONTRACT.md §5). Realtime is a hint, the table is the truth:
 * after every (re)join, and every `catchUpIntervalMs` while anyone listens, the feed lists the messages changed
 * since the last `updated_at` it saw (minus a margin) and hands them on like pushed events; listeners de-duplicate.
 */
import type { RealtimeChannel, SupabaseClient } from "@supabase/supabase-js";
import { type BusClientError, ErrorCode, isBusClientError, RealtimeError } from "./errors.ts";
import type { BusEvent, MessageMeta } from "./types.ts";
import { eventFromBroadcast, eventsFromMeta } from "./events.ts";

/** What a feed needs from its client. */
export interface FeedDeps {
  supabase: SupabaseClient;
  /** The topic to join, `bus:<uid>`. */
  topic: () => Promise<string>;
  /** One page of the list endpoint; throws a BusClientError. */
  list: (since: Date, limit: number) => Promise<MessageMeta[]>;
  /** How far before the last `updated_at` seen a catch-up starts (clock skew, commit order). */
  marginMs: number;
  /** Catch-up period while anyone listens; 0 turns the periodic catch-up off. */
  catchUpIntervalMs: number;
  warn: (msg: string) => void;
}

/** A subscriber of the feed. */
export interface FeedListener {
  event(e: BusEvent): void;
  /** The channel was joined (called again after every rejoin). */
  joined(): void;
  /** The feed gave up (the join was refused); the listener is removed. */
  failed(err: BusClientError): void;
}

const PAGE = 1000;
const MAX_PAGES = 100;
/** phoenix's rejoin steps (supabase-platform.md §3.6), used when the channel was closed for good. */
const RESTART_AFTER_MS = [1000, 2000, 5000, 10000];

/** The shared feed of one client. Listeners are added by `subscribe()`; the channel lives while any remain. */
export class Feed {
  readonly #deps: FeedDeps;
  readonly #listeners = new Set<FeedListener>();
  #generation = 0;
  #channel: RealtimeChannel | undefined;
  #joined = false;
  #startedAt = 0;
  #watermark: number | undefined;
  #restarts = 0;
  #catchUp: Promise<void> = Promise.resolve();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #interval: ReturnType<typeof setInterval> | undefined;

  constructor(deps: FeedDeps) {
    this.#deps = deps;
  }

  /** Adds a listener; with `since`, it also gets a catch-up of its own from that time once joined. */
  add(listener: FeedListener, since?: Date): void {
    const first = this.#listeners.size === 0;
    this.#listeners.add(listener);
    if (first) this.#start();
    else if (this.#joined) listener.joined();
    if (since) this.#scheduleCatchUp(since.getTime(), [listener]);
  }

  /** Removes a listener; the last one out leaves the channel. */
  async remove(listener: FeedListener): Promise<void> {
    if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return;
    await this.#stop();
  }

  #start(): void {
    const gen = ++this.#generation;
    this.#startedAt = Date.now();
    this.#watermark = undefined;
    if (this.#deps.catchUpIntervalMs > 0) {
      this.#interval = setInterval(() => this.#scheduleCatchUp(this.#since()), this.#deps.catchUpIntervalMs);
    }
    this.#join(gen).catch((err) => this.#fail(gen, err));
  }

  async #join(gen: number): Promise<void> {
    const topic = await this.#deps.topic();
    // §3.6: the join carries the user's JWT as access_token; the server probes RLS with it (§3.2).
    await this.#deps.supabase.realtime.setAuth();
    if (gen !== this.#generation) return;
    const channel = this.#deps.supabase.channel(topic, { config: { private: true } });
    for (const name of ["message", "observation"]) {
      channel.on("broadcast", { event: name }, (msg) => this.#onBroadcast(gen, name, msg.payload));
    }
    this.#channel = channel;
    channel.subscribe((status, err) => this.#onStatus(gen, status, err));
  }

  #onStatus(gen: number, status: string, err?: Error): void {
    if (gen !== this.#generation) return;
    this.#joined = status === "SUBSCRIBED";
    if (status === "SUBSCRIBED") {
      this.#restarts = 0;
      for (const l of this.#listeners) l.joined();
      this.#scheduleCatchUp(this.#since());
    } else if (status === "CHANNEL_ERROR" && err?.message.startsWith("Unauthorized")) {
      // §3.6: realtime-js would keep rejoining; a refused join does not fix itself.
      this.#fail(gen, new RealtimeError(err.message, ErrorCode.RealtimeUnauthorized, { cause: err }));
    } else if (status === "CLOSED") {
      // Closed by the server (e.g. token expiry, §3.6) or a clean disconnect: realtime-js will not rejoin.
      const delay = RESTART_AFTER_MS[Math.min(this.#restarts++, RESTART_AFTER_MS.length - 1)];
      this.#deps.warn(`channel closed; rejoining in ${delay} ms`);
      this.#later(delay, () => this.#restart(gen));
    } else {
      // CHANNEL_ERROR (socket dropped) or TIMED_OUT: realtime-js reconnects and rejoins with backoff.
      this.#deps.warn(`channel ${status}${err ? `: ${err.message}` : ""}; realtime-js rejoins`);
    }
  }

  async #restart(gen: number): Promise<void> {
    if (gen !== this.#generation) return;
    const old = this.#channel;
    this.#channel = undefined;
    if (old) await this.#deps.supabase.removeChannel(old);
    if (gen !== this.#generation) return;
    if (!this.#deps.supabase.realtime.isConnected()) this.#deps.supabase.realtime.connect();
    this.#join(gen).catch((err) => this.#fail(gen, err));
  }

  #onBroadcast(gen: number, name: string, payload: unknown): void {
    if (gen !== this.#generation) return;
    const event = eventFromBroadcast(name, payload);
    if (!event) return this.#deps.warn(`ignoring a malformed ${name} event: ${JSON.stringify(payload)}`);
    this.#deliver([event]);
  }

  #deliver(events: BusEvent[], to: Iterable<FeedListener> = this.#listeners): void {
    for (const e of events) {
      if (e.type === "message") this.#watermark = Math.max(this.#watermark ?? 0, Date.parse(e.updated_at));
      for (const l of [...to]) l.event(e);
    }
  }

  #since(): number {
    return (this.#watermark ?? this.#startedAt) - this.#deps.marginMs;
  }

  /** Runs catch-ups one after another (pages in order); failures are retried by the next one. */
  #scheduleCatchUp(sinceMs: number, to?: FeedListener[]): void {
    const gen = this.#generation;
    this.#catchUp = this.#catchUp.then(() => this.#runCatchUp(gen, sinceMs, to)).catch((err) => {
      if (!isBusClientError(err)) throw err;
      this.#deps.warn(`catch-up failed (retried on the next rejoin or period): ${err.message}`);
    });
  }

  async #runCatchUp(gen: number, sinceMs: number, to?: FeedListener[]): Promise<void> {
    let since = sinceMs;
    for (let page = 0; page < MAX_PAGES; page++) {
      if (gen !== this.#generation) return;
      const rows = await this.#deps.list(new Date(since), PAGE);
      if (gen !== this.#generation) return;
      this.#deliver(rows.flatMap(eventsFromMeta), to?.filter((l) => this.#listeners.has(l)));
      if (rows.length < PAGE) return;
      // The list is "updated_at > since" in milliseconds here: step back 1 ms so rows sharing the last
      // timestamp are not skipped (listeners drop the repeats), but always move forward.
      since = Math.max(Date.parse(rows[rows.length - 1].updated_at) - 1, since + 1);
    }
  }

  #fail(gen: number, err: unknown): void {
    if (gen !== this.#generation) return;
    if (!isBusClientError(err)) {
      this.#deps.warn(`joining the channel failed unexpectedly: ${err instanceof Error ? err.stack : err}`);
      err = new RealtimeError(`Could not join the channel: ${err instanceof Error ? err.message : err}`);
    }
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    this.#stop().catch((stopErr) => this.#deps.warn(`leaving the channel failed: ${stopErr}`));
    for (const l of listeners) l.failed(err as BusClientError);
  }

  async #stop(): Promise<void> {
    this.#generation++;
    this.#joined = false;
    clearInterval(this.#interval);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel) await this.#deps.supabase.removeChannel(channel);
    await this.#catchUp;
  }

  #later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn().catch((err) => this.#deps.warn(`rejoin failed: ${err instanceof Error ? err.message : err}`));
    }, ms);
    this.#timers.add(t);
  }
}
