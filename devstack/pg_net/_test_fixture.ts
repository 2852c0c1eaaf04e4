/**
 * Test fixture for the pg_net worker tests: a local HTTP server that records every request, a running worker, a
 * Postgres client, and clean-up of the rows a test created.
 *
 * Server routes: `/echo` answers JSON describing the request, `/slow?ms=N` answers "late" after N ms (default 3000)
 * or when the server closes, `/empty` answers 204, `/redirect` answers 307 to `/echo`.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { type PgNetWorker, startPgNetWorker } from "./worker.ts";
import { applyPlatformSql } from "../bootstrap.ts";

/** A request as the test server received it. */
export interface SeenRequest {
  method: string;
  path: string;
  search: string;
  headers: Headers;
  body: string;
}

/** The running server. */
export interface TestServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Every request received so far, in arrival order. */
  seen: SeenRequest[];
  /** The largest number of `/slow` requests that were in flight at the same time. */
  maxSlowInFlight(): number;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 and a free port. */
export function startTestServer(): TestServer {
  const seen: SeenRequest[] = [];
  const pending = new Set<() => void>(); // /slow requests still waiting, released by close()
  let slowInFlight = 0;
  let maxSlowInFlight = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const request = { method: req.method, path: url.pathname, search: url.search, headers: req.headers };
    seen.push({ ...request, body: await req.text() });
    switch (url.pathname) {
      case "/echo":
        return Response.json(
          { method: req.method, path: url.pathname, search: url.search },
          { headers: { "x-test-server": "echo" } },
        );
      case "/slow":
        slowInFlight += 1;
        maxSlowInFlight = Math.max(maxSlowInFlight, slowInFlight);
        await new Promise<void>((resolve) => {
          const release = () => {
            clearTimeout(timer);
            pending.delete(release);
            resolve();
          };
          const timer = setTimeout(release, Number(url.searchParams.get("ms") ?? 3000));
          pending.add(release);
        });
        slowInFlight -= 1;
        return new Response("late");
      case "/empty":
        return new Response(null, { status: 204 });
      case "/redirect":
        return new Response(null, { status: 307, headers: { location: "/echo" } });
      default:
        return new Response("not found", { status: 404 });
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    maxSlowInFlight: () => maxSlowInFlight,
    close: () => {
      for (const release of [...pending]) release();
      return server.shutdown();
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** What a {@link workerTest} body gets. */
export interface WorkerTestContext {
  sql: postgres.Sql;
  server: TestServer;
  worker: PgNetWorker;
  /** Request ids (and fake response ids) the test created; their rows are deleted afterwards. */
  ids: string[];
  /** Lines the worker logged. */
  logs: string[];
  /** Set when the test stopped the worker itself. */
  stopped: boolean;
}

/**
 * The tests run their own worker, so they use a database of their own in the stack's cluster (with the platform
 * bootstrap applied): the stack's worker serves only its own database and can never take their requests.
 */
const TEST_DATABASE = "pg_net_stand_in_test";
let testDatabase: Promise<string> | undefined;

/** The URL of the tests' database, created (anew) on first use in the cluster of SUPABASE_DB_URL. */
export function testDbUrl(): Promise<string> {
  testDatabase ??= (async () => {
    const base = Deno.env.get("SUPABASE_DB_URL");
    if (!base) throw new Error("SUPABASE_DB_URL must be set to run the pg_net tests");
    const admin = postgres(base, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`drop database if exists ${TEST_DATABASE} with (force)`);
      await admin.unsafe(`create database ${TEST_DATABASE}`);
    } finally {
      await admin.end();
    }
    const url = new URL(base);
    url.pathname = `/${TEST_DATABASE}`;
    const sql = postgres(url.href, { max: 1, onnotice: () => {} });
    try {
      await applyPlatformSql(sql);
    } finally {
      await sql.end();
    }
    return url.href;
  })();
  return testDatabase;
}

/** A postgres.js client for the tests' database. */
export async function testSql(): Promise<postgres.Sql> {
  return postgres(await testDbUrl(), { prepare: false, max: 2, onnotice: () => {} });
}

/**
 * Registers a Deno test that runs `fn` with a fresh server, worker and client, then deletes the rows in `ids`,
 * stops everything and checks that the worker logged no failed batch.
 */
export function workerTest(name: string, fn: (ctx: WorkerTestContext) => Promise<void>): void {
  Deno.test(name, async () => {
    const sql = await testSql();
    const server = startTestServer();
    const logs: string[] = [];
    const worker = await startPgNetWorker({ dbUrl: await testDbUrl(), log: (msg) => logs.push(msg) });
    const ctx: WorkerTestContext = { sql, server, worker, ids: [], logs, stopped: false };
    try {
      await fn(ctx);
    } finally {
      if (!ctx.stopped) await worker.stop();
      const ids = `{${ctx.ids.join(",")}}`;
      await sql`delete from net._http_response where id = any(${ids}::bigint[])`;
      await sql`delete from net.http_request_queue where id = any(${ids}::bigint[])`;
      await sql.end();
      await server.close();
    }
    assert.deepEqual(logs.filter((line) => line.includes("batch failed")), []);
  });
}

/** A `net._http_response` row as postgres.js returns it. */
export interface ResponseRecord {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean | null;
  error_msg: string | null;
  created: Date;
}

/** Polls `net._http_response` until the row for `id` exists; throws after `timeoutMs`. */
export async function waitForResponse(sql: postgres.Sql, id: string, timeoutMs = 5000): Promise<ResponseRecord> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await sql<ResponseRecord[]>`select * from net._http_response where id = ${id}::bigint`;
    if (row) return row;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`Expected a net._http_response row for request ${id} within ${timeoutMs} ms, got none`);
}

/** Polls `check` until it returns true; throws `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Expected ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
