/**
 * Helper servers in processes of their own, for the benchmarks (the worktree of an older revision is worktree.ts's).
 */
import { ROOT } from "./worktree.ts";

export { git, ROOT, worktreeOf } from "./worktree.ts";

/**
 * Starts `deno run -A <args>` in the repository and waits for its first line of output (its "ready"); the rest of
 * its output is drained.
 */
export async function spawnServer(
  args: string[],
  env: Record<string, string> = {},
  log: (m: string) => void = console.error,
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    cwd: ROOT,
    env: { DENO_NO_PACKAGE_JSON: "1", ...env },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  if ((await reader.read()).done) throw new Error(`${args.join(" ")} exited before it was ready`);
  reader.releaseLock();
  child.stdout.pipeTo(new WritableStream()).catch((err) => log(`${args[0]} output: ${err}`));
  return child;
}
