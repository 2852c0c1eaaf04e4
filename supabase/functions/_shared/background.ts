/**
 * Background work after the response: `EdgeRuntime.waitUntil` (supabase-platform.md §1.8). Used when a caller
 * (pg_net from a trigger or pg_cron) should get its answer at once: pg_net commits a batch of responses only after
 * its slowest request (§2.3), so a long request would hold up every other one in the batch.
 */

/**
 * Keeps `task` running after the response has been sent.
 * @throws Error when no EdgeRuntime is present (plain Deno without the Edge Runtime or the local stack's host).
 */
export function waitUntil(task: Promise<unknown>): void {
  const runtime = (globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } }).EdgeRuntime;
  if (!runtime) throw new Error("EdgeRuntime.waitUntil is not available: background work needs the Edge Runtime");
  runtime.waitUntil(task);
}
