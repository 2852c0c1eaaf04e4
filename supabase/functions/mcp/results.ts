/**
 * How the MCP tools answer: a result carries `structuredContent` (checked against the tool's output schema), a
 * short text for the model and, for a message, a `resource_link` to `bus://messages/<id>` (CONTRACT.md §11).
 * Failures are tool errors (`isError: true`) whose text says what went wrong and what to do, never a thrown
 * error: the SDK would pass an unknown error's own message (a driver's, say) to the client. The error's code and
 * details go in `_meta` under {@link ERROR_META}: clients such as the MCP Inspector check an error's
 * `structuredContent` against the tool's output schema too, so only a conforming one may be sent.
 */
import type { CallToolResult, ResourceLink } from "@modelcontextprotocol/server";
import { BusError } from "../_shared/errors.ts";
import { ChecksumMismatchError } from "../_shared/payload_read.ts";
import { PageOffsetError } from "../_shared/payload_page.ts";

/** The `_meta` key of a tool error's machine-readable details: `{ code, message, transaction_id?, ... }`. */
export const ERROR_META = "message-bus/error";

/** The URI of a message's payload resource. */
export const messageUri = (id: string) => `bus://messages/${id}`;

/** A `resource_link` to the payload of message `id`. */
export function messageLink(id: string, sizeBytes?: number | null, mimeType?: string | null): ResourceLink {
  return {
    type: "resource_link",
    uri: messageUri(id),
    name: `message ${id}`,
    description: "The stored payload of this message (read it with resources/read or the fetch_message tool)",
    mimeType: mimeType ?? "application/json",
    ...(typeof sizeBytes === "number" ? { size: sizeBytes } : {}),
  };
}

/** A successful result: the text for the model first, then links. */
export function toolResult(
  structured: Record<string, unknown>,
  text: string,
  links: ResourceLink[] = [],
): CallToolResult {
  return { content: [{ type: "text", text }, ...links], structuredContent: structured };
}

/**
 * A tool error: `text` for the model, `error` (`{ code, message, ... }`) for programs, and `structured` only when it
 * conforms to the tool's output schema.
 */
export function toolError(
  text: string,
  error: Record<string, unknown> & { code: string; message: string },
  structured?: Record<string, unknown>,
): CallToolResult {
  return {
    isError: true,
    content: [{ type: "text", text }],
    _meta: { [ERROR_META]: error },
    ...(structured ? { structuredContent: structured } : {}),
  };
}

/** The tool error for a message that is not the caller's or does not exist (the two are not told apart). */
export function unknownMessage(id: string): CallToolResult {
  return toolError(
    `No message ${id}: it does not exist or belongs to someone else. list_messages shows your messages.`,
    { code: "not_found", message: `No message ${id}`, transaction_id: id },
  );
}

/**
 * The tool error for what a tool threw: the bus's own errors say what happened; anything else is logged with its
 * stack and answered without its message.
 */
export function errorResult(tool: string, err: unknown): CallToolResult {
  if (err instanceof BusError) return busErrorResult(err);
  if (err instanceof PageOffsetError) {
    return toolError(err.message, {
      code: "invalid_offset",
      message: err.message,
      ...(err.charStart !== undefined ? { character_start: err.charStart } : {}),
    });
  }
  if (err instanceof ChecksumMismatchError) {
    const message = "The stored bytes do not match their checksum; refusing to serve them";
    return toolError(`${message} (transaction ${err.transactionId}).`, {
      code: "checksum_mismatch",
      message,
      transaction_id: err.transactionId,
    });
  }
  console.error(`[mcp] ${tool} failed:`, err);
  return toolError("Internal error (logged). Try again; if it persists, report the time of the call.", {
    code: "internal_error",
    message: "Internal error (logged)",
  });
}

function busErrorResult(err: BusError): CallToolResult {
  const body = err.toBody() as { error: { code: string; message: string } } & Record<string, unknown>;
  const lines = [`${err.message} (${err.code}).`];
  const issues = err.details.issues as Array<{ path: string; message: string }> | undefined;
  for (const issue of issues ?? []) lines.push(`- ${issue.path}: ${issue.message}`);
  if (typeof body.transaction_id === "string") {
    lines.push(`Transaction ${body.transaction_id} is recorded as ${body.status ?? "failed"}.`);
  }
  const retryAfter = err.headers["retry-after"];
  if (retryAfter) lines.push(`Retry after ${retryAfter} s.`);
  const { error, ...extra } = body; // extra: transaction_id and status of a recorded failure
  return toolError(lines.join("\n"), { ...error, ...extra });
}
