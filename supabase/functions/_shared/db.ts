/**
 * The database handle (postgres.js on `SUPABASE_DB_URL`, `prepare: false` so it also works through the
 * transaction pooler, supabase-platform.md §1.11) and the two ways functions use it:
 * - `asCaller`: a transaction with the caller's role and JWT claims set locally, exactly as PostgREST and
 *   Realtime do (§7), so row-level security decides what the caller sees;
 * - `asService`: a transaction as `service_role`, for writes through the bus's SQL functions.
 */
import postgres from "postgres";
import { settings } from "./env.ts";
import { byteaType } from "./bytea.ts";
import { jsonType } from "./storable_json.ts";
import { busy } from "./errors.ts";
import { onDriverFault } from "./driver_guard.ts";
import type { Caller } from "./auth.ts";
import { noDelaySocket } from "./db_socket.ts";
import { isDatabaseUnreachable } from "./db_errors.ts";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;
/** What runs a query: the shared client (one autocommit statement) or a transaction. */
export type Query = postgres.ISql;

let pool: Sql | undefined;
let client: Sql | undefined;

/**
 * The shared client. It is a stable handle on the instance's pool: when the driver guard finds a wedged connection
 * (driver_guard.ts, porsager/postgres#1209), the pool is replaced — its queries in flight are rejected, and every
 * holder of this handle, including a run that started before, goes on with fresh connections.
 */
export function db(): Sql {
  client ??= new Proxy(function () {} as unknown as Sql, {
    apply: (_target, self, args) => Reflect.apply(currentPool() as unknown as (...a: unknown[]) => unknown, self, args),
    get: (_target, prop) => {
      const p = currentPool();
      const value = Reflect.get(p, prop, p);
      return typeof value === "function" ? value.bind(p) : value;
    },
  });
  return client;
}

function currentPool(): Sql {
  if (pool) return pool;
  pool = postgres(settings().SUPABASE_DB_URL, {
    prepare: false,
    max: settings().DB_POOL_SIZE,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    types: { bytea: byteaType, json: jsonType },
    // TCP_NODELAY (db_socket.ts). postgres.js documents `socket` but leaves it out of its types.
    ...({ socket: noDelaySocket } as object),
  });
  return pool;
}

onDriverFault(() => {
  const wedged = pool;
  pool = undefined; // the next query opens a fresh pool
  wedged?.end({ timeout: 0 }).catch((err) => console.error(`[db] closing the replaced pool: ${err}`));
});

/**
 * The instance's database slots, one per pooled connection. postgres.js queues a query without limit when every
 * connection is busy, so a few slow operations (a 100 MB store, a stalled connection) could stall every request of
 * the instance; every unit of database work takes a slot first and gives up after `DB_ACQUIRE_TIMEOUT_MS` with
 * 503 `database_busy` and `Retry-After`.
 */
export class DbGate {
  #free: number;
  #waiting: Array<(ok: boolean) => void> = [];

  constructor(readonly slots: number, readonly acquireTimeoutMs: number) {
    this.#free = slots;
  }

  /** Slots in use now. */
  get busy(): number {
    return this.slots - this.#free;
  }

  /** Runs `fn` holding a slot. @throws BusError 503 `database_busy` when none frees within the timeout. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire();
    try {
      return await fn();
    } finally {
      this.#release();
    }
  }

  #acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = (ok: boolean) => {
        clearTimeout(timer);
        if (ok) resolve();
        else {
          reject(busy("database_busy", `No database connection became free within ${this.acquireTimeoutMs} ms`, 1));
        }
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(grant), 1);
        grant(false);
      }, this.acquireTimeoutMs);
      this.#waiting.push(grant);
    });
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(true); // the slot passes straight to the next waiter
    else this.#free++;
  }
}

let gate: DbGate | undefined;

/** The gate of {@link db}'s pool. */
export function dbGate(): DbGate {
  gate ??= new DbGate(settings().DB_POOL_SIZE, settings().DB_ACQUIRE_TIMEOUT_MS);
  return gate;
}

/**
 * Runs one statement or transaction of `fn` on `sql` (default: the shared client) under the instance's
 * {@link DbGate}; other clients and open transactions (whose connection is already held) are not gated.
 */
export function withDb<T, Q extends Query = Sql>(
  fn: (sql: Q) => Promise<T>,
  sql: Q = db() as unknown as Q,
): Promise<T> {
  return ((sql as unknown) === client ? dbGate() : ungated).run(() => fn(sql));
}

/** Clients other than the shared one (tests, tools) are not gated. */
const ungated = { run: <T>(fn: () => Promise<T>) => fn() };

/**
 * Pauses before each new attempt of a statement whose connection was lost (terminated by an administrator, a pooler
 * or a failover; Postgres restarting): the pool's other connections, or a new one, usually work a moment later.
 */
export const RECONNECT_DELAYS_MS = [100, 500, 2_000] as const;

/**
 * Runs `fn`'s statement as {@link withDb} does, and again on a fresh connection while the database was unreachable
 * during it ({@link isDatabaseUnreachable}), up to {@link RECONNECT_DELAYS_MS}`.length` more times, so that one
 * terminated connection does not fail a message whose database is fine (the fault benchmark, bench/faults_bench.ts).
 * For statements that may be repeated only. A lost connection may have lost just the answer of a statement that
 * committed: when a repetition fails, `recover(err)` says whether an earlier attempt took effect (it returns the
 * result then, or throws). Inside a transaction (`sql` has no `begin`) there is nothing to repeat on: one attempt.
 */
export async function withDbReconnecting<T>(
  label: string,
  fn: (sql: Sql) => Promise<T>,
  sql: Query,
  recover: (err: unknown) => Promise<T> = (err) => Promise.reject(err),
): Promise<T> {
  if (typeof (sql as Partial<Sql>).begin !== "function") return withDb(fn as (q: Query) => Promise<T>, sql);
  for (let attempt = 0;; attempt++) {
    try {
      return await withDb(fn, sql as Sql);
    } catch (err) {
      if (!isDatabaseUnreachable(err)) {
        if (attempt === 0) throw err;
        return await recover(err);
      }
      if (attempt >= RECONNECT_DELAYS_MS.length) throw err;
      console.warn(`[db] ${label}: the connection was lost (${err}); again in ${RECONNECT_DELAYS_MS[attempt]} ms`);
      await new Promise((r) => setTimeout(r, RECONNECT_DELAYS_MS[attempt]));
    }
  }
}

/** Runs `fn` in a transaction as the caller (role + `request.jwt.claims`), so RLS applies. */
export function asCaller<T>(caller: Caller, fn: (tx: Tx) => Promise<T>, sql: Sql = db()): Promise<T> {
  return withDb((sql) =>
    sql.begin(async (tx) => {
      // Not awaited: a statement without parameters is pipelined with fn's first query (postgres.js sends a
      // parameterised one in two round trips and pipelines nothing behind it). If it fails, the transaction is
      // aborted, so fn's queries fail too and never run without the caller's role.
      const context = tx.unsafe(callerContextSql(caller)).execute();
      try {
        return await fn(tx);
      } finally {
        await context;
      }
    }) as Promise<T>, sql);
}

/**
 * Runs one statement as the caller in one round trip, RLS applying as in {@link asCaller}: the caller context and
 * `statement` go to Postgres as one simple-protocol query, which it runs as one transaction (PostgreSQL docs,
 * "Multiple Statements in a Simple Query"), so the settings made local by set_config hold for the statement and end
 * with it. asCaller's transaction takes BEGIN, the context with the statement, and COMMIT: three round trips, each a
 * wake-up of both processes, which on a busy machine cost more than the statement (a 1 KB fetch's read, 4.6 → 1.9 ms
 * here: bench/RESULTS.md). The simple protocol takes no parameters: every value in `statement` must be a literal
 * the caller has validated (a UUID checked by its pattern, a number).
 * @returns the statement's rows.
 */
export function asCallerInOneTrip<T>(caller: Caller, statement: string, sql: Sql = db()): Promise<T[]> {
  return withDb(async (sql) => {
    const results = await sql.unsafe(`${callerContextSql(caller)};\n${statement}`).simple();
    return (results as unknown as T[][])[1];
  }, sql);
}

/**
 * `select set_config(...)` for the caller's role and claims, as PostgREST sets them (§7). Every value is written as
 * a base64 literal decoded by Postgres, so nothing the token holds can end the string literal.
 */
export function callerContextSql(caller: Caller): string {
  const text = (value: string) =>
    `convert_from(decode('${new TextEncoder().encode(value).toBase64()}', 'base64'), 'UTF8')`;
  return `select set_config('role', ${text(caller.role)}, true),
    set_config('request.jwt.claims', ${text(JSON.stringify(caller.claims))}, true),
    set_config('request.jwt.claim.sub', ${text(caller.sub ?? "")}, true),
    set_config('request.jwt.claim.role', ${text(caller.role)}, true)`;
}

/**
 * A select-list item that lets the statement's transaction commit without waiting for its WAL flush
 * (`synchronous_commit` off for that transaction only). For writes that promise nothing to a caller by themselves:
 * a later commit that waits flushes them too, or losing them in a crash is harmless (bench/RESULTS.md).
 */
export const COMMIT_WITHOUT_FLUSH_WAIT = "set_config('synchronous_commit', 'off', true)";

/** Runs `fn` in a transaction as `service_role`. */
export function asService<T>(fn: (tx: Tx) => Promise<T>, sql: Sql = db()): Promise<T> {
  return asCaller({ role: "service_role", claims: { role: "service_role" } }, fn, sql);
}

/** True when the database answers within `timeoutMs`. */
export async function databaseIsUp(timeoutMs = 2000, sql: Sql = db()): Promise<boolean> {
  const timeout = new Promise<false>((r) => setTimeout(() => r(false), timeoutMs));
  const probe = sql`select 1`.then(() => true).catch((err) => {
    console.error(`database health probe failed: ${err instanceof Error ? err.message : err}`);
    return false;
  });
  return await Promise.race([probe, timeout]);
}
