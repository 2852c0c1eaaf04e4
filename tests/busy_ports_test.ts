/**
 * The stack never half-starts on a taken port and never uses a Postgres it did not start: `npm start` checks
 * API_PORT, DB_PORT and PROVIDER_STANDIN_PORT before anything starts and names the setting to change; the
 * cluster it starts carries a random cluster_name that is checked before migrations.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { assertPortsFree } from "../devstack/ports.ts";
import { verifyClusterName } from "../devstack/postgres/cluster.ts";
import { freePort } from "../devstack/testing/stack_process.ts";
import { testStack } from "../devstack/testing/env.ts";
import { DEFAULT_JWT_SECRET } from "../devstack/settings.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `npm start` with `env` until it exits (bounded); a start that comes up is stopped and is a failure. */
async function npmStartExpectingFailure(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("npm", {
    args: ["start"],
    cwd: ROOT,
    env: { DEVSTACK_PG_FAST: "1", JWT_SECRET: DEFAULT_JWT_SECRET, KIMI_API_KEY: "", GLM_API_KEY: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), 60_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code, output: dec.decode(stdout) + dec.decode(stderr) };
}

Deno.test("assertPortsFree() names every taken port with its setting, and ports given twice", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const free = freePort();
    assert.doesNotThrow(() => assertPortsFree([{ setting: "API_PORT", port: free }]));
    assert.throws(
      () =>
        assertPortsFree([
          { setting: "API_PORT", port: free },
          { setting: "DB_PORT", port },
          { setting: "PROVIDER_STANDIN_PORT", port: free },
        ]),
      (err: Error) => {
        assert.equal(
          err.message,
          `DB_PORT ${port} is in use (another stack or Postgres?); set DB_PORT to a free port\n` +
            `API_PORT and PROVIDER_STANDIN_PORT are both ${free}; set PROVIDER_STANDIN_PORT to another port`,
        );
        return true;
      },
    );
  } finally {
    taken.close();
  }
});

Deno.test("npm start exits non-zero before starting anything when DB_PORT is taken by a listener", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dbPort = (taken.addr as Deno.NetAddr).port;
  const parent = await Deno.makeTempDir({ prefix: "busy-port-" });
  try {
    const run = await npmStartExpectingFailure({
      API_PORT: String(freePort()),
      DB_PORT: String(dbPort),
      PROVIDER_STANDIN_PORT: String(freePort()),
      DEVSTACK_DATA_DIR: `${parent}/data`,
    });
    assert.notEqual(run.code, 0, run.output);
    assert.ok(
      run.output.includes(`DB_PORT ${dbPort} is in use (another stack or Postgres?); set DB_PORT to a free port`),
      run.output,
    );
    assert.ok(!run.output.includes("postgres ready"), run.output);
    assert.deepEqual([...Deno.readDirSync(parent)], [], "no data folder was made: nothing started");
  } finally {
    taken.close();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("npm start refuses a DB_PORT where another Postgres (the test stack's) listens, and leaves it alone", async () => {
  const stack = testStack();
  const dbPort = Number(new URL(stack.dbUrl).port);
  const sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} });
  const migrations = async () =>
    (await sql<{ n: number }[]>`select count(*)::int as n from supabase_migrations.schema_migrations`)[0].n;
  const parent = await Deno.makeTempDir({ prefix: "busy-port-" });
  try {
    const before = await migrations();
    const apiPort = freePort();
    const run = await npmStartExpectingFailure({
      API_PORT: String(apiPort),
      DB_PORT: String(dbPort),
      PROVIDER_STANDIN_PORT: String(apiPort), // given twice: named as well
      DEVSTACK_DATA_DIR: `${parent}/data`,
    });
    assert.notEqual(run.code, 0, run.output);
    assert.ok(run.output.includes(`DB_PORT ${dbPort} is in use`), run.output);
    assert.ok(run.output.includes(`API_PORT and PROVIDER_STANDIN_PORT are both ${apiPort}`), run.output);
    assert.ok(!run.output.includes("migrations"), run.output);
    assert.equal(await migrations(), before);
  } finally {
    await sql.end();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("verifyClusterName() accepts only the cluster started with that name", async () => {
  const { dbUrl } = testStack();
  const port = Number(new URL(dbUrl).port);
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  const [{ cluster_name }] = await sql<
    { cluster_name: string }[]
  >`select current_setting('cluster_name') as cluster_name`;
  await sql.end();
  assert.match(cluster_name, /^devstack-[0-9a-f-]{36}$/, "the test stack's cluster was started with a random name");
  await verifyClusterName(dbUrl, cluster_name, port);
  await assert.rejects(
    verifyClusterName(dbUrl, `devstack-${crypto.randomUUID()}`, port),
    new RegExp(
      `^Error: Another Postgres answers on 127\\.0\\.0\\.1:${port} \\(cluster_name "${cluster_name}"\\), not the ` +
        `cluster this stack started; refusing to use it\\. Set DB_PORT to a free port\\.$`,
    ),
  );
});
