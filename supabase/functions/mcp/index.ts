/** Entry point of `mcp`: wiring only (STYLE.md §2); routes live in app.ts. */
import { defaultMcpApp } from "./app.ts";

Deno.serve(defaultMcpApp().fetch);
