/**
 * The `cleanup` function's routes. `POST /cleanup` with the service role only (config.toml has verify_jwt = false:
 * the code checks the caller, supabase-platform.md §1.10) runs a cleanup now and answers with its counts,
 * `{ expired, purged, reaped, ... }` (CONTRACT.md §8). `{ "async": true }` (what the pg_cron job sends) answers 202
 * at once and runs it in the background, so pg_net's batch is not held for the whole run (§2.3).
 */
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { z } from "zod";
import { serviceRoleDoor } from "../_shared/auth.ts";
import { db } from "../_shared/db.ts";
import { waitUntil } from "../_shared/background.ts";
import { smallJsonBody } from "../_shared/door/validate.ts";
import { runCleanup } from "./run_cleanup.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

export const app = createApp("cleanup");
addHealthRoute(app, "cleanup");

const bodySchema = z.strictObject({ async: z.boolean().default(false) });

app.post("/", serviceRoleDoor, smallJsonBody(bodySchema, s.MESSAGE_BUS_MAX_JSON_DEPTH), async (c) => {
  if (c.req.valid("json").async) {
    waitUntil(
      runCleanup(db(), s).then(
        (r) => console.log(`[cleanup] run ${r.run_id}: ${JSON.stringify(r)}`),
        (err) => console.error("[cleanup] background run failed (logged in bus.maintenance_log):", err),
      ),
    );
    return c.json({ status: "accepted" }, 202);
  }
  return c.json(await runCleanup(db(), s), 200);
});
