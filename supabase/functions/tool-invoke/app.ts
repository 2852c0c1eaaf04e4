/** The `tool-invoke` function's routes (CONTRACT.md §4): the door, then the invoke. */
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { messageCallerDoor } from "../_shared/auth.ts";
import { waitUntil } from "../_shared/background.ts";
import { BodyBudget } from "../_shared/door/body.ts";
import { door, jsonBody } from "../_shared/door/validate.ts";
import { invokeBodyLimits, invokeBodySchema, invokeHeadersSchema } from "../_shared/invoke/request.ts";
import { invoke } from "./invoke.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad
const budget = new BodyBudget(s.MESSAGE_BUS_BODY_BUDGET_MB * 1024 * 1024);

export const app = createApp("tool-invoke");
addHealthRoute(app, "tool-invoke");
app.post(
  "/",
  messageCallerDoor,
  door("header", invokeHeadersSchema),
  jsonBody(invokeBodySchema(s), { ...invokeBodyLimits(s), budget }),
  (c) => invoke(c, { settings: s, waitUntil }),
);
