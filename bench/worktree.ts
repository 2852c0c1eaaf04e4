/** A git worktree of another revision of this repository, for benchmarks that run the code before and after. */
import { resolve } from "node:path";

export const ROOT = resolve(new URL("..", import.meta.url).pathname);

/** Runs git in this checkout and returns its trimmed output. */
export async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).trim();
}

/** A worktree of `rev` (detached) with this checkout's node_modules; `remove()` deletes it. */
export async function worktreeOf(rev: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "bench-before-" });
  await Deno.remove(dir);
  await git("worktree", "add", "--detach", dir, rev);
  await Deno.symlink(`${ROOT}/node_modules`, `${dir}/node_modules`);
  return { dir, remove: () => git("worktree", "remove", "--force", dir).then(() => {}) };
}
