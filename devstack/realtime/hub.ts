/**
 * Fan-out of broadcasts to joined channels. Public and private channels of the same name are separate topics
 * (supabase-platform.md §3.1: `<tenant>:<topic>` vs `<tenant>-private:<topic>`), and a private subscriber only gets
 * broadcasts when its join probe allowed broadcast read (§3.7, last bullet).
 */
import type postgres from "postgres";
import type { Outbound } from "./serializer.ts";

/** A joined channel as the hub sees it. */
export interface Subscriber {
  /** The sub-topic, without `realtime:`. */
  readonly subTopic: string;
  /** The joined topic, `realtime:<subTopic>`. */
  readonly topic: string;
  readonly private: boolean;
  /** Whether broadcasts may be delivered (always true for public channels). */
  canReadBroadcast(): boolean;
  push(out: Outbound): void;
}

/** What every part of the server shares. */
export interface Context {
  sql: postgres.Sql;
  secret: Uint8Array;
  hub: Hub;
  log: (msg: string) => void;
}

/** Registry of joined channels by (privacy, sub-topic). */
export class Hub {
  #topics = new Map<string, Set<Subscriber>>();

  /** Registers a joined channel. */
  add(sub: Subscriber): void {
    const key = keyOf(sub.subTopic, sub.private);
    let set = this.#topics.get(key);
    if (!set) this.#topics.set(key, set = new Set());
    set.add(sub);
  }

  /** Unregisters a channel; unknown channels are ignored. */
  remove(sub: Subscriber): void {
    const key = keyOf(sub.subTopic, sub.private);
    const set = this.#topics.get(key);
    if (!set) return;
    set.delete(sub);
    if (set.size === 0) this.#topics.delete(key);
  }

  /**
   * Pushes to every subscriber of `subTopic` with the given privacy, except `except` (the sender when `self` is off).
   * `build` gets each subscriber's joined topic. Returns how many subscribers got it.
   */
  dispatch(
    subTopic: string,
    isPrivate: boolean,
    build: (topic: string) => Outbound,
    except?: Subscriber,
  ): number {
    let count = 0;
    for (const sub of [...(this.#topics.get(keyOf(subTopic, isPrivate)) ?? [])]) {
      if (sub === except || !sub.canReadBroadcast()) continue;
      sub.push(build(sub.topic));
      count++;
    }
    return count;
  }

  /** Number of joined channels (for tests and logs). */
  get size(): number {
    let n = 0;
    for (const set of this.#topics.values()) n += set.size;
    return n;
  }
}

function keyOf(subTopic: string, isPrivate: boolean): string {
  return `${isPrivate ? "private" : "public"}:${subTopic}`;
}
