/** The `tool-invoke` function's routes (CONTRACT.md §4, §9): the door, then the invoke. */
import { z } from "zod";
import { createApp } from "../_shared/http.ts";
import { settings } from "../_shared/env.ts";
import { messageCallerDoor, serviceRoleDoor } from "../_shared/auth.ts";
import { waitUntil } from "../_shared/background.ts";
import { databaseIsUp } from "../_shared/db.ts";
import { circuits } from "../_shared/routing/breaker.ts";
import { BodyBudget } from "../_shared/door/body.ts";
import { door, jsonBody, smallJsonBody, transactionId } from "../_shared/door/validate.ts";
import {
  idempotencyKeySchema,
  invokeBodyLimits,
  invokeBodySchema,
  invokeHeadersSchema,
} from "../_shared/invoke/request.ts";
import { invoke } from "./invoke.ts";
import { dispatch, replay, runAgain } from "./runs.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad
const budget = new BodyBudget(s.MESSAGE_BUS_BODY_BUDGET_MB * 1024 * 1024);
const deps = { settings: s, waitUntil };
const idParam = z.object({ transaction_id: transactionId() });

export const app = createApp("tool-invoke");

// Health (CONTRACT.md §2, §9): the database, and every route called so far with its circuit state (no secrets).
app.get("/health", async (c) => {
  if (!(await databaseIsUp())) {
    return c.json({ function: "tool-invoke", status: "degraded", database: "down" }, 503);
  }
  return c.json({ function: "tool-invoke", status: "ok", database: "up", circuits: await circuits() });
});

app.post(
  "/",
  messageCallerDoor,
  door("header", invokeHeadersSchema),
  jsonBody(invokeBodySchema(s), { ...invokeBodyLimits(s), budget }),
  (c) => invoke(c, deps),
);

app.post(
  "/dispatch",
  serviceRoleDoor,
  smallJsonBody(z.strictObject({}), s.MESSAGE_BUS_MAX_JSON_DEPTH),
  async (c) => c.json(await dispatch(s), 200),
);

app.post(
  "/:transaction_id/run",
  serviceRoleDoor,
  door("param", idParam),
  smallJsonBody(z.strictObject({ run: z.number().int().min(1).max(1000) }), s.MESSAGE_BUS_MAX_JSON_DEPTH),
  async (c) => c.json(await runAgain(deps, c.req.valid("param").transaction_id, c.req.valid("json").run), 202),
);

app.post(
  "/:transaction_id/replay",
  messageCallerDoor,
  door("param", idParam),
  door("header", z.looseObject({ "idempotency-key": idempotencyKeySchema.optional() })),
  smallJsonBody(z.strictObject({}), s.MESSAGE_BUS_MAX_JSON_DEPTH),
  (c) => replay(c, deps, c.req.valid("param").transaction_id),
);
