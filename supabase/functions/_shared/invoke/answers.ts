/**
 * What an invoke answers (CONTRACT.md §4): the 200 body of a completed message, 202 while pending, and for a failed
 * one the contract's error with `transaction_id` and `status: "failed"`, its HTTP status chosen by the recorded
 * error code.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { BusError } from "../errors.ts";
import type { MessageRow } from "../message/row.ts";

/** The 200 body of a completed message. */
export function completedBody(row: MessageRow) {
  return {
    transaction_id: row.transaction_id,
    status: row.status,
    checksum: row.checksum,
    payload_size_bytes: Number(row.payload_size_bytes),
    provider: row.provider,
    model: row.model,
    finish_reason: row.finish_reason,
    expires_at: new Date(row.expires_at).toISOString(),
  };
}

/** The HTTP status of a failure with error `code`. */
export function failureStatus(code: string): ContentfulStatusCode {
  switch (code) {
    case "payload_too_large":
      return 413;
    case "file_not_found": // a file deleted or expired between the request and its run
    case "file_not_text":
      return 400;
    case "storage_failed":
    case "worker_lost":
      return 500;
    case "provider_busy":
    case "rate_limited":
      return 429;
    case "provider_unavailable":
      return 503;
    default: // provider_error, provider_timeout, provider_unreachable, request_lost, ...
      return 502;
  }
}

/**
 * The error answer of a failed message. `error` is what was recorded (`{ code, message, ... }`); `extra` adds to
 * the body (e.g. `recorded: false` when recording the failure itself failed).
 */
export function failureError(
  transactionId: string,
  error: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): BusError {
  const code = String(error.code ?? "failed");
  const status = failureStatus(code);
  // 429 and 503 always say when to come back (CONTRACT.md §4); the live answer gives the real wait.
  const headers: Record<string, string> = status === 429 || status === 503 ? { "retry-after": "1" } : {};
  return new BusError(status, code, String(error.message ?? "The message failed"), error, {
    transaction_id: transactionId,
    status: "failed",
    ...extra,
  }, headers);
}
