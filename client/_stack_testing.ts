/**
 * Helpers for the SDK's tests against the running local stack (tests/realtime_delivery_test.ts,
 * tests/client_cli_test.ts): clients pinned to a Realtime protocol version, steered chat requests, bounded event
 * collection, and tampering with stored bytes.
 */
import { Buffer } from "node:buffer";
import { gunzipSync, gzipSync } from "node:zlib";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { type BusClientOptions, createBusClient } from "./bus_client.ts";
import type { Subscription } from "./subscribe.ts";
import type { BusEvent, InvokeRequest } from "./types.ts";

/** Both Realtime protocol versions (supabase-platform.md §3.5). */
export const VSNS = ["1.0.0", "2.0.0"] as const;

/**
 * A WebSocket transport that remembers its sockets (so a test can read their URL or close one under the client)
 * and can be taken "offline": while `offline.on` is set, new sockets go to a port where nothing listens.
 */
export function trackedTransport() {
  const sockets: WebSocket[] = [];
  const offline = { on: false };
  class TrackedWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(offline.on ? "ws://127.0.0.1:9/offline" : url, protocols);
      sockets.push(this);
    }
  }
  return { TrackedWebSocket, sockets, offline };
}

/** A fresh user and a bus client for them, on `vsn`; warnings are collected instead of printed. */
export async function userBus(vsn: string, extra: Partial<BusClientOptions> = {}) {
  const stack = testStack();
  const user = await newUser();
  const warnings: string[] = [];
  const transport = trackedTransport();
  const bus = createBusClient({
    url: stack.url,
    key: stack.anonKey,
    accessToken: user.token,
    onWarning: (m) => warnings.push(m),
    ...extra,
    realtime: { vsn, transport: transport.TrackedWebSocket, ...extra.realtime },
  });
  return { bus, user, warnings, sockets: transport.sockets, offline: transport.offline };
}

/** A chat request steered by a `#standin` directive (devstack/provider/directives.ts); the prompt is unique. */
export function chat(directive: Record<string, unknown> = {}, extra: Partial<InvokeRequest> = {}): InvokeRequest {
  const content = `bus client test ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}`;
  return { tool: "chat", provider: "kimi", input: { messages: [{ role: "user", content }] }, ...extra };
}

/** Collects events until `done(events)` holds; fails after `ms` listing what arrived. */
export async function collectUntil(
  sub: Subscription,
  done: (events: BusEvent[]) => boolean,
  ms = 15_000,
): Promise<BusEvent[]> {
  const events: BusEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms; got ${JSON.stringify(events)}`)), ms);
  });
  try {
    while (!done(events)) {
      const r = await Promise.race([sub.next(), timeout]);
      if (r.done) throw new Error(`the subscription ended; got ${JSON.stringify(events)}`);
      events.push(r.value);
    }
  } finally {
    clearTimeout(timer);
  }
  return events;
}

/** The statuses of the message events of `id`, in order. */
export function statusesOf(events: BusEvent[], id: string): string[] {
  return events.filter((e) => e.type === "message" && e.transaction_id === id).map((e) =>
    e.type === "message" ? e.status : ""
  );
}

/** True once every id has a `completed` event. */
export const allCompleted = (ids: string[]) => (events: BusEvent[]) =>
  ids.every((id) => events.some((e) => e.type === "message" && e.transaction_id === id && e.status === "completed"));

/**
 * Changes one byte of the stored payload of `id` behind the bus's back. Stored gzip is decompressed, changed,
 * recompressed and stored again in chunks of 1 MiB, so that it stays valid gzip and only the checksum can tell.
 */
export async function tamperStoredPayload(id: string): Promise<void> {
  const sql = adminSql();
  try {
    await sql.begin(async (tx) => {
      const [m] = await tx<
        { compression: string }[]
      >`select compression from public.message_bus where transaction_id = ${id}`;
      const chunks = await tx<{ data: Uint8Array }[]>`
        select data from public.message_bus_chunks where transaction_id = ${id} order by seq`;
      const stored = new Uint8Array(Buffer.concat(chunks.map((c) => c.data)));
      const raw = m.compression === "gzip" ? new Uint8Array(gunzipSync(stored)) : stored;
      raw[Math.floor(raw.length / 2)] ^= 0x01;
      const data = m.compression === "gzip" ? new Uint8Array(gzipSync(raw)) : raw;
      const pieces = Array.from(
        { length: Math.ceil(data.length / CHUNK) },
        (_, i) => data.subarray(i * CHUNK, (i + 1) * CHUNK),
      );
      await tx`delete from public.message_bus_chunks where transaction_id = ${id}`;
      for (const [seq, piece] of pieces.entries()) {
        await tx`insert into public.message_bus_chunks (transaction_id, seq, owner_id, data)
                 select transaction_id, ${seq}, owner_id, ${piece} from public.message_bus where transaction_id = ${id}`;
      }
      await tx`update public.message_bus set chunk_count = ${pieces.length}, stored_size_bytes = ${data.length}
               where transaction_id = ${id}`;
    });
  } finally {
    await sql.end();
  }
}

/** The bus's chunk size (supabase/functions/_shared/payload_store.ts). */
const CHUNK = 1024 * 1024;
