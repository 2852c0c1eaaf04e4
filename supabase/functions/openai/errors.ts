/**
 * Errors in OpenAI's shape, `{ "error": { "message", "type", "code", "param" } }` (CONTRACT.md §10), with the
 * statuses of tool-invoke (§4), except that a provider's own 4xx answer (other than 408 and 429) is passed on with
 * its status and message. Every error that recorded a message carries `x-bus-transaction-id`.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { HTTPException } from "hono/http-exception";
import { BusError } from "../_shared/errors.ts";
import { isDatabaseUnreachable } from "../_shared/db_errors.ts";

/** OpenAI's error `type` for a status. */
function typeOf(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** The response for `err`, in OpenAI's shape. */
export function openAiError(err: unknown, c: Context): Response {
  if (err instanceof BusError) {
    const headers = new Headers(err.headers);
    const id = err.extra.transaction_id;
    if (typeof id === "string") headers.set("x-bus-transaction-id", id);
    let status: ContentfulStatusCode = err.status;
    let message = err.message;
    let type = typeOf(status);
    // A provider's own refusal (its 4xx other than 408/429) is passed on: the request was the problem.
    const providerStatus = err.details.provider_status;
    if (
      err.code === "provider_error" && typeof providerStatus === "number" && providerStatus >= 400 &&
      providerStatus < 500 && providerStatus !== 408 && providerStatus !== 429
    ) {
      status = providerStatus as ContentfulStatusCode;
      const own = err.details.provider_error as Record<string, unknown> | null | undefined;
      if (own && typeof own.message === "string") message = own.message;
      type = own && typeof own.type === "string" ? own.type : typeOf(status);
    }
    const issues = err.details.issues as { path: string; message: string }[] | undefined;
    return json(
      {
        error: {
          message,
          type,
          code: err.code,
          param: issues?.[0]?.path ?? null,
          ...(issues ? { issues } : {}),
        },
      },
      status,
      headers,
    );
  }
  if (isDatabaseUnreachable(err)) {
    console.error(`[openai] the database is unreachable on ${c.req.method} ${c.req.path}:`, err);
    return json(
      {
        error: {
          message: "The bus's database is unreachable; retry shortly",
          type: "api_error",
          code: "bus_unavailable",
          param: null,
        },
      },
      503,
      new Headers({ "retry-after": "5" }),
    );
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    return json(
      { error: { message: err.message || "Request failed", type: typeOf(status), code: "http_error", param: null } },
      status,
    );
  }
  console.error(`[openai] unhandled error on ${c.req.method} ${c.req.path}:`, err);
  return json(
    { error: { message: "Internal error (logged)", type: "api_error", code: "internal_error", param: null } },
    500,
  );
}

function json(body: unknown, status: number, headers = new Headers()): Response {
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { status, headers });
}
