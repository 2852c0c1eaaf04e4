/**
 * Recording a message before its provider is called: the row (pending, under a lease) and its stored request, in
 * one statement for a request of one chunk (nearly all of them), else the row, the request's chunks and a seal.
 */
import { createHash } from "node:crypto";
import { type Query, withDb } from "../db.ts";
import { CHUNK_SIZE, storedForm, storePayload } from "../payload_store.ts";
import { pieces } from "../bytes.ts";

export interface NewMessage {
  owner: string;
  tool: string;
  provider: string;
  model: string;
  sessionId?: string;
  idempotencyKey?: string;
  ttlSeconds: number;
  metadata: Record<string, unknown>;
  mode: "sync" | "async";
  stream?: boolean;
  replayOf?: string;
  /** The request body exactly as received. */
  request: Uint8Array;
  leaseSeconds: number;
  /** Largest request accepted (the door has checked it; the store checks again). */
  maxRequestBytes: number;
  /** The caller's per-minute limit unless overridden (MESSAGE_BUS_USER_RPM; 0 = unlimited). */
  defaultRpm?: number;
  /** With a concurrency limit on the requested provider: take a slot right away (`slot` says whether it did). */
  slot?: { max: number; leaseSeconds: number };
}

/** The caller's rate-limit standing after this request (when a limit applies). */
export interface RateStanding {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

export interface Recorded {
  /** Empty when `status` is `rate_limited` (nothing was recorded). */
  transactionId: string;
  /** False when the idempotency key was used before: the message is the earlier one, nothing was recorded. */
  created: boolean;
  /** `pending` for a new message; the earlier one's status for a repeat; `rate_limited` past the caller's limit. */
  status: string;
  /** The requested route's circuit state (new messages only), and until when it is open. */
  routeState: "closed" | "open" | "half_open" | null;
  routeOpenUntil: Date | null;
  /** Whether a concurrency slot was taken (null: no limit, or the route is not closed). */
  slot: boolean | null;
  rate: RateStanding | null;
}

/**
 * Records `m`. The row's commit waits for its WAL flush whatever the mode: a failure is answered with the transaction
 * id even when recording that failure is impossible (the database gone mid-store), so the id must name a message that
 * survives a crash. (A sync begin without the flush wait saved ~0.4 ms of added p50, bench/RESULTS.md; the fault
 * benchmark then found a sync caller holding the id of a row that crash recovery had dropped,
 * tests/crash_durable_id_test.ts.)
 */
export async function recordMessage(sql: Query, m: NewMessage): Promise<Recorded> {
  const small = m.request.length <= CHUNK_SIZE;
  const stored = small ? storedForm(m.request) : undefined;
  const checksum = small ? sha256(m.request) : null;
  const [row] = await withDb((sql) =>
    sql<{
      transaction_id: string;
      status: string;
      created: boolean;
      route_state: Recorded["routeState"];
      route_open_until: Date | null;
      slot: boolean | null;
      rate_limit: number | null;
      rate_remaining: number | null;
      rate_reset_seconds: number | null;
    }[]>`
    select transaction_id, status, created, route_state, route_open_until, slot, rate_limit, rate_remaining,
           rate_reset_seconds
    from bus.begin_message(
      p_owner => ${m.owner}::uuid, p_tool => ${m.tool}, p_provider => ${m.provider}, p_model => ${m.model},
      p_session_id => ${m.sessionId ?? null}, p_idempotency_key => ${m.idempotencyKey ?? null},
      p_ttl_seconds => ${m.ttlSeconds}, p_metadata => ${sql.json(m.metadata as never)}, p_mode => ${m.mode},
      p_lease_seconds => ${m.leaseSeconds},
      p_request_size => ${small ? m.request.length : null}, p_request_stored_size => ${stored?.bytes.length ?? null},
      p_request_compression => ${stored?.compression ?? null},
      p_request_checksum => ${checksum},
      p_request_chunk_count => ${small ? (stored!.bytes.length > 0 ? 1 : 0) : null},
      p_request_last_chunk => ${stored && stored.bytes.length > 0 ? stored.bytes : null},
      p_stream => ${m.stream ?? false}, p_replay_of => ${m.replayOf ?? null}::uuid,
      p_default_rpm => ${m.defaultRpm ?? 0}, p_slot_max => ${m.slot?.max ?? null}::integer,
      p_slot_lease_seconds => ${m.slot?.leaseSeconds ?? 60})`, sql);
  const recorded: Recorded = {
    transactionId: row.transaction_id ?? "",
    created: row.created,
    status: row.status,
    routeState: row.route_state,
    routeOpenUntil: row.route_open_until,
    slot: row.slot,
    rate: row.rate_limit === null
      ? null
      : { limit: row.rate_limit, remaining: row.rate_remaining ?? 0, resetSeconds: row.rate_reset_seconds ?? 60 },
  };
  if (!row.created || small) return recorded;

  // A request of more than one chunk: its chunks, then the seal that checks they add up.
  const request = await storePayload(
    sql,
    row.transaction_id,
    ReadableStream.from(pieces(m.request)),
    m.maxRequestBytes,
    "request",
  );
  await withDb(
    (sql) =>
      sql`select bus.seal_request(${row.transaction_id}::uuid, ${request.payloadSize}, ${request.storedSize},
      ${request.compression}, ${request.checksum}, ${request.chunkCount}, ${request.lastChunk})`,
    sql,
  );
  return recorded;
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
