/**
 * The `watcher` function's routes. `POST /watcher` with the service role only (config.toml has verify_jwt = false:
 * the code checks the caller, supabase-platform.md §1.10):
 * - `{ drain: true }` (what the database trigger and the sweep send, migration 20261126000900): 202 at once; the
 *   watch queue is drained in the background (EdgeRuntime.waitUntil), batch by batch — pg_net's batch is never held
 *   up by the work (§2.3);
 * - `{ transaction_id, async?, review? }`: one message; `async: true` answers 202 and observes in the background,
 *   otherwise 200 with the observation (`created: false` when the message had been observed before); `review: true`
 *   forces the model review (still within the hourly budget).
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
import { drainWatchQueue } from "./drain.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

const bodySchema = z.union([
  z.strictObject({ drain: z.literal(true) }),
  z.strictObject({
    transaction_id: transactionId(),
    async: z.boolean().default(false),
    review: z.boolean().default(false),
  }),
]);

export const app = createApp("watcher");
addHealthRoute(app, "watcher");

app.post("/", serviceRoleDoor, smallJsonBody(bodySchema, s.MESSAGE_BUS_MAX_JSON_DEPTH), async (c) => {
  const body = c.req.valid("json");
  const deps = { sql: db(), settings: s };
  if ("drain" in body) {
    waitUntil(
      drainWatchQueue(deps).catch((err) => {
        // Not lost: the rows it held are taken again once their claim runs out (the next wake or the sweep).
        console.error("[watcher] drain failed:", err);
      }),
    );
    return c.json({ status: "accepted", drain: true }, 202);
  }
  const { async: background, review, transaction_id: id } = body;
  if (background) {
    waitUntil(
      observeMessage(id, deps, { review }).catch((err) => {
        // Not recorded: the message stays in bus.watch_queue and a drain takes it (bounded attempts).
        if (err instanceof BusError && err.status < 500) console.warn(`[watcher] ${id}: ${err.code}: ${err.message}`);
        else console.error(`[watcher] observing ${id} failed:`, err);
      }),
    );
    return c.json({ transaction_id: id, status: "accepted" }, 202);
  }
  return c.json(await observeMessage(id, deps, { review }), 200);
});
