/**
 * Which functions exist and how the gateway treats them, read the way the Supabase CLI reads them
 * (supabase-platform.md §1.1 and §1.5): every sub-folder of `supabase/functions` with an entrypoint is a function
 * (folders starting with `_` and the `tests` folder are not); `[functions.<name>]` in `supabase/config.toml` may
 * set `enabled`, `verify_jwt` and `entrypoint`; a function not listed gets `enabled = true, verify_jwt = true`.
 */
import { parse } from "smol-toml";
import { resolve } from "node:path";

export interface FunctionSpec {
  name: string;
  verifyJwt: boolean;
  /** Absolute path of the entrypoint module. */
  entrypoint: string;
}

interface TomlFunction {
  enabled?: boolean;
  verify_jwt?: boolean;
  entrypoint?: string;
}

/** Reads `supabaseDir/config.toml` and `supabaseDir/functions/*` into function specs. */
export function readFunctionSpecs(supabaseDir: string): FunctionSpec[] {
  const config = parse(Deno.readTextFileSync(resolve(supabaseDir, "config.toml"))) as {
    functions?: Record<string, TomlFunction>;
  };
  const listed = config.functions ?? {};
  const specs: FunctionSpec[] = [];
  for (const entry of Deno.readDirSync(resolve(supabaseDir, "functions"))) {
    if (!entry.isDirectory || entry.name.startsWith("_") || entry.name === "tests") continue;
    const fn = listed[entry.name] ?? {};
    if (fn.enabled === false) continue;
    const entrypoint = fn.entrypoint
      ? resolve(supabaseDir, fn.entrypoint)
      : resolve(supabaseDir, "functions", entry.name, "index.ts");
    specs.push({ name: entry.name, verifyJwt: fn.verify_jwt ?? true, entrypoint });
  }
  return specs.sort((a, b) => a.name.localeCompare(b.name));
}
