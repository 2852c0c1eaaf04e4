/**
 * The `watcher` function's routes. `POST /watcher { transaction_id, async?, review? }` with the service role only
 * (config.toml has verify_jwt = false: the code checks the caller, supabase-platform.md §1.10):
 * - `async: true` (what the database trigger and the sweep send): 202 at once, the observation is made in the
 *   background (EdgeRuntime.waitUntil) — pg_net's batch is never held up by a large payload (§2.3);
 * - otherwise 200 with the observation (`created: false` when the message had been observed before);
 * - `review: true` forces the model review (still within the hourly budget).
 */
import { z } from "zod";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { requireServiceRole } from "../_shared/auth.ts";
import { badRequest, BusError } from "../_shared/errors.ts";
import { db } from "../_shared/db.ts";
import { readSmallJson, waitUntil } from "../_shared/background.ts";
import { observeMessage } from "./observe.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

const bodySchema = z.strictObject({
  transaction_id: z.uuid({ error: "must be a UUID transaction id" }),
  async: z.boolean().default(false),
  review: z.boolean().default(false),
});

export const app = createApp("watcher");
addHealthRoute(app, "watcher");

app.post("/", async (c) => {
  await requireServiceRole(c);
  const raw = await readSmallJson(c.req.raw);
  if (!raw) throw badRequest("The body must be a JSON object { transaction_id }");
  const parsed = bodySchema.safeParse(raw);
  if (!parsed.success) {
    throw badRequest("Invalid request body", {
      issues: parsed.error.issues.map((i) => ({ path: i.path.join(".") || "(body)", message: i.message })),
    });
  }
  const { async: background, review } = parsed.data;
  const id = parsed.data.transaction_id.toLowerCase();
  const deps = { sql: db(), settings: s };
  if (background) {
    waitUntil(
      observeMessage(id, deps, { review }).catch((err) => {
        // Not recorded: the message stays in bus.watch_queue and the sweep asks again (bounded attempts).
        if (err instanceof BusError && err.status < 500) console.warn(`[watcher] ${id}: ${err.code}: ${err.message}`);
        else console.error(`[watcher] observing ${id} failed:`, err);
      }),
    );
    return c.json({ transaction_id: id, status: "accepted" }, 202);
  }
  return c.json(await observeMessage(id, deps, { review }), 200);
});
