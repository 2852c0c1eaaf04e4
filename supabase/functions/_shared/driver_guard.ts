/**
 * A guard against one known defect of postgres.js 3.4.9 (porsager/postgres#1154, #1208; denoland/deno#34667; fixes
 * proposed in #1168, #1176, #1209, none released): when a connection closes while a small write is queued with
 * setImmediate, `nextWrite` calls `socket.write` on a null socket and throws from the timer, outside any query,
 * as an uncaught TypeError that ends the whole isolate — every request in it — whenever the database restarts or a
 * pooler drops a connection. The query that was being written has already been rejected (CONNECTION_CLOSED) by the
 * driver's close handling; only the stray timer throws.
 *
 * The guard recognises exactly that error (a TypeError about reading 'write' of null, thrown from
 * postgres/src/connection.js `nextWrite`), logs it, and keeps the isolate alive. It cannot repair the connection:
 * the throw leaves that connection's write timer set, so every later write on it is buffered and never sent (the
 * hang porsager/postgres#1209 describes). So it also tells the clients that registered with {@link onDriverFault}
 * to replace their pools (db.ts does: queries on the old pool are rejected, new ones get fresh connections). The same
 * null-socket write also happens synchronously inside a query's promise job, where it surfaces as an unhandled
 * rejection instead of an uncaught error; the guard treats both alike.
 *
 * A second defect of the same release (porsager/postgres#1192, #1205, #1223; open): every new connection first runs
 * an internal query for the array types (`fetch_types`), whose promise `ReadyForQuery` drops. When that query fails
 * (the connection is terminated while it starts, Postgres restarts, a pooler cancels it), the rejection is unhandled
 * and ends the isolate. The fault benchmark hit it by terminating the functions' connections while they reconnected:
 * the whole local stack died (while reproducing what tests/storage_fault_test.ts tests). Nothing waits on that promise (the caller's own
 * query fails or succeeds by itself), so the guard recognises the rejection by the internal query's text, logs it
 * and keeps the isolate alive. Every other uncaught error or unhandled rejection keeps its default behaviour.
 */
const INSTALLED = Symbol.for("message-bus.postgres-driver-guard");
const LISTENERS = Symbol.for("message-bus.postgres-driver-guard.listeners");

type FaultListener = () => void;

function listeners(): Set<FaultListener> {
  const g = globalThis as unknown as Record<symbol, Set<FaultListener>>;
  g[LISTENERS] ??= new Set();
  return g[LISTENERS];
}

/**
 * Calls `listener` whenever the guard catches the defect (some connection of some postgres.js client is wedged; the
 * listener replaces its client's connections). Returns a function that unregisters it.
 */
export function onDriverFault(listener: FaultListener): () => void {
  listeners().add(listener);
  return () => listeners().delete(listener);
}

/** True for the postgres.js null-socket write error (and nothing else). */
export function isNullSocketWrite(error: unknown): boolean {
  return error instanceof TypeError && /reading 'write'|evaluating 'socket\.write'/.test(error.message) &&
    /nextWrite/.test(error.stack ?? "") && /postgres[\/@].*connection\.js/.test(error.stack ?? "");
}

/** The start of postgres.js 3.4.9's internal array-types query (connection.js `fetchArrayTypes`). */
const TYPE_FETCH =
  /^\s*select b\.oid, b\.typarray\s+from pg_catalog\.pg_type a\s+left join pg_catalog\.pg_type b on b\.oid = a\.typelem/;

/** True for the rejection of postgres.js's internal array-types query (and nothing else). */
export function isTypeFetchFailure(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false;
  const query = (reason as { query?: unknown }).query;
  return typeof query === "string" && TYPE_FETCH.test(query);
}

/** Installs the guard once per isolate. */
export function installDriverGuard(log: (m: string) => void = (m) => console.error(m)): void {
  const g = globalThis as unknown as Record<symbol, boolean>;
  if (g[INSTALLED]) return;
  g[INSTALLED] = true;
  const replacePools = (how: string) => {
    log(
      `[db] postgres.js wrote to a connection that had already closed (porsager/postgres#1208, ${how}); the isolate ` +
        `goes on and ${listeners().size} client(s) replace their connections`,
    );
    for (const listener of listeners()) {
      try {
        listener();
      } catch (err) {
        log(`[db] replacing a client's connections failed: ${err instanceof Error ? err.message : err}`);
      }
    }
  };
  globalThis.addEventListener("error", (event) => {
    if (!isNullSocketWrite(event.error)) return;
    event.preventDefault();
    replacePools("from a timer");
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    // The same write also happens at once inside a query's promise job (write() → nextWrite() when the buffer is
    // full or a callback waits; e.g. a transaction's statement): then it surfaces as an unhandled rejection. The
    // fault benchmark's stack died of that during a Postgres restart.
    if (isNullSocketWrite(event.reason)) {
      event.preventDefault();
      replacePools("in a promise");
      return;
    }
    if (!isTypeFetchFailure(event.reason)) return;
    event.preventDefault();
    const reason = event.reason as Error & { code?: string };
    log(
      `[db] postgres.js's type fetch on a new connection failed (porsager/postgres#1223): ${reason.code ?? ""} ` +
        `${reason.message}; the isolate goes on`,
    );
  });
}
