// `npm run cli -- <command> [options]`: the bus CLI (client/cli.ts), run the way the other npm scripts run Deno
// (DENO_NO_PACKAGE_JSON=1, see ensure.mjs), from the folder npm was called in so that relative paths such as
// `fetch <id> --out answer.json` mean what the user expects.
import { join } from "node:path";
import { ensureNodeModules, ROOT, runDeno } from "./ensure.mjs";

ensureNodeModules();
await runDeno(["run", "-A", join(ROOT, "client", "cli.ts"), ...process.argv.slice(2)], {
  cwd: process.env.INIT_CWD ?? ROOT,
});
