// Installs what `npm start` / `npm test` need on a fresh machine (CONTRACT.md §1): npm packages (Deno ships as
// the `deno` npm package) and, from Debian's apt, PostgreSQL 15 with pg_cron (and pgTAP, pg_prove and Chromium for
// the tests). Plain Node with no dependencies: it runs before `node_modules` exists.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const DENO = join(ROOT, "node_modules", ".bin", "deno");

const PG = "/usr/lib/postgresql/15";
const START_PACKAGES = [
  { pkg: "postgresql-15", path: `${PG}/bin/postgres`, why: "the local database server (PostgreSQL 15)" },
  {
    pkg: "postgresql-15-cron",
    path: `${PG}/lib/pg_cron.so`,
    why: "pg_cron, which runs the cleanup and watcher-sweep jobs inside Postgres",
  },
];
const TEST_PACKAGES = [
  {
    pkg: "postgresql-15-pgtap",
    path: "/usr/share/postgresql/15/extension/pgtap.control",
    why: "pgTAP, the SQL test framework of supabase/tests",
  },
  {
    pkg: "libtap-parser-sourcehandler-pgtap-perl",
    path: "/usr/bin/pg_prove",
    why: "pg_prove, which runs the pgTAP tests",
  },
  { pkg: "chromium", path: "/usr/bin/chromium", why: "a headless browser for the dashboard test (tests/browser)" },
];
/** Why each npm package is installed (package.json devDependencies). */
const NPM_REASONS = {
  deno: "the Deno runtime that runs the stack, the functions and the tests",
  "playwright-core": "drives Chromium in the browser tests",
};

function fail(message) {
  console.error(`\n${message}\n`);
  process.exit(1);
}

function run(cmd, args, what) {
  // The installers' output goes to stderr: stdout belongs to the command (`npm run -s token` prints only a token).
  const res = spawnSync(cmd, args, { cwd: ROOT, stdio: ["inherit", 2, 2] });
  if (res.error) fail(`${what} could not run: ${res.error.message}`);
  return res.status === 0;
}

/** npm packages, Deno among them; says what it installs and why before it does. */
export function ensureNodeModules() {
  if (existsSync(DENO)) return;
  const args = existsSync(join(ROOT, "package-lock.json"))
    ? ["ci", "--no-audit", "--no-fund"]
    : ["install", "--no-audit", "--no-fund"];
  const deps = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).devDependencies ?? {};
  const list = Object.entries(deps).map(([name, version]) =>
    `  ${name}@${version}: ${NPM_REASONS[name] ?? "a tool of the repository"}`
  );
  console.error(
    `[setup] node_modules is missing; running \`npm ${args.join(" ")}\` in ${ROOT} to install:\n${list.join("\n")}`,
  );
  if (!run("npm", args, "npm") || !existsSync(DENO)) {
    fail(`Installing npm packages failed. Run this and try again:\n  cd ${ROOT} && npm ${args.join(" ")}`);
  }
}

/**
 * Debian packages. Says first which are missing and why each is needed; then installs them with apt when running
 * as root, otherwise prints the exact command to run and exits non-zero. The last argument replaces the machine
 * (file checks, uid, running commands, output, exiting) for tests.
 */
export function ensureSystemPackages({ forTests }, sys = {}) {
  const {
    exists = existsSync,
    isRoot = process.getuid?.() === 0,
    exec = run,
    log = (m) => console.error(m),
    exit = fail,
  } = sys;
  const wanted = forTests ? [...START_PACKAGES, ...TEST_PACKAGES] : START_PACKAGES;
  const missingPackages = wanted.filter((p) => !exists(p.path));
  if (missingPackages.length === 0) return;
  const missing = missingPackages.map((p) => p.pkg);
  const list = missingPackages.map((p) => `  ${p.pkg}: ${p.why} (missing ${p.path})`).join("\n");
  const update = ["update", "-qq"];
  const install = ["install", "-y", "-qq", ...missing];
  const command = `apt-get ${update.join(" ")} && apt-get ${install.join(" ")}`;
  const purpose = forTests ? "npm test" : "npm start";
  if (!isRoot) {
    return exit(
      `${purpose} needs these Debian packages, which are not installed:\n${list}\n` +
        `Only root can install them. Run this, then ${purpose} again:\n  sudo sh -c '${command}'`,
    );
  }
  log(`[setup] ${purpose} needs these Debian packages; installing them with apt (running as root):\n${list}`);
  log(`[setup] running: ${command}`);
  const ok = exec("apt-get", update, "apt-get") && exec("apt-get", install, "apt-get");
  const still = wanted.filter((p) => !exists(p.path)).map((p) => p.pkg);
  if (!ok || still.length) exit(`Installing ${still.join(", ") || missing.join(", ")} failed. Run:\n  ${command}`);
}

/**
 * Runs Deno with `args`, forwarding SIGINT/SIGTERM, and exits with its code. With `watchParent`, Deno's stdin is
 * a pipe that closes when this process dies, however it dies, and Deno stops then too. `cwd` defaults to the
 * repository root.
 */
export async function runDeno(args, { watchParent = false, cwd = ROOT } = {}) {
  const { spawn } = await import("node:child_process");
  // Deno takes its dependencies from import_map.json; package.json only installs Node tooling (Deno itself,
  // playwright-core). Without this, Deno would also resolve package.json's packages, and the `deno` package lists
  // platform builds the registry does not always have (e.g. @deno/darwin-arm64@2.9.6).
  // DENO_TLS_CA_STORE: Deno trusts only its bundled Mozilla roots by default, while npm, Node and curl also trust the
  // system's; behind a TLS-inspecting proxy whose CA is installed system-wide, Deno's first download of the npm
  // packages then fails with "invalid peer certificate: UnknownIssuer". A value set by the user wins.
  const env = {
    ...process.env,
    DENO_NO_PACKAGE_JSON: "1",
    DENO_TLS_CA_STORE: process.env.DENO_TLS_CA_STORE ?? "mozilla,system",
  };
  const child = spawn(DENO, args, {
    cwd,
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
