/** The `watcher` function's routes. */
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";

settings(); // fail at boot, with every problem listed, when a setting is bad

export const app = createApp("watcher");
addHealthRoute(app, "watcher");
