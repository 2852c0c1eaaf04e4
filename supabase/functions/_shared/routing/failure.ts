/**
 * What a failed provider attempt was, and what the bus does about it (CONTRACT.md §9): 429, 408, 5xx, timeouts
 * and connection errors are retried (with the provider's Retry-After honoured up to a cap) and count against the
 * route's circuit; any other 4xx is the request's fault: not retried, not counted, no fallback.
 */
import OpenAI from "openai";

export interface AttemptFailure {
  /** Retried, counted by the breaker, and a reason to fall back. */
  retryable: boolean;
  /** The provider's HTTP status, or null when none came. */
  status: number | null;
  /** For meta `attempts`: `http_<status>`, `timeout` or `connection`. */
  errorCode: string;
  /** The provider's Retry-After, in milliseconds, when it sent one. */
  retryAfterMs?: number;
  /** The error recorded on the message if this is the last word: `{ code, message, provider, ... }`. */
  error: Record<string, unknown>;
}

/** Thrown by the body tap when reading the provider's body fails (the provider's fault, not the store's). */
export class ProviderBodyError extends Error {
  constructor(override readonly cause: unknown) {
    super(`reading the provider's body failed: ${cause instanceof Error ? cause.message : cause}`);
    this.name = "ProviderBodyError";
  }
}

/**
 * A stream that failed before its first event reached the client: it ended before any event, or its first event
 * was an error or not a chunk. Retried and a reason to fall back, like a 5xx (nothing was relayed yet).
 */
export class ProviderStreamError extends Error {
  constructor(message: string, readonly providerError: Record<string, unknown> | null = null) {
    super(message);
    this.name = "ProviderStreamError";
  }
}

/** Passes `source` through, turning a failure to read it into a {@link ProviderBodyError}. */
export async function* providerBody(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) yield chunk;
  } catch (err) {
    throw new ProviderBodyError(err);
  }
}

/**
 * Classifies `err` from an attempt at `provider`. `timedOut` says whether the attempt's own deadline fired (the
 * abort then shows up as whatever the SDK or the body read throws).
 */
export function classifyFailure(err: unknown, provider: string, timedOut: boolean): AttemptFailure {
  if (timedOut) {
    return {
      retryable: true,
      status: null,
      errorCode: "timeout",
      error: { code: "provider_timeout", provider, message: `${provider} did not finish answering in time` },
    };
  }
  if (err instanceof OpenAI.APIError && typeof err.status === "number") {
    const status = err.status;
    const retryable = status === 429 || status === 408 || status >= 500;
    return {
      retryable,
      status,
      errorCode: `http_${status}`,
      retryAfterMs: retryAfterMs(err.headers),
      error: {
        code: "provider_error",
        provider,
        provider_status: status,
        // The SDK's message starts with the status itself ("404 Not found"): said once.
        message: `${provider} answered ${status}: ${err.message.replace(/^\d{3} /, "")}`,
        provider_error: err.error ?? null,
      },
    };
  }
  if (err instanceof ProviderStreamError) {
    return {
      retryable: true,
      status: 200,
      errorCode: "stream_error",
      error: {
        code: "provider_error",
        provider,
        message: `${provider} streamed no usable first event: ${err.message}`,
        provider_error: err.providerError,
      },
    };
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return {
      retryable: true,
      status: null,
      errorCode: "timeout",
      error: { code: "provider_timeout", provider, message: `${provider} did not answer in time` },
    };
  }
  const cause = err instanceof ProviderBodyError ? err.cause : err;
  if (err instanceof OpenAI.APIConnectionError || err instanceof ProviderBodyError) {
    return {
      retryable: true,
      status: null,
      errorCode: "connection",
      error: {
        code: "provider_unreachable",
        provider,
        message: `${provider} could not be reached or broke off: ${cause instanceof Error ? cause.message : cause}`,
      },
    };
  }
  console.error(`[routing] unexpected failure of a ${provider} attempt:`, err);
  return {
    retryable: false,
    status: null,
    errorCode: "error",
    error: { code: "provider_error", provider, message: `${provider} call failed (logged)` },
  };
}

/** Retry-After (seconds or an HTTP date) or retry-after-ms, in milliseconds. */
export function retryAfterMs(headers: Headers | Record<string, string> | undefined | null): number | undefined {
  if (!headers) return undefined;
  const get = (k: string) => headers instanceof Headers ? headers.get(k) : (headers as Record<string, string>)[k];
  const ms = get("retry-after-ms");
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Number(ms);
  const value = get("retry-after");
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** Exponential backoff with full jitter: a random delay up to base × 2^attempt, capped at 8 s. */
export function backoffMs(attempt: number, baseMs: number, random = Math.random): number {
  return Math.round(random() * Math.min(8_000, baseMs * 2 ** attempt));
}
