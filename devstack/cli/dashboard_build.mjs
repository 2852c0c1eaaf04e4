// `npm run dashboard:build -- --api-url https://<ref>.supabase.co [--out dist/dashboard]`: the dashboard as a
// static site with the API URL fixed in its bundle (devstack/dashboard_build.ts). A relative --out is relative to
// the folder npm was called in.
import { join } from "node:path";
import { ensureNodeModules, ROOT, runDeno } from "./ensure.mjs";

ensureNodeModules();
await runDeno(["run", "-A", join(ROOT, "devstack", "dashboard_build.ts"), ...process.argv.slice(2)], {
  cwd: process.env.INIT_CWD ?? ROOT,
});
