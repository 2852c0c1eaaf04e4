/** The `message-fetch` function's routes (CONTRACT.md §5). */
import { z } from "zod";
import type { Context } from "hono";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { authenticate, type Caller } from "../_shared/auth.ts";
import { badRequest, BusError, notFound } from "../_shared/errors.ts";
import { db } from "../_shared/db.ts";
import { fetchPayload } from "./fetch_payload.ts";
import { listMeta, metaBody, readMeta } from "./meta.ts";

settings(); // fail at boot, with every problem listed, when a setting is bad

const idSchema = z.uuid({ error: "must be a UUID transaction id" });
const listQuery = z.object({
  since: z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" }).default("1970-01-01T00:00:00Z"),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

function parseId(raw: string): string {
  const parsed = idSchema.safeParse(raw);
  if (!parsed.success) {
    throw badRequest(`Malformed transaction id ${JSON.stringify(raw)}`, {
      issues: [{ path: "transaction_id", message: parsed.error.issues[0].message }],
    });
  }
  return parsed.data.toLowerCase();
}

/** The caller; anon keys own no messages and RLS grants them nothing, so 401 (as tool-invoke answers). */
async function messageReader(c: Context): Promise<Caller> {
  const caller = await authenticate(c);
  if (caller.role === "anon") throw new BusError(401, "unauthorized", "A user or service_role token is required");
  return caller;
}

export const app = createApp("message-fetch");
addHealthRoute(app, "message-fetch");

app.get("/", async (c) => {
  const caller = await messageReader(c);
  const q = listQuery.safeParse({ since: c.req.query("since"), limit: c.req.query("limit") });
  if (!q.success) {
    throw badRequest("Invalid query", {
      issues: q.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  const rows = await listMeta(db(), caller, q.data.since, q.data.limit);
  return c.json({ messages: rows.map(metaBody) });
});

app.get("/:id/meta", async (c) => {
  const caller = await messageReader(c);
  const id = parseId(c.req.param("id"));
  const row = await readMeta(db(), caller, id);
  if (!row) throw notFound(`No message ${id}`);
  return c.json(metaBody(row), row.status === "pending" ? 202 : 200);
});

app.get("/:id", async (c) => {
  const caller = await messageReader(c);
  return await fetchPayload(c, db(), caller, parseId(c.req.param("id")));
});
