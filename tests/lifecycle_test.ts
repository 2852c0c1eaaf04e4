/**
 * `npm start` as a user runs it (CONTRACT.md §1): it comes up and answers health with the anon key; SIGTERM
 * stops everything, Postgres included, leaving no process and no listening port; a second start reuses the data;
 * and when the stack is killed outright (SIGKILL), Postgres still shuts down.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { freePort } from "../devstack/testing/stack_process.ts";
import { descendants, listening, npmStart as npmStartIn, waitGone } from "../devstack/testing/processes.ts";
import { removeClusterFolder } from "../devstack/postgres/location.ts";
import { mintStackKeys } from "../devstack/keys.ts";
import { DEFAULT_JWT_SECRET } from "../devstack/settings.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const npmStart = (env: Record<string, string>) => npmStartIn(ROOT, env);

Deno.test("npm start serves, stops cleanly on SIGTERM, restarts with the same data, and dies with its parent", async () => {
  await Deno.mkdir(`${ROOT}.devstack`, { recursive: true });
  const dataDir = await Deno.makeTempDir({ dir: `${ROOT}.devstack`, prefix: "lifecycle-" });
  await Deno.chmod(dataDir, 0o755);
  const ports = { api: freePort(), db: freePort(), standin: freePort() };
  const env = {
    API_PORT: String(ports.api),
    DB_PORT: String(ports.db),
    PROVIDER_STANDIN_PORT: String(ports.standin),
    DEVSTACK_DATA_DIR: dataDir,
    DEVSTACK_PG_FAST: "1",
    JWT_SECRET: DEFAULT_JWT_SECRET,
    KIMI_API_KEY: "",
    GLM_API_KEY: "",
  };
  const keys = await mintStackKeys(DEFAULT_JWT_SECRET);
  const dbUrl = `postgresql://postgres:postgres@127.0.0.1:${ports.db}/postgres`;
  const marker = `lifecycle-${crypto.randomUUID()}`;
  try {
    // 1. start, health with the anon key, leave a marker
    let run = await npmStart(env);
    assert(run.output().includes(keys.anon), "the banner prints the anon key");
    assert(run.output().includes("local stand-in"), "the banner says the providers use the stand-in");
    const res = await fetch(`http://127.0.0.1:${ports.api}/functions/v1/tool-invoke/health`, {
      headers: { authorization: `Bearer ${keys.anon}` },
    });
    assert.deepEqual(res.status, 200);
    await res.body?.cancel();
    const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
    await sql`select vault.create_secret('kept', ${marker})`;
    await sql.end();

    // 2. SIGTERM to npm: nothing left behind
    let tree = descendants(run.child.pid);
    assert(tree.length >= 3, `npm, node, deno, watchdog and postgres expected, got ${tree.length} descendants`);
    run.child.kill("SIGTERM");
    assert.deepEqual((await run.child.status).code, 0, run.output());
    assert.deepEqual(await waitGone(tree), [], "no process of the stack survives SIGTERM");
    for (const port of Object.values(ports)) assert.deepEqual(await listening(port), false, `port ${port} is free`);

    // 3. start again: same data
    run = await npmStart(env);
    const sql2 = postgres(dbUrl, { max: 1, onnotice: () => {} });
    const [row] = await sql2`select decrypted_secret from vault.decrypted_secrets where name = ${marker}`;
    await sql2.end();
    assert.deepEqual(row?.decrypted_secret, "kept");
    assert(run.output().includes("migrations up to date"), "no migration is applied twice");

    // 4. SIGKILL the stack process itself: the watchdog still stops Postgres
    tree = descendants(run.child.pid);
    const denoMain = tree.find((pid) => Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("devstack/main.ts"));
    assert(denoMain, "the deno stack process is running");
    Deno.kill(denoMain!, "SIGKILL");
    await run.child.status;
    assert.deepEqual(await waitGone(tree), [], "Postgres and the watchdog stop when the stack is killed");
    assert.deepEqual(await listening(ports.db), false);
  } finally {
    await removeClusterFolder(dataDir);
  }
});
