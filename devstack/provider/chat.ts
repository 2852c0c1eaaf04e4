import { bodyBytes, bodyChunks, type BodyPlan, bodyStream, type CompletionParts, type Fill, usageFor } from "./body.ts";
import {
  defaultAnswer,
  ERROR_AS_CONTENT,
  fingerprint,
  fnv1a,
  invalidJsonAnswer,
  jsonAnswer,
  reasoningText,
} from "./content.ts";
import type { Directive } from "./directives.ts";
import { pacedBody } from "./paced.ts";
import { type ChatRequest, promptTokens } from "./request.ts";
import { streamEvents } from "./stream.ts";

/** Bodies larger than this are streamed chunk by chunk instead of buffered. */
export const STREAM_THRESHOLD = 1024 * 1024;
/**
 * `created` is a constant (2026-01-01T00:00:00Z), not the clock, so identical requests get identical bytes.
 */
export const CREATED = 1767225600;
const NOT_JSON = "upstream connect error or disconnect/reset before headers. reset reason: overflow";

/** The completion fields a request and its directive ask for. */
export async function completionParts(
  request: ChatRequest,
  directive: Directive | null,
  prompt: string,
  requestText: string,
): Promise<CompletionParts> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(requestText)));
  const id = "chatcmpl-" + [...digest.slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const d: Directive = directive ?? {};
  const { model } = request;
  const parts: CompletionParts = {
    id,
    created: CREATED,
    model,
    content: defaultAnswer(model, prompt),
    finishReason: d.finish_reason ?? "stop",
    promptTokens: promptTokens(request),
  };
  const emptyContent = d.reasoning_only === "null" ? null : "";
  if (d.content !== undefined) parts.content = d.content;
  else if (d.error_as_content) parts.content = ERROR_AS_CONTENT;
  else if (d.bytes !== undefined) {
    const fill: Fill = { kind: "fill", seed: d.seed ?? fnv1a(`${model}\n${prompt}`), prefix: "", suffix: "" };
    if (d.json === true) Object.assign(fill, { prefix: '{"answer":"', suffix: '","ok":true}' });
    if (d.json === "invalid") Object.assign(fill, { prefix: '{"answer":"', suffix: "" });
    if (d.reasoning_only) {
      parts.content = emptyContent;
      parts.reasoning = fill;
    } else parts.content = fill;
  } else if (d.json === true) parts.content = jsonAnswer(model, prompt);
  else if (d.json === "invalid") parts.content = invalidJsonAnswer(model, prompt);

  if (d.reasoning_only && d.bytes === undefined) {
    parts.content = emptyContent;
    parts.reasoning = reasoningText(prompt);
  }
  if (d.reasoning && parts.reasoning === undefined) parts.reasoning = reasoningText(prompt);
  if (parts.finishReason === "tool_calls") {
    parts.toolCalls = [{
      id: `call_${fingerprint(requestText)}`,
      type: "function",
      function: { name: "lookup", arguments: JSON.stringify({ query: [...prompt].slice(0, 40).join("") }) },
    }];
    if (d.content === undefined && d.bytes === undefined && !d.reasoning_only) parts.content = null;
  }
  return parts;
}

/** An answer, and whether its body is produced while it is sent (then it must not be buffered). */
export interface Answer {
  response: Response;
  live: boolean;
}

/**
 * The 200 answer for a planned body: buffered when small, a pull-based stream when larger than
 * {@link STREAM_THRESHOLD} or when `cut_after_bytes`/`stall_after_bytes` shape it. `malformed` cuts the body
 * in half or replaces it with non-JSON text.
 */
export function completionResponse(plan: BodyPlan, id: string, d: Directive, signal: AbortSignal): Answer {
  const headers = new Headers({ "content-type": "application/json; charset=utf-8", "x-request-id": id });
  if (d.malformed === "not_json") {
    return { response: new Response(NOT_JSON, { status: 200, headers }), live: false };
  }
  const limit = d.malformed ? Math.floor(plan.size / 2) : plan.size;
  if (d.cut_after_bytes !== undefined || d.stall_after_bytes !== undefined) {
    const pacing = { cutAfter: d.cut_after_bytes, stallAfter: d.stall_after_bytes, signal };
    return { response: new Response(pacedBody(bodyChunks(plan, limit), pacing), { status: 200, headers }), live: true };
  }
  if (limit <= STREAM_THRESHOLD) {
    return { response: new Response(bodyBytes(plan, limit), { status: 200, headers }), live: false };
  }
  return { response: new Response(bodyStream(plan, limit), { status: 200, headers }), live: true };
}

/**
 * The 200 answer to `"stream": true`: `text/event-stream` with `data: <chat.completion.chunk>` events (see
 * `stream.ts`), generated lazily and paced by the directive's stream keys. The content assembled from the
 * deltas equals the content of the non-streamed answer to the same request, because both come from the same
 * parts and the same planned filler size.
 */
export function streamResponse(
  parts: CompletionParts,
  plan: BodyPlan,
  includeUsage: boolean,
  d: Directive,
  signal: AbortSignal,
): Answer {
  const fillSize = plan.fill?.size ?? 0;
  const events = streamEvents(parts, { fillSize, usage: usageFor(parts, fillSize), includeUsage, directive: d });
  const body = pacedBody(encoded(events), {
    firstDelayMs: d.first_event_ms,
    gapMs: d.event_delay_ms,
    cutAfter: d.cut_after_bytes,
    stallAfter: d.stall_after_bytes,
    signal,
  });
  // OpenAI, Moonshot and Z.ai stream as text/event-stream (gateways-streaming-mcp.md §4).
  const headers = new Headers({
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-request-id": parts.id,
  });
  return { response: new Response(body, { status: 200, headers }), live: true };
}

function* encoded(events: Iterable<string>): Generator<Uint8Array> {
  const encoder = new TextEncoder();
  for (const event of events) yield encoder.encode(event);
}
