/**
 * The `chat` tool: the MCP arguments become a tool-invoke request (`{tool: "chat", provider?, model?, input:
 * {messages, max_tokens?}}`), checked by the invoke door (checkInvokeRequest) and run by submitInvoke, the path
 * tool-invoke takes: routing, storage, the watcher and Realtime behave exactly as for tool-invoke (CONTRACT.md
 * §4, §11). The answer is the claim check, never the payload.
 */
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { z } from "zod";
import { checkInvokeRequest, submitInvoke } from "../_shared/invoke/submit.ts";
import { completedBody } from "../_shared/invoke/answers.ts";
import { BusError } from "../_shared/errors.ts";
import type { ToolContext } from "./deps.ts";
import type { chatInput } from "./schemas.ts";
import { DEFAULT_PAGE_BYTES } from "./schemas.ts";
import { errorResult, messageLink, toolResult } from "./results.ts";

type ChatArgs = z.output<typeof chatInput>;

const encoder = new TextEncoder();

/** Runs one chat call. */
export async function chat(args: ChatArgs, ctx: ToolContext): Promise<CallToolResult> {
  try {
    const request = encoder.encode(JSON.stringify(invokeRequest(args)));
    const { body, members } = checkInvokeRequest(request, ctx.settings);
    const submitted = await submitInvoke(
      { settings: ctx.settings, sql: ctx.sql(), waitUntil: ctx.waitUntil, fetch: ctx.fetch },
      { caller: ctx.caller, body, request, members, idempotencyKey: args.idempotency_key },
    );
    if (submitted.status === "pending") {
      const id = submitted.transactionId;
      return toolResult(
        { ...NOTHING_YET, transaction_id: id, status: "pending" },
        `Message ${id} is pending. Call wait_message with this transaction_id, then fetch_message to read it.`,
        [messageLink(id)],
      );
    }
    if (submitted.status === "unstored") throw new Error("submitInvoke answered unstored without allowUnstored");
    const out = completedBody(submitted.row);
    return toolResult(
      out,
      `Message ${out.transaction_id} completed: ${out.payload_size_bytes} bytes from ${out.provider}/${out.model}, ` +
        `finish_reason ${out.finish_reason}, checksum ${out.checksum}. The response is stored, not shown here: ` +
        `read it with fetch_message (transaction_id ${out.transaction_id}, offset 0, pages of up to ` +
        `${DEFAULT_PAGE_BYTES} bytes) or resources/read ${messageLink(out.transaction_id).uri}.`,
      [messageLink(out.transaction_id, out.payload_size_bytes, submitted.row.content_type)],
    );
  } catch (err) {
    const result = errorResult("chat", err);
    // A failure recorded on a message (provider error, busy, unavailable): its transaction, in the output's shape.
    const id = err instanceof BusError ? err.extra.transaction_id : undefined;
    if (typeof id === "string") {
      // The provider that failed, when the error names it (provider_error); the model is known only on success.
      const provider = (err as BusError).details.provider;
      result.structuredContent = {
        ...NOTHING_YET,
        transaction_id: id,
        status: "failed",
        provider: typeof provider === "string" ? provider : null,
      };
    }
    return result;
  }
}

/** The output fields a message has only once completed. */
const NOTHING_YET = {
  checksum: null,
  payload_size_bytes: null,
  finish_reason: null,
  provider: null,
  model: null,
  expires_at: null,
};

/** The tool-invoke request for `args` (undefined members are left out by JSON.stringify). */
export function invokeRequest(args: ChatArgs) {
  const messages = args.messages ??
    [...(args.system ? [{ role: "system", content: args.system }] : []), { role: "user", content: args.prompt }];
  return {
    tool: "chat",
    provider: args.provider,
    model: args.model,
    input: { messages, max_tokens: args.max_tokens, temperature: args.temperature },
    mode: args.mode,
    session_id: args.session_id,
    ttl_seconds: args.ttl_seconds,
  };
}
