import type { Step } from "./directives.ts";

/** Counters of one path prefix (every request under it, e.g. "/kimi" and "/kimi/v1" for "/kimi/v1/…"). */
export interface PrefixStats {
  /** API requests (chat, models, files) under the prefix, whatever their outcome. */
  requests: number;
  /** Chat completion requests that got past authentication and parsing. */
  chat_requests: number;
  /** Of those, how many asked for `"stream": true`. */
  streams: number;
  /** API requests being answered now (a body counts until sent or the client left; a hang until it ends). */
  in_flight: number;
  /** The highest `in_flight` seen since start or the last `POST /__standin/reset`. */
  max_in_flight: number;
  /** `POST …/files` that stored a file. */
  uploads: number;
  /** `DELETE …/files/{id}` that deleted a file. */
  deletes: number;
  /** `GET …/files/{id}/content` that returned content. */
  content_reads: number;
}

/** A provider outage switched on for a path prefix with `POST /__standin/outage`. */
export interface Outage {
  /** An HTTP status (as text, e.g. "503"), "hang", "reset" or "slow_body". */
  mode: string;
  /** `Retry-After` seconds on 429 and 503 (default 1). */
  retry_after?: number;
  /** `slow_body`: milliseconds between 16-byte pieces (default 1000). */
  interval_ms?: number;
}

/** A script set for a path prefix with `POST /__standin/script`. */
export interface PrefixScript {
  steps: Step[];
  retry_after?: number;
  /** Chat calls under the prefix since the script was set; call N plays step N. */
  calls: number;
}

/** The counter names of {@link PrefixStats} that are plain counts. */
export type PrefixCounter = "requests" | "chat_requests" | "streams" | "uploads" | "deletes" | "content_reads";

const emptyStats = (): PrefixStats => ({
  requests: 0,
  chat_requests: 0,
  streams: 0,
  in_flight: 0,
  max_in_flight: 0,
  uploads: 0,
  deletes: 0,
  content_reads: 0,
});

/** "/kimi/v1" → ["/kimi", "/kimi/v1"]: every segment prefix of an API base path. */
export function ancestors(base: string): string[] {
  const segments = base.split("/").filter(Boolean);
  return segments.map((_, i) => "/" + segments.slice(0, i + 1).join("/"));
}

/** Whether `path` is `prefix` or below it, at a segment boundary ("" is the root and matches everything). */
export function underPrefix(path: string, prefix: string): boolean {
  return prefix === "" || path === prefix || path.startsWith(prefix + "/");
}

/** The entry of `map` whose key is the longest prefix of `path`, if any. */
export function longestMatch<T>(map: Map<string, T>, path: string): [string, T] | undefined {
  let best: [string, T] | undefined;
  for (const entry of map) {
    if (underPrefix(path, entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
  }
  return best;
}

/** Mutable counters, gauges, outages and scripts of one stand-in; `reset()` starts them afresh. */
export class StandinState {
  requests = 0;
  chatRequests = 0;
  inFlight = 0;
  maxInFlight = 0;
  readonly tags = new Map<string, number>();
  readonly prefixes = new Map<string, PrefixStats>();
  readonly outages = new Map<string, Outage>();
  readonly scripts = new Map<string, PrefixScript>();

  /** Counts a request as in flight (globally, and under each prefix of `base` when it is an API request). */
  enter(base: string | null): () => void {
    this.requests++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    const stats = base === null ? [] : ancestors(base).map((prefix) => this.stats(prefix));
    for (const s of stats) {
      s.requests++;
      s.max_in_flight = Math.max(s.max_in_flight, ++s.in_flight);
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.inFlight--;
      for (const s of stats) s.in_flight--;
    };
  }

  /** Adds one to `counter` under every prefix of `base`. */
  count(base: string, counter: PrefixCounter): void {
    for (const prefix of ancestors(base)) this.stats(prefix)[counter]++;
  }

  /** Counts a call carrying `tag` and returns its number (1 for the first). */
  countTag(tag: string): number {
    const call = (this.tags.get(tag) ?? 0) + 1;
    this.tags.set(tag, call);
    return call;
  }

  /**
   * Zeroes counters, drops outages and scripts, and lowers high-water marks to what is in flight now (requests
   * still running are not forgotten, so the gauges never go negative).
   */
  reset(): void {
    this.requests = 0;
    this.chatRequests = 0;
    this.maxInFlight = this.inFlight;
    this.tags.clear();
    for (const [prefix, s] of this.prefixes) {
      if (s.in_flight === 0) this.prefixes.delete(prefix);
      // In place: requests in flight hold this object and decrement it when they end.
      else Object.assign(s, { ...emptyStats(), in_flight: s.in_flight, max_in_flight: s.in_flight });
    }
    this.outages.clear();
    this.scripts.clear();
  }

  private stats(prefix: string): PrefixStats {
    let s = this.prefixes.get(prefix);
    if (!s) this.prefixes.set(prefix, s = emptyStats());
    return s;
  }
}
