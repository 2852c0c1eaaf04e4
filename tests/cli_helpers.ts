/**
 * Running the CLI (client/cli.ts) as a user runs it: `deno run -A client/cli.ts ...` in a subprocess with a clean
 * environment, against the running test stack or a stack of the test's own.
 */
import { testStack } from "../devstack/testing/env.ts";

export const CLI = new URL("../client/cli.ts", import.meta.url).pathname;
export const ROOT = new URL("..", import.meta.url).pathname;

/** What a CLI run printed and how it ended. */
export interface CliRun {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

/**
 * Runs the CLI with `args` as `token`'s user (BUS_ACCESS_TOKEN); SUPABASE_URL and SUPABASE_ANON_KEY are the test
 * stack's unless `env` gives them (another stack).
 */
export async function cli(args: string[], token?: string, env: Record<string, string> = {}): Promise<CliRun> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: ROOT,
    env: { ...cliEnv(token, env.SUPABASE_URL), ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, stdout, out: dec.decode(stdout), err: dec.decode(stderr) };
}

/** The environment of a CLI run against the test stack, or against the stack at `url`. */
export function cliEnv(token?: string, url?: string): Record<string, string> {
  const base: Record<string, string> = {
    ...inherited(),
    NO_COLOR: "1",
    // As the npm scripts run Deno: dependencies from import_map.json only (package.json holds Node tooling).
    DENO_NO_PACKAGE_JSON: "1",
  };
  if (url) base.SUPABASE_URL = url;
  else {
    const stack = testStack();
    base.SUPABASE_URL = stack.url;
    base.SUPABASE_ANON_KEY = stack.anonKey;
  }
  if (token) base.BUS_ACCESS_TOKEN = token;
  return base;
}

/** What a subprocess keeps from this environment: where Deno finds its cache. */
export function inherited(): Record<string, string> {
  const names = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"];
  return Object.fromEntries(names.flatMap((n) => (Deno.env.get(n) ? [[n, Deno.env.get(n)!]] : [])));
}
