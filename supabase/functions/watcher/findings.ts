/**
 * What the watcher can find, how bad each finding is, and the verdict they add up to (CONTRACT.md §7). The
 * severity is fixed per code, so a verdict means the same thing for every message: `error` when the response is
 * unusable or untrustworthy, `warning` when it is usable with a caveat, `ok` otherwise (`info` findings, such as
 * "only head and tail were read", never change the verdict).
 */

/** Bump when the checks change meaningfully: one observation is kept per (transaction, watcher version). */
export const WATCHER_VERSION = "2";

export type Severity = "info" | "warning" | "error";
export type Verdict = "ok" | "warning" | "error";

export const SEVERITIES = {
  /** The stored bytes no longer match the checksum (or no longer decompress, or a chunk is missing). */
  checksum_mismatch: "error",
  /** The body is not a JSON chat completion (metadata.parsed = false, or it does not parse here). */
  not_chat_completion: "error",
  /** No content, including reasoning-only answers of thinking models (anchors.md §9 item 4). */
  empty_content: "error",
  /** JSON output was requested (response_format) and the content is not valid JSON. */
  invalid_json: "error",
  /** A provider or gateway error message passed off as the answer. */
  error_as_content: "error",
  /** The provider call failed; the message has no payload. */
  message_failed: "error",
  /** The provider's stream broke off (no [DONE] or finish_reason: cut, reset, stalled); what arrived is kept. */
  stream_incomplete: "error",
  /** finish_reason `length`: the output was cut at max_tokens (origin-lessons.md §4.12). */
  truncated: "warning",
  /** finish_reason `content_filter`. */
  content_filtered: "warning",
  /** Far larger than usual, or far more bytes than the reported completion tokens can explain. */
  unusual_size: "warning",
  /** The optional model review (a second opinion) had concerns; never more than a warning. */
  review_flagged: "warning",
  /** The payload is above the analysis cap: content checks read its head and tail only. */
  partial_analysis: "info",
} as const satisfies Record<string, Severity>;

export type FindingCode = keyof typeof SEVERITIES;

export interface Finding {
  code: FindingCode;
  message: string;
  severity: Severity;
}

/** A finding with the severity of its code. */
export function finding(code: FindingCode, message: string): Finding {
  return { code, message, severity: SEVERITIES[code] };
}

/** The verdict of a set of findings: the worst severity, with `info` counting as ok. */
export function verdictOf(findings: readonly Finding[]): Verdict {
  if (findings.some((f) => f.severity === "error")) return "error";
  if (findings.some((f) => f.severity === "warning")) return "warning";
  return "ok";
}

/** Findings as the contract shows them: `{ code, message }` only. */
export function publicFindings(findings: readonly Finding[]): Array<{ code: string; message: string }> {
  return findings.map(({ code, message }) => ({ code, message }));
}
