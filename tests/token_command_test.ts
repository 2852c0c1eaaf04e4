/**
 * `npm run -s token` and `npm run cli` as a user runs them: only the token on stdout, signed with JWT_SECRET from
 * the environment, with exp; bad usage exits 2 and prints nothing on stdout; the token works with the CLI against
 * the running stack.
 */
import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { testStack } from "../devstack/testing/env.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "a-test-secret-that-is-not-the-default-one-0123456789";

interface Run {
  code: number;
  out: string;
  err: string;
}

async function npm(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<Run> {
  const keep = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME"].flatMap((n) => {
    const v = Deno.env.get(n);
    return v ? [[n, v]] : [];
  });
  const { code, stdout, stderr } = await new Deno.Command("npm", {
    args,
    cwd,
    env: { ...Object.fromEntries(keep), NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

const verify = async (token: string, secret = SECRET) =>
  (await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ["HS256"] })).payload;

Deno.test("npm run -s token prints only a user token signed with JWT_SECRET from the environment", async () => {
  const sub = crypto.randomUUID();
  const before = Math.floor(Date.now() / 1000);
  const run = await npm(["run", "-s", "token", "--", sub], { JWT_SECRET: SECRET });
  assert.equal(run.code, 0, run.err);
  assert.match(run.out, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, "stdout is the token and a newline, nothing else");
  const claims = await verify(run.out.trim());
  assert.equal(claims.sub, sub);
  assert.equal(claims.role, "authenticated");
  assert.equal(claims.aud, "authenticated");
  assert.equal(typeof claims.exp, "number");
  assert.ok(claims.exp! >= before + 3600 && claims.exp! <= before + 3600 + 30, `exp ${claims.exp} is in an hour`);
  await assert.rejects(verify(run.out.trim(), "another-secret-of-at-least-thirty-two-characters"));
});

Deno.test("npm run -s token --expires-in sets the lifetime", async () => {
  const before = Math.floor(Date.now() / 1000);
  const run = await npm(["run", "-s", "token", "--", crypto.randomUUID(), "--expires-in", "120"], {
    JWT_SECRET: SECRET,
  });
  assert.equal(run.code, 0, run.err);
  const { exp } = await verify(run.out.trim());
  assert.ok(exp! >= before + 120 && exp! <= before + 150, `exp ${exp} is in two minutes`);
});

Deno.test("npm run -s token without a uuid makes a random user and says so on stderr", async () => {
  const run = await npm(["run", "-s", "token"], { JWT_SECRET: SECRET });
  assert.equal(run.code, 0, run.err);
  const { sub } = await verify(run.out.trim());
  assert.match(String(sub), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(run.err.includes(`random user ${sub}`), run.err);
});

Deno.test("npm run -s token refuses a malformed uuid or lifetime with exit code 2 and nothing on stdout", async () => {
  for (
    const args of [["not-a-uuid"], ["7b0c2a34-1c3e-4b5e-9d3a-0c1f2e3d4a5"], [crypto.randomUUID(), "--expires-in", "x"]]
  ) {
    const run = await npm(["run", "-s", "token", "--", ...args], { JWT_SECRET: SECRET });
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.err}`);
    assert.equal(run.out, "");
    assert.match(run.err, /^error: /);
  }
});

Deno.test("npm run -s token refuses a JWT_SECRET shorter than 32 characters (exit 1)", async () => {
  const run = await npm(["run", "-s", "token", "--", crypto.randomUUID()], { JWT_SECRET: "short" });
  assert.equal(run.code, 1);
  assert.equal(run.out, "");
  assert.match(run.err, /JWT_SECRET must be at least 32 characters/);
});

Deno.test("npm run cli works with a token from npm run token, run from any folder", async () => {
  const stack = testStack();
  const token = (await npm(["run", "-s", "token", "--", crypto.randomUUID()], { JWT_SECRET: stack.jwtSecret }))
    .out.trim();
  const env = { SUPABASE_URL: stack.url, BUS_ACCESS_TOKEN: token };
  const elsewhere = await Deno.makeTempDir();
  const cli = (...args: string[]) => npm(["--prefix", ROOT, "run", "-s", "cli", "--", ...args], env, elsewhere);
  try {
    const invoked = await cli("invoke", "--prompt", "hello from npm run cli");
    assert.equal(invoked.code, 0, invoked.err);
    const { transaction_id, status, checksum } = JSON.parse(invoked.out);
    assert.equal(status, "completed");
    const listed = await cli("list");
    assert.equal(listed.code, 0, listed.err);
    assert.deepEqual(JSON.parse(listed.out).messages.map((m: { transaction_id: string }) => m.transaction_id), [
      transaction_id,
    ]);
    // A relative --out is relative to the folder npm was run in, not to the repository.
    const fetched = await cli("fetch", transaction_id, "--out", "answer.json");
    assert.equal(fetched.code, 0, fetched.err);
    const bytes = await Deno.readFile(`${elsewhere}/answer.json`);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    assert.equal(`sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`, checksum);
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});
