/**
 * The local stand-in for pg_net's background worker (../shared/reference/supabase-platform.md §2.3, §8.2).
 *
 * `devstack/sql/20_pg_net.sql` queues requests in `net.http_request_queue` and wakes this worker with
 * `NOTIFY pg_net_wake`, which Postgres delivers only when the calling transaction commits (pg_net's wake at commit).
 *
 * One batch runs in one transaction, as in pg_net: expire old responses, `DELETE ... RETURNING` up to `batchSize`
 * queued requests, perform them all concurrently, insert their responses, commit. All responses of a batch become
 * visible together, after the slowest request. Differences from pg_net:
 * - The worker also sweeps every second, so rows inserted without a wake (or whose NOTIFY was missed while the
 *   LISTEN connection reconnected) are not stranded.
 * - If this process dies mid-batch, Postgres rolls the transaction back: the requests go back to the queue and are
 *   performed again by the next worker (at least once). In pg_net a worker error does the same, while a Postgres
 *   crash empties the unlogged tables and loses them.
 *
 * @module
 */
import postgres from "postgres";
import { describe, performRequest, PG_NET_VERSION, type QueuedRequest } from "./perform.ts";

/** Options of {@link startPgNetWorker}; the defaults are pg_net's GUC defaults (§2.3). */
export interface PgNetWorkerOptions {
  /** Postgres URL of the database that holds the `net` schema. */
  dbUrl: string;
  /** `pg_net.batch_size`: requests (and expired responses) per batch. Default 200. */
  batchSize?: number;
  /** `pg_net.ttl`: how long responses are kept, as a Postgres interval. Default '6 hours'. */
  ttl?: string;
  /** Receives start-up lines and errors. Default: console.error with a `[pg_net]` prefix. */
  log?: (msg: string) => void;
}

/** A running worker. */
export interface PgNetWorker {
  /** Stops listening, waits (at most 10 s) for the batch in flight to commit, then closes the connections. */
  stop(): Promise<void>;
}

/** The NOTIFY channel `net.wake()` signals (§8.2). */
export const WAKE_CHANNEL = "pg_net_wake";
/** §2.3 WORKER_WAIT_ONE_SECOND: the wait between batches; also the sweep period. */
const WAIT_MS = 1000;
const STOP_GRACE_MS = 10_000;
/** Cap of the backoff after consecutive failed batches (1 s, 2 s, 4 s, ... 30 s). */
const MAX_BACKOFF_MS = 30_000;

type QueueRow = Omit<QueuedRequest, "timeoutMs" | "headers"> & {
  timeout_milliseconds: number;
  headers: [string, string][];
};

/**
 * Starts the worker: connects, LISTENs on `pg_net_wake` and processes the queue until `stop()`.
 *
 * @throws Error if the database cannot be reached or `ttl` is not a valid interval.
 * @example
 * const worker = await startPgNetWorker({ dbUrl: Deno.env.get("SUPABASE_DB_URL")! });
 * // ... select net.http_post(...) in some transaction ...
 * await worker.stop();
 */
export async function startPgNetWorker(opts: PgNetWorkerOptions): Promise<PgNetWorker> {
  const batchSize = opts.batchSize ?? 200;
  const ttl = opts.ttl ?? "6 hours";
  const log = opts.log ?? ((msg: string) => console.error(`[pg_net] ${msg}`));
  // pg_net reports itself as application_name 'pg_net <version>'; net.check_worker_is_up() looks for it.
  // Prepared statements, as pg_net's SPI calls keep their plans: the worker is inside the database hosted, never
  // behind a pooler, and it runs for every request queued.
  const sql = postgres(opts.dbUrl, {
    prepare: true,
    max: 1,
    connection: { application_name: `pg_net ${PG_NET_VERSION}` },
  });

  let stopping = false;
  let woken = true; // run one batch right away, like pg_net after a restart
  let wakeUp: (() => void) | undefined;
  const wake = () => {
    woken = true;
    wakeUp?.();
  };

  let unlisten: () => Promise<void>;
  try {
    await sql`select ${ttl}::interval`;
    // The third argument runs on every (re)connect of the LISTEN connection: sweep then, in case a wake was missed.
    ({ unlisten } = await sql.listen(WAKE_CHANNEL, wake, wake));
  } catch (err) {
    await sql.end({ timeout: 0 });
    throw new Error(`pg_net worker could not start on ${redact(opts.dbUrl)}: ${describe(err)}`, { cause: err });
  }
  log(`pg_net worker started with a config of: pg_net.ttl=${ttl}, pg_net.batch_size=${batchSize}`);

  // Like pg_net's WaitLatch: resolves at once if a wake came in meanwhile, else on the next wake or after `ms`.
  // After a failed batch the wait is not cut short by wakes (backoff), only by stop().
  const sleepUntilWake = (ms: number, wakeable = true) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      };
      const timer = setTimeout(done, (woken && wakeable) || stopping ? 0 : ms);
      wakeUp = wakeable ? done : () => stopping && done();
    });

  const runBatch = () =>
    sql.begin(async (tx) => {
      // §2.3 step 1: delete_expired_responses.
      await tx`
        with rows as (
          select ctid from net._http_response
          where created < now() - ${ttl}::interval order by created limit ${batchSize}::int
        )
        delete from net._http_response r using rows where r.ctid = rows.ctid`;
      // §2.3 step 2: consume_request_queue, oldest first.
      const rows = await tx<QueueRow[]>`
        with rows as (select id from net.http_request_queue order by id limit ${batchSize}::int)
        delete from net.http_request_queue q using rows where q.id = rows.id
        returning q.id, q.method, q.url, q.timeout_milliseconds, q.body,
          coalesce((select jsonb_agg(jsonb_build_array(key, value)) from jsonb_each_text(q.headers)), '[]') as headers`;
      if (rows.length === 0) return;
      // §2.3 step 3: all requests of the batch run concurrently.
      const responses = await Promise.all(
        rows.map((row) => performRequest({ ...row, timeoutMs: row.timeout_milliseconds }, fetch, log)),
      );
      // §2.3 step 4: one response row per request; created = now(), the same for the whole batch as in pg_net.
      await tx`
        insert into net._http_response (id, status_code, content, headers, content_type, timed_out, error_msg)
        select id, status_code, content, headers, content_type, timed_out, error_msg
        from jsonb_to_recordset(${tx.json(responses as unknown as postgres.JSONValue)}) as r(
          id bigint, status_code int, content text, headers jsonb, content_type text, timed_out bool, error_msg text)`;
    });

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      await sleepUntilWake(failures === 0 ? WAIT_MS : backoffMs(failures), failures === 0);
      if (stopping) break;
      try {
        await runBatch();
        failures = 0;
      } catch (err) {
        failures += 1;
        log(
          `batch failed (${failures} in a row), rolled back: its requests stay queued and are retried in ` +
            `${backoffMs(failures)} ms: ${err instanceof Error && err.stack ? err.stack : describe(err)}`,
        );
      }
    }
  })();

  return {
    async stop() {
      stopping = true;
      wakeUp?.();
      try {
        await unlisten();
      } catch (err) {
        log(`stop: unlisten ${WAKE_CHANNEL} failed, closing the connection anyway: ${describe(err)}`);
      }
      let graceTimer: ReturnType<typeof setTimeout> | undefined;
      const finished = await Promise.race([
        loop.then(() => true),
        new Promise<false>((resolve) => graceTimer = setTimeout(() => resolve(false), STOP_GRACE_MS)),
      ]);
      clearTimeout(graceTimer);
      if (!finished) {
        log(
          `stop: a batch was still running after ${STOP_GRACE_MS} ms; closing the connection rolls it back, ` +
            `so its requests go back to the queue and the next worker performs them again`,
        );
      }
      await sql.end({ timeout: finished ? 5 : 0 });
    },
  };
}

function backoffMs(failures: number): number {
  return Math.min(WAIT_MS * 2 ** (failures - 1), MAX_BACKOFF_MS);
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
