/**
 * One error type for every function: `code` (machine-readable), `status` (HTTP) and optional `details`. The
 * single `onError` in http.ts turns it into `{ "error": { "code", "message", ...details } }` (CONTRACT.md §4), with
 * `headers` (e.g. `Retry-After`) on the response.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class BusError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "BusError";
  }

  /** The JSON body: `{ error: { code, message, ...details }, ...extra }`. */
  toBody(): Record<string, unknown> {
    return { error: { ...this.details, code: this.code, message: this.message }, ...this.extra };
  }
}

/** One problem with a request: where (`path`, dotted) and what. */
export interface Issue {
  path: string;
  message: string;
}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new BusError(400, "invalid_request", message, details);
/** 400 naming every problem (`issues`), the door's answer to bad input. */
export const invalidRequest = (message: string, issues: Issue[]) =>
  new BusError(400, "invalid_request", message, { issues });
export const unauthorized = (message = "Missing or invalid authorization") =>
  new BusError(401, "unauthorized", message);
export const notFound = (message = "Not found") => new BusError(404, "not_found", message);
export const payloadTooLarge = (message: string, details?: Record<string, unknown>) =>
  new BusError(413, "payload_too_large", message, details);
/** 503 with `Retry-After`: the instance is at a resource bound (bodies in flight, database connections). */
export const busy = (code: string, message: string, retryAfterSeconds: number) =>
  new BusError(503, code, message, { retry_after_seconds: retryAfterSeconds }, {}, {
    "retry-after": String(retryAfterSeconds),
  });
