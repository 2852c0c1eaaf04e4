// `npm run bench`: install what is missing, then run the benchmarks (bench/run.ts).
import { ensureNodeModules, ensureSystemPackages, runDeno } from "./ensure.mjs";

ensureNodeModules();
ensureSystemPackages({ forTests: false });
await runDeno(["run", "-A", "bench/run.ts", ...process.argv.slice(2)], { watchParent: true });
