/**
 * Runs the Postgres postmaster and stops it cleanly when the stack goes away.
 *
 * The stack spawns this process in its own session (`setsid`) with stdin piped. When the stack ends for any
 * reason — a clean shutdown, a crash or SIGKILL — the pipe closes, and this process asks Postgres for a fast
 * shutdown (SIGINT) and waits for it. Postgres therefore never outlives the stack, and a terminal's Ctrl-C, which
 * reaches only the stack's process group, cannot kill Postgres before the stack has stopped using it.
 *
 * Usage: deno run -A watchdog.ts <postgres binary> [args...]
 */
const [binary, ...args] = Deno.args;
if (!binary) {
  console.error("watchdog: usage: watchdog.ts <postgres binary> [args...]");
  Deno.exit(2);
}

const child = new Deno.Command(binary, { args, stdin: "null", stdout: "inherit", stderr: "inherit" }).spawn();
let stopping = false;

function stop(reason: string): void {
  if (stopping) return;
  stopping = true;
  console.error(`watchdog: ${reason}; stopping Postgres (fast shutdown)`);
  try {
    child.kill("SIGINT");
  } catch (err) {
    // The postmaster has already exited: nothing left to stop.
    console.error(`watchdog: Postgres was already gone: ${err instanceof Error ? err.message : err}`);
  }
}

Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
Deno.addSignalListener("SIGINT", () => stop("SIGINT"));

// Drain stdin until EOF: EOF means the stack is gone.
(async () => {
  const reader = Deno.stdin.readable.getReader();
  while (!(await reader.read()).done) { /* the stack never writes; wait for the pipe to close */ }
  stop("stack closed the pipe");
})();

const status = await child.status;
Deno.exit(status.code);
