/**
 * runMessage against the real database and the provider stand-in: a call that outlives its lease's length is never
 * reaped while its worker renews the lease, and a failure whose recording fails is still answered in the
 * contract's shape with the transaction id.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { parseSettings } from "../env.ts";
import { BusError } from "../errors.ts";
import { toolNamed } from "../tools/registry.ts";
import { recordMessage } from "./record.ts";
import { runMessage } from "./run.ts";
import type { ProviderConfig } from "../providers/config.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
const STANDIN = Deno.env.get("PROVIDER_STANDIN_URL");
const ready = DB_URL !== undefined && STANDIN !== undefined;
const enc = new TextEncoder();

function standinProvider(): ProviderConfig {
  return { name: "kimi", baseURL: STANDIN!, apiKey: "k", defaultModel: "m", fallbacks: [], files: "extract" };
}

function chatInput(directive: Record<string, unknown>) {
  return {
    messages: [{ role: "user", content: `run test ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}` }],
  };
}

Deno.test({
  name: "runMessage() keeps its lease while a call runs longer than the lease: the reaper leaves it, it completes",
  ignore: !ready,
  async fn() {
    const sql = postgres(DB_URL!, { prepare: false, max: 3, onnotice: () => {} });
    const owner = crypto.randomUUID();
    // A 5 s lease renewed every 5/3 s; the provider takes 7 s.
    const settings = parseSettings({
      ...Deno.env.toObject(),
      MESSAGE_BUS_LEASE_SECS: "5",
      DB_ACQUIRE_TIMEOUT_MS: "1000",
    });
    try {
      const input = chatInput({ latency_ms: 7_000 });
      const request = enc.encode(JSON.stringify({ tool: "chat", input }));
      const { transactionId } = await recordMessage(sql, {
        owner,
        tool: "chat",
        provider: "kimi",
        model: "m",
        ttlSeconds: 600,
        metadata: {},
        mode: "async",
        request,
        leaseSeconds: 5,
        maxRequestBytes: 1 << 20,
      });
      const running = runMessage({
        sql,
        transactionId,
        run: 1,
        tool: toolNamed("chat")!,
        input,
        inputJson: enc.encode(JSON.stringify(input)),
        routes: [{ provider: standinProvider(), model: "m" }],
        primary: { state: "closed", slot: null },
        settings,
      });
      // Past the lease's first length: without renewals it would have run out by now.
      await new Promise((r) => setTimeout(r, 6_000));
      const [{ reaped }] = await sql<{ reaped: string }[]>`select bus.reap_pending('15 minutes', 1000) as reaped`;
      const [{ status }] = await sql<{ status: string }[]>`
        select status from public.message_bus where transaction_id = ${transactionId}::uuid`;
      assert.equal(status, "pending", `the running call was not reaped (reaper took ${reaped} others)`);
      const row = await running;
      assert.equal(row.status, "completed");
    } finally {
      await sql`delete from public.message_bus where owner_id = ${owner}::uuid`;
      await sql.end();
    }
  },
});

Deno.test({
  name:
    "runMessage() answers a failure it could not record with the contract's error, transaction id and recorded: false",
  ignore: !ready,
  async fn() {
    // A database nobody listens on: the failure cannot be recorded (and the lease cannot be renewed).
    const port = (() => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const p = (l.addr as Deno.NetAddr).port;
      l.close();
      return p;
    })();
    const sql = postgres(`postgresql://postgres:postgres@127.0.0.1:${port}/postgres`, {
      max: 1,
      connect_timeout: 2,
      onnotice: () => {},
    });
    const errors: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args); // expected: the failed recording is logged
    try {
      const input = chatInput({ status: 400 }); // the provider refuses: not retried
      const transactionId = crypto.randomUUID();
      const error = await runMessage({
        sql,
        transactionId,
        run: 1,
        tool: toolNamed("chat")!,
        input,
        inputJson: enc.encode(JSON.stringify(input)),
        routes: [{ provider: standinProvider(), model: "m" }],
        primary: { state: "closed", slot: null },
        settings: parseSettings(Deno.env.toObject()),
      }).then(() => assert.fail("the provider answered 400"), (err: unknown) => err);
      assert.ok(error instanceof BusError, `a BusError, got ${error}`);
      assert.equal(error.status, 502);
      const body = error.toBody() as {
        error: { code: string };
        transaction_id: string;
        status: string;
        recorded: boolean;
      };
      assert.equal(body.transaction_id, transactionId);
      assert.equal(body.status, "failed");
      assert.equal(body.recorded, false);
      assert.equal(body.error.code, "provider_error");
      assert.ok(
        errors.some((args) => String(args[0]).includes(`recording the failure of ${transactionId}`)),
        "the failed recording is in the log",
      );
    } finally {
      console.error = original;
      await sql.end();
    }
  },
});

Deno.test({
  name:
    "runMessage(): the timeout covers the whole body; a body that trickles is given up, and the retry's answer is stored",
  ignore: !ready,
  async fn() {
    const sql = postgres(DB_URL!, { prepare: false, max: 3, onnotice: () => {} });
    const owner = crypto.randomUUID();
    const settings = parseSettings({
      ...Deno.env.toObject(),
      PROVIDER_TIMEOUT_MS: "1500",
      PROVIDER_RETRY_BASE_MS: "1",
    });
    try {
      // Attempt 1: headers at once, then 16 bytes a second (the stand-in's slow_body); attempt 2: a normal answer.
      const input = chatInput({ tag: `slow-${crypto.randomUUID()}`, script: ["slow_body", "ok"] });
      const request = enc.encode(JSON.stringify({ tool: "chat", input }));
      const { transactionId } = await recordMessage(sql, {
        owner,
        tool: "chat",
        provider: "kimi",
        model: "m",
        ttlSeconds: 600,
        metadata: {},
        mode: "sync",
        request,
        leaseSeconds: 60,
        maxRequestBytes: 1 << 20,
      });
      const started = performance.now();
      const row = await runMessage({
        sql,
        transactionId,
        run: 1,
        tool: toolNamed("chat")!,
        input,
        inputJson: enc.encode(JSON.stringify(input)),
        routes: [{ provider: standinProvider(), model: "m" }],
        primary: { state: "closed", slot: null },
        settings,
      });
      assert.ok(performance.now() - started < 10_000, "the trickle was cut at the timeout, not read to its end");
      assert.equal(row.status, "completed");
      assert.deepEqual(row.attempts.map((a) => `${a.outcome}:${a.error_code}`), ["error:timeout", "ok:null"]);
      const [{ body }] = await sql<{ body: string }[]>`
        select convert_from(data, 'UTF8') as body from public.message_bus_chunks
        where transaction_id = ${transactionId}::uuid and seq = 0 and ${row.compression} = 'none'
        union all select null where ${row.compression} <> 'none'`;
      if (body !== null) assert.equal(JSON.parse(body).object, "chat.completion", "the second attempt's body, whole");
    } finally {
      await sql`delete from public.message_bus where owner_id = ${owner}::uuid`;
      await sql.end();
    }
  },
});
