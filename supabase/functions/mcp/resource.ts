/**
 * The resource template `bus://messages/{transaction_id}` (CONTRACT.md §11): `resources/read` returns the whole
 * payload, verified against its checksum, as text (or as a base64 blob when it is not UTF-8); `resources/list`
 * shows the caller's latest completed messages. Payloads over MCP_READ_MAX_MB are refused with a pointer to
 * `fetch_message`: the text, its JSON encoding and the response would not fit an instance's memory together.
 */
import {
  ProtocolError,
  ProtocolErrorCode,
  type ReadResourceResult,
  ResourceNotFoundError,
} from "@modelcontextprotocol/server";
import { listRecent } from "../_shared/message/read.ts";
import { BusError } from "../_shared/errors.ts";
import { readPayloadRange } from "../_shared/payload_range.ts";
import { ChecksumMismatchError } from "../_shared/payload_read.ts";
import type { ToolContext } from "./deps.ts";
import { payloadState } from "./message_state.ts";
import { payloadText } from "./payload_text.ts";
import { messageUri } from "./results.ts";

export const MESSAGE_TEMPLATE = "bus://messages/{transaction_id}";

/** How many messages `resources/list` shows. */
const LIST_LIMIT = 100;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The caller's latest completed messages as resources. */
export async function listMessageResources(ctx: ToolContext) {
  const rows = await asProtocolErrors(
    "resources/list",
    () => listRecent(ctx.sql(), ctx.caller, "completed", LIST_LIMIT),
  );
  return {
    resources: rows.map((r) => ({
      uri: messageUri(r.transaction_id),
      name: `message ${r.transaction_id}`,
      title: `${r.tool} via ${r.provider}/${r.model}, ${new Date(r.created_at).toISOString()}`,
      mimeType: r.content_type ?? "application/json",
      size: Number(r.payload_size_bytes),
    })),
  };
}

/**
 * Reads the payload of the message `id` as `uri`.
 * @throws ResourceNotFoundError (-32602) for a malformed, unknown or foreign id; ProtocolError -32602 for a
 *   message without a readable payload or one too large; -32603 for a checksum mismatch or an internal error.
 */
export async function readMessageResource(uri: URL, id: unknown, ctx: ToolContext): Promise<ReadResourceResult> {
  if (typeof id !== "string" || !UUID.test(id)) throw new ResourceNotFoundError(uri.href);
  return await asProtocolErrors("resources/read", async () => {
    const state = await payloadState(ctx, id.toLowerCase(), true);
    if (!state.ok) {
      if (state.code === "not_found") throw new ResourceNotFoundError(uri.href, `${state.message}`);
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, state.message, { uri: uri.href, status: state.code });
    }
    const { stored, row } = state;
    const limit = ctx.settings.MCP_READ_MAX_MB * 1024 * 1024;
    if (stored.payload_size_bytes > limit) {
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        `Message ${id} is ${stored.payload_size_bytes} bytes, over the ${ctx.settings.MCP_READ_MAX_MB} MB that ` +
          `resources/read returns whole: read it in pages with the fetch_message tool`,
        { uri: uri.href, payload_size_bytes: stored.payload_size_bytes },
      );
    }
    const { bytes } = await readPayloadRange(ctx.caller, stored, 0, stored.payload_size_bytes, {
      sql: ctx.sql(),
      onlyChunk: row.only_chunk,
    });
    const { encoding, text } = payloadText(bytes);
    const mimeType = row.content_type ?? "application/json";
    return {
      contents: [
        encoding === "utf-8"
          ? { uri: uri.href, mimeType, text }
          : { uri: uri.href, mimeType: "application/octet-stream", blob: text },
      ],
    };
  });
}

/** Runs `fn`, turning the bus's errors into protocol errors with clear messages and logging unknown ones. */
async function asProtocolErrors<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    if (err instanceof BusError) {
      throw new ProtocolError(ProtocolErrorCode.InternalError, `${err.message} (${err.code})`, err.toBody());
    }
    if (err instanceof ChecksumMismatchError) {
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        "The stored bytes do not match their checksum; refusing to serve them",
        { code: "checksum_mismatch", transaction_id: err.transactionId },
      );
    }
    console.error(`[mcp] ${what} failed:`, err);
    throw new ProtocolError(ProtocolErrorCode.InternalError, "Internal error (logged)");
  }
}
