/**
 * The content checks: pure functions from a response body (whole, or its head and tail for payloads above the
 * analysis cap) and the facts stored with the message to findings. No I/O, so they are tested in-process.
 */
import { type Finding, finding } from "./findings.ts";

/** What the bus stored about the message besides its payload. */
export interface MessageFacts {
  finishReason: string | null;
  /** metadata.wants_json, set by tool-invoke when the request asked for JSON output. */
  wantsJson: boolean;
  /** metadata.parsed: false when tool-invoke found the body is not a chat completion. */
  parsed: boolean | null;
  payloadSize: number;
  usage: Record<string, unknown> | null;
}

export interface CheckLimits {
  /** Payloads above this size get an `unusual_size` warning. */
  sizeWarningBytes: number;
}

/** What a parsed chat completion says; also the input of the model review. */
export interface CompletionView {
  content: string;
  reasoning: string;
}

/** Content longer than this is an answer, not an error message passed off as one. */
const ERROR_TEXT_MAX = 2_000;

// Texts that gateways and SDKs produce for failures and that end up in `content` when a wrapper turns an error
// into a 200 (the provider stand-in's `error_as_content` uses the first form, Moonshot's rate-limit error).
const ERROR_TEXT_PATTERNS = [
  /^\s*error code:\s*\d{3}\b/i, // openai-python's APIStatusError text
  /^\s*\{\s*["']error["']\s*:/, // an error object serialised into the content
  /^\s*(upstream connect error|upstream request timeout|no healthy upstream)\b/i, // Envoy and gateways
  /^\s*<(!doctype html|html)\b[\s\S]*\b(429|50[0-4])\b/i, // an HTML error page
  /^\s*(internal server error|service unavailable|bad gateway|gateway time-?out|too many requests)\b/i,
];
// Provider error type names; only together with the word "error" in a short text.
const ERROR_TYPE_NAMES =
  /\b(rate_limit_reached_error|rate_limit_exceeded|insufficient_quota|invalid_api_key|engine_overloaded_error|context_length_exceeded)\b/;

/** Checks that need only the stored facts: truncation, content filter, size. */
export function checkFacts(facts: MessageFacts, limits: CheckLimits, finishReason = facts.finishReason): Finding[] {
  const out: Finding[] = [];
  const tokens = completionTokens(facts.usage);
  if (finishReason === "length") {
    const spent = tokens === null ? "" : ` after ${tokens} completion tokens`;
    out.push(finding("truncated", `finish_reason is "length": the output was cut at the token limit${spent}`));
  } else if (finishReason === "content_filter") {
    out.push(finding("content_filtered", `finish_reason is "content_filter": the provider withheld or cut the output`));
  }
  if (facts.payloadSize > limits.sizeWarningBytes) {
    out.push(
      finding(
        "unusual_size",
        `The payload is ${mb(facts.payloadSize)}, above the ${mb(limits.sizeWarningBytes)} warning size`,
      ),
    );
  }
  return out;
}

/**
 * Checks a whole body. Returns the findings and, for a chat completion, its content (for the model review).
 */
export function checkBody(
  text: string,
  facts: MessageFacts,
  limits: CheckLimits,
): { findings: Finding[]; view?: CompletionView } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return {
      findings: [
        notCompletion(`The body is not JSON (${err.message}); it starts ${quote(text)}`),
        ...checkFacts(facts, limits),
      ],
    };
  }
  return checkCompletion(body, facts, limits);
}

/** How a completion was obtained, when not parsed from a whole body (a stream assembled by the watcher). */
export interface CompletionSource {
  /** Only the start of each text field was kept (the stream's text is above the analysis cap). */
  clipped?: boolean;
  /** UTF-8 bytes of content and reasoning, counted in full (clipped or not). */
  outputBytes?: number;
}

/**
 * Checks a parsed body (or a completion assembled from a stream): that it is a chat completion, then its first
 * choice's content. Returns the findings and the content (for the model review).
 */
export function checkCompletion(
  body: unknown,
  facts: MessageFacts,
  limits: CheckLimits,
  source: CompletionSource = {},
): { findings: Finding[]; view?: CompletionView } {
  const choices = isObject(body) ? body.choices : undefined;
  if (!isObject(body) || !Array.isArray(choices)) {
    const error = isObject(body) && isObject(body.error)
      ? `: an error object, ${quote(String(body.error.message ?? ""))}`
      : "";
    return {
      findings: [
        notCompletion(`The body is JSON but not a chat completion (no choices array)${error}`),
        ...checkFacts(facts, limits),
      ],
    };
  }
  const choice = isObject(choices[0]) ? choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const finishReason = typeof choice.finish_reason === "string" ? choice.finish_reason : facts.finishReason;
  const view: CompletionView = { content: textOf(message.content), reasoning: textOf(message.reasoning_content) };
  const hasToolCalls = Array.isArray(message.tool_calls) && message.tool_calls.length > 0;

  const findings = checkFacts(facts, limits, finishReason);
  if (choices.length === 0) findings.push(finding("empty_content", "The completion has no choices"));
  else if (view.content.trim() === "" && !hasToolCalls) findings.push(emptyContent(view.reasoning.length));
  else if (view.content.trim() !== "") {
    const errorText = errorAsContent(view.content);
    if (errorText) findings.push(errorText);
    if (facts.wantsJson) {
      const invalid = source.clipped ? invalidJsonStart(view.content) : invalidJson(view.content);
      if (invalid) findings.push(invalid);
    }
  }
  const ratio = sizeRatio(view, facts.usage, source.outputBytes);
  if (ratio) findings.push(ratio);
  return { findings, view };
}

/** Checks the head and tail of a body above the analysis cap (regular expressions on the raw JSON text). */
export function checkEdges(head: string, tail: string, facts: MessageFacts, limits: CheckLimits): Finding[] {
  const findings = checkFacts(facts, limits);
  if (facts.parsed === false || !/^\s*\{/.test(head) || !/\}\s*$/.test(tail)) {
    findings.unshift(notCompletion(`The body does not look like a JSON chat completion: it starts ${quote(head)}`));
    return findings;
  }
  const edges = `${head}\n${tail}`;
  const emptyField = /"content"\s*:\s*(null|"")\s*[,}]/.test(edges);
  const toolCalls = /"tool_calls"\s*:\s*\[\s*\{/.test(edges);
  if (emptyField && !toolCalls) {
    findings.push(emptyContent(/"reasoning_content"\s*:\s*"[^"]/.test(edges) ? -1 : 0));
  } else if (facts.wantsJson) {
    const start = /"content"\s*:\s*"(\s|\\[nrt])*(.)/.exec(head);
    if (start && start[2] !== "{" && start[2] !== "[") findings.push(jsonStartFinding(start[2]));
  }
  return findings;
}

function emptyContent(reasoningChars: number): Finding {
  if (reasoningChars === 0) return finding("empty_content", "The response has no content");
  const size = reasoningChars > 0 ? ` (${reasoningChars} characters)` : "";
  return finding(
    "empty_content",
    `The content is empty; only reasoning_content came back${size}: the output budget was likely spent on thinking`,
  );
}

function errorAsContent(content: string): Finding | undefined {
  if (content.length > ERROR_TEXT_MAX) return undefined;
  const looksLikeError = ERROR_TEXT_PATTERNS.some((p) => p.test(content)) ||
    (ERROR_TYPE_NAMES.test(content) && /\berror\b/i.test(content) && content.length < 600);
  if (!looksLikeError) return undefined;
  return finding("error_as_content", `The content is a provider error message, not an answer: ${quote(content)}`);
}

/** The start of content too long to parse here: JSON output must at least begin with { or [. */
function invalidJsonStart(content: string): Finding | undefined {
  const first = content.trimStart()[0];
  return first === undefined || first === "{" || first === "[" ? undefined : jsonStartFinding(first);
}

function jsonStartFinding(first: string): Finding {
  return finding("invalid_json", `JSON output was requested, but the content starts with ${quote(first)}, not { or [`);
}

function invalidJson(content: string): Finding | undefined {
  try {
    JSON.parse(content);
    return undefined;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const fenced = /^\s*```/.test(content) ? " (it is wrapped in a Markdown code fence)" : "";
    return finding(
      "invalid_json",
      `JSON output was requested, but the content is not valid JSON${fenced}: ${err.message}`,
    );
  }
}

/** Far more bytes than the completion tokens can explain (a token is a few bytes, at most a few dozen). */
function sizeRatio(
  view: CompletionView,
  usage: Record<string, unknown> | null,
  outputBytes?: number,
): Finding | undefined {
  const tokens = completionTokens(usage);
  if (tokens === null || tokens <= 0) return undefined;
  const bytes = outputBytes ??
    new TextEncoder().encode(view.content).length + new TextEncoder().encode(view.reasoning).length;
  if (bytes <= tokens * 64 + 4096) return undefined;
  return finding(
    "unusual_size",
    `The output has ${bytes} bytes for ${tokens} completion tokens (over 64 bytes a token)`,
  );
}

function notCompletion(message: string): Finding {
  return finding("not_chat_completion", message);
}

function completionTokens(usage: Record<string, unknown> | null): number | null {
  const n = usage?.completion_tokens;
  return typeof n === "number" && Number.isFinite(n) ? n : null;
}

/** The text of a message field: a string, or the text parts of a content array. */
function textOf(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    return value.map((p) => (isObject(p) && typeof p.text === "string" ? p.text : "")).join("");
  }
  return "";
}

function quote(text: string, max = 120): string {
  const chars = [...text];
  return JSON.stringify(chars.length > max ? `${chars.slice(0, max).join("")}…` : text);
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
