/** The `message-fetch` function's routes (CONTRACT.md §5): the door, then the reads. */
import { z } from "zod";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { callerOf, messageCallerDoor } from "../_shared/auth.ts";
import { notFound } from "../_shared/errors.ts";
import { db } from "../_shared/db.ts";
import { door, isoTime, transactionId } from "../_shared/door/validate.ts";
import { metaBody } from "../_shared/message/meta.ts";
import { fetchPayload } from "./fetch_payload.ts";
import { listMeta, readMeta } from "../_shared/message/read.ts";

settings(); // fail at boot, with every problem listed, when a setting is bad

const idParam = z.object({ transaction_id: transactionId() });
const listQuery = z.strictObject({
  since: isoTime().default("1970-01-01T00:00:00Z"),
  limit: z.string().regex(/^\d{1,4}$/, "must be a whole number from 1 to 1000").transform(Number).pipe(
    z.number().min(1, "must be at least 1").max(1000, "must be at most 1000"),
  ).default(100),
});
const noQuery = z.strictObject({});
/** `?partial=1` (CONTRACT.md §10): what a failed stream kept; `0`/`false` or no value is the plain fetch. */
const fetchQuery = z.strictObject({
  partial: z.enum(["1", "true", "0", "false"], { error: "must be 1 or 0 (true or false)" }).optional()
    .transform((v) => v === "1" || v === "true"),
});

export const app = createApp("message-fetch");
addHealthRoute(app, "message-fetch");

app.get("/", messageCallerDoor, door("query", listQuery), async (c) => {
  const q = c.req.valid("query");
  const rows = await listMeta(db(), callerOf(c), new Date(q.since).toISOString(), q.limit);
  return c.json({ messages: rows.map(metaBody) });
});

app.get("/:transaction_id/meta", messageCallerDoor, door("param", idParam), door("query", noQuery), async (c) => {
  const { transaction_id: id } = c.req.valid("param");
  const row = await readMeta(db(), callerOf(c), id);
  if (!row) throw notFound(`No message ${id}`);
  return c.json(metaBody(row), row.status === "pending" ? 202 : 200);
});

app.get(
  "/:transaction_id/completion",
  messageCallerDoor,
  door("param", idParam),
  door("query", noQuery),
  async (c) => {
    return await fetchPayload(c, db(), callerOf(c), c.req.valid("param").transaction_id, { completion: true });
  },
);

app.get("/:transaction_id", messageCallerDoor, door("param", idParam), door("query", fetchQuery), async (c) => {
  const { partial } = c.req.valid("query");
  return await fetchPayload(c, db(), callerOf(c), c.req.valid("param").transaction_id, { partial });
});
