/**
 * The local Supabase stack: Postgres 15 with pg_cron, the platform bootstrap, migrations, the pg_net worker,
 * the Realtime stand-in, the OpenAI-compatible provider stand-in and the API gateway with the edge functions.
 * Serves until SIGINT/SIGTERM (or until its parent closes stdin, when started with `--exit-on-stdin-close`),
 * then stops everything, Postgres included.
 */
import { resolve } from "node:path";
import { startStack } from "./stack.ts";
import { installDriverGuard } from "../supabase/functions/_shared/driver_guard.ts";

const exitOnStdinClose = Deno.args.includes("--exit-on-stdin-close");
const log = (msg: string) => console.error(`[devstack] ${msg}`);
// The pg_net and Realtime stand-ins use postgres.js in this process too (see driver_guard.ts).
installDriverGuard(log);

let stack: Awaited<ReturnType<typeof startStack>>;
try {
  stack = await startStack({ root: resolve(new URL("..", import.meta.url).pathname), log });
} catch (err) {
  console.error(`\nThe local stack could not start:\n${err instanceof Error ? err.message : err}`);
  Deno.exit(1);
}
console.log(stack.banner);

let stopping = false;
async function shutdown(reason: string, code = 0): Promise<never> {
  if (stopping) return new Promise<never>(() => {});
  stopping = true;
  log(`${reason}: stopping`);
  try {
    await stack.stop();
  } catch (err) {
    console.error(`shutdown failed: ${err instanceof Error ? err.stack : err}`);
    code = 1;
  }
  log("stopped");
  Deno.exit(code);
}

Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
stack.postgresExited.then((code) => shutdown(`Postgres exited unexpectedly (code ${code})`, 1));
if (exitOnStdinClose) {
  (async () => {
    const reader = Deno.stdin.readable.getReader();
    while (!(await reader.read()).done) { /* the parent never writes; EOF means it is gone */ }
    await shutdown("parent closed stdin");
  })();
}
