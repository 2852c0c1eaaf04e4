/**
 * Lifecycle of the local PostgreSQL 15 cluster: initdb on first use, start through the watchdog, wait until it
 * accepts connections and proves to be the cluster just started, stop. Postgres refuses to run as root, so when
 * the stack runs as root the cluster runs as the unprivileged `postgres` user (setpriv), its data directory is
 * owned by that user, and it lives where that user can reach it (location.ts).
 */
import postgres from "postgres";
import { resolve } from "node:path";
import { clusterHome, exists, isRoot, PG_USER } from "./location.ts";

export interface ClusterOptions {
  /** A restart of a cluster that ran before: never initialise a new one (its data must be there). */
  restart?: boolean;
  /**
   * The data folder (DEVSTACK_DATA_DIR): the cluster's `pgdata/` and `postgres.log` go in it, or, when `postgres`
   * cannot reach it, in the folder location.ts picks.
   */
  dir: string;
  port: number;
  /** Folder of the PostgreSQL 15 server binaries. */
  pgBin: string;
  /** Extra `-c name=value` settings (tests use fsync=off). */
  settings?: Record<string, string>;
  log?: (msg: string) => void;
}

export interface RunningCluster {
  url: string;
  /** The data directory (`<home>/pgdata`). */
  dataDir: string;
  /** The random `cluster_name` this start gave the cluster (also in its process titles). */
  clusterName: string;
  /** Fast shutdown; resolves when the postmaster has exited. */
  stop(): Promise<void>;
  /** Resolves with the exit code if Postgres exits on its own. */
  exited: Promise<number>;
}

/**
 * Initialises the cluster if needed and starts it.
 * @throws Error when it cannot start, or when what answers on the port is not the cluster just started.
 */
export async function startCluster(opts: ClusterOptions): Promise<RunningCluster> {
  const log = opts.log ?? (() => {});
  const home = await clusterHome(opts.dir, log);
  const dataDir = resolve(home, "pgdata");
  if (opts.restart && !(await exists(`${dataDir}/PG_VERSION`))) {
    throw new Error(`The cluster's data in ${dataDir} is gone; not initialising a new one in its place`);
  }
  await ensureInitialised(dataDir, opts.pgBin, log);
  await refuseIfRunning(dataDir);

  // A name only this start knows: the stack checks it before using the database, so it never migrates a Postgres
  // it did not start (one that took DB_PORT first, say).
  const clusterName = `devstack-${crypto.randomUUID()}`;
  const pgArgs = [
    "-D",
    dataDir,
    ...Object.entries({ ...clusterSettings(opts), cluster_name: clusterName }).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
  ];
  const asUser = isRoot() ? ["setpriv", "--reuid", PG_USER, "--regid", PG_USER, "--init-groups"] : [];
  const watchdog = new URL("./watchdog.ts", import.meta.url).pathname;
  const cmd = new Deno.Command("setsid", {
    args: [Deno.execPath(), "run", "-A", "--no-config", watchdog, ...asUser, `${opts.pgBin}/postgres`, ...pgArgs],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  // `setsid` execs its argument: the watchdog leads a new session, out of reach of the terminal's Ctrl-C.
  const child = cmd.spawn();
  const logPath = resolve(home, "postgres.log");
  const logFile = await Deno.open(logPath, { create: true, append: true, write: true });
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await logFile.write(chunk);
  };
  const pump = Promise.all([copy(child.stdout), copy(child.stderr)]).finally(() => logFile.close());
  const stdinWriter = child.stdin.getWriter();
  const exited = child.status.then(async (s) => {
    await pump.catch((err) => log(`postgres log pump: ${err}`));
    return s.code;
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await stdinWriter.close().catch((err) => log(`closing watchdog pipe: ${err}`));
      await exited;
    })();
    return stopped;
  };

  const url = `postgresql://postgres:postgres@127.0.0.1:${opts.port}/postgres`;
  try {
    await waitUntilReady(url, exited, logPath);
    await verifyClusterName(url, clusterName, opts.port);
  } catch (err) {
    await stop();
    throw err;
  }
  log(`postgres ready on 127.0.0.1:${opts.port} (data ${dataDir})`);
  return { url, dataDir, clusterName, exited, stop };
}

/**
 * Checks that the Postgres answering at `url` is the one started with `cluster_name = expected`.
 * @throws Error naming the port and what answered instead.
 */
export async function verifyClusterName(url: string, expected: string, port: number): Promise<void> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const [row] = await sql<{ cluster_name: string }[]>`select current_setting('cluster_name') as cluster_name`;
    if (row.cluster_name !== expected) {
      throw new Error(
        `Another Postgres answers on 127.0.0.1:${port} (cluster_name ${JSON.stringify(row.cluster_name)}), not the ` +
          `cluster this stack started; refusing to use it. Set DB_PORT to a free port.`,
      );
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

function clusterSettings(opts: ClusterOptions): Record<string, string> {
  return {
    port: String(opts.port),
    listen_addresses: "127.0.0.1",
    unix_socket_directories: "",
    shared_preload_libraries: "pg_cron",
    "cron.database_name": "postgres",
    // Background workers instead of libpq connections: no password needed for cron jobs (pg_cron README).
    "cron.use_background_workers": "on",
    max_worker_processes: "32",
    max_connections: "200",
    ...opts.settings,
  };
}

async function ensureInitialised(dataDir: string, pgBin: string, log: (m: string) => void): Promise<void> {
  if (await exists(`${dataDir}/PG_VERSION`)) return;
  await Deno.mkdir(dataDir, { mode: 0o700 });
  const pwFile = `${dataDir}.pw`;
  await Deno.writeTextFile(pwFile, "postgres\n", { mode: 0o644 });
  if (isRoot()) await run("chown", ["-R", `${PG_USER}:${PG_USER}`, dataDir, pwFile]);
  log(`initialising a new cluster in ${dataDir}`);
  try {
    await run(...asPgUser(`${pgBin}/initdb`, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      `--pwfile=${pwFile}`,
      "--auth=scram-sha-256",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
    ]));
  } finally {
    await Deno.remove(pwFile);
  }
}

async function refuseIfRunning(dataDir: string): Promise<void> {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!(await exists(pidFile))) return;
  const pid = Number((await Deno.readTextFile(pidFile)).split("\n")[0]);
  if (pid > 0 && (await exists(`/proc/${pid}`))) {
    throw new Error(`Postgres is already running on ${dataDir} (pid ${pid}); is another 'npm start' running?`);
  }
  // A stale pid file after a crash: Postgres itself recovers, nothing to do.
}

async function waitUntilReady(url: string, exited: Promise<number>, logPath: string): Promise<void> {
  let dead = false;
  exited.then(() => (dead = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (dead) throw new Error(`Postgres exited during start-up; see ${logPath}`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`select 1`;
      return;
    } catch (err) {
      if (!/ECONNREFUSED|starting up|not yet accepting|ECONNRESET/.test(String(err))) {
        throw new Error(
          `Postgres at ${url.replace(/:[^:@/]*@/, "@")} refused the stack (${
            err instanceof Error ? err.message : err
          }); ` +
            `if another server uses DB_PORT, set DB_PORT to a free port`,
        );
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Postgres did not accept connections within 60 s; see ${logPath}`);
}

function asPgUser(binary: string, args: string[]): [string, string[]] {
  return isRoot()
    ? ["setpriv", ["--reuid", PG_USER, "--regid", PG_USER, "--init-groups", binary, ...args]]
    : [binary, args];
}

async function run(binary: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${binary} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}
