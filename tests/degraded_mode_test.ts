/**
 * The database goes away under running functions (issue "Provider routing", item 8): on a stack of its own,
 * Postgres is stopped as a crash stops it (immediate shutdown), and the stack restarts it after a pause
 * (DEVSTACK_PG_RESTART_DELAY_MS). Meanwhile the bus answers 503 bus_unavailable at once, never hangs, and with
 * MESSAGE_BUS_INLINE_FALLBACK=true a sync invoke is answered inline, unstored, with its checksum. Afterwards the
 * bus works as before.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import postgres from "postgres";
import { spawnStack, type StackProcess } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const log = (m: string) => console.log(`[degraded] ${m}`);

/** Stops the stack's Postgres as a crash would (SIGQUIT: immediate shutdown, crash recovery on the restart). */
async function crashPostgres(stack: StackProcess): Promise<void> {
  const sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} });
  const [{ setting }] = await sql<{ setting: string }[]>`select current_setting('data_directory') as setting`;
  await sql.end();
  const pid = Number((await Deno.readTextFile(`${setting}/postmaster.pid`)).split("\n")[0]);
  Deno.kill(pid, "SIGQUIT");
}

function invoke(stack: StackProcess, token: string, mode: "sync" | "async") {
  return fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ tool: "chat", mode, input: { messages: [{ role: "user", content: "degraded?" }] } }),
  });
}

async function waitUntilHealthy(stack: StackProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${stack.apiUrl}/functions/v1/tool-invoke/health`, {
      headers: { authorization: `Bearer ${stack.keys.anon}` },
    });
    await res.body?.cancel();
    if (res.status === 200) return;
    assert.ok(Date.now() < deadline, "the bus did not come back within 30 s of Postgres");
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("Postgres down under the running functions: 503 bus_unavailable at once; inline answers only when enabled; recovery", async () => {
  const env = { DEVSTACK_PG_RESTART_DELAY_MS: "5000", MESSAGE_BUS_INLINE_FALLBACK: "false" };
  let stack: StackProcess | undefined = await spawnStack({ root: ROOT, env, log });
  const dataDir = stack.testEnv().DEVSTACK_DATA_DIR;
  let passed = false;
  try {
    const token = await mintUserToken(crypto.randomUUID(), stack.jwtSecret, { expiresInSeconds: 3600 });
    assert.equal((await invoke(stack, token, "sync")).status, 200);

    // Off (the default): nothing is answered without the database, and quickly.
    await crashPostgres(stack);
    await new Promise((r) => setTimeout(r, 300));
    for (const mode of ["sync", "async"] as const) {
      const started = performance.now();
      const res = await invoke(stack, token, mode);
      const body = await res.json();
      assert.equal(res.status, 503, `${mode}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, "bus_unavailable");
      assert.ok(Number(res.headers.get("retry-after")) > 0);
      assert.ok(performance.now() - started < 2_000, `${mode}: answered at once, not after a hang`);
    }
    const list = await fetch(`${stack.apiUrl}/functions/v1/message-fetch`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(list.status, 503);
    assert.equal((await list.json()).error.code, "bus_unavailable");
    await waitUntilHealthy(stack);
    assert.equal((await invoke(stack, token, "sync")).status, 200, "the bus works again once Postgres is back");
    await stack.stop();
    stack = undefined;

    // On: a sync invoke is answered inline, unstored, with its checksum; async still cannot be.
    stack = await spawnStack({ root: ROOT, env: { ...env, MESSAGE_BUS_INLINE_FALLBACK: "true" }, log, dataDir });
    const token2 = await mintUserToken(crypto.randomUUID(), stack.jwtSecret, { expiresInSeconds: 3600 });
    await crashPostgres(stack);
    await new Promise((r) => setTimeout(r, 300));
    const inline = await invoke(stack, token2, "sync");
    const bytes = new Uint8Array(await inline.arrayBuffer());
    assert.equal(inline.status, 200);
    assert.equal(inline.headers.get("x-bus-degraded"), "unstored");
    assert.equal(inline.headers.get("x-bus-checksum"), `sha256:${createHash("sha256").update(bytes).digest("hex")}`);
    assert.equal(JSON.parse(new TextDecoder().decode(bytes)).object, "chat.completion", "the provider's own body");
    const asyncRes = await invoke(stack, token2, "async");
    assert.equal(asyncRes.status, 503);
    await asyncRes.body?.cancel();
    await waitUntilHealthy(stack);
    const stored = await invoke(stack, token2, "sync");
    assert.equal(stored.status, 200);
    assert.equal(stored.headers.get("x-bus-degraded"), null, "stored normally again");
    assert.equal((await stored.json()).status, "completed");
    passed = true;
  } finally {
    if (stack) {
      const stopped = await stack.stop();
      if (stopped.clean && passed) await stack.cleanup();
      else console.log(`stack log kept: ${stack.logPath}`);
    }
  }
});
