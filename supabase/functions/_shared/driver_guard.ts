/**
 * A guard against one known defect of postgres.js 3.4.9 (porsager/postgres#1154, #1208; denoland/deno#34667; fixes
 * proposed in #1168, #1176, #1209, none released): when a connection closes while a small write is queued with
 * setImmediate, `nextWrite` calls `socket.write` on a null socket and throws from the timer, outside any query,
 * as an uncaught TypeError that ends the whole isolate — every request in it — whenever the database restarts or a
 * pooler drops a connection. The query that was being written has already been rejected (CONNECTION_CLOSED) by the
 * driver's close handling; only the stray timer throws.
 *
 * The guard recognises exactly that error (a TypeError about reading 'write' of null, thrown from
 * postgres/src/connection.js `nextWrite`), logs it, and keeps the isolate alive. Every other uncaught error keeps its
 * default behaviour.
 */
const INSTALLED = Symbol.for("message-bus.postgres-driver-guard");

/** True for the postgres.js null-socket write error (and nothing else). */
export function isNullSocketWrite(error: unknown): boolean {
  return error instanceof TypeError && /reading 'write'|evaluating 'socket\.write'/.test(error.message) &&
    /nextWrite/.test(error.stack ?? "") && /postgres[\/@].*connection\.js/.test(error.stack ?? "");
}

/** Installs the guard once per isolate. */
export function installDriverGuard(log: (m: string) => void = (m) => console.error(m)): void {
  const g = globalThis as unknown as Record<symbol, boolean>;
  if (g[INSTALLED]) return;
  g[INSTALLED] = true;
  globalThis.addEventListener("error", (event) => {
    if (!isNullSocketWrite(event.error)) return;
    event.preventDefault();
    log(
      "[db] postgres.js wrote to a connection that had already closed (porsager/postgres#1208); the query on it was " +
        "already rejected, the isolate goes on",
    );
  });
}
