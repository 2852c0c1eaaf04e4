/**
 * ensure.mjs's system packages step, on a simulated machine: it says what it will install and why before running
 * apt, and not as root it prints the exact command and exits instead of trying.
 */
import assert from "node:assert/strict";
import { ensureSystemPackages } from "./ensure.mjs";

const PG = "/usr/lib/postgresql/15";

/** A machine where `missing` paths do not exist; records what is logged and run, in order. */
function machine(opts: { missing: string[]; isRoot: boolean; installs?: boolean }) {
  const events: string[] = [];
  const present = new Set<string>();
  return {
    events,
    sys: {
      exists: (path: string) => !opts.missing.includes(path) || present.has(path),
      isRoot: opts.isRoot,
      exec: (cmd: string, args: string[]) => {
        events.push(`run: ${cmd} ${args.join(" ")}`);
        if (opts.installs && args[0] === "install") opts.missing.forEach((p) => present.add(p));
        return true;
      },
      log: (message: string) => events.push(`log: ${message}`),
      exit: (message: string) => {
        events.push(`exit: ${message}`);
      },
    },
  };
}

Deno.test("not as root, missing packages are named with their purpose and the exact command, and nothing runs", () => {
  const m = machine({ missing: [`${PG}/lib/pg_cron.so`], isRoot: false });
  ensureSystemPackages({ forTests: false }, m.sys);
  assert.equal(m.events.length, 1, m.events.join("\n"));
  const [exit] = m.events;
  assert.ok(exit.startsWith("exit: npm start needs these Debian packages, which are not installed:"), exit);
  assert.ok(exit.includes("postgresql-15-cron: pg_cron, which runs the cleanup and watcher-sweep jobs"), exit);
  assert.ok(exit.includes("sudo sh -c 'apt-get update -qq && apt-get install -y -qq postgresql-15-cron'"), exit);
  assert.ok(!exit.includes("postgresql-15:"), "only what is missing is named");
});

Deno.test("as root, it says what it installs and why before apt runs, then runs exactly that", () => {
  const missing = ["/usr/bin/pg_prove", "/usr/bin/chromium"];
  const m = machine({ missing, isRoot: true, installs: true });
  ensureSystemPackages({ forTests: true }, m.sys);
  assert.deepEqual(m.events.map((e) => e.split(":")[0]), ["log", "log", "run", "run"], m.events.join("\n"));
  assert.match(m.events[0], /npm test needs these Debian packages; installing them with apt/);
  assert.match(m.events[0], /libtap-parser-sourcehandler-pgtap-perl: pg_prove, which runs the pgTAP tests/);
  assert.match(m.events[0], /chromium: a headless browser for the dashboard test/);
  assert.equal(
    m.events[1],
    "log: [setup] running: apt-get update -qq && apt-get install -y -qq libtap-parser-sourcehandler-pgtap-perl chromium",
  );
  assert.deepEqual(m.events.slice(2), [
    "run: apt-get update -qq",
    "run: apt-get install -y -qq libtap-parser-sourcehandler-pgtap-perl chromium",
  ]);
});

Deno.test("as root, an install that leaves a package missing exits naming it and the command", () => {
  const m = machine({ missing: ["/usr/bin/chromium"], isRoot: true, installs: false });
  ensureSystemPackages({ forTests: true }, m.sys);
  assert.equal(
    m.events.at(-1),
    "exit: Installing chromium failed. Run:\n  apt-get update -qq && apt-get install -y -qq chromium",
  );
});

Deno.test("with everything installed, it says nothing and runs nothing", () => {
  const m = machine({ missing: [], isRoot: false });
  ensureSystemPackages({ forTests: true }, m.sys);
  assert.deepEqual(m.events, []);
});
