/**
 * Realtime delivery benchmark (issue 4, item 5): latency from a database commit (`realtime.send` on the private
 * topic bus:<uid>, as the status trigger does) to the subscriber's callback in the real supabase-js client, with 1,
 * 10 and 100 subscribers (one WebSocket each). t0 is taken before the statement is sent, so the figure includes the
 * statement, the commit, the stand-in's LISTEN/NOTIFY tap, the fan-out and the client's decoding.
 *
 * Run: npm run bench -- realtime   (or deno run -A bench/realtime_bench.ts)
 */
import postgres from "postgres";
import { createClient, type RealtimeChannel, type SupabaseClient } from "@supabase/supabase-js";
import { spawnStack } from "../devstack/testing/stack_process.ts";
import { mintUserToken } from "../devstack/keys.ts";
import { ms, quantile, writeResults } from "./results.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MESSAGES = Number(Deno.env.get("BENCH_RT_MESSAGES") ?? 200);
const log = (m: string) => console.error(`[bench] ${m}`);

const stack = await spawnStack({ root: ROOT, log, env: { DEVSTACK_PG_FAST: "0" } });
const sql = postgres(stack.dbUrl, { prepare: false, max: 1, onnotice: () => {} });
const results: Array<{ subscribers: number; n: number; p50: number; p95: number; p99: number; lost: number }> = [];

async function subscribe(
  count: number,
  topic: string,
  token: string,
  onEvent: (seq: number) => void,
): Promise<{ clients: SupabaseClient[]; channels: RealtimeChannel[] }> {
  const clients: SupabaseClient[] = [];
  const channels: RealtimeChannel[] = [];
  await Promise.all(Array.from({ length: count }, async () => {
    const client = createClient(stack.apiUrl, stack.keys.anon, {
      accessToken: () => Promise.resolve(token),
      realtime: { vsn: "2.0.0" } as Record<string, unknown>,
    });
    await client.realtime.setAuth(); // resolves the accessToken callback before the join (supabase-js does it lazily)
    const channel = client.channel(topic, { config: { private: true } })
      .on("broadcast", { event: "bench" }, (msg) => onEvent(Number(msg.payload.seq)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("subscribe timed out")), 20_000);
      channel.subscribe((status, err) => {
        if (status === "SUBSCRIBED") {
          clearTimeout(timer);
          resolve();
        } else if (status === "CHANNEL_ERROR" || status === "TIMED_OUT") {
          clearTimeout(timer);
          reject(err ?? new Error(status));
        }
      });
    });
    clients.push(client);
    channels.push(channel);
  }));
  return { clients, channels };
}

try {
  for (const subscribers of [1, 10, 100]) {
    const user = crypto.randomUUID();
    const token = await mintUserToken(user, stack.jwtSecret, { expiresInSeconds: 3600 });
    const topic = `bus:${user}`;
    const sent = new Map<number, number>();
    const latencies: number[] = [];
    const { clients, channels } = await subscribe(subscribers, topic, token, (seq) => {
      const t0 = sent.get(seq);
      if (t0 !== undefined) latencies.push(performance.now() - t0);
    });
    for (let seq = -10; seq < MESSAGES; seq++) { // negative seq: warm-up, not counted
      const t0 = performance.now();
      if (seq >= 0) sent.set(seq, t0);
      await sql`select realtime.send(${sql.json({ seq })}, 'bench', ${topic}, true)`;
      await new Promise((r) => setTimeout(r, 10));
    }
    const expected = MESSAGES * subscribers;
    const deadline = Date.now() + 10_000;
    while (latencies.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    results.push({
      subscribers,
      n: latencies.length,
      p50: quantile(latencies, 0.5),
      p95: quantile(latencies, 0.95),
      p99: quantile(latencies, 0.99),
      lost: expected - latencies.length,
    });
    log(JSON.stringify(results.at(-1)));
    for (const ch of channels) await ch.unsubscribe();
    for (const c of clients) await c.removeAllChannels();
  }
  const md = `## Realtime delivery (issue 4)

Run ${new Date().toISOString()}, ${navigator.hardwareConcurrency} cores. Commit of \`realtime.send\` on a private
topic → callback in \`@supabase/supabase-js\` (protocol 2.0.0, one WebSocket per subscriber, all in one process);
${MESSAGES} messages 10 ms apart per row.

| subscribers | callbacks | lost | p50 | p95 | p99 |
| --- | --- | --- | --- | --- | --- |
${
    results.map((r) => `| ${r.subscribers} | ${r.n} | ${r.lost} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} |`).join(
      "\n",
    )
  }

Target (local): p50 ≤ 10 ms, p95 ≤ 30 ms. Hosted broadcast-from-database for comparison: 46 ms median, 132 ms p95
(anchors.md §6.1).
`;
  await writeResults("realtime", md, results);
  console.log(md);
} finally {
  await sql.end();
  await stack.stop();
  await stack.cleanup();
}
