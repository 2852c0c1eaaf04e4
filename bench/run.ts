/**
 * `npm run bench [-- name...]`: runs the benchmarks one after another (each starts its own stack) and leaves their
 * results in bench/RESULTS.md and bench/results/*.json. Names: claim-check, realtime, cleanup, hardening, mcp,
 * files, ops, streaming, invoke, faults (default: all). Options (`--name value`) go to every benchmark, e.g.
 * `--before <rev>` for hardening.
 */
const BENCHES: Record<string, string> = {
  "claim-check": "bench/claim_check_bench.ts",
  realtime: "bench/realtime_bench.ts",
  cleanup: "bench/cleanup_bench.ts",
  hardening: "bench/hardening_bench.ts",
  mcp: "bench/mcp_bench.ts",
  files: "bench/files_bench.ts",
  ops: "bench/ops_bench.ts",
  streaming: "bench/streaming_bench.ts",
  invoke: "bench/invoke_bench.ts",
  faults: "bench/faults_bench.ts",
};

const names = Deno.args.filter((a, i) => !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--"));
const options = Deno.args.filter((a) => !names.includes(a));
const chosen = names.length ? names : Object.keys(BENCHES);
let failed = 0;
for (const name of chosen) {
  const file = BENCHES[name];
  if (!file) {
    console.error(`Unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
  try {
    await Deno.stat(new URL(`../${file}`, import.meta.url));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    console.error(`${name}: ${file} does not exist yet`);
    failed++;
    continue;
  }
  console.error(`\n=== benchmark ${name} ===`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file, ...options],
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (code !== 0) failed++;
}
Deno.exit(failed ? 1 : 0);
