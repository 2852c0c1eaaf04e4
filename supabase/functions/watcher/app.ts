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
import { serviceRoleDoor } from "../_shared/auth.ts";
import { BusError } from "../_shared/errors.ts";
import { db } from "../_shared/db.ts";
import { waitUntil } from "../_shared/background.ts";
import { smallJsonBody, transactionId } from "../_shared/door/validate.ts";
import { observeMessage } from "./observe.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

const bodySchema = z.strictObject({
  transaction_id: transactionId(),
  async: z.boolean().default(false),
  review: z.boolean().default(false),
});

export const app = createApp("watcher");
addHealthRoute(app, "watcher");

app.post("/", serviceRoleDoor, smallJsonBody(bodySchema, s.MESSAGE_BUS_MAX_JSON_DEPTH), async (c) => {
  const { async: background, review, transaction_id: id } = c.req.valid("json");
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
