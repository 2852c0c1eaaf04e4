/**
 * The shape every function shares: a Hono app under `basePath('/<name>')` (the function sees its own name as the
 * first path segment, supabase-platform.md §1.4), CORS for browsers (hosted functions answer CORS themselves),
 * JSON 404s and the single error path of STYLE.md §4.
 */
import { Hono } from "hono";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { BusError } from "./errors.ts";

/** Creates the function's app. */
export function createApp(name: string): Hono {
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
        "x-filename",
        "x-owner-id",
      ],
      exposeHeaders: [
        "etag",
        "repr-digest",
        "x-transaction-id",
        "x-checksum",
        "content-encoding",
        "x-file-id",
        "content-disposition",
      ],
    }),
  );
  app.notFound((c) => c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404));
  app.onError((err, c) => {
    if (err instanceof BusError) return c.json(err.toBody(), err.status);
    if (err instanceof HTTPException) {
      return c.json({ error: { code: "http_error", message: err.message || "Request failed" } }, err.status);
    }
    console.error(`[${name}] unhandled error on ${c.req.method} ${c.req.path}:`, err);
    return c.json({ error: { code: "internal_error", message: "Internal error (logged)" } }, 500);
  });
  return app;
}
