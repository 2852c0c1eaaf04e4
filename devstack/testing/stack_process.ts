/**
 * Starts the local stack as a child process, the way a user does with `npm start`, on free ports with a fresh
 * cluster in a temporary folder: used by the test runner and the benchmarks.
 */
import { resolve } from "node:path";
import { mintStackKeys, type StackKeys } from "../keys.ts";
import { DEFAULT_JWT_SECRET } from "../settings.ts";
import { readPointer, removeClusterFolder } from "../postgres/location.ts";

export interface StackProcess {
  /** Process id of the stack (gateway, functions and stand-ins run in it; Postgres does not). */
  pid: number;
  ports: { api: number; db: number; standin: number };
  /** Resolves when the stack's process has exited, for whatever reason (a crash included). */
  exited: Promise<Deno.CommandStatus>;
  apiUrl: string;
  dbUrl: string;
  dbPort: number;
  standinUrl: string;
  keys: StackKeys;
  jwtSecret: string;
  logPath: string;
  /** The environment the tests get. */
  testEnv(): Record<string, string>;
  /**
   * Kills the stack with SIGKILL, as a crash would; its Postgres is stopped by the watchdog (fast shutdown) and its
   * data stays. Resolves once that Postgres has exited, so that a stack started next on the same data finds none.
   */
  kill(): Promise<void>;
  /** Stops the stack; `clean` is false when it had to be killed or exited non-zero. */
  stop(): Promise<{ clean: boolean; code: number }>;
  /** Removes the temporary data folder (and the cluster's folder, when it had to live elsewhere: location.ts). */
  cleanup(): Promise<void>;
}

/** Asks the kernel for a free loopback port. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Spawns `deno run devstack/main.ts` and waits (bounded) for its banner. */
export async function spawnStack(opts: {
  root: string;
  log?: (m: string) => void;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** Start on the data of an earlier stack (stopped or killed) instead of a new cluster. */
  dataDir?: string;
  /**
   * The ports to use (default: free ones). A restart on the same ports keeps what the earlier stack handed out
   * valid: its URL in Vault, pg_net requests queued with it, clients' URLs.
   */
  ports?: { api: number; db: number; standin: number };
}): Promise<StackProcess> {
  const apiPort = opts.ports?.api ?? freePort(), dbPort = opts.ports?.db ?? freePort();
  const standinPort = opts.ports?.standin ?? freePort();
  const dataDir = opts.dataDir ?? await tempDataDir(opts.root);
  const logPath = `${dataDir}.log`;
  const jwtSecret = DEFAULT_JWT_SECRET;
  const env: Record<string, string> = {
    API_PORT: String(apiPort),
    DB_PORT: String(dbPort),
    PROVIDER_STANDIN_PORT: String(standinPort),
    DEVSTACK_DATA_DIR: dataDir,
    DEVSTACK_PG_FAST: "1",
    JWT_SECRET: jwtSecret,
    KIMI_API_KEY: "",
    GLM_API_KEY: "",
    ...opts.env,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "devstack/main.ts", "--exit-on-stdin-close"],
    cwd: opts.root,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  // A restart on earlier data appends to that stack's log.
  const logFile = await Deno.open(logPath, {
    create: true,
    write: true,
    truncate: !opts.dataDir,
    append: !!opts.dataDir,
  });
  const status = child.status;

  let banner = "";
  const ready = new Promise<void>((resolveReady, reject) => {
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        await logFile.write(chunk);
        banner += decoder.decode(chunk, { stream: true });
        if (banner.includes("Press Ctrl-C to stop.")) resolveReady();
      }
      reject(new Error(`the stack exited before it was ready; see ${logPath}`));
    })().catch(reject);
  });
  // A loop, as for stdout: `child.stderr.pipeTo(logFile.writable)` wrote nothing into the file here (Deno 2.9), so
  // the functions' console.error lines (and the stack's own) never reached the log.
  const stderrPump = (async () => {
    for await (const chunk of child.stderr) await logFile.write(chunk);
  })();
  const timeoutMs = opts.startTimeoutMs ?? 180_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      ready,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the stack was not ready within ${timeoutMs} ms; see ${logPath}`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch (killErr) {
      opts.log?.(`the stack had already exited: ${killErr}`);
    }
    await status;
    await stderrPump.catch((pumpErr) => opts.log?.(`stack log pump: ${pumpErr}`));
    logFile.close();
    const tail = (await Deno.readTextFile(logPath)).split("\n").slice(-30).join("\n");
    throw new Error(`${err instanceof Error ? err.message : err}\n--- last lines of ${logPath} ---\n${tail}`);
  } finally {
    clearTimeout(timer);
  }

  const keys = await mintStackKeys(jwtSecret);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const dbUrl = `postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`;
  const standinUrl = `http://127.0.0.1:${standinPort}/v1`;
  return {
    pid: child.pid,
    ports: { api: apiPort, db: dbPort, standin: standinPort },
    exited: status,
    apiUrl,
    dbUrl,
    dbPort,
    standinUrl,
    keys,
    jwtSecret,
    logPath,
    testEnv: () => ({
      SUPABASE_URL: apiUrl,
      SUPABASE_DB_URL: dbUrl,
      SUPABASE_ANON_KEY: keys.anon,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
      JWT_SECRET: jwtSecret,
      PROVIDER_STANDIN_URL: standinUrl,
      DEVSTACK_DATA_DIR: dataDir,
    }),
    async kill() {
      const postmaster = await postmasterPid(dataDir);
      child.kill("SIGKILL");
      await status;
      // The watchdog stops Postgres once the stack's pipe closes; on a busy machine that took longer than a new
      // stack's start, which then refused the data ("Postgres is already running").
      if (postmaster !== undefined) await exited(postmaster, 60_000, opts.log);
      await stdin.close().catch((err) => opts.log?.(`closing the killed stack's stdin: ${err}`));
      await stderrPump.catch((err) => opts.log?.(`stack log pump: ${err}`));
      logFile.close();
    },
    async stop() {
      child.kill("SIGTERM");
      let timer2: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<"timeout">((r) => (timer2 = setTimeout(() => r("timeout"), 30_000)));
      const result = await Promise.race([status, killed]);
      clearTimeout(timer2);
      if (result === "timeout") {
        child.kill("SIGKILL");
        await status;
      }
      await stdin.close().catch((err) => opts.log?.(`closing the stack's stdin after exit: ${err}`));
      await stderrPump.catch((err) => opts.log?.(`stack log pump: ${err}`));
      logFile.close();
      const code = result === "timeout" ? -1 : result.code;
      return { clean: result !== "timeout" && code === 0, code };
    },
    async cleanup() {
      await removeClusterFolder(dataDir);
      await Deno.remove(logPath);
    },
  };
}

/** The pid in the cluster's postmaster.pid (the data folder's, or the folder it was moved to), if Postgres runs. */
async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const home = (await readPointer(dataDir)) ?? dataDir;
  try {
    const pid = Number((await Deno.readTextFile(`${home}/pgdata/postmaster.pid`)).split("\n")[0]);
    return pid > 0 ? pid : undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Waits (bounded) until process `pid` is gone. */
async function exited(pid: number, timeoutMs: number, log?: (m: string) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await Deno.stat(`/proc/${pid}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (Date.now() > deadline) {
      log?.(`Postgres (pid ${pid}) was still running ${timeoutMs} ms after its stack was killed`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tempDataDir(root: string): Promise<string> {
  const base = resolve(root, ".devstack");
  await Deno.mkdir(base, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: base, prefix: "test-" });
  // Our own folder: opened up so that a root-run stack's `postgres` user can keep the cluster in it when the clone's
  // folders let it through; when they do not, the cluster goes elsewhere (location.ts) and cleanup() removes it.
  await Deno.chmod(dir, 0o755);
  return dir;
}
