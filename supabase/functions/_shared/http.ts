/**
 * The shape every function shares: a Hono app under `basePath('/<name>')` (the function sees its own name as the
 * first path segment, supabase-platform.md §1.4), CORS for browsers (hosted functions answer CORS themselves),
 * JSON 404s and the single error path of STYLE.md §4.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { BusError } from "./errors.ts";
import { isDatabaseUnreachable } from "./db_errors.ts";

/** Headers a function allows or exposes to browsers beyond the common ones. */
export interface AppOptions {
  allowHeaders?: string[];
  exposeHeaders?: string[];
}

/** Creates the function's app. */
export function createApp(name: string, opts: AppOptions = {}): Hono {
  const app = new Hono().basePath(`/${name}`);
  app.use(
    "*",
    cors({
      origin: "*",
      allowHeaders: [
        "authorization",
        "x-client-info",
        "apikey",
        "content-type",
        "idempotency-key",
        ...(opts.allowHeaders ?? []),
        "x-filename",
        "x-owner-id",
      ],
      exposeHeaders: [
        "etag",
        "repr-digest",
        "x-transaction-id",
        "x-checksum",
        "content-encoding",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-bus-transaction-id",
        "x-bus-checksum",
        "x-bus-degraded",
        "server-timing",
        "x-file-id",
        "content-disposition",
        ...(opts.exposeHeaders ?? []),
      ],
    }),
  );
  app.notFound((c) => c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => {
    // The error's headers too: Retry-After of a 503, WWW-Authenticate of a 401.
    if (err instanceof BusError) return c.json(err.toBody(), err.status, err.headers);
    if (isDatabaseUnreachable(err)) {
      console.error(`[${name}] the database is unreachable on ${c.req.method} ${c.req.path}:`, err);
      return c.json(
        { error: { code: "bus_unavailable", message: "The bus's database is unreachable; retry shortly" } },
        503,
        { "retry-after": "5" },
      );
    }
    if (err instanceof HTTPException) {
      return c.json({ error: { code: "http_error", message: err.message || "Request failed" } }, err.status);
    }
    console.error(`[${name}] unhandled error on ${c.req.method} ${c.req.path}:`, err);
    return c.json({ error: { code: "internal_error", message: "Internal error (logged)" } }, 500);
  });
  return app;
}
