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
import type { Caller } from "./auth.ts";

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;
/** What runs a query: the shared client (one autocommit statement) or a transaction. */
export type Query = postgres.ISql;

let client: Sql | undefined;

/** The shared client, created on first use. */
export function db(): Sql {
  client ??= postgres(settings().SUPABASE_DB_URL, {
    prepare: false,
    max: settings().DB_POOL_SIZE,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    types: { bytea: byteaType },
  });
  return client;
}

/** Runs `fn` in a transaction as the caller (role + `request.jwt.claims`), so RLS applies. */
export function asCaller<T>(caller: Caller, fn: (tx: Tx) => Promise<T>, sql: Sql = db()): Promise<T> {
  return sql.begin(async (tx) => {
    // Not awaited: a statement without parameters is pipelined with fn's first query (postgres.js sends a
    // parameterised one in two round trips and pipelines nothing behind it). If it fails, the transaction is
    // aborted, so fn's queries fail too and never run without the caller's role.
    const context = tx.unsafe(callerContextSql(caller)).execute();
    try {
      return await fn(tx);
    } finally {
      await context;
    }
  }) as Promise<T>;
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
