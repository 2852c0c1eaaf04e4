/**
 * One error type for every function: `code` (machine-readable), `status` (HTTP) and optional `details`. The
 * single `onError` in http.ts turns it into `{ "error": { "code", "message", ...details } }` (CONTRACT.md §4).
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export class BusError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "BusError";
  }

  /** The JSON body: `{ error: { code, message, ...details }, ...extra }`. */
  toBody(): Record<string, unknown> {
    return { error: { ...this.details, code: this.code, message: this.message }, ...this.extra };
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new BusError(400, "invalid_request", message, details);
export const unauthorized = (message = "Missing or invalid authorization") =>
  new BusError(401, "unauthorized", message);
export const notFound = (message = "Not found") => new BusError(404, "not_found", message);
export const payloadTooLarge = (message: string, details?: Record<string, unknown>) =>
  new BusError(413, "payload_too_large", message, details);
