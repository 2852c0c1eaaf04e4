/**
 * The fault benchmark's stack and the faults it can suffer: the provider stand-in's outages, terminated database
 * connections, a crashed Postgres (restarted by the stack's supervisor) and a killed stack restarted on the same data.
 * Clients read the current URLs from here and wait on {@link FaultStack.ready} while the stack is being restarted.
 */
import postgres from "postgres";
import { spawnStack, type StackProcess } from "../../devstack/testing/stack_process.ts";

/** The settings the benchmark's stack runs with (see bench/faults_bench.ts for why each is set). */
export const FAULT_STACK_ENV: Record<string, string> = {
  MESSAGE_BUS_PROVIDERS: "kimi,glm",
  KIMI_FALLBACKS: "glm",
  CIRCUIT_BREAKER_THRESHOLD: "5",
  CIRCUIT_BREAKER_TIMEOUT_SECS: "2",
  PROVIDER_RETRY_BASE_MS: "50",
  PROVIDER_MAX_RETRIES: "2",
  // A hanging provider costs one attempt this long (the default, 120 s, would hold every client for minutes).
  PROVIDER_TIMEOUT_MS: "2000",
  // A short lease (at least 3 × DB_ACQUIRE_TIMEOUT_MS, whose default stays): a dead worker's message is claimable
  // (async) or reapable (sync) 15 s after it died. With DB_ACQUIRE_TIMEOUT_MS=2000 and a 6 s lease, the connection
  // terminations cost 56 more 503 database_busy answers and 8 more storage_failed messages in one run.
  MESSAGE_BUS_LEASE_SECS: "15",
  DEVSTACK_PG_RESTART_DELAY_MS: "1000",
  // fsync and synchronous commit on: with them off (DEVSTACK_PG_FAST=1) a crashed postmaster may take acknowledged
  // commits with it (WAL still in shared buffers), which would be the benchmark's fault, not the bus's.
  DEVSTACK_PG_FAST: "0",
};

/** The stack under test; replaced by {@link restart}. */
export class FaultStack {
  stack: StackProcess;
  /** A superuser connection of the benchmark's own (application_name `faults-bench`, spared by terminations). */
  sql: postgres.Sql;
  /** Resolves while a stack is serving; a pending promise during a restart. */
  ready: Promise<void> = Promise.resolve();
  readonly dataDir: string;
  /** True between a kill and the next stack's start (when that start failed, there is nothing to stop). */
  #dead = false;
  /** True once the stack died without being killed or stopped. */
  #died = false;
  #stopping = false;

  private constructor(stack: StackProcess, private readonly root: string, private readonly log: (m: string) => void) {
    this.stack = stack;
    this.dataDir = stack.testEnv().DEVSTACK_DATA_DIR;
    this.sql = connect(stack.dbUrl);
    this.#watch(stack);
  }

  /** A stack that dies unasked (a crash of the functions' isolate ends it) ends the run: the clients give up. */
  #watch(stack: StackProcess): void {
    stack.exited.then((status) => {
      if (this.#dead || this.#stopping || stack !== this.stack) return; // killed or stopped by us
      this.#died = true;
      const err = new Error(`the stack died unasked (exit code ${status.code}); see ${stack.logPath}`);
      this.log(err.message);
      this.ready = Promise.reject(err);
      this.ready.catch(() => "the clients see it when they next wait for the stack");
    });
  }

  /** Starts a stack on a new cluster. */
  static async start(root: string, log: (m: string) => void): Promise<FaultStack> {
    return new FaultStack(await spawnStack({ root, log, env: FAULT_STACK_ENV }), root, log);
  }

  get apiUrl(): string {
    return this.stack.apiUrl;
  }

  /** The stand-in's origin (its control routes live under /__standin/). */
  get standin(): string {
    return new URL(this.stack.standinUrl).origin;
  }

  /** Switches an outage of the stand-in on (`mode` a status, "hang", ...) or off ("off") for `prefix`. */
  async outage(prefix: string, mode: string, retryAfter?: number): Promise<void> {
    const res = await fetch(`${this.standin}/__standin/outage`, {
      method: "POST",
      body: JSON.stringify({ prefix, mode, ...(retryAfter === undefined ? {} : { retry_after: retryAfter }) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`stand-in outage ${prefix} ${mode}: ${res.status} ${text}`);
  }

  /**
   * Terminates the functions' database connections: client backends named `postgres.js` (postgres.js's default
   * application_name; pg_net, Realtime and this benchmark name themselves, pg_cron runs its jobs in background
   * workers). Returns how many were terminated.
   */
  async terminateFunctionConnections(): Promise<number> {
    // In the select list, not the WHERE clause: there Postgres may call it before the other conditions, on every row.
    const rows = await this.sql<{ pid: number }[]>`
      select pid, pg_terminate_backend(pid) from pg_stat_activity
       where backend_type = 'client backend' and application_name = 'postgres.js' and pid <> pg_backend_pid()`;
    return rows.length;
  }

  /** Kills the postmaster with SIGKILL, as a crash would; the stack's supervisor starts it again. */
  async killPostgres(): Promise<number> {
    const [{ dir }] = await this.sql<{ dir: string }[]>`select current_setting('data_directory') as dir`;
    const pid = Number((await Deno.readTextFile(`${dir}/postmaster.pid`)).split("\n")[0]);
    Deno.kill(pid, "SIGKILL");
    return pid;
  }

  /**
   * Kills the stack with SIGKILL and starts a new one on the same data and ports. Clients wait on `ready`
   * meanwhile. Returns, once the new stack answers, the messages the killed one left pending (read before any
   * client is let through).
   */
  async restart(): Promise<Array<{ transaction_id: string; mode: string }>> {
    let open!: () => void, fail!: (err: unknown) => void;
    this.ready = new Promise((resolve, reject) => [open, fail] = [resolve, reject]);
    // Handled here too: a failure must not be an unhandled rejection while no client happens to be waiting.
    this.ready.catch((err) => this.log(`the stack did not come back: ${err instanceof Error ? err.message : err}`));
    try {
      await this.sql.end({ timeout: 1 }).catch((err) => this.log(`closing the bench's connection: ${err}`));
      this.#dead = true; // before the kill: its exit is ours, not a crash
      await this.stack.kill();
      // On the same ports, as a restarted server keeps its address: the pg_net requests queued with the project's
      // URL before the kill stay valid (on new ports they failed with "Couldn't connect to server").
      this.stack = await spawnStack({
        root: this.root,
        log: this.log,
        env: FAULT_STACK_ENV,
        dataDir: this.dataDir,
        ports: this.stack.ports,
      });
      this.#dead = false;
      this.#watch(this.stack);
      this.sql = connect(this.stack.dbUrl);
      const pending = await this.sql<{ transaction_id: string; mode: string }[]>`
        select transaction_id, mode from public.message_bus where status = 'pending'`;
      open();
      return [...pending];
    } catch (err) {
      fail(err); // the clients waiting for the stack give up with this error
      throw err;
    }
  }

  /** Stops the stack; removes its data when it stopped cleanly and `keep` is false. */
  async stop(keep: boolean): Promise<void> {
    await this.sql.end({ timeout: 2 }).catch((err) => this.log(`closing the bench's connection: ${err}`));
    this.#stopping = true;
    if (this.#dead || this.#died) {
      this.log(
        `no stack to stop (it died or did not restart); data and log kept: ${this.dataDir}, ${this.stack.logPath}`,
      );
      return;
    }
    const stopped = await this.stack.stop();
    if (stopped.clean && !keep) await this.stack.cleanup();
    else this.log(`stack data and log kept: ${this.dataDir}, ${this.stack.logPath}`);
  }
}

function connect(url: string): postgres.Sql {
  return postgres(url, {
    prepare: false,
    max: 4,
    onnotice: () => {},
    connection: { application_name: "faults-bench" },
  });
}
