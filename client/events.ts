/**
 * Events of `bus:<uid>` (CONTRACT.md §6) from their two sources — a Realtime broadcast payload, or a row of the
 * catch-up list (CONTRACT.md §5) — and the per-subscriber de-duplication that merges them.
 */
import type { BusEvent, MessageEvent, MessageMeta, MessageStatus, ObservationEvent } from "./types.ts";

const STATUSES = new Set<string>(["pending", "completed", "failed", "expired"]);
const VERDICTS = new Set<string>(["ok", "warning", "error"]);

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (
  v: unknown,
): number | null => (typeof v === "number" ? v : typeof v === "string" && v !== "" ? Number(v) : null);

/** A pushed event, or null when the payload is not one (it is then ignored). */
export function eventFromBroadcast(name: string, payload: unknown): BusEvent | null {
  if (typeof payload !== "object" || payload === null) return null;
  const p = payload as Json;
  if (name === "message") return messageEvent(p, "realtime");
  if (name === "observation") return observationEvent(p, "realtime");
  return null;
}

/** The events a catch-up row stands for: its current status, and its watcher observation when there is one. */
export function eventsFromMeta(meta: MessageMeta): BusEvent[] {
  const out: BusEvent[] = [];
  const message = messageEvent(meta as unknown as Json, "catch_up");
  if (message) out.push(message);
  if (meta.watcher) {
    const observation = observationEvent({ transaction_id: meta.transaction_id, ...meta.watcher }, "catch_up");
    if (observation) out.push(observation);
  }
  return out;
}

function messageEvent(p: Json, source: MessageEvent["source"]): MessageEvent | null {
  const id = str(p.transaction_id);
  const status = str(p.status);
  const updatedAt = str(p.updated_at);
  if (!id || !status || !STATUSES.has(status) || !updatedAt || Number.isNaN(Date.parse(updatedAt))) return null;
  return {
    type: "message",
    transaction_id: id,
    status: status as MessageStatus,
    tool: str(p.tool),
    provider: str(p.provider),
    payload_size_bytes: num(p.payload_size_bytes),
    checksum: str(p.checksum),
    finish_reason: str(p.finish_reason),
    updated_at: updatedAt,
    source,
  };
}

function observationEvent(p: Json, source: ObservationEvent["source"]): ObservationEvent | null {
  const id = str(p.transaction_id);
  const verdict = str(p.verdict);
  if (!id || !verdict || !VERDICTS.has(verdict) || !Array.isArray(p.findings)) return null;
  return {
    type: "observation",
    transaction_id: id,
    verdict: verdict as ObservationEvent["verdict"],
    findings: p.findings as ObservationEvent["findings"],
    source,
  };
}

/** Later statuses rank higher: an event older than what was already seen for a message is stale. */
const RANK: Record<MessageStatus, number> = { pending: 0, completed: 1, failed: 1, expired: 2 };

/**
 * Remembers which (transaction_id, status) pairs — and which observations — a subscriber has seen, so that an event
 * arriving both pushed and through a catch-up is yielded once, and a late `pending` after `completed` is dropped.
 * Keeps the most recent `capacity` messages.
 */
export class EventDeduper {
  readonly #seen = new Map<string, { rank: number; keys: Set<string> }>();
  constructor(private readonly capacity = 10_000) {}

  /** True the first time an event is offered, false for a repeat or a stale status. */
  accept(e: BusEvent): boolean {
    let entry = this.#seen.get(e.transaction_id);
    if (!entry) {
      entry = { rank: -1, keys: new Set() };
      this.#seen.set(e.transaction_id, entry);
      if (this.#seen.size > this.capacity) this.#seen.delete(this.#seen.keys().next().value!);
    }
    const key = e.type === "observation" ? "observation" : e.status;
    if (entry.keys.has(key)) return false;
    if (e.type === "message") {
      if (RANK[e.status] < entry.rank) return false;
      entry.rank = RANK[e.status];
    }
    entry.keys.add(key);
    return true;
  }
}
