/**
 * Where a cluster lives: in the data folder when the Postgres user can reach it, else (as root) in a folder of its
 * own under the `postgres` user's home, with a pointer, without touching the permissions of the user's folders.
 */
import assert from "node:assert/strict";
import {
  clusterHome,
  isRoot,
  POINTER_FILE,
  readPointer,
  relocatedHome,
  RELOCATION_ROOT,
  removeClusterFolder,
} from "./location.ts";

const mode = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

Deno.test("relocatedHome() is derived from the data folder's absolute path", () => {
  const a = relocatedHome("/tmp/x/c/.devstack/data");
  assert.match(a, new RegExp(`^${RELOCATION_ROOT}/[0-9a-f]{16}$`));
  assert.equal(relocatedHome("/tmp/x/c/.devstack/data/"), a);
  assert.notEqual(relocatedHome("/tmp/y/c/.devstack/data"), a);
});

Deno.test("readPointer() accepts only a folder under the relocation root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await readPointer(dir), undefined);
    await Deno.writeTextFile(`${dir}/${POINTER_FILE}`, "/etc\n");
    await assert.rejects(readPointer(dir), /not a folder under/);
    await Deno.writeTextFile(`${dir}/${POINTER_FILE}`, `${RELOCATION_ROOT}/../../../etc\n`);
    await assert.rejects(readPointer(dir), /not a folder under/);
    await Deno.writeTextFile(`${dir}/${POINTER_FILE}`, `${relocatedHome(dir)}\n`);
    assert.equal(await readPointer(dir), relocatedHome(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clusterHome() keeps a cluster out of a private folder in its own place, leaving the folder as it was", async () => {
  const privateDir = await Deno.makeTempDir(); // 0700, as `mktemp -d` makes it
  const dataFolder = `${privateDir}/clone/.devstack/data`;
  const logs: string[] = [];
  try {
    const home = await clusterHome(dataFolder, (m) => logs.push(m));
    assert.equal(await mode(privateDir), 0o700, "the user's folder keeps its permissions");
    if (!isRoot()) {
      // Postgres runs as this user, who can reach their own folders.
      assert.equal(home, dataFolder);
      assert.deepEqual(logs, []);
      return;
    }
    assert.equal(home, relocatedHome(dataFolder));
    assert.equal(await readPointer(dataFolder), home);
    assert.equal((await Deno.readTextFile(`${home}/origin`)).trim(), dataFolder);
    const info = await Deno.lstat(home);
    assert.equal(info.mode! & 0o777, 0o700);
    assert.notEqual(info.uid, 0, "owned by the postgres user");
    assert.equal(logs.length, 1);
    assert.match(logs[0], /cannot reach .*permissions are left as they are; the cluster is kept in/);
    // A second start finds the same place through the pointer.
    assert.equal(await clusterHome(dataFolder, (m) => logs.push(m)), home);

    await removeClusterFolder(dataFolder);
    await assert.rejects(Deno.stat(home), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(dataFolder), Deno.errors.NotFound);
  } finally {
    await removeClusterFolder(dataFolder).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.remove(privateDir, { recursive: true });
  }
});

Deno.test("clusterHome() keeps the cluster in a data folder the Postgres user can reach", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.chmod(dir, 0o755);
  try {
    const logs: string[] = [];
    // /tmp is searchable by everyone, and so is this folder now.
    assert.equal(await clusterHome(`${dir}/data`, (m) => logs.push(m)), `${dir}/data`);
    assert.deepEqual(logs, []);
    assert.equal(await readPointer(`${dir}/data`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
