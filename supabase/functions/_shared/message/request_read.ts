/**
 * Reading a message's stored request back (for a replay, and for another run of an async message whose worker
 * died): its chunks in order, decoded when stored gzip, verified against `request_checksum` — a request is only
 * ever run again exactly as it was received.
 */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import type { Caller } from "../auth.ts";
import { asCaller, type Sql } from "../db.ts";
import { concatBytes } from "../bytes.ts";
import { BusError } from "../errors.ts";
import { MESSAGE_COLUMNS, type MessageRow } from "./row.ts";

export interface StoredRequest {
  row: MessageRow & { run_count: number; request_compression: "none" | "gzip" | null };
  /** The request body exactly as received. */
  bytes: Uint8Array;
}

/**
 * The message `id` and its request, read as `caller` (row-level security: a user reads only their own).
 * @returns undefined when there is no such message for the caller.
 * @throws BusError 409 `request_unavailable` when the request is gone (expired) or was never completely stored,
 *   500 `request_corrupt` when its bytes no longer match their checksum.
 */
export async function readStoredRequest(sql: Sql, caller: Caller, id: string): Promise<StoredRequest | undefined> {
  return await asCaller(caller, async (tx) => {
    const [row] = await tx<StoredRequest["row"][]>`
      select ${tx.unsafe(MESSAGE_COLUMNS)}, run_count, request_compression, request_chunk_count
      from public.message_bus where transaction_id = ${id}::uuid`;
    if (!row) return undefined;
    const chunks = await tx<{ data: Uint8Array }[]>`
      select data from public.message_bus_request_chunks where transaction_id = ${id}::uuid order by seq`;
    const count = (row as unknown as { request_chunk_count: number | null }).request_chunk_count;
    if (!row.request_checksum || count === null || chunks.length !== count) {
      throw new BusError(
        409,
        "request_unavailable",
        `The stored request of ${id} is not available (expired, or never completely stored)`,
      );
    }
    const stored = concatBytes(chunks.map((c) => new Uint8Array(c.data)));
    let bytes: Uint8Array;
    try {
      bytes = row.request_compression === "gzip" ? new Uint8Array(gunzipSync(stored)) : stored;
    } catch (err) {
      console.error(`[request] the stored request of ${id} does not decode:`, err);
      throw corrupt(id);
    }
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== row.request_checksum) {
      console.error(
        `[request] the stored request of ${id} does not match its checksum (${actual} ≠ ${row.request_checksum})`,
      );
      throw corrupt(id);
    }
    return { row, bytes };
  }, sql);
}

const corrupt = (id: string) =>
  new BusError(
    500,
    "request_corrupt",
    `The stored request of ${id} no longer matches its checksum; refusing to run it`,
  );
