import { z } from "zod";

/**
 * Steering for the provider stand-in. The bus forwards the client's messages unchanged, so a test steers the
 * stand-in by writing `#standin {json}` anywhere in the LAST user message. Only the first directive counts; its
 * JSON must be an object with these keys (unknown keys are rejected with a 400, so typos are loud):
 *
 * - `tag` (string): counts the call under this tag (`GET /__standin/calls?tag=`), and scopes `fail_times`
 *   and `script`.
 * - `latency_ms` (integer ≥ 0): wait this long before answering (cut short when the client leaves or the
 *   stand-in closes).
 * - `bytes` (integer ≥ 0): the response body's total size in bytes (exact unless smaller than the envelope).
 *   Content is seeded filler with multi-byte UTF-8; bodies over 1 MiB are streamed in 64 KiB chunks and never
 *   held in memory whole. A streamed answer (`"stream": true`) carries the same content as the non-streamed
 *   answer to the same request, generated lazily.
 * - `seed` (integer): the filler's seed; default a hash of the model and the prompt.
 * - `finish_reason`: "stop" (default), "length", "content_filter" or "tool_calls" (adds one tool call and
 *   null content).
 * - `reasoning` (boolean): also return `reasoning_content`, as thinking models do.
 * - `reasoning_only` (true | "null"): content "" (or null with "null") and a non-empty `reasoning_content`,
 *   as Kimi/GLM thinking models return when the output budget is spent on thinking. With `bytes`, the filler
 *   goes into `reasoning_content`.
 * - `content` (string): return exactly this content.
 * - `status` (integer 400-599): answer this HTTP error with an OpenAI-style error body; 429 and 503 carry
 *   `Retry-After` (`retry_after` seconds, default 1).
 * - `fail_times` (integer ≥ 0, needs `status` and `tag`): fail only the first N calls with this tag, then
 *   succeed.
 * - `script` (array of steps, needs `tag`, excludes `status`): call N with this tag plays step N; calls past
 *   the end succeed. A step is an HTTP status 400-599 (an error answer, Retry-After on 429/503 as with
 *   `status`), "ok" (answer normally), "hang" (never answer; the connection stays open until the client
 *   leaves or the stand-in closes), "reset" (close the connection with a TCP reset and no HTTP answer; Deno's
 *   fetch sends such a request again once by itself, so a Deno client's one call plays two steps), "slow_body"
 *   (headers at once, then the body 16 bytes per second), or an object of directive keys (other than `tag`,
 *   `script` and `fail_times`) merged over this directive for that call, e.g. `{"cut_after_bytes": 300}`.
 * - `malformed` (true | "truncated" | "not_json"): a 200 whose body is the completion cut in half (true,
 *   "truncated") or plain text that is not JSON ("not_json"). In a stream: the stream ends cleanly in the
 *   middle of its second event, or its second event's data is that non-JSON text.
 * - `json` (true | "invalid"): the content is a valid JSON document, or broken JSON.
 * - `error_as_content` (true): the content is a provider error message passed off as an answer.
 *
 * Faults on the wire, for streamed and non-streamed bodies alike (counted in body bytes, after the headers):
 * - `cut_after_bytes` (integer ≥ 0): send this many bytes of the body, then close the connection abruptly
 *   (possibly mid-event; no `[DONE]`, an incomplete chunked body, so the client sees a network error).
 * - `stall_after_bytes` (integer ≥ 0): send this many bytes, then nothing more while keeping the connection
 *   open, until the client leaves or the stand-in closes (for idle-timeout tests).
 *
 * For streams only (ignored without `"stream": true`):
 * - `first_event_ms` (integer ≥ 0): the headers go at once, the first event this much later
 *   (time to first token; `latency_ms` delays the headers instead).
 * - `event_delay_ms` (integer ≥ 0): pause between events (a slow stream).
 * - `delta_bytes` (integer ≥ 4): the most UTF-8 bytes per content, reasoning or arguments delta (never
 *   splitting a character). Default 16 for text (8 for tool-call arguments), 16384 for `bytes` filler.
 * - `error_after_events` (integer ≥ 0): after that many chunk events, send `data: {"error": {...}}` (the
 *   shape the OpenAI SDK throws on, as OpenRouter and others send mid-stream) and end the stream cleanly, no
 *   `[DONE]` (a shorter stream ends with the error in place of `[DONE]`).
 * - `no_done` (true): end after the chunk carrying `finish_reason`, without `data: [DONE]`.
 * - `no_finish` (true): every chunk has `finish_reason: null`, yet the stream ends with `data: [DONE]`.
 * - `omit_tool_index` (true): tool-call deltas carry no `index` (as Moonshot streams them).
 * - `usage_in_choice` (true): usage sits in the last chunk's choice (`choices[0].usage`, as Moonshot sends
 *   it) instead of a final `choices: []` chunk, whatever `stream_options` say.
 *
 * @example
 * ```ts
 * const { directive } = parseDirective('Summarise. #standin {"tag":"t1","bytes":1048576,"latency_ms":50}');
 * // directive?.bytes === 1048576
 * ```
 */
const DirectiveShape = z.strictObject({
  tag: z.string().min(1).max(200).optional(),
  latency_ms: z.number().int().min(0).max(600_000).optional(),
  bytes: z.number().int().min(0).max(8 * 1024 ** 3).optional(),
  seed: z.number().int().optional(),
  finish_reason: z.enum(["stop", "length", "content_filter", "tool_calls"]).optional(),
  reasoning: z.boolean().optional(),
  reasoning_only: z.union([z.literal(true), z.literal("null")]).optional(),
  content: z.string().optional(),
  status: z.number().int().min(400).max(599).optional(),
  retry_after: z.number().int().min(0).max(3600).optional(),
  fail_times: z.number().int().min(0).optional(),
  malformed: z.union([z.literal(true), z.enum(["truncated", "not_json"])]).optional(),
  json: z.union([z.literal(true), z.literal("invalid")]).optional(),
  error_as_content: z.literal(true).optional(),
  cut_after_bytes: z.number().int().min(0).optional(),
  stall_after_bytes: z.number().int().min(0).optional(),
  first_event_ms: z.number().int().min(0).max(600_000).optional(),
  event_delay_ms: z.number().int().min(0).max(60_000).optional(),
  delta_bytes: z.number().int().min(4).max(1024 * 1024).optional(),
  error_after_events: z.number().int().min(0).optional(),
  no_done: z.literal(true).optional(),
  no_finish: z.literal(true).optional(),
  omit_tool_index: z.literal(true).optional(),
  usage_in_choice: z.literal(true).optional(),
});

/** Outcomes a script step names by word; see {@link StepSchema}. */
export const STEP_WORDS = ["ok", "hang", "reset", "slow_body"] as const;

/**
 * One step of a `script` (directive or `POST /__standin/script`): an HTTP status, a word from
 * {@link STEP_WORDS}, or directive keys merged over the call's directive.
 */
export const StepSchema = z.union([
  z.number().int().min(400).max(599),
  z.enum(STEP_WORDS),
  DirectiveShape.omit({ tag: true, fail_times: true }).superRefine(checkClashes),
]);

/** A script step. */
export type Step = z.infer<typeof StepSchema>;

/** The keys that cannot be combined, checked on directives and on object steps. */
function checkClashes(d: Record<string, unknown>, ctx: z.RefinementCtx) {
  const clash = (a: string, b: string) => {
    if (d[a] !== undefined && d[b] !== undefined) {
      ctx.addIssue({ code: "custom", message: `${a} and ${b} exclude each other` });
    }
  };
  clash("content", "bytes");
  clash("content", "json");
  clash("content", "error_as_content");
  clash("content", "reasoning_only");
  clash("error_as_content", "json");
  clash("error_as_content", "bytes");
  clash("cut_after_bytes", "stall_after_bytes");
  clash("script", "status");
  clash("script", "fail_times");
}

/** The schema of a `#standin` directive: the keys documented above, checked for clashes. */
export const DirectiveSchema = DirectiveShape.extend({ script: z.array(StepSchema).min(1).max(1000).optional() })
  .superRefine((d, ctx) => {
    checkClashes(d, ctx);
    if (d.fail_times !== undefined && (d.status === undefined || d.tag === undefined)) {
      ctx.addIssue({ code: "custom", message: "fail_times needs status and tag" });
    }
    if (d.script !== undefined && d.tag === undefined) {
      ctx.addIssue({ code: "custom", message: "script needs tag" });
    }
  });

/** A parsed `#standin` directive. */
export type Directive = z.infer<typeof DirectiveSchema>;

/** Thrown when a `#standin` marker is present but its JSON is missing, broken or invalid. */
export class DirectiveError extends Error {
  override name = "DirectiveError";
}

const MARKER = "#standin";

/**
 * Finds and validates the directive in a user message.
 *
 * @param text the last user message's text
 * @returns the directive (null without a marker) and the prompt with the directive removed
 * @throws {DirectiveError} when the marker is not followed by a valid JSON object
 */
export function parseDirective(text: string): { directive: Directive | null; prompt: string } {
  const at = text.indexOf(MARKER);
  if (at < 0) return { directive: null, prompt: text };
  const open = text.slice(at + MARKER.length).search(/\S/) + at + MARKER.length;
  if (open < at + MARKER.length || text[open] !== "{") {
    throw new DirectiveError(
      `Expected a JSON object after ${MARKER}, got ${JSON.stringify(text.slice(open, open + 20))}`,
    );
  }
  const close = matchingBrace(text, open);
  if (close < 0) throw new DirectiveError(`Expected a closing "}" for the ${MARKER} JSON object, got end of message`);
  let raw: unknown;
  try {
    raw = JSON.parse(text.slice(open, close + 1));
  } catch (error) {
    throw new DirectiveError(`Expected valid JSON after ${MARKER}: ${(error as Error).message}`);
  }
  const parsed = DirectiveSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ` : "") + i.message);
    throw new DirectiveError(`Invalid ${MARKER} directive: ${issues.join("; ")}`);
  }
  return { directive: parsed.data, prompt: (text.slice(0, at) + text.slice(close + 1)).trim() };
}

/** Index of the `}` closing the object opened at `open`, skipping braces inside strings; -1 if none. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i;
  }
  return -1;
}
