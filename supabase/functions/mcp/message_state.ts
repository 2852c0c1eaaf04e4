/**
 * Reading a message as the caller before serving its payload: RLS decides whether it exists for them, and only a
 * completed, unexpired message has a payload (the rules of message-fetch, CONTRACT.md §5).
 */
import { type FetchRow, readMeta } from "../_shared/message/read.ts";
import { publicError } from "../_shared/message/meta.ts";
import type { SizedMeta } from "../_shared/payload_range.ts";
import { storedMetaOf } from "../_shared/payload_read.ts";
import type { ToolContext } from "./deps.ts";

export type PayloadState =
  | { ok: true; row: FetchRow; stored: SizedMeta }
  | { ok: false; code: "not_found" | "pending" | "failed" | "expired"; message: string; row?: FetchRow };

/**
 * The message `id` if its payload can be read now, else why not. `markRetrieved` counts a retrieval (a read from
 * the first byte); the payload comes along when it is a single chunk.
 */
export async function payloadState(ctx: ToolContext, id: string, markRetrieved: boolean): Promise<PayloadState> {
  const row = await readMeta(ctx.sql(), ctx.caller, id, { markRetrieved, withChunk: true });
  if (!row) {
    return { ok: false, code: "not_found", message: `No message ${id}: it does not exist or belongs to someone else` };
  }
  switch (row.status) {
    case "pending":
      return { ok: false, code: "pending", row, message: `Message ${id} is still pending: wait_message waits for it` };
    case "failed": {
      const error = publicError(row.error);
      return {
        ok: false,
        code: "failed",
        row,
        message: `Message ${id} failed (${error?.code}: ${error?.message}); it has no payload`,
      };
    }
    case "expired":
      return {
        ok: false,
        code: "expired",
        row,
        message: `Message ${id} expired at ${new Date(row.expires_at).toISOString()}; its payload is gone`,
      };
  }
  return {
    ok: true,
    row,
    stored: storedMetaOf(row),
  };
}
