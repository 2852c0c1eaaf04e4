// `npm test`: install what is missing, then run the whole suite against a fresh local stack (CONTRACT.md §1).
import { ensureNodeModules, ensureSystemPackages, runDeno } from "./ensure.mjs";

ensureNodeModules();
ensureSystemPackages({ forTests: true });
await runDeno(["run", "-A", "devstack/test_runner.ts", ...process.argv.slice(2)], { watchParent: true });
