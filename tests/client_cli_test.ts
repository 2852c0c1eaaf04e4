/**
 * The CLI (client/cli.ts) as a user runs it: `deno run -A client/cli.ts ...` in a subprocess against the local
 * stack, checking stdout, stderr and exit codes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { newUser, testStack } from "../devstack/testing/env.ts";
import { chat, tamperStoredPayload } from "../client/_stack_testing.ts";
import { CLI, cli, cliEnv, inherited, ROOT } from "./cli_helpers.ts";

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const prompt = (directive: Record<string, unknown>) =>
  (chat(directive).input.messages as Array<{ content: string }>)[0].content;

Deno.test("cli --help prints the usage and exits 0", async () => {
  const run = await cli(["--help"]);
  assert.equal(run.code, 0, run.err);
  assert.match(run.out, /^Usage: deno run -A client\/cli\.ts <command>/);
  for (const command of ["invoke", "fetch <id>", "meta <id>", "tail", "SUPABASE_URL", "BUS_ACCESS_TOKEN"]) {
    assert.ok(run.out.includes(command), `usage mentions ${command}`);
  }
});

Deno.test("cli reports bad usage with exit code 2", async () => {
  const { token } = await newUser();
  const cases: Array<[string[], string | undefined, RegExp]> = [
    [[], token, /Expected a command/],
    [["frobnicate"], token, /Unknown command "frobnicate"/],
    [["invoke"], token, /exactly one of --prompt and --input-json/],
    [["invoke", "--input-json", "{nope"], token, /--input-json is not valid JSON/],
    [["invoke", "--prompt", "hi", "--provider", "Open AI"], token, /--provider must be a provider name/],
    [["fetch"], token, /fetch expects exactly one transaction id/],
    [["meta", "x", "y"], token, /meta expects exactly one transaction id/],
    [["invoke", "--prompt", "hi", "--bogus"], token, /Unknown option '--bogus'/],
    [["invoke", "--prompt", "hi", "--stream", "--async", "--provider", "kimi"], token, /--stream and --async exclude/],
    [["invoke", "--prompt", "hi", "--stream"], token, /--stream needs --provider or --model/],
    [["invoke", "--prompt", "hi", "--stream", "--provider", "kimi", "--tool", "echo"], token, /chat tool only/],
    [["meta", crypto.randomUUID()], undefined, /Expected --token or BUS_ACCESS_TOKEN/],
  ];
  for (const [args, t, message] of cases) {
    const run = await cli(args, t);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.err}`);
    assert.match(run.err, message);
    assert.equal(run.out, "");
  }
});

Deno.test("cli invoke, fetch (stdout and --out) and meta round-trip a verified payload", async () => {
  const { token } = await newUser();
  const invoked = await cli(
    ["invoke", "--prompt", prompt({ bytes: 4096 }), "--provider", "kimi", "--model", "m-1"],
    token,
  );
  assert.equal(invoked.code, 0, invoked.err);
  const answer = JSON.parse(invoked.out);
  assert.equal(answer.status, "completed");
  assert.equal(answer.model, "m-1");
  assert.equal(answer.payload_size_bytes, 4096);

  const fetched = await cli(["fetch", answer.transaction_id], token);
  assert.equal(fetched.code, 0, fetched.err);
  assert.equal(fetched.stdout.length, 4096);
  assert.equal(sha256(fetched.stdout), answer.checksum);

  const dir = await Deno.makeTempDir({ prefix: "bus-cli-test-" });
  try {
    const out = `${dir}/payload.json`;
    const toFile = await cli(["fetch", answer.transaction_id, "--out", out], token);
    assert.equal(toFile.code, 0, toFile.err);
    assert.equal(toFile.out, "");
    assert.equal(sha256(await Deno.readFile(out)), answer.checksum);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  const meta = await cli(["meta", answer.transaction_id], token);
  assert.equal(meta.code, 0, meta.err);
  assert.equal(JSON.parse(meta.out).checksum, answer.checksum);
  // invoke started it asynchronously and waited (never a request open while the provider works: no gateway 504).
  assert.equal(JSON.parse(meta.out).mode, "async");
  assert.deepEqual(Object.keys(answer).sort(), [
    "checksum",
    "expires_at",
    "finish_reason",
    "model",
    "payload_size_bytes",
    "provider",
    "status",
    "transaction_id",
  ]);
  assert.ok(JSON.parse(meta.out).retrieved_count >= 2);
});

Deno.test("cli invoke --async --idempotency-key answers pending, and the same key the same transaction", async () => {
  const { token } = await newUser();
  const key = `cli-${crypto.randomUUID()}`;
  const input = JSON.stringify({ messages: [{ role: "user", content: prompt({ latency_ms: 500 }) }] });
  const first = await cli(["invoke", "--input-json", input, "--async", "--idempotency-key", key], token);
  assert.equal(first.code, 0, first.err);
  assert.equal(JSON.parse(first.out).status, "pending");
  const again = await cli(["invoke", "--input-json", input, "--async", "--idempotency-key", key], token);
  assert.equal(again.code, 0, again.err);
  assert.equal(JSON.parse(again.out).transaction_id, JSON.parse(first.out).transaction_id);
});

Deno.test("cli fetch of a tampered payload exits 1 with checksum_mismatch and writes nothing", async () => {
  const { token } = await newUser();
  const answer = JSON.parse((await cli(["invoke", "--prompt", prompt({ bytes: 2000 })], token)).out);
  await tamperStoredPayload(answer.transaction_id);
  const dir = await Deno.makeTempDir({ prefix: "bus-cli-test-" });
  try {
    for (const args of [["fetch", answer.transaction_id], ["fetch", answer.transaction_id, "--out", `${dir}/p`]]) {
      const run = await cli(args, token);
      assert.equal(run.code, 1, run.err);
      assert.equal(run.stdout.length, 0);
      assert.equal(JSON.parse(run.err).error.code, "checksum_mismatch");
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no file (and no .partial) is left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli meta of someone else's message exits 1 with not_found", async () => {
  const [alice, bob] = [await newUser(), await newUser()];
  const answer = JSON.parse((await cli(["invoke", "--prompt", prompt({})], alice.token)).out);
  const run = await cli(["meta", answer.transaction_id], bob.token);
  assert.equal(run.code, 1);
  assert.equal(JSON.parse(run.err).error.code, "not_found");
  assert.equal(JSON.parse(run.err).error.status, 404);
});

Deno.test("cli tail prints the caller's live events as JSON lines", async () => {
  const user = await newUser();
  const stack = testStack();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "tail", "--count", "2"],
    cwd: ROOT,
    env: {
      ...inherited(),
      SUPABASE_URL: stack.url,
      BUS_ACCESS_TOKEN: user.token,
      NO_COLOR: "1",
      DENO_NO_PACKAGE_JSON: "1", // as cli() runs it: without it Deno resolves package.json and downloads packages
    },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let err = "";
    while (!err.includes("tail: listening")) {
      const { value, done } = await stderr.read();
      if (done) throw new Error(`tail ended before listening: ${err}`);
      err += value;
    }
    const invoked = await cli(["invoke", "--prompt", prompt({ bytes: 100 })], user.token);
    const id = JSON.parse(invoked.out).transaction_id;
    const drain = (async () => {
      for (let r = await stderr.read(); !r.done; r = await stderr.read()) err += r.value;
    })();
    const [out, status] = await Promise.all([new Response(child.stdout).text(), child.status, drain]);
    assert.equal(status.code, 0, err);
    const lines = out.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((e) => [e.type, e.transaction_id, e.status]), [
      ["message", id, "pending"],
      ["message", id, "completed"],
    ]);
  } finally {
    clearTimeout(timer);
  }
});

/** The JSON line at the end of stderr. */
const lastJsonLine = (err: string) => JSON.parse(err.trim().split("\n").at(-1)!);

Deno.test("cli invoke --stream prints the content to stdout as it arrives, reasoning to stderr, and the verification at the end", async () => {
  const { token } = await newUser();
  const run = await cli(["invoke", "--stream", "--provider", "kimi", "--prompt", prompt({ reasoning: true })], token);
  assert.equal(run.code, 0, run.err);
  const summary = lastJsonLine(run.err);
  assert.equal(summary.verified, true);
  assert.equal(summary.finish_reason, "stop");
  assert.match(summary.transaction_id, /^[0-9a-f-]{36}$/);

  // stdout is exactly the stored stream's content; stderr holds its reasoning.
  const fetched = await cli(["fetch", summary.transaction_id], token);
  assert.equal(fetched.code, 0, fetched.err);
  assert.equal(sha256(fetched.stdout), summary.checksum);
  assert.equal(fetched.stdout.length, summary.size_bytes);
  const deltas = new TextDecoder().decode(fetched.stdout).split("\n\n").filter((e) => e.startsWith("data: {"))
    .map((e) => JSON.parse(e.slice(6)).choices[0]?.delta ?? {});
  const content = deltas.map((d) => d.content ?? "").join("");
  const reasoning = deltas.map((d) => d.reasoning_content ?? "").join("");
  assert.ok(content.length > 0 && reasoning.length > 0);
  assert.equal(run.out, content);
  assert.ok(run.err.startsWith(reasoning), "reasoning first on stderr");
});

Deno.test("cli invoke --stream prints the assembled tool calls in its summary", async () => {
  const { token } = await newUser();
  const run = await cli([
    "invoke",
    "--stream",
    "--provider",
    "kimi",
    "--prompt",
    prompt({ finish_reason: "tool_calls", omit_tool_index: true }),
  ], token);
  assert.equal(run.code, 0, run.err);
  const summary = lastJsonLine(run.err);
  assert.equal(summary.finish_reason, "tool_calls");
  assert.equal(summary.tool_calls.length, 1);
  assert.equal(summary.tool_calls[0].name, "lookup");
  assert.equal(typeof JSON.parse(summary.tool_calls[0].arguments), "object");
});

Deno.test("cli invoke --stream of a cut stream exits 1 naming the transaction, never verified", async () => {
  const { token } = await newUser();
  const run = await cli([
    "invoke",
    "--stream",
    "--provider",
    "kimi",
    "--prompt",
    prompt({ cut_after_bytes: 600, bytes: 4096 }),
  ], token);
  assert.equal(run.code, 1, run.err);
  const { error } = lastJsonLine(run.err);
  assert.equal(error.code, "stream_incomplete");
  assert.equal(error.name, "BusStreamError");
  assert.match(error.transaction_id, /^[0-9a-f-]{36}$/);
  assert.equal(error.details.partial_verified, true);
  assert.ok(!run.err.includes('"verified":true'));
  const meta = await cli(["meta", error.transaction_id], token);
  assert.equal(JSON.parse(meta.out).status, "failed");
});

Deno.test("cli invoke --stream writes each token as it arrives, not at the end", async () => {
  const { token } = await newUser();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "invoke", "--stream", "--provider", "kimi", "--prompt", prompt({ event_delay_ms: 200 })],
    cwd: ROOT,
    env: cliEnv(token),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const stdout = child.stdout.getReader();
    const first = await stdout.read();
    const firstAt = performance.now();
    assert.ok(!first.done && first.value.length > 0);
    let rest = 0;
    for (let r = await stdout.read(); !r.done; r = await stdout.read()) rest += r.value.length;
    const [status, err] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assert.equal(status.code, 0, err);
    assert.ok(rest > 0, "more tokens came after the first");
    assert.ok(performance.now() - firstAt >= 1000, "the first token was printed while the stream still ran");
  } finally {
    clearTimeout(timer);
  }
});
