/** The `tool-invoke` function's routes. */
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { handleInvoke } from "./invoke.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

/** `EdgeRuntime.waitUntil` (supabase-platform.md §1.8). */
function waitUntil(p: Promise<unknown>): void {
  const runtime = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } }).EdgeRuntime;
  if (!runtime) throw new Error("EdgeRuntime.waitUntil is not available: async mode needs the Edge Runtime");
  runtime.waitUntil(p);
}

export const app = createApp("tool-invoke");
addHealthRoute(app, "tool-invoke");
app.post("/", (c) => handleInvoke(c, { settings: s, waitUntil }));
