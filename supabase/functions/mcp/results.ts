/**
 * How the MCP tools answer: a result carries `structuredContent` (checked against the tool's output schema), a
 * short text for the model and, for a message, a `resource_link` to `bus://messages/<id>` (CONTRACT.md §11).
 * Failures are tool errors (`isError: true`) whose text says what went wrong and what to do, never a thrown
 * error: the SDK would pass an unknown error's own message (a driver's, say) to the client.
 */
import type { CallToolResult, ResourceLink } from "@modelcontextprotocol/server";
import { BusError } from "../_shared/errors.ts";
import { ChecksumMismatchError } from "../_shared/payload_read.ts";
import { PageOffsetError } from "../_shared/payload_page.ts";

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

/** A tool error with `text`, and `structured` details when they help a program (codes, the transaction). */
export function toolError(text: string, structured?: Record<string, unknown>): CallToolResult {
  return { isError: true, content: [{ type: "text", text }], ...(structured ? { structuredContent: structured } : {}) };
}

/** The tool error for a message that is not the caller's or does not exist (the two are not told apart). */
export function unknownMessage(id: string): CallToolResult {
  return toolError(
    `No message ${id}: it does not exist or belongs to someone else. list_messages shows your messages.`,
    { error: { code: "not_found", message: `No message ${id}` }, transaction_id: id },
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
      error: { code: "invalid_offset", message: err.message },
      ...(err.charStart !== undefined ? { character_start: err.charStart } : {}),
    });
  }
  if (err instanceof ChecksumMismatchError) {
    const message = "The stored bytes do not match their checksum; refusing to serve them";
    return toolError(`${message} (transaction ${err.transactionId}).`, {
      error: { code: "checksum_mismatch", message, expected: err.expected, actual: err.actual },
      transaction_id: err.transactionId,
    });
  }
  console.error(`[mcp] ${tool} failed:`, err);
  return toolError("Internal error (logged). Try again; if it persists, report the time of the call.", {
    error: { code: "internal_error", message: "Internal error (logged)" },
  });
}

function busErrorResult(err: BusError): CallToolResult {
  const body = err.toBody() as { error: Record<string, unknown> } & Record<string, unknown>;
  const lines = [`${err.message} (${err.code}).`];
  const issues = err.details.issues as Array<{ path: string; message: string }> | undefined;
  for (const issue of issues ?? []) lines.push(`- ${issue.path}: ${issue.message}`);
  if (typeof body.transaction_id === "string") {
    lines.push(`Transaction ${body.transaction_id} is recorded as ${body.status ?? "failed"}.`);
  }
  const retryAfter = err.headers["retry-after"];
  if (retryAfter) lines.push(`Retry after ${retryAfter} s.`);
  return toolError(lines.join("\n"), body);
}
