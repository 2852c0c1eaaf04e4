// `npm run schema`: rewrite supabase/schema.sql from a fresh local stack (devstack/schema_dump.ts).
import { ensureNodeModules, ensureSystemPackages, runDeno } from "./ensure.mjs";

ensureNodeModules();
ensureSystemPackages({ forTests: false });
await runDeno(["run", "-A", "devstack/schema_dump.ts"], { watchParent: true });
