/**
 * Hardening benchmark (issue "Hardening"), before and after in one run: a stack of the code before the issue
 * (a git worktree of `--before <rev>`, default the last commit before it) and a stack of this checkout, side by
 * side on the same machine.
 * - Peak memory (RSS) of each stack process while 8 clients send a 90 MB invoke each at once, and what they got.
 * - Added p50/p99 of a 1 KB sync invoke over a direct call to the stand-in provider, interleaved across the two
 *   stacks (direct, before, after) so both see the same machine.
 *
 * Run: npm run bench -- hardening [--before <rev>]
 */
import { resolve } from "node:path";
import { freePort, spawnStack, type StackProcess } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { rssBytes } from "./proc.ts";
import { ms, quantile, writeResults } from "./results.ts";
import { git, worktreeOf } from "./worktree.ts";

const ROOT = resolve(new URL("..", import.meta.url).pathname);
const MB = 1024 * 1024;
const log = (m: string) => console.error(`[bench] ${m}`);
const argAt = Deno.args.indexOf("--before");
const BEFORE = argAt >= 0 ? Deno.args[argAt + 1] : "7ffe674";

function chatBody(content: string) {
  return JSON.stringify({ tool: "chat", model: "bench-model", input: { messages: [{ role: "user", content }] } });
}

async function invoke(stack: StackProcess, token: string, body: string): Promise<number> {
  const res = await fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body,
  });
  await res.body?.cancel();
  return res.status;
}

/** 8 concurrent 90 MB invokes; the stack's peak RSS (sampled every 5 ms) and the statuses. */
async function memory(stack: StackProcess, token: string) {
  const content = "x".repeat(90 * MB - 200) + ` #standin {"content":"ok"}`;
  const body = chatBody(content);
  const before = rssBytes(stack.pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(stack.pid))), 5);
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: 8 }, () => invoke(stack, token, body)));
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, rssBytes(stack.pid));
  const counts: Record<string, number> = {};
  for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
  return {
    rss_before_mb: before / MB,
    peak_rss_mb: peak / MB,
    growth_mb: (peak - before) / MB,
    statuses: counts,
    seconds,
  };
}

/** The provider stand-in in a process of its own, so that its memory is not the stack's. */
async function spawnStandin(): Promise<{ url: string; child: Deno.ChildProcess }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "devstack/provider/server.ts"],
    cwd: ROOT,
    env: { PROVIDER_STANDIN_PORT: String(port), DENO_NO_PACKAGE_JSON: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  if ((await reader.read()).done) throw new Error("the stand-in exited before it was ready");
  reader.releaseLock();
  child.stdout.pipeTo(new WritableStream()).catch((err) => log(`stand-in output: ${err}`));
  return { url: `http://127.0.0.1:${port}/v1`, child };
}

async function main() {
  const before = await worktreeOf(BEFORE);
  const rev = await git("rev-parse", "--short", "HEAD");
  const stacks: StackProcess[] = [];
  const standin = await spawnStandin();
  try {
    log(`starting the stack of ${BEFORE} (before) and of ${rev} (after)`);
    const env = { DEVSTACK_PG_FAST: "0", KIMI_API_KEY: "bench-key", KIMI_BASE_URL: standin.url };
    const old = await spawnStack({ root: before.dir, log, env });
    stacks.push(old);
    const now = await spawnStack({ root: ROOT, log, env });
    stacks.push(now);
    const user = crypto.randomUUID();
    const tokenOld = await mintUserToken(user, old.jwtSecret, { expiresInSeconds: 7200 });
    const tokenNew = await mintUserToken(user, now.jwtSecret, { expiresInSeconds: 7200 });

    // --- 1 KB invoke overhead, interleaved: direct, before, after ---
    const small = (i: number) => chatBody(`bench ${i} ${"y".repeat(900)} #standin {"bytes":1024}`);
    const direct = async (i: number) => {
      const res = await fetch(`${standin.url}/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer k", "content-type": "application/json" },
        body: JSON.stringify({ model: "bench-model", ...JSON.parse(small(i)).input }),
      });
      await res.body?.cancel();
    };
    const time = async (fn: () => Promise<unknown>) => {
      const t = performance.now();
      await fn();
      return performance.now() - t;
    };
    for (let i = 0; i < 300; i++) {
      await direct(i);
      await invoke(old, tokenOld, small(i));
      await invoke(now, tokenNew, small(i));
    }
    const rounds: Array<{ direct: number[]; before: number[]; after: number[] }> = [];
    for (let r = 0; r < 5; r++) {
      const round = { direct: [] as number[], before: [] as number[], after: [] as number[] };
      for (let i = 0; i < 100; i++) {
        const n = 1000 + r * 100 + i;
        round.direct.push(await time(() => direct(n)));
        round.before.push(await time(() => invoke(old, tokenOld, small(n))));
        round.after.push(await time(() => invoke(now, tokenNew, small(n))));
      }
      rounds.push(round);
      log(
        `round ${r}: direct ${quantile(round.direct, 0.5).toFixed(2)}, before ${
          quantile(round.before, 0.5).toFixed(2)
        }, after ${quantile(round.after, 0.5).toFixed(2)} ms`,
      );
    }
    const added = (k: "before" | "after") =>
      quantile(rounds.map((r) => quantile(r[k], 0.5) - quantile(r.direct, 0.5)), 0.5);
    const all = (k: "direct" | "before" | "after") => rounds.flatMap((r) => r[k]);
    const overhead = {
      direct_p50_ms: quantile(all("direct"), 0.5),
      before_p50_ms: quantile(all("before"), 0.5),
      after_p50_ms: quantile(all("after"), 0.5),
      added_p50_before_ms: added("before"),
      added_p50_after_ms: added("after"),
      added_p99_before_ms: quantile(all("before"), 0.99) - quantile(all("direct"), 0.99),
      added_p99_after_ms: quantile(all("after"), 0.99) - quantile(all("direct"), 0.99),
    };
    log(`overhead: ${JSON.stringify(overhead)}`);

    // --- memory: 8 × 90 MB at once, one stack at a time ---
    const memBefore = await memory(old, tokenOld);
    log(`memory before: ${JSON.stringify(memBefore)}`);
    const memAfter = await memory(now, tokenNew);
    log(`memory after: ${JSON.stringify(memAfter)}`);

    const f = (v: number) => v.toFixed(0);
    const md = `## Hardening: memory under large bodies, and the invoke overhead before and after

Run ${new Date().toISOString()}: the stack of \`${BEFORE}\` (before the hardening issue) and of \`${rev}\` (after),
both running on this machine at once, Postgres with fsync on, the provider stand-in in a process of its own (its
memory is not counted); the client, both stacks, both Postgres clusters and the stand-in share
${navigator.hardwareConcurrency} cores.

### 8 concurrent invokes of 90 MB each

| stack | RSS before | peak RSS | growth | answers | time |
| --- | --- | --- | --- | --- | --- |
| before (\`${BEFORE}\`) | ${f(memBefore.rss_before_mb)} MB | **${f(memBefore.peak_rss_mb)} MB** | ${
      f(memBefore.growth_mb)
    } MB | ${JSON.stringify(memBefore.statuses)} | ${memBefore.seconds.toFixed(1)} s |
| after (\`${rev}\`) | ${f(memAfter.rss_before_mb)} MB | **${f(memAfter.peak_rss_mb)} MB** | ${
      f(memAfter.growth_mb)
    } MB | ${JSON.stringify(memAfter.statuses)} | ${memAfter.seconds.toFixed(1)} s |

Target: peak ≤ 400 MB for the stack process. After: a body is held once (the door's buffer; the prompt goes to
the provider as those bytes, spliced, never decoded into a string or serialised again), and an instance holds at
most MESSAGE_BUS_BODY_BUDGET_MB (128) of bodies at once: the others are answered 503 with Retry-After at once.

### 1 KB sync invoke, added over a direct call (5 rounds of 100 interleaved triples after 300 warm-up triples)

| | p50 | p99 |
| --- | --- | --- |
| direct call to the stand-in | ${ms(overhead.direct_p50_ms)} | |
| added, before | ${ms(overhead.added_p50_before_ms)} | ${ms(overhead.added_p99_before_ms)} |
| added, after | ${ms(overhead.added_p50_after_ms)} | ${ms(overhead.added_p99_after_ms)} |
`;
    await writeResults("hardening", md, { before: BEFORE, after: rev, overhead, memBefore, memAfter, rounds });
    log("wrote bench/RESULTS.md (section hardening)");
  } finally {
    for (const s of stacks) {
      const stopped = await s.stop();
      if (stopped.clean) await s.cleanup();
    }
    await before.remove();
    standin.child.kill("SIGTERM");
    await standin.child.status;
  }
}

await main();
