import { z } from "zod";

/**
 * Steering for the provider stand-in. The bus forwards the client's messages unchanged, so a test steers the
 * stand-in by writing `#standin {json}` anywhere in the LAST user message. Only the first directive counts; its
 * JSON must be an object with these keys (unknown keys are rejected with a 400, so typos are loud):
 *
 * - `tag` (string): counts the call under this tag (`GET /__standin/calls?tag=`), and scopes `fail_times`.
 * - `latency_ms` (integer ≥ 0): wait this long before answering (cut short only when the stand-in closes).
 * - `bytes` (integer ≥ 0): the response body's total size in bytes (exact unless smaller than the envelope).
 *   Content is seeded filler with multi-byte UTF-8; bodies over 1 MiB are streamed in 64 KiB chunks and never
 *   held in memory whole.
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
 * - `malformed` (true | "truncated" | "not_json"): a 200 whose body is the completion cut in half (true,
 *   "truncated") or plain text that is not JSON ("not_json").
 * - `json` (true | "invalid"): the content is a valid JSON document, or broken JSON.
 * - `error_as_content` (true): the content is a provider error message passed off as an answer.
 *
 * @example
 * ```ts
 * const { directive } = parseDirective('Summarise. #standin {"tag":"t1","bytes":1048576,"latency_ms":50}');
 * // directive?.bytes === 1048576
 * ```
 */
export const DirectiveSchema = z.strictObject({
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
}).superRefine((d, ctx) => {
  const clash = (a: keyof typeof d, b: keyof typeof d) => {
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
  if (d.fail_times !== undefined && (d.status === undefined || d.tag === undefined)) {
    ctx.addIssue({ code: "custom", message: "fail_times needs status and tag" });
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
