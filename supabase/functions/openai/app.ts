/**
 * The `openai` function (CONTRACT.md §10): OpenAI's Chat Completions API in front of the bus, so that an unchanged
 * OpenAI client gets claim-check integrity by changing its base URL to `<API>/functions/v1/openai/v1` and using a
 * user or service_role JWT as its API key. Every call is a bus message like a tool-invoke `chat`.
 */
import { z } from "zod";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { messageCallerDoor } from "../_shared/auth.ts";
import { waitUntil } from "../_shared/background.ts";
import { BodyBudget } from "../_shared/door/body.ts";
import { door, jsonBody } from "../_shared/door/validate.ts";
import { completionBodyLimits, completionBodySchema, completionHeadersSchema } from "./request.ts";
import { chatCompletion } from "./completions.ts";
import { openAiError } from "./errors.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad
const budget = new BodyBudget(s.MESSAGE_BUS_BODY_BUDGET_MB * 1024 * 1024);
const deps = { settings: s, waitUntil };

export const app = createApp("openai", {
  allowHeaders: ["x-bus-session-id", "x-bus-ttl-seconds", "openai-organization", "openai-project"],
});
app.onError(openAiError);
app.notFound((c) =>
  c.json({
    error: {
      message: `No route ${c.req.method} ${c.req.path}`,
      type: "not_found_error",
      code: "not_found",
      param: null,
    },
  }, 404)
);
addHealthRoute(app, "openai");

app.post(
  "/v1/chat/completions",
  messageCallerDoor,
  door("header", completionHeadersSchema(s)),
  jsonBody(completionBodySchema(s), { ...completionBodyLimits(s), budget }),
  (c) => chatCompletion(c, deps),
);

/** The configured providers' default models, as `<provider>/<model>` (any other model is asked for by name). */
function models() {
  return [...s.providers.values()].filter((p) => p.apiKey).map((p) => ({
    id: `${p.name}/${p.defaultModel}`,
    object: "model" as const,
    created: 0,
    owned_by: p.name,
  }));
}

app.get("/v1/models", messageCallerDoor, door("query", z.strictObject({})), (c) => {
  return c.json({ object: "list", data: models() });
});

app.get(
  "/v1/models/:id{.+}",
  messageCallerDoor,
  door("param", z.object({ id: z.string().min(1).max(300) })),
  (c) => {
    const id = c.req.valid("param").id;
    const model = models().find((m) => m.id === id);
    if (!model) {
      return c.json({
        error: { message: `No model ${id}`, type: "not_found_error", code: "not_found", param: "model" },
      }, 404);
    }
    return c.json(model);
  },
);
