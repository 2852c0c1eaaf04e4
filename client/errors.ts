/**
 * Typed, serialisable errors of the bus SDK (the supabase-js style: a base class with a brand field and a type
 * guard that works across library copies, `code` to branch on, `toJSON()`).
 */

/** Machine-readable error codes of the SDK. API errors carry the server's code (e.g. `not_found`). */
export const ErrorCode = {
  ChecksumMismatch: "checksum_mismatch",
  Network: "network_error",
  Timeout: "timeout",
  MessagePending: "message_pending",
  MessageFailed: "message_failed",
  Expired: "expired",
  RealtimeUnauthorized: "realtime_unauthorized",
  Realtime: "realtime_error",
  InvalidResponse: "invalid_response",
  InvalidArgument: "invalid_argument",
  /** A subscription ended (closed or aborted) before its channel was joined. */
  Closed: "closed",
  /** A stream ended without a clean end (the bus's error event, or the message failed); the bus's code when it gave one. */
  StreamIncomplete: "stream_incomplete",
} as const;

/** Extra fields of a {@link BusClientError}. */
export interface BusClientErrorOptions {
  /** HTTP status, when the error came from an HTTP answer. */
  status?: number;
  /** The message the error is about, when known. */
  transactionId?: string;
  /** Further machine-readable details (for API errors: the server's `error` object). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * Base class of every error the SDK returns. Branch on `code`, not on the message.
 *
 * @example
 * ```ts
 * const { data, error } = await bus.fetch(id);
 * if (isBusClientError(error) && error.code === "checksum_mismatch") console.error(error.toJSON());
 * ```
 */
export class BusClientError extends Error {
  /** Brand checked by {@link isBusClientError}; survives two copies of the SDK where `instanceof` does not. */
  readonly __isBusClientError = true;
  readonly code: string;
  readonly status?: number;
  readonly transactionId?: string;
  readonly details?: Record<string, unknown>;

  constructor(message: string, code: string, opts: BusClientErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "BusClientError";
    this.code = code;
    this.status = opts.status;
    this.transactionId = opts.transactionId;
    this.details = opts.details;
  }

  /** A plain object for logs and JSON output. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.transactionId === undefined ? {} : { transaction_id: this.transactionId }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** A function answered with a non-2xx status; `code` is the server's `error.code` (CONTRACT.md §4, §5). */
export class BusApiError extends BusClientError {
  constructor(message: string, code: string, opts: BusClientErrorOptions & { status: number }) {
    super(message, code, opts);
    this.name = "BusApiError";
  }
}

/** The request did not get an answer, or the answer's body broke off. */
export class BusNetworkError extends BusClientError {
  constructor(message: string, opts: BusClientErrorOptions = {}) {
    super(message, ErrorCode.Network, opts);
    this.name = "BusNetworkError";
  }
}

/**
 * The bytes do not match their checksum: found by the SDK while streaming (`source: "client"`), or reported by
 * message-fetch, which verifies before serving (`source: "server"`). The bytes are never returned.
 */
export class ChecksumMismatchError extends BusClientError {
  constructor(
    transactionId: string,
    readonly expected: string,
    readonly actual: string,
    readonly source: "client" | "server",
    opts: BusClientErrorOptions = {},
  ) {
    super(
      `Checksum mismatch for ${transactionId}: expected ${expected}, got ${actual} (detected by the ${source})`,
      ErrorCode.ChecksumMismatch,
      { ...opts, transactionId, details: { expected, actual, source, ...opts.details } },
    );
    this.name = "ChecksumMismatchError";
  }
}

/**
 * A stream did not end cleanly (CONTRACT.md §10): it ended with the bus's error event and no `[DONE]`, or its message
 * failed. `code` is the bus's (`stream_incomplete`, `worker_time_limit`, ...); `transactionId` names the message,
 * whose partial bytes stay stored for diagnosis. `details.partial_verified` says whether the bytes received matched
 * the stored partial's checksum.
 */
export class BusStreamError extends BusClientError {
  constructor(message: string, code: string = ErrorCode.StreamIncomplete, opts: BusClientErrorOptions = {}) {
    super(message, code, opts);
    this.name = "BusStreamError";
  }
}

/** Waiting for something took longer than allowed. */
export class BusTimeoutError extends BusClientError {
  constructor(message: string, opts: BusClientErrorOptions = {}) {
    super(message, ErrorCode.Timeout, opts);
    this.name = "BusTimeoutError";
  }
}

/** The Realtime channel could not be joined (`realtime_unauthorized` when the server refused the join). */
export class RealtimeError extends BusClientError {
  constructor(message: string, code: string = ErrorCode.Realtime, opts: BusClientErrorOptions = {}) {
    super(message, code, opts);
    this.name = "RealtimeError";
  }
}

/** True for every error the SDK returns, even from another copy of the SDK. */
export function isBusClientError(error: unknown): error is BusClientError {
  return typeof error === "object" && error !== null &&
    (error as { __isBusClientError?: unknown }).__isBusClientError === true;
}
