/**
 * Starts and stops the whole local stack in this process (see main.ts). Split out so that the order of start-up
 * and shutdown is in one place.
 */
import postgres from "postgres";
import { resolve } from "node:path";
import { loadStackSettings, mergedEnv } from "./settings.ts";
import { mintStackKeys, type StackKeys } from "./keys.ts";
import { type ClusterOptions, type RunningCluster, startCluster } from "./postgres/cluster.ts";
import { applyPlatformSql } from "./bootstrap.ts";
import { applyMigrations } from "./migrate.ts";
import { readFunctionSpecs } from "./gateway/functions_config.ts";
import { drainBackgroundTasks, installEdgeRuntime } from "./gateway/function_host.ts";
import { createGateway } from "./gateway/server.ts";
import { startPgNetWorker } from "./pg_net/worker.ts";
import { createRealtime } from "./realtime/server.ts";
import { serveProviderStandin } from "./provider/server.ts";
import { renderBanner } from "./banner.ts";
import { createDashboard } from "./dashboard.ts";
import { assertPortsFree, type PortUse } from "./ports.ts";

export interface StackOptions {
  /** Repository root (holds supabase/ and .env). */
  root: string;
  log: (msg: string) => void;
}

export interface RunningStack {
  apiUrl: string;
  dbUrl: string;
  keys: StackKeys;
  banner: string;
  postgresExited: Promise<number>;
  stop(): Promise<void>;
}

/** The vault secret names the project's migrations read (the documented pattern, supabase-platform.md §2.5). */
export const VAULT_PROJECT_URL = "project_url";
export const VAULT_SERVICE_ROLE_KEY = "service_role_key";

/** Starts every part of the stack; on failure stops what had started and rethrows. */
export async function startStack({ root, log }: StackOptions): Promise<RunningStack> {
  const env = mergedEnv(resolve(root, ".env"));
  const settings = loadStackSettings(env);
  const keys = await mintStackKeys(settings.JWT_SECRET);
  const apiUrl = `http://127.0.0.1:${settings.API_PORT}`;
  const stops: Array<() => Promise<void>> = [];
  let supervisor: ReturnType<typeof superviseCluster> | undefined;
  const stopAll = async () => {
    supervisor?.stopping(); // from now on Postgres exiting is expected: no restart
    for (const stop of stops.reverse()) await stop();
    stops.length = 0;
  };

  // Providers without a key point at the local OpenAI-compatible stand-in (CONTRACT.md §3), each under a path of its
  // own (the stand-in serves any prefix), so one can be taken down while another answers.
  const providerNames = (env.MESSAGE_BUS_PROVIDERS || "kimi,glm").split(",").map((n) => n.trim()).filter(Boolean);
  const prefixOf = (name: string) => name.toUpperCase().replaceAll("-", "_");
  const standinProviders = providerNames.filter((p) => !env[`${prefixOf(p)}_API_KEY`]);
  // Before anything starts: a taken port is named with its setting, and nothing is left half-started.
  const ports: PortUse[] = [
    { setting: "API_PORT", port: settings.API_PORT },
    { setting: "DB_PORT", port: settings.DB_PORT },
  ];
  if (standinProviders.length) ports.push({ setting: "PROVIDER_STANDIN_PORT", port: settings.PROVIDER_STANDIN_PORT });
  assertPortsFree(ports);

  try {
    const clusterOptions: ClusterOptions = {
      dir: resolve(root, settings.DEVSTACK_DATA_DIR),
      port: settings.DB_PORT,
      pgBin: settings.PG_BIN,
      settings: {
        ...(settings.DEVSTACK_PG_FAST === "1" ? { fsync: "off", synchronous_commit: "off" } : {}),
        ...(settings.DEVSTACK_PG_STATEMENTS === "1"
          ? { shared_preload_libraries: "pg_cron,pg_stat_statements", "pg_stat_statements.track": "all" }
          : {}),
      },
      log,
    };
    const cluster = await startCluster(clusterOptions);
    const supervisor = superviseCluster(
      cluster,
      () => startCluster(clusterOptions),
      settings.DEVSTACK_PG_RESTART_DELAY_MS,
      log,
    );
    stops.push(() => supervisor.stop());

    const sql = postgres(cluster.url, { prepare: false, max: 2, onnotice: () => {} });
    stops.push(() => sql.end({ timeout: 5 }));
    await applyPlatformSql(sql);
    const applied = await applyMigrations(sql, resolve(root, "supabase/migrations"));
    log(applied.length ? `applied migrations ${applied.join(", ")}` : "migrations up to date");
    await upsertVaultSecret(sql, VAULT_PROJECT_URL, apiUrl);
    await upsertVaultSecret(sql, VAULT_SERVICE_ROLE_KEY, keys.serviceRole);

    const functionEnv: Record<string, string> = { ...env };
    if (standinProviders.length > 0) {
      const standin = serveProviderStandin({ hostname: "127.0.0.1", port: settings.PROVIDER_STANDIN_PORT });
      stops.push(() => standin.close());
      for (const p of standinProviders) {
        functionEnv[`${prefixOf(p)}_BASE_URL`] = standinBaseUrl(standin.url, p);
        functionEnv[`${prefixOf(p)}_API_KEY`] = "local-standin-key";
      }
    }

    // The environment hosted functions get (supabase-platform.md §1.6).
    Object.assign(functionEnv, {
      SUPABASE_URL: apiUrl,
      SUPABASE_DB_URL: cluster.url,
      SUPABASE_ANON_KEY: keys.anon,
      SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: keys.publishable }),
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: keys.secret }),
      JWT_SECRET: settings.JWT_SECRET,
    });
    for (const [k, v] of Object.entries(functionEnv)) Deno.env.set(k, v);

    const worker = await startPgNetWorker({ dbUrl: cluster.url, log: (m) => log(`pg_net: ${m}`) });
    stops.push(() => worker.stop());
    const realtime = await createRealtime({
      dbUrl: cluster.url,
      jwtSecret: settings.JWT_SECRET,
      keys: { anon: keys.anon, serviceRole: keys.serviceRole, publishable: keys.publishable, secret: keys.secret },
      log: (m) => log(`realtime: ${m}`),
    });
    stops.push(() => realtime.close());

    installEdgeRuntime(log);
    const functions = readFunctionSpecs(resolve(root, "supabase"));
    const gateway = await createGateway({
      functions,
      jwtSecret: settings.JWT_SECRET,
      keys,
      realtime: realtime.fetch,
      dashboard: createDashboard(log),
      requestTimeoutMs: settings.DEVSTACK_GATEWAY_TIMEOUT_MS,
      log,
    });
    const server = Deno.serve({ hostname: "127.0.0.1", port: settings.API_PORT, onListen: () => {} }, gateway.fetch);
    stops.push(async () => {
      await server.shutdown();
      const left = await drainBackgroundTasks(10_000);
      if (left > 0) log(`${left} background task(s) still running at shutdown`);
    });

    const banner = renderBanner({
      apiUrl,
      dbUrl: cluster.url,
      keys,
      functions: functions.map((f) => ({
        name: f.name,
        verifyJwt: f.verifyJwt,
        bootError: gateway.bootErrors[f.name],
      })),
      providers: providerNames.map((name) => ({
        name,
        standinUrl: standinProviders.includes(name)
          ? standinBaseUrl(`http://127.0.0.1:${settings.PROVIDER_STANDIN_PORT}`, name)
          : undefined,
      })),
    });
    return { apiUrl, dbUrl: cluster.url, keys, banner, postgresExited: supervisor.gaveUp, stop: stopAll };
  } catch (err) {
    await stopAll().catch((stopErr) => log(`while stopping after a failed start: ${stopErr}`));
    throw err;
  }
}

/**
 * Keeps Postgres running the way a managed database is kept running: when it exits without being asked to (a crash,
 * or an immediate shutdown), it is started again on the same data after `delayMs`, and the stack goes on serving
 * (the functions answer 503 bus_unavailable meanwhile, and reconnect). `gaveUp` resolves with the exit code only when
 * a restart fails; the stack then shuts down.
 */
export function superviseCluster(
  first: RunningCluster,
  restart: () => Promise<RunningCluster>,
  delayMs: number,
  log: (m: string) => void,
): { stop(): Promise<void>; stopping(): void; gaveUp: Promise<number> } {
  let current = first;
  let stopping = false;
  let giveUp!: (code: number) => void;
  const gaveUp = new Promise<number>((r) => (giveUp = r));
  const watch = (cluster: RunningCluster) => {
    cluster.exited.then(async (code) => {
      if (stopping) return;
      log(`Postgres exited unexpectedly (code ${code}); restarting it in ${delayMs} ms`);
      await new Promise((r) => setTimeout(r, delayMs));
      if (stopping) return;
      try {
        current = await restart();
        log("Postgres is back");
        watch(current);
      } catch (err) {
        log(`restarting Postgres failed: ${err instanceof Error ? err.message : err}`);
        giveUp(code);
      }
    });
  };
  watch(first);
  return {
    gaveUp,
    stopping: () => {
      stopping = true;
    },
    stop: () => {
      stopping = true;
      return current.stop();
    },
  };
}

/** Where provider `name` lives on the stand-in: the real provider's path under a prefix of its own. */
export function standinBaseUrl(standinUrl: string, name: string): string {
  if (name === "kimi") return `${standinUrl}/kimi/v1`;
  if (name === "glm") return `${standinUrl}/glm/api/paas/v4`;
  return `${standinUrl}/${name}/v1`;
}

async function upsertVaultSecret(sql: postgres.Sql, name: string, value: string): Promise<void> {
  const [row] = await sql<{ id: string }[]>`select id from vault.secrets where name = ${name}`;
  if (row) await sql`select vault.update_secret(${row.id}::uuid, ${value})`;
  else await sql`select vault.create_secret(${value}, ${name})`;
}
