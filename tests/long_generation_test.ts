/**
 * Long generations (issue #13, item 5) against the gateway's idle limit: hosted Supabase answers 504 when a function
 * has not started its response within 150 s (supabase-platform.md §1.7), and the devstack gateway does the same
 * after DEVSTACK_GATEWAY_TIMEOUT_MS. A stack of this test's own runs with a 3 s limit and a provider that answers
 * after 5 s:
 *
 * - a sync tool-invoke gets the gateway's 504, yet its message completes and is stored, and a retry with the same
 *   Idempotency-Key answers 200 with it (the provider called once);
 * - the SDK's `call()` and `invokeAndWait()` and the CLI's `invoke` never meet the 504: they invoke asynchronously
 *   and wait for the outcome.
 */
import assert from "node:assert/strict";
import { mintUserToken } from "../devstack/keys.ts";
import { spawnStack, type StackProcess } from "../devstack/testing/stack_process.ts";
import { type BusClient, createBusClient } from "../client/mod.ts";
import { cli } from "./cli_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const GATEWAY_MS = 3000;
const PROVIDER_MS = 5000;

/** A prompt whose provider answers after PROVIDER_MS, counted under `tag`. */
const slowPrompt = (tag: string) =>
  `long generation ${crypto.randomUUID()} #standin ${JSON.stringify({ tag, latency_ms: PROVIDER_MS })}`;
const chatInput = (tag: string) => ({ messages: [{ role: "user", content: slowPrompt(tag) }] });

Deno.test("long generations past the gateway's idle limit are not lost; the SDK and the CLI never meet the 504", async (t) => {
  const log = (m: string) => console.log(`[long-generation] ${m}`);
  const stack: StackProcess = await spawnStack({
    root: ROOT,
    env: { DEVSTACK_GATEWAY_TIMEOUT_MS: String(GATEWAY_MS) },
    log,
  });
  const standin = new URL(stack.standinUrl).origin;
  const calls = async (tag: string) => (await (await fetch(`${standin}/__standin/calls?tag=${tag}`)).json()).count;
  const token = await mintUserToken(crypto.randomUUID(), stack.jwtSecret, { expiresInSeconds: 3600 });
  const bus: BusClient = createBusClient({ url: stack.apiUrl, key: stack.keys.anon, accessToken: token });
  let passed = false;
  try {
    await t.step(
      "a sync invoke gets the gateway's 504, completes anyway, and the same Idempotency-Key returns it",
      async () => {
        const tag = `long-sync-${crypto.randomUUID()}`;
        const key = `long-${crypto.randomUUID()}`;
        const invoke = () =>
          fetch(`${stack.apiUrl}/functions/v1/tool-invoke`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": key },
            body: JSON.stringify({ tool: "chat", mode: "sync", input: chatInput(tag) }),
          });
        const since = new Date(Date.now() - 1000);
        const started = performance.now();
        const first = await invoke();
        const waited = performance.now() - started;
        assert.equal(first.status, 504);
        assert.deepEqual(await first.json(), { code: 504, message: "Request idle timeout" });
        assert.ok(waited >= GATEWAY_MS - 100 && waited < PROVIDER_MS, `the gateway answered after ${waited} ms`);

        // The caller has no transaction id: its message is found among theirs, and completes once the provider answers.
        const deadline = Date.now() + 20_000;
        let meta;
        for (;;) {
          const { data } = await bus.throwOnError().list({ since });
          meta = data.find((m) => m.status !== "pending");
          if (meta || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.ok(meta, "the message completed");
        assert.equal(meta.status, "completed");
        assert.equal(meta.mode, "sync");
        assert.ok((meta.provider_ms ?? 0) >= PROVIDER_MS - 100, `provider_ms ${meta.provider_ms}`);
        const { data: payload } = await bus.throwOnError().fetch(meta.transaction_id);
        assert.equal(payload.checksum, meta.checksum, "stored and verified");

        const retried = performance.now();
        const again = await invoke();
        assert.equal(again.status, 200);
        assert.ok(performance.now() - retried < GATEWAY_MS, "answered from the stored message, not run again");
        const body = await again.json();
        assert.equal(body.transaction_id, meta.transaction_id);
        assert.equal(body.status, "completed");
        assert.equal(body.checksum, meta.checksum);
        assert.equal(await calls(tag), 1, "the provider was called once");
      },
    );

    await t.step(
      "the SDK's call() and invokeAndWait() and the CLI's invoke wait past the gateway's limit",
      async () => {
        const tags = { call: `long-call-${crypto.randomUUID()}`, wait: `long-wait-${crypto.randomUUID()}` };
        const cliTag = `long-cli-${crypto.randomUUID()}`;
        // The three at once: each takes the provider's 5 s, which is the point (and keeps the test short).
        const [called, waited, run] = await Promise.all([
          bus.call({ tool: "chat", input: chatInput(tags.call) }),
          bus.invokeAndWait({ tool: "chat", input: chatInput(tags.wait) }),
          cli(["invoke", "--prompt", slowPrompt(cliTag)], token, {
            SUPABASE_URL: stack.apiUrl,
            SUPABASE_ANON_KEY: stack.keys.anon,
          }),
        ]);
        assert.equal(called.error, null, JSON.stringify(called.error));
        assert.equal(called.data?.status, "completed");
        assert.ok((called.data?.payload.size ?? 0) > 0);
        assert.equal(waited.error, null, JSON.stringify(waited.error));
        assert.equal(waited.data?.status, "completed");
        assert.match(waited.data?.checksum ?? "", /^sha256:[0-9a-f]{64}$/);

        assert.equal(run.code, 0, run.err);
        const answer = JSON.parse(run.out);
        assert.equal(answer.status, "completed");
        const { data: meta } = await bus.throwOnError().meta(answer.transaction_id);
        assert.equal(meta.checksum, answer.checksum);
        assert.ok((meta.provider_ms ?? 0) >= PROVIDER_MS - 100, "the provider took longer than the gateway allows");
        for (const tag of [tags.call, tags.wait, cliTag]) assert.equal(await calls(tag), 1, `${tag}: called once`);
      },
    );
    passed = true;
  } finally {
    await bus.close();
    const stopped = await stack.stop();
    if (passed) await stack.cleanup();
    else log(`the stack's log is kept at ${stack.logPath}`);
    assert.ok(stopped.clean, `the stack stopped cleanly (code ${stopped.code})`);
  }
});
