/** Entry point of `mcp`: wiring only (STYLE.md §2); routes live in app.ts. */
import { installDriverGuard } from "../_shared/driver_guard.ts";
import { defaultMcpApp } from "./app.ts";

installDriverGuard();
Deno.serve(defaultMcpApp().fetch);
