/**
 * The MCP tools that read messages (CONTRACT.md §11): `fetch_message` (the payload in pages a client can verify),
 * `message_meta`, `list_messages` and `wait_message`. Everything is read as the caller, so another user's message
 * is indistinguishable from one that does not exist.
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { z } from "zod";
import { listMeta, readMeta } from "../_shared/message/read.ts";
import { type MessageMeta, metaBody } from "../_shared/message/meta.ts";
import { readPayloadPage } from "../_shared/payload_page.ts";
import type { ToolContext } from "./deps.ts";
import { payloadState } from "./message_state.ts";
import { payloadText } from "./payload_text.ts";
import type { fetchInput, idInput, listInput, waitInput } from "./schemas.ts";
import { errorResult, messageLink, toolError, toolResult, unknownMessage } from "./results.ts";

/** Lines of list_messages' text (one per message) before the rest is left to structuredContent. */
const TEXT_LINES = 50;

/** One page of a message's payload. */
export async function fetchMessage(args: z.output<typeof fetchInput>, ctx: ToolContext): Promise<CallToolResult> {
  const id = args.transaction_id;
  try {
    // A read from the first byte counts as one retrieval, however many pages follow.
    const state = await payloadState(ctx, id, args.offset === 0);
    if (!state.ok) {
      if (state.code === "not_found") return unknownMessage(id);
      return toolError(`${state.message}.`, {
        code: state.code === "failed" ? "message_failed" : state.code,
        message: state.message,
        transaction_id: id,
        status: state.row?.status,
      });
    }
    const { stored, row } = state;
    const page = await readPayloadPage(ctx.caller, stored, args.offset, args.max_bytes, {
      sql: ctx.sql(),
      onlyChunk: row.only_chunk,
      cursors: ctx.cursors,
    });
    const { encoding, text } = payloadText(page.bytes);
    const structured = {
      transaction_id: id,
      offset: page.offset,
      next_offset: page.nextOffset,
      total_bytes: page.total,
      page_bytes: page.bytes.length,
      encoding,
      checksum: stored.checksum,
      content_type: row.content_type,
    };
    const where = `Bytes ${page.offset}-${page.offset + page.bytes.length} of ${page.total}` +
      (encoding === "base64" ? " (base64: these bytes are not UTF-8)" : "");
    const next = page.nextOffset === null
      ? `This is the last page; the joined pages hash to ${stored.checksum}.`
      : `Next page: fetch_message with offset ${page.nextOffset}.`;
    return {
      // The page itself first and alone in its text block, so that clients can join pages without parsing.
      content: [
        { type: "text", text },
        { type: "text", text: `${where}. ${next}` },
        messageLink(id, page.total, row.content_type),
      ],
      structuredContent: structured,
    };
  } catch (err) {
    return errorResult("fetch_message", err);
  }
}

/** A message's meta, whatever its status. */
export async function messageMeta(args: z.output<typeof idInput>, ctx: ToolContext): Promise<CallToolResult> {
  try {
    const row = await readMeta(ctx.sql(), ctx.caller, args.transaction_id);
    if (!row) return unknownMessage(args.transaction_id);
    const meta = metaBody(row);
    return toolResult(structuredMeta(meta), describe(meta), [messageLink(meta.transaction_id)]);
  } catch (err) {
    return errorResult("message_meta", err);
  }
}

/** The caller's messages changed after `since`, oldest change first (catching up after a disconnect). */
export async function listMessages(args: z.output<typeof listInput>, ctx: ToolContext): Promise<CallToolResult> {
  try {
    const rows = await listMeta(ctx.sql(), ctx.caller, new Date(args.since).toISOString(), args.limit);
    const messages = rows.map((r) => structuredMeta(metaBody(r)));
    const lines = messages.map((m) =>
      `${m.transaction_id} ${m.status} ${m.payload_size_bytes ?? "-"} bytes, updated ${m.updated_at}`
    );
    const more = messages.length === args.limit
      ? `\nThere may be more: call again with since ${messages.at(-1)!.updated_at}.`
      : "";
    // The text stays short for the model; structuredContent has every meta.
    const shown = lines.length > TEXT_LINES
      ? [...lines.slice(0, TEXT_LINES), `… ${lines.length - TEXT_LINES} more in structuredContent`]
      : lines;
    const text = messages.length === 0
      ? `No messages changed after ${args.since}.`
      : `${messages.length} message(s), oldest change first:\n${shown.join("\n")}${more}`;
    return toolResult({ messages }, text);
  } catch (err) {
    return errorResult("list_messages", err);
  }
}

/**
 * Waits, up to `timeout_seconds`, until the message is no longer pending (for clients that cannot subscribe to
 * Realtime), polling its meta with a growing interval. Still pending at the deadline is an answer, not an error.
 */
export async function waitMessage(
  args: z.output<typeof waitInput>,
  ctx: ToolContext,
  signal?: AbortSignal,
): Promise<CallToolResult> {
  const deadline = Date.now() + args.timeout_seconds * 1000;
  let interval = 100;
  try {
    for (;;) {
      const row = await readMeta(ctx.sql(), ctx.caller, args.transaction_id);
      if (!row) return unknownMessage(args.transaction_id);
      const meta = metaBody(row);
      const left = deadline - Date.now();
      if (meta.status !== "pending" || left <= 0 || signal?.aborted) {
        const text = meta.status === "pending"
          ? `Message ${meta.transaction_id} is still pending after ${args.timeout_seconds} s; call wait_message again.`
          : describe(meta);
        return toolResult(structuredMeta(meta), text, [messageLink(meta.transaction_id)]);
      }
      await sleep(Math.min(interval, left), signal);
      interval = Math.min(interval * 2, 1000);
    }
  } catch (err) {
    return errorResult("wait_message", err);
  }
}

/** Meta as structured content: a plain JSON object. */
function structuredMeta(meta: MessageMeta): Record<string, unknown> & MessageMeta {
  return { ...meta };
}

function describe(m: MessageMeta): string {
  switch (m.status) {
    case "completed":
      return `Message ${m.transaction_id} completed: ${m.payload_size_bytes} bytes (${m.checksum}), finish_reason ` +
        `${m.finish_reason}, watcher ${m.watcher?.verdict ?? "not yet run"}. Read it with fetch_message.`;
    case "failed":
      return `Message ${m.transaction_id} failed: ${m.error?.code}: ${m.error?.message}.`;
    case "expired":
      return `Message ${m.transaction_id} expired at ${m.expires_at}; its payload is gone.`;
    default:
      return `Message ${m.transaction_id} is pending (created ${m.created_at}).`;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
