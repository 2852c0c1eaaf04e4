/**
 * What the before/after benchmarks share: a git worktree of an older revision (to run its stack beside this
 * checkout's), and helper servers in processes of their own.
 */
import { resolve } from "node:path";

export const ROOT = resolve(new URL("..", import.meta.url).pathname);

/** Runs git in the repository; its stdout, trimmed. @throws Error with git's stderr. */
export async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** A worktree of `rev` with this checkout's node_modules; `remove()` deletes it. */
export async function worktreeOf(rev: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "bench-before-" });
  await Deno.remove(dir);
  await git("worktree", "add", "--detach", dir, rev);
  await Deno.symlink(`${ROOT}/node_modules`, `${dir}/node_modules`);
  return { dir, remove: () => git("worktree", "remove", "--force", dir).then(() => {}) };
}

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
