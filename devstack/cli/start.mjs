// `npm start`: install what is missing, then run the local stack until Ctrl-C / SIGTERM (CONTRACT.md §1).
import { ensureNodeModules, ensureSystemPackages, runDeno } from "./ensure.mjs";

ensureNodeModules();
ensureSystemPackages({ forTests: false });
await runDeno(["run", "-A", "devstack/main.ts", "--exit-on-stdin-close"], { watchParent: true });
