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
  /** The client was closed; the listener is removed. */
  ended(): void;
}

const PAGE = 1000;
const MAX_PAGES = 100;
/** How often the feed checks that its channel is joined. */
const SUPERVISE_MS = 500;
/** Not joined for this long (after each forced rejoin, the next step): leave and join afresh. */
const REJOIN_AFTER_MS = [2000, 4000, 8000, 10000];
/** A join still in progress is left alone this long (realtime-js times out at 10 s and retries, §3.6). */
const JOINING_GRACE_MS = 15_000;

/** The shared feed of one client. Listeners are added by `subscribe()`; the channel lives while any remain. */
export class Feed {
  readonly #deps: FeedDeps;
  readonly #listeners = new Set<FeedListener>();
  /** Counts starts and stops of the feed; catch-ups of an earlier session are dropped. */
  #session = 0;
  /** Counts channels; callbacks of an earlier channel are ignored. */
  #generation = 0;
  #channel: RealtimeChannel | undefined;
  #joined = false;
  #notJoinedSince = 0;
  #rejoins = 0;
  #startedAt = 0;
  #watermark: number | undefined;
  #catchUp: Promise<void> = Promise.resolve();
  #timers: Array<ReturnType<typeof setInterval>> = [];

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

  /** Ends every listener (their iterations report done) and leaves the channel. */
  async close(): Promise<void> {
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    if (listeners.length) await this.#stop();
    for (const l of listeners) l.ended();
  }

  #start(): void {
    this.#session++;
    const gen = ++this.#generation;
    this.#startedAt = this.#notJoinedSince = Date.now();
    this.#watermark = undefined;
    this.#rejoins = 0;
    this.#timers.push(setInterval(() => this.#supervise(), SUPERVISE_MS));
    if (this.#deps.catchUpIntervalMs > 0) {
      this.#timers.push(setInterval(() => this.#scheduleCatchUp(this.#since()), this.#deps.catchUpIntervalMs));
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
    if (status === "SUBSCRIBED") {
      this.#joined = true;
      this.#rejoins = 0;
      for (const l of this.#listeners) l.joined();
      this.#scheduleCatchUp(this.#since());
      return;
    }
    this.#setNotJoined();
    if (status === "CHANNEL_ERROR" && err?.message.startsWith("Unauthorized")) {
      // §3.2, §3.6: realtime-js would keep rejoining, but a refused join does not fix itself.
      this.#fail(gen, new RealtimeError(err.message, ErrorCode.RealtimeUnauthorized, { cause: err }));
    } else {
      // The socket dropped, the join timed out or the server closed the channel: realtime-js rejoins by itself in
      // most cases; #supervise() steps in when it does not (after disconnect(), or a server-side close).
      this.#deps.warn(`channel ${status}${err ? `: ${err.message}` : ""}`);
    }
  }

  #setNotJoined(): void {
    if (this.#joined) this.#notJoinedSince = Date.now();
    this.#joined = false;
  }

  #supervise(): void {
    const gen = this.#generation;
    if (this.#joined && !this.#deps.supabase.realtime.isConnected()) this.#setNotJoined();
    if (this.#joined) return;
    const waited = Date.now() - this.#notJoinedSince;
    const limit = this.#channel?.state === "joining"
      ? JOINING_GRACE_MS
      : REJOIN_AFTER_MS[Math.min(this.#rejoins, REJOIN_AFTER_MS.length - 1)];
    if (waited < limit) return;
    this.#rejoins++;
    this.#notJoinedSince = Date.now();
    this.#rejoin(gen).catch((err) => this.#deps.warn(`rejoin failed: ${err instanceof Error ? err.message : err}`));
  }

  /** Leaves the current channel (its callbacks are ignored from now on) and joins a new one. */
  async #rejoin(gen: number): Promise<void> {
    if (gen !== this.#generation) return;
    const next = ++this.#generation;
    const old = this.#channel;
    this.#channel = undefined;
    if (old) await this.#deps.supabase.removeChannel(old);
    if (next !== this.#generation) return;
    this.#join(next).catch((err) => this.#fail(next, err));
  }

  #onBroadcast(gen: number, name: string, payload: unknown): void {
    if (gen !== this.#generation) return;
    const event = eventFromBroadcast(name, payload);
    if (!event) return this.#deps.warn(`ignoring a malformed ${name} event: ${JSON.stringify(payload)}`);
    this.#deliver([event]);
  }

  /** Hands events on; those for every listener also move the watermark (a listener's own `since` does not). */
  #deliver(events: BusEvent[], to?: FeedListener[]): void {
    for (const e of events) {
      if (!to && e.type === "message") this.#watermark = Math.max(this.#watermark ?? 0, Date.parse(e.updated_at));
      for (const l of to ?? [...this.#listeners]) l.event(e);
    }
  }

  #since(): number {
    return (this.#watermark ?? this.#startedAt) - this.#deps.marginMs;
  }

  /** Runs catch-ups one after another (pages in order); failures are retried by the next one. */
  #scheduleCatchUp(sinceMs: number, to?: FeedListener[]): void {
    const session = this.#session;
    this.#catchUp = this.#catchUp.then(() => this.#runCatchUp(session, sinceMs, to)).catch((err) => {
      const what = isBusClientError(err) ? err.message : err instanceof Error ? err.stack : String(err);
      this.#deps.warn(`catch-up failed (retried on the next rejoin or period): ${what}`);
    });
  }

  async #runCatchUp(session: number, sinceMs: number, to?: FeedListener[]): Promise<void> {
    let since = sinceMs;
    for (let page = 0; page < MAX_PAGES; page++) {
      if (session !== this.#session) return;
      const rows = await this.#deps.list(new Date(since), PAGE);
      if (session !== this.#session) return;
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
    this.#session++;
    this.#generation++;
    this.#joined = false;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel) await this.#deps.supabase.removeChannel(channel);
    await this.#catchUp;
  }
}
