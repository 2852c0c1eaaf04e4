/** Entry point of `ops`: wiring only (STYLE.md §2); routes live in app.ts. */
import { app } from "./app.ts";

Deno.serve(app.fetch);
