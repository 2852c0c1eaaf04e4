/**
 * Where the cluster of a data folder lives. Postgres refuses to run as root, so a root-run stack runs it as the
 * unprivileged `postgres` user, which must be able to reach the data folder. A clone made in a private folder
 * (`mktemp -d` makes 0700 folders) is out of its reach; rather than loosening the user's folder permissions behind
 * their back, the cluster is then kept in a folder of its own under the `postgres` user's home,
 * /var/lib/postgresql/msgbus-devstack/<digest of the data folder's path>, and the data folder holds a pointer to it
 * (`cluster-location`). Not /var/tmp: systemd's default tmpfiles rule ages files there out after 30 days, which
 * would eat a cluster left unused for a month. As a normal user, Postgres runs as that user and the cluster always
 * stays in the data folder.
 */
import { resolve } from "node:path";
import { createHash } from "node:crypto";

/** The unprivileged user Postgres runs as when the stack runs as root (Debian's package creates it). */
export const PG_USER = "postgres";
/** Inside the `postgres` user's home (Debian's, where its own clusters live): only root and `postgres` write there. */
export const RELOCATION_ROOT = "/var/lib/postgresql/msgbus-devstack";
/** The file in a data folder that names the folder its cluster was moved to. */
export const POINTER_FILE = "cluster-location";

/** True when this process runs as root. */
export const isRoot = (): boolean => Deno.uid() === 0;

/** The folder outside the data folder that holds its cluster when `postgres` cannot reach it. */
export function relocatedHome(dataFolder: string): string {
  const digest = createHash("sha256").update(resolve(dataFolder)).digest("hex").slice(0, 16);
  return `${RELOCATION_ROOT}/${digest}`;
}

/**
 * Decides where the cluster of `dataFolder` lives (the folder that gets `pgdata/` and `postgres.log`) and makes
 * sure that folder exists: `dataFolder` itself, or, when running as root and `postgres` cannot reach it, a folder
 * under {@link RELOCATION_ROOT} (said in the log). A cluster moved there once is found there again.
 * @throws Error when an existing cluster inside `dataFolder` is out of `postgres`'s reach (its data cannot move).
 */
export async function clusterHome(dataFolder: string, log: (msg: string) => void = () => {}): Promise<string> {
  const folder = resolve(dataFolder);
  await Deno.mkdir(folder, { recursive: true, mode: 0o755 });
  if (!isRoot()) return folder;
  const pointed = await readPointer(folder);
  if (pointed) {
    log(`the cluster of ${folder} is kept in ${pointed} (the '${PG_USER}' user cannot reach ${folder})`);
    await prepareRelocatedHome(pointed, folder);
    return pointed;
  }
  if (await postgresUserCanReach(folder)) return folder;
  if (await exists(`${folder}/pgdata/PG_VERSION`)) {
    throw new Error(
      `The '${PG_USER}' user can no longer reach the cluster in ${folder}/pgdata (a parent folder is not ` +
        `searchable by others). Make the folders on the way searchable again, or set DEVSTACK_DATA_DIR to start a ` +
        `new cluster elsewhere.`,
    );
  }
  const home = relocatedHome(folder);
  await prepareRelocatedHome(home, folder);
  await Deno.writeTextFile(`${folder}/${POINTER_FILE}`, `${home}\n`);
  log(
    `the '${PG_USER}' user (Postgres does not run as root) cannot reach ${folder}: a parent folder is private ` +
      `(e.g. made by mktemp -d). Its permissions are left as they are; the cluster is kept in ${home} instead ` +
      `(named in ${folder}/${POINTER_FILE}; delete that folder too when you delete the clone).`,
  );
  return home;
}

/** Removes `dataFolder` and, when its cluster was moved out of it, that folder too. */
export async function removeClusterFolder(dataFolder: string): Promise<void> {
  const folder = resolve(dataFolder);
  const pointed = await readPointer(folder);
  if (pointed) await Deno.remove(pointed, { recursive: true });
  await Deno.remove(folder, { recursive: true });
}

/** The relocated home named in `folder`'s pointer file; only paths under {@link RELOCATION_ROOT} count. */
export async function readPointer(folder: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${folder}/${POINTER_FILE}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  const home = text.trim();
  if (!(home.startsWith(`${RELOCATION_ROOT}/`) && /^[0-9a-f]{16}$/.test(home.slice(RELOCATION_ROOT.length + 1)))) {
    throw new Error(`${folder}/${POINTER_FILE} names ${JSON.stringify(home)}, not a folder under ${RELOCATION_ROOT}`);
  }
  return home;
}

/** True when the unprivileged Postgres user can open `dir` (every folder on the way searchable). */
export async function postgresUserCanReach(dir: string): Promise<boolean> {
  const out = await new Deno.Command("setpriv", {
    args: ["--reuid", PG_USER, "--regid", PG_USER, "--init-groups", "test", "-x", dir],
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

/**
 * Creates (or checks) the relocated home and the folders above it: each must be a real folder (not a link) that only
 * root or `postgres` owns and nobody else can write to, so no other user can redirect where the cluster goes.
 */
async function prepareRelocatedHome(home: string, origin: string): Promise<void> {
  const pg = await pgUser();
  const parent = resolve(RELOCATION_ROOT, "..");
  await ensureFolder(parent, 0o755, { uid: 0, gid: 0 }, [0, pg.uid]);
  await ensureFolder(RELOCATION_ROOT, 0o700, pg, [pg.uid]);
  await ensureFolder(home, 0o700, pg, [pg.uid]);
  // Names the data folder the cluster belongs to, for whoever finds the folder later.
  await Deno.writeTextFile(`${home}/origin`, `${origin}\n`);
}

async function ensureFolder(
  path: string,
  mode: number,
  owner: { uid: number; gid: number },
  allowedOwners: number[],
): Promise<void> {
  try {
    await Deno.mkdir(path, { mode });
    await Deno.chmod(path, mode); // mkdir's mode is filtered by the umask
    await Deno.chown(path, owner.uid, owner.gid);
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const info = await Deno.lstat(path);
  const writableByOthers = ((info.mode ?? 0) & 0o022) !== 0;
  if (!info.isDirectory || info.isSymlink || !allowedOwners.includes(info.uid ?? -1) || writableByOthers) {
    throw new Error(
      `Refusing to keep a cluster under ${path}: it is not a folder owned by root or '${PG_USER}' that only its ` +
        `owner can write to. Fix or remove it, or set DEVSTACK_DATA_DIR to a folder the '${PG_USER}' user can reach.`,
    );
  }
}

/** The uid and gid of {@link PG_USER}. */
async function pgUser(): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) => {
    const out = await new Deno.Command("id", { args: [flag, PG_USER], stdout: "piped", stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`There is no '${PG_USER}' user to run Postgres as: ${new TextDecoder().decode(out.stderr)}`);
    }
    return Number(new TextDecoder().decode(out.stdout).trim());
  };
  return { uid: await id("-u"), gid: await id("-g") };
}

/** Whether `path` exists (any other error than "not found" is thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
