/**
 * `npm start` in a fresh clone inside a private folder, as `git clone <repo> "$(mktemp -d)/c" && cd ... && npm
 * start` makes it: `mktemp -d` makes a 0700 folder that the unprivileged `postgres` user (which runs Postgres when
 * the stack runs as root) cannot traverse. The stack must come up anyway, without changing that folder's
 * permissions, answer health with the anon key, and leave nothing behind after SIGTERM.
 *
 * The clone gets a symlink to this checkout's node_modules instead of `npm ci`: an install downloads ~100 MB (the
 * Deno binary, playwright-core) on every run and needs the network, while what is under test here is the clone's
 * location; ensure.mjs's install path runs whenever node_modules is missing and announces itself.
 */
import assert from "node:assert/strict";
import { freePort } from "../devstack/testing/stack_process.ts";
import { descendants, listening, npmStart, processesMentioning, waitGone } from "../devstack/testing/processes.ts";
import { isRoot, readPointer, removeClusterFolder } from "../devstack/postgres/location.ts";
import { mintStackKeys } from "../devstack/keys.ts";
import { DEFAULT_JWT_SECRET } from "../devstack/settings.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout).trim();
}

Deno.test("npm start in a fresh clone inside a private mktemp -d folder serves and stops without leftovers", async () => {
  const tmp = await run("mktemp", ["-d"]);
  const clone = `${tmp}/c`;
  const dataFolder = `${clone}/.devstack/data`;
  try {
    assert.equal((await Deno.stat(tmp)).mode! & 0o777, 0o700, "mktemp -d makes a private folder");
    await run("git", ["clone", "--quiet", ROOT, clone]); // HEAD of this checkout
    await Deno.symlink(await Deno.realPath(`${ROOT}/node_modules`), `${clone}/node_modules`);

    const ports = { api: freePort(), db: freePort(), standin: freePort() };
    const started = await npmStart(clone, {
      API_PORT: String(ports.api),
      DB_PORT: String(ports.db),
      PROVIDER_STANDIN_PORT: String(ports.standin),
      // The default, named because this test's own environment (npm test's) points at the test stack's folder.
      DEVSTACK_DATA_DIR: ".devstack/data",
      DEVSTACK_PG_FAST: "1",
      JWT_SECRET: DEFAULT_JWT_SECRET,
      KIMI_API_KEY: "",
      GLM_API_KEY: "",
    }, 180_000);

    // Where the cluster went: out of the private folder as root (said in the log), inside the clone otherwise.
    const pointed = await readPointer(dataFolder);
    const home = pointed ?? dataFolder;
    if (isRoot()) {
      assert.ok(pointed, "as root the cluster is kept outside the private folder");
      assert.ok(started.output().includes(`the cluster is kept in ${pointed} instead`), started.output());
    } else {
      assert.equal(pointed, undefined);
    }
    assert.equal((await Deno.stat(tmp)).mode! & 0o777, 0o700, "the private folder keeps its permissions");
    const pgData = `${home}/pgdata`;
    assert.ok(started.output().includes(`postgres ready on 127.0.0.1:${ports.db} (data ${pgData})`), started.output());
    // The postmaster (`postgres -D <pgdata>`) and its watchdog, then the postmaster's own children.
    const postgresProcs = processesMentioning(`-D ${pgData} `);
    assert.ok(postgresProcs.length >= 1, `Postgres runs on ${pgData}`);
    const postgresTree = postgresProcs.flatMap((pid) => [pid, ...descendants(pid)]);

    const keys = await mintStackKeys(DEFAULT_JWT_SECRET);
    const res = await fetch(`http://127.0.0.1:${ports.api}/functions/v1/tool-invoke/health`, {
      headers: { authorization: `Bearer ${keys.anon}` },
    });
    assert.equal(res.status, 200, await res.text());

    const tree = descendants(started.child.pid);
    started.child.kill("SIGTERM");
    assert.equal((await started.child.status).code, 0, started.output());
    assert.deepEqual(await waitGone([...tree, ...postgresTree]), [], "no process of the stack survives SIGTERM");
    assert.deepEqual(processesMentioning(`-D ${pgData} `), [], "no Postgres runs on the clone's data");
    await assert.rejects(Deno.stat(`${pgData}/postmaster.pid`), Deno.errors.NotFound, "Postgres shut down cleanly");
    for (const [name, port] of Object.entries(ports)) {
      assert.equal(await listening(port), false, `${name} port ${port} is free`);
    }
  } finally {
    await removeClusterFolder(dataFolder).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.remove(tmp, { recursive: true });
  }
});
