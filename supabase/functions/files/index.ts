/** Entry point of `files`: wiring only (STYLE.md §2); routes live in app.ts. */
import { installDriverGuard } from "../_shared/driver_guard.ts";
import { app } from "./app.ts";

installDriverGuard();
Deno.serve(app.fetch);
