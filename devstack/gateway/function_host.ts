/**
 * Loads edge functions into this process the way Edge Runtime hosts them: the function's module calls
 * `Deno.serve(handler)`, and the runtime — not the function — owns the listening socket (supabase-platform.md
 * §1.3, §1.9: the main service forwards the unchanged request to the user worker). The host captures the handler
 * while the module is imported, and provides `EdgeRuntime.waitUntil` (§1.8), which keeps background work alive
 * after the response and lets the stack wait for it on shutdown.
 */
export type FetchHandler = (req: Request) => Response | Promise<Response>;

const pending = new Set<Promise<unknown>>();

/** The `EdgeRuntime` global the hosted runtime provides (§1.8). Installed once per process. */
export function installEdgeRuntime(log: (m: string) => void): void {
  const g = globalThis as unknown as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } };
  if (g.EdgeRuntime) return;
  g.EdgeRuntime = {
    waitUntil(p: Promise<unknown>) {
      const tracked = Promise.resolve(p).catch((err) => {
        log(`EdgeRuntime.waitUntil task failed: ${err instanceof Error ? err.stack : err}`);
      }).finally(() => pending.delete(tracked));
      pending.add(tracked);
    },
  };
}

/** Waits (at most `timeoutMs`) for background tasks registered with `EdgeRuntime.waitUntil`. */
export async function drainBackgroundTasks(timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0 && Date.now() < deadline) {
    await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 100))]);
  }
  return pending.size;
}

/**
 * Imports `entrypoint` and returns the handler it passed to `Deno.serve`.
 * @throws Error when the module fails to import or never calls `Deno.serve`.
 */
export async function loadFunction(entrypoint: string): Promise<FetchHandler> {
  const original = Deno.serve;
  let captured: FetchHandler | undefined;
  const capture = (...args: unknown[]) => {
    const handler = args.find((a) => typeof a === "function") ??
      (args.find((a) => typeof a === "object" && a !== null && "handler" in a) as { handler?: unknown })?.handler;
    if (typeof handler !== "function") throw new Error("Deno.serve was called without a handler");
    captured = handler as FetchHandler;
    const finished = new Promise<void>(() => {});
    return { finished, shutdown: () => Promise.resolve(), ref() {}, unref() {}, addr: { hostname: "edge", port: 0 } };
  };
  (Deno as unknown as { serve: unknown }).serve = capture;
  try {
    await import(new URL(`file://${entrypoint}`).href);
  } finally {
    (Deno as unknown as { serve: unknown }).serve = original;
  }
  if (!captured) throw new Error(`${entrypoint} did not call Deno.serve`);
  return captured;
}
