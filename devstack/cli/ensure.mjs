// Installs what `npm start` / `npm test` need on a fresh machine (CONTRACT.md §1): npm packages (Deno ships as
// the `deno` npm package) and, from Debian's apt, PostgreSQL 15 with pg_cron (and pgTAP, pg_prove and Chromium for
// the tests). Plain Node with no dependencies: it runs before `node_modules` exists.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DENO = join(ROOT, "node_modules", ".bin", "deno");

const PG = "/usr/lib/postgresql/15";
const START_PACKAGES = [
  { pkg: "postgresql-15", path: `${PG}/bin/postgres` },
  { pkg: "postgresql-15-cron", path: `${PG}/lib/pg_cron.so` },
];
const TEST_PACKAGES = [
  { pkg: "postgresql-15-pgtap", path: "/usr/share/postgresql/15/extension/pgtap.control" },
  { pkg: "libtap-parser-sourcehandler-pgtap-perl", path: "/usr/bin/pg_prove" },
  { pkg: "chromium", path: "/usr/bin/chromium" },
];

function fail(message) {
  console.error(`\n${message}\n`);
  process.exit(1);
}

function run(cmd, args, what) {
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: "inherit" });
  if (res.error) fail(`${what} could not run: ${res.error.message}`);
  return res.status === 0;
}

/** npm packages, Deno among them. */
export function ensureNodeModules() {
  if (existsSync(DENO)) return;
  console.error("[setup] installing npm packages (Deno comes as the `deno` npm package)...");
  const args = existsSync(join(ROOT, "package-lock.json"))
    ? ["ci", "--no-audit", "--no-fund"]
    : ["install", "--no-audit", "--no-fund"];
  if (!run("npm", args, "npm") || !existsSync(DENO)) {
    fail(`Installing npm packages failed. Run this and try again:\n  cd ${ROOT} && npm ${args.join(" ")}`);
  }
}

/** Debian packages; installs them with apt when running as root, otherwise names the command to run. */
export function ensureSystemPackages({ forTests }) {
  const wanted = forTests ? [...START_PACKAGES, ...TEST_PACKAGES] : START_PACKAGES;
  const missing = wanted.filter((p) => !existsSync(p.path)).map((p) => p.pkg);
  if (missing.length === 0) return;
  const command = `apt-get update && apt-get install -y ${missing.join(" ")}`;
  if (process.getuid?.() !== 0) {
    fail(`Missing system packages: ${missing.join(", ")}. Install them with:\n  sudo sh -c '${command}'`);
  }
  console.error(`[setup] installing ${missing.join(", ")} with apt...`);
  const ok = run("apt-get", ["update", "-qq"], "apt-get") &&
    run("apt-get", ["install", "-y", "-qq", ...missing], "apt-get");
  const still = wanted.filter((p) => !existsSync(p.path)).map((p) => p.pkg);
  if (!ok || still.length) fail(`Installing ${still.join(", ") || missing.join(", ")} failed. Run:\n  ${command}`);
}

/**
 * Runs Deno with `args`, forwarding SIGINT/SIGTERM, and exits with its code. With `watchParent`, Deno's stdin is
 * a pipe that closes when this process dies, however it dies, and Deno stops then too.
 */
export async function runDeno(args, { watchParent = false } = {}) {
  const { spawn } = await import("node:child_process");
  // Deno takes its dependencies from import_map.json; package.json only installs Node tooling (Deno itself,
  // playwright-core). Without this, Deno would also resolve package.json's packages, and the `deno` package lists
  // platform builds the registry does not always have (e.g. @deno/darwin-arm64@2.9.6).
  const env = { ...process.env, DENO_NO_PACKAGE_JSON: "1" };
  const child = spawn(DENO, args, {
    cwd: ROOT,
    env,
    stdio: [watchParent ? "pipe" : "inherit", "inherit", "inherit"],
  });
  const forward = (signal) => () => {
    if (child.exitCode === null) child.kill(signal);
  };
  process.on("SIGINT", forward("SIGINT"));
  process.on("SIGTERM", forward("SIGTERM"));
  child.on("error", (err) => fail(`Deno could not start: ${err.message}`));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
