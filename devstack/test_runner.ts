/**
 * `npm test`: static checks, then a fresh local stack (new cluster in a temporary folder, free ports), then every
 * suite against it — Deno tests (unit and integration), pgTAP through pg_prove, browser tests under Node — and a
 * one-line summary. Exits 0 only when everything passed.
 *
 * Usage: npm test [-- <deno test filter paths...>]   (paths limit the Deno suite; other suites then skip)
 */
import { resolve } from "node:path";
import { spawnStack, type StackProcess } from "./testing/stack_process.ts";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const DENO = Deno.execPath();
const only = Deno.args.filter((a) => !a.startsWith("-"));
const onlyBrowser = only.filter((a) => a.endsWith(".mjs"));
const onlyDeno = only.filter((a) => !a.endsWith(".mjs"));
const results: Array<{ suite: string; passed: number; failed: number; ok: boolean }> = [];

function heading(text: string) {
  console.log(`\n=== ${text} ===`);
}

async function runStep(
  suite: string,
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  count?: (out: string) => { passed: number; failed: number },
): Promise<boolean> {
  heading(suite);
  const child = new Deno.Command(cmd, { args, cwd: ROOT, env, stdout: "piped", stderr: "inherit" }).spawn();
  let out = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const text = decoder.decode(chunk, { stream: true });
    out += text;
    await Deno.stdout.write(chunk);
  }
  const { success } = await child.status;
  // deno-lint-ignore no-control-regex -- strips the colour codes of the test runners' output
  const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
  const counts = count ? count(plain) : { passed: success ? 1 : 0, failed: success ? 0 : 1 };
  results.push({ suite, ...counts, ok: success });
  return success;
}

const denoCounts = (out: string) => {
  const m = /(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(out);
  return m ? { passed: Number(m[1]), failed: Number(m[2]) } : { passed: 0, failed: 1 };
};
const proveCounts = (out: string) => {
  const total = /Tests=(\d+)/.exec(out);
  const failedLines = [...out.matchAll(/Failed (\d+)\/(\d+) subtests/g)].reduce((n, m) => n + Number(m[1]), 0);
  return total ? { passed: Number(total[1]) - failedLines, failed: failedLines } : { passed: 0, failed: 1 };
};
const nodeCounts = (out: string) => {
  const pass = /# pass (\d+)/.exec(out);
  const fail = /# fail (\d+)/.exec(out);
  return pass ? { passed: Number(pass[1]), failed: Number(fail?.[1] ?? 0) } : { passed: 0, failed: 1 };
};

/**
 * Settings of the test stack beyond spawnStack's: short breaker and queue timeouts and retry pauses, so routing tests
 * (tests/routing_test.ts) see a route reopen and a queue give up within seconds, a stalled stream end within 1.5 s
 * (tests/openai_test.ts), and a third provider with a concurrency limit.
 */
const TEST_STACK_ENV = {
  CIRCUIT_BREAKER_TIMEOUT_SECS: "3",
  PROVIDER_QUEUE_TIMEOUT_MS: "3000",
  PROVIDER_RETRY_BASE_MS: "50",
  PROVIDER_STREAM_IDLE_MS: "1500",
  MESSAGE_BUS_PROVIDERS: "kimi,glm,limited",
  LIMITED_MAX_CONCURRENCY: "2",
  LIMITED_MODEL: "limited-model",
};

const tsDirs = ["devstack", "supabase/functions", "client", "bench", "tests"].filter((d) => exists(`${ROOT}/${d}`));

let stack: StackProcess | undefined;
try {
  if (only.length === 0) {
    await runStep("format (deno fmt --check)", DENO, ["fmt", "--check"]);
    await runStep("lint (deno lint)", DENO, ["lint"]);
    await runStep("type check (deno check)", DENO, ["check", ...tsDirs]);
  }

  heading("starting a fresh local stack");
  stack = await spawnStack({ root: ROOT, log: (m) => console.log(m), env: TEST_STACK_ENV });
  console.log(`stack up: ${stack.apiUrl} (db ${stack.dbUrl})`);
  const env = stack.testEnv();

  const testPaths = only.length ? onlyDeno : tsDirs;
  if (testPaths.length) {
    await runStep("deno test", DENO, ["test", "-A", "--no-check=remote", ...testPaths], env, denoCounts);
  }

  if (only.length === 0) {
    const pgEnv = {
      PGHOST: "127.0.0.1",
      PGPORT: String(stack.dbPort),
      PGUSER: "postgres",
      PGPASSWORD: "postgres",
      PGDATABASE: "postgres",
    };
    // What `supabase test db` does first (supabase-platform.md §6).
    await runStep("pgTAP setup", "psql", [
      "-v",
      "ON_ERROR_STOP=1",
      "-qc",
      "create extension if not exists pgtap with schema extensions",
    ], pgEnv);
    await runStep(
      "pgTAP (pg_prove supabase/tests)",
      "pg_prove",
      ["--ext", ".sql", "-r", "supabase/tests"],
      pgEnv,
      proveCounts,
    );
  }
  const browserTests = only.length ? onlyBrowser : listFiles(`${ROOT}/tests/browser`, ".test.mjs");
  if (browserTests.length) {
    await runStep("browser tests (node --test)", "node", ["--test", ...browserTests], {
      ...env,
      PATH: Deno.env.get("PATH") ?? "",
    }, nodeCounts);
  }
} catch (err) {
  console.error(`\n${err instanceof Error ? err.stack : err}`);
  results.push({ suite: "test runner", passed: 0, failed: 1, ok: false });
} finally {
  if (stack) {
    const stopped = await stack.stop();
    if (!stopped.clean) results.push({ suite: "stack shutdown", passed: 0, failed: 1, ok: false });
    if (!results.every((r) => r.ok)) console.log(`\nstack log: ${stack.logPath}`);
    else await stack.cleanup();
  }
}

heading("summary");
for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.suite}: ${r.passed} passed, ${r.failed} failed`);
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const ok = results.every((r) => r.ok);
console.log(`\nnpm test: ${passed} passed, ${failed} failed`);
Deno.exit(ok ? 0 : 1);

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function listFiles(dir: string, suffix: string): string[] {
  if (!exists(dir)) return [];
  return [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(suffix)).map((e) => `${dir}/${e.name}`)
    .sort();
}
