/**
 * What the start/stop tests need to check that a stack left nothing behind: process trees (Linux /proc), listening
 * ports, and `npm start` run as a user runs it, up to its banner.
 */

/** Every descendant pid of `pid`. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  let tasks: Deno.DirEntry[] = [];
  try {
    tasks = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const t of tasks) {
    let text = "";
    try {
      text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    for (const child of text.split(/\s+/).filter(Boolean).map(Number)) out.push(child, ...descendants(child));
  }
  return out;
}

/** True while `pid` runs (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** The pids whose command line contains `text` (e.g. a Postgres data directory after `-D`). */
export function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let cmdline: string;
    try {
      cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
    } catch (err) {
      // The process ended while the list was read, or belongs to a user we may not inspect.
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) continue;
      throw err;
    }
    if (cmdline.includes(text) && alive(Number(entry.name))) pids.push(Number(entry.name));
  }
  return pids;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function listening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused) return false;
    throw err;
  }
}

/** Waits (bounded) until none of `pids` runs; returns those still running. */
export async function waitGone(pids: number[], ms = 30_000): Promise<number[]> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

/** A running `npm start` and everything it printed so far. */
export interface Started {
  child: Deno.ChildProcess;
  output: () => string;
}

/** Runs `npm start` in `cwd` and waits (bounded) for its banner; kills it and throws when it does not come up. */
export async function npmStart(cwd: string, env: Record<string, string>, timeoutMs = 120_000): Promise<Started> {
  const child = new Deno.Command("npm", {
    args: ["start"],
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  const ready = (async () => {
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (out.includes("Press Ctrl-C to stop.")) return true;
    }
    return false;
  })();
  (async () => {
    for await (const chunk of child.stderr) out += decoder.decode(chunk, { stream: true });
  })().catch((err) => console.error(`reading npm start's stderr: ${err}`));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  const ok = await Promise.race([ready, timeout]);
  clearTimeout(timer);
  if (!ok) {
    for (const pid of [...descendants(child.pid), child.pid]) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err; // it had already exited
      }
    }
    await child.status;
    throw new Error(`npm start did not come up within ${timeoutMs} ms:\n${out}`);
  }
  // Keep draining stdout so the pipe never fills.
  (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
  })().catch((err) => console.error(`draining npm start's output: ${err}`));
  return { child, output: () => out };
}
