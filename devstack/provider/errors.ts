/**
 * OpenAI-style error responses: `{"error":{"message","type","param","code"}}`, the shape the `openai` SDK
 * parses into `APIError.type`, `.param` and `.code` (Moonshot and Z.ai answer in the same shape).
 */

const TYPES: Record<number, { type: string; code: string | null }> = {
  400: { type: "invalid_request_error", code: null },
  401: { type: "invalid_request_error", code: "invalid_api_key" },
  403: { type: "permission_error", code: null },
  404: { type: "invalid_request_error", code: "not_found" },
  405: { type: "invalid_request_error", code: "method_not_allowed" },
  429: { type: "rate_limit_error", code: "rate_limit_exceeded" },
  500: { type: "server_error", code: null },
  502: { type: "server_error", code: "bad_gateway" },
  503: { type: "server_error", code: "engine_overloaded" },
  504: { type: "server_error", code: "gateway_timeout" },
};

/** Options for {@link openAIError}. */
export interface OpenAIErrorOptions {
  param?: string | null;
  code?: string | null;
  /** Seconds for a `Retry-After` header. */
  retryAfter?: number;
}

/**
 * Builds an error response in the OpenAI error shape.
 *
 * @example
 * ```ts
 * const res = openAIError(400, "Expected messages to be a non-empty array, got nothing", { param: "messages" });
 * ```
 */
export function openAIError(status: number, message: string, options: OpenAIErrorOptions = {}): Response {
  const known = TYPES[status] ?? { type: status >= 500 ? "server_error" : "invalid_request_error", code: null };
  const body = {
    error: {
      message,
      type: known.type,
      param: options.param ?? null,
      code: options.code !== undefined ? options.code : known.code,
    },
  };
  const headers = new Headers({ "content-type": "application/json; charset=utf-8" });
  if (options.retryAfter !== undefined) headers.set("retry-after", String(options.retryAfter));
  return new Response(JSON.stringify(body), { status, headers });
}

/** The message a steered failure carries, worded like the provider's own; `by` names what steered it. */
export function steeredMessage(status: number, by = "#standin"): string {
  switch (status) {
    case 429:
      return `Rate limit reached for requests (stand-in, steered by ${by})`;
    case 503:
      return `The engine is currently overloaded, please try again later (stand-in, steered by ${by})`;
    case 500:
      return `The server had an error while processing your request (stand-in, steered by ${by})`;
    default:
      return `Stand-in failure with HTTP ${status}, steered by ${by}`;
  }
}

/**
 * Thrown by the stand-in's fetch handler instead of answering: the server closes the connection without any
 * HTTP response (outage or script step `reset`). A `TypeError`, as `fetch()` rejects on a network error, so an
 * in-process caller sees what a remote one would.
 */
export class ConnectionReset extends TypeError {
  override name = "ConnectionReset";
  constructor() {
    super("Stand-in reset the connection without answering (steered)");
  }
}

/**
 * Raised inside a response body stream where the server must close the connection abruptly mid-body
 * (`cut_after_bytes`): the client sees an incomplete body and a network error, never a clean end.
 */
export class ConnectionCut extends TypeError {
  override name = "ConnectionCut";
  constructor(bytes: number) {
    super(`Stand-in cut the connection after ${bytes} body bytes (steered)`);
  }
}
