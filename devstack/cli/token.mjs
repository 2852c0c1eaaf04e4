// `npm run -s token -- [<user uuid>] [--expires-in <seconds>]`: prints a user access token for the local stack
// (devstack/token.ts). Only the token goes to stdout; setup messages, if any, go to stderr.
import { ensureNodeModules, runDeno } from "./ensure.mjs";

ensureNodeModules();
await runDeno(["run", "--allow-read", "--allow-env", "devstack/token.ts", ...process.argv.slice(2)]);
