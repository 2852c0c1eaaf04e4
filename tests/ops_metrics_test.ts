/**
 * `GET /ops/metrics` and `GET /ops/providers` on the running stack (CONTRACT.md §12): the scrape parses (grammar
 * checked line by line) and its counters move by exactly what known invokes did. Each test uses a model name of its
 * own, so its label sets are untouched by the other tests on the same stack.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack } from "../devstack/testing/env.ts";
import { DURATION_BOUNDS_MS, SIZE_BOUNDS_BYTES } from "../supabase/functions/ops/histogram.ts";
import { beginMessage, completeMessage, fold, ops, scrape, series } from "./ops_helpers.ts";

const sql = adminSql();
const service = () => testStack().serviceRoleKey;

async function invoke(body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${service()}`, "content-type": "application/json" },
    body: JSON.stringify({ tool: "chat", owner_id: crypto.randomUUID(), ...body }),
  });
  return { status: res.status, json: await res.json() };
}

const prompt = (directive: Record<string, unknown> = {}) => ({
  messages: [{ role: "user", content: `ops ${crypto.randomUUID()} #standin ${JSON.stringify(directive)}` }],
});

Deno.test("ops answers 401 to no token, the anon key and a user token, on every route", async () => {
  const user = await newUser();
  const routes: Array<[string, string, unknown?]> = [
    ["GET", "/metrics"],
    ["GET", "/providers"],
    ["GET", "/errors"],
    ["POST", `/errors/${"a".repeat(64)}/resolve`, {}],
    ["GET", "/alerts"],
    ["POST", "/alerts/evaluate", {}],
    ["POST", "/fold", {}],
    ["GET", "/series"],
    ["PUT", `/limits/${user.id}`, { requests_per_minute: 5 }],
    ["GET", `/limits/${user.id}`],
  ];
  for (const [method, path, body] of routes) {
    for (const token of [null, testStack().anonKey, user.token]) {
      const res = await ops(path, { method, body, token });
      assert.equal(res.status, 401, `${method} ${path}: ${res.text}`);
    }
  }
});

Deno.test("the histogram bounds of the function are the database's", async () => {
  const [{ d, s }] = await sql`select bus.ops_duration_bounds() as d, bus.ops_size_bounds() as s`;
  assert.deepEqual(d.map(Number), DURATION_BOUNDS_MS);
  assert.deepEqual(s.map(Number), SIZE_BOUNDS_BYTES);
});

Deno.test("metrics move by exactly what known invokes did: requests, histograms, payload bytes, messages", async () => {
  const model = `ops-metrics-${crypto.randomUUID().slice(0, 8)}`;
  const before = await scrape();
  const ok1 = await invoke({ provider: "kimi", model, input: prompt({ bytes: 3000 }) });
  const ok2 = await invoke({ provider: "kimi", model, input: prompt({ bytes: 500 }) });
  const bad = await invoke({ provider: "glm", model, input: prompt({ status: 400 }) });
  assert.equal(ok1.status, 200, JSON.stringify(ok1.json));
  assert.equal(ok2.status, 200);
  assert.equal(bad.status, 502, JSON.stringify(bad.json));
  await fold();
  const after = await scrape();

  const completed = { model, provider: "kimi", status: "completed", stream: "false" };
  const failed = { model, provider: "glm", status: "failed", stream: "false" };
  assert.equal(after.get(series("bus_requests_total", completed)), 2);
  assert.equal(after.get(series("bus_requests_total", failed)), 1);
  assert.equal(after.get(series("bus_provider_duration_seconds_count", completed)), 2);
  assert.equal(after.get(series("bus_provider_duration_seconds_bucket", completed, "+Inf")), 2);
  assert.equal(after.get(series("bus_overhead_seconds_count", completed)), 2);
  assert.equal(after.get(series("bus_payload_bytes_count", completed)), 2);
  const bytes = Number(ok1.json.payload_size_bytes) + Number(ok2.json.payload_size_bytes);
  assert.equal(after.get(series("bus_payload_bytes_sum", completed)), bytes);
  assert.ok(after.get(series("bus_provider_duration_seconds_sum", completed))! > 0);
  assert.equal(after.has(series("bus_ttft_seconds_count", completed)), false, "no streamed message, no TTFT series");
  const grew = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  // bus_messages is a gauge over every message: a cleanup running meanwhile (other tests start them in the
  // background) moves other messages from completed or failed to expired, so only the finished total must grow by
  // this test's three ...
  // ... and a purge meanwhile (cleanup deletes expired rows after their retention) takes messages out of the gauge,
  // counted by bus_messages_purged_total at once (the gauge follows at the next fold).
  const finished = ["completed", "failed", "expired"].reduce(
    (n, status) => n + grew(series("bus_messages", { status })) + grew(series("bus_messages_purged_total", { status })),
    0,
  );
  assert.ok(finished >= 3, `finished (and purged) messages grew by ${finished}`);
  assert.ok(after.has(series("bus_messages", { status: "completed" })));
  assert.ok(after.has(series("bus_messages", { status: "failed" })));
  assert.ok(after.has(series("bus_messages", { status: "pending" })));
  assert.ok(after.get("bus_ops_fold_timestamp_seconds")! > Date.now() / 1000 - 60);

  // A second fold adds nothing: each message is counted once.
  await fold();
  assert.equal((await scrape()).get(series("bus_requests_total", completed)), 2);
});

Deno.test("a message still pending at a fold is counted once, by the fold after it finishes", async () => {
  const model = `ops-straggler-${crypto.randomUUID().slice(0, 8)}`;
  const id = await beginMessage(sql, { provider: "kimi", model });
  const parked = await fold();
  assert.ok(Number(parked.stragglers) >= 1);
  const [{ n }] = await sql`select count(*)::int as n from bus.ops_stragglers where transaction_id = ${id}`;
  assert.equal(n, 1);
  const labels = { model, provider: "kimi", status: "completed", stream: "false" };
  assert.equal((await scrape()).has(series("bus_requests_total", labels)), false);
  await completeMessage(sql, id, { providerMs: 1234 });
  await fold();
  await fold();
  const after = await scrape();
  assert.equal(after.get(series("bus_requests_total", labels)), 1);
  // 1234 ms lies in (1, 1.5] s
  assert.equal(after.get(series("bus_provider_duration_seconds_bucket", labels, "1")), 0);
  assert.equal(after.get(series("bus_provider_duration_seconds_bucket", labels, "1.5")), 1);
  assert.equal(after.get(series("bus_provider_duration_seconds_sum", labels)), 1.234);
});

Deno.test("fallbacks, attempts, circuit states and calls in flight come from the routing tables and attempts", async () => {
  const tag = crypto.randomUUID().slice(0, 8);
  const provider = `ops-route-${tag}`;
  const id = await beginMessage(sql, { provider: "kimi", model: `first-${tag}` });
  await completeMessage(sql, id, {
    provider: "glm",
    model: `second-${tag}`,
    attempts: [
      { provider: "kimi", model: `first-${tag}`, outcome: "error", status: 503, error_code: "provider_error" },
      { provider: "glm", model: `second-${tag}`, outcome: "ok", status: 200, error_code: null },
    ],
  });
  await sql`insert into bus.routes (provider, model, state, consecutive_failures)
            values (${provider}, 'm-open', 'open', 5), (${provider}, 'm-half', 'half_open', 5),
                   (${provider}, 'm-closed', 'closed', 0)`;
  await sql`insert into bus.provider_leases (provider, transaction_id, expires_at)
            values (${provider}, gen_random_uuid(), now() + interval '1 minute'),
                   (${provider}, gen_random_uuid(), now() + interval '1 minute'),
                   (${provider}, gen_random_uuid(), now() - interval '1 minute')`;
  try {
    await fold();
    const m = await scrape();
    const fallback = { from: "kimi", from_model: `first-${tag}`, to: "glm", to_model: `second-${tag}` };
    assert.equal(m.get(series("bus_fallbacks_total", fallback)), 1);
    assert.equal(
      m.get(series("bus_provider_attempts_total", { provider: "kimi", model: `first-${tag}`, outcome: "error" })),
      1,
    );
    assert.equal(m.get(series("bus_circuit_state", { provider, model: "m-closed" })), 0);
    assert.equal(m.get(series("bus_circuit_state", { provider, model: "m-open" })), 1);
    assert.equal(m.get(series("bus_circuit_state", { provider, model: "m-half" })), 2);
    assert.equal(m.get(series("bus_provider_in_flight", { provider })), 2, "expired leases are not in flight");

    const res = await ops("/providers");
    assert.equal(res.status, 200);
    const p = res.json.providers.find((x: { provider: string }) => x.provider === provider);
    assert.equal(p.in_flight, 2);
    assert.equal(p.circuit, "open");
    assert.deepEqual(p.routes.map((r: { model: string; circuit: string }) => [r.model, r.circuit]), [
      ["m-closed", "closed"],
      ["m-half", "half_open"],
      ["m-open", "open"],
    ]);
    const glm = res.json.providers.find((x: { provider: string }) => x.provider === "glm");
    const route = glm.routes.find((r: { model: string }) => r.model === `second-${tag}`);
    assert.deepEqual(Object.keys(route.windows), ["5m", "60m"]);
    assert.equal(route.windows["5m"].requests, 1);
    assert.equal(route.windows["5m"].error_rate, 0);
    assert.ok(route.windows["5m"].p50_ms > 0 && route.windows["5m"].p95_ms >= route.windows["5m"].p50_ms);
  } finally {
    await sql`delete from bus.routes where provider = ${provider}`;
    await sql`delete from bus.provider_leases where provider = ${provider}`;
  }
});

Deno.test("watcher findings and expiry move their series", async () => {
  const model = `ops-watch-${crypto.randomUUID().slice(0, 8)}`;
  const before = await scrape();
  const res = await invoke({ provider: "kimi", model, input: prompt({ finish_reason: "length" }) });
  assert.equal(res.status, 200);
  const id = res.json.transaction_id as string;
  const deadline = Date.now() + 15_000;
  while ((await sql`select 1 from public.message_bus_observations where transaction_id = ${id}`).length === 0) {
    if (Date.now() > deadline) throw new Error("no observation within 15 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  await fold();
  const mid = await scrape();
  const truncated = series("bus_watcher_findings_total", { code: "truncated", severity: "warning" });
  assert.ok((mid.get(truncated) ?? 0) - (before.get(truncated) ?? 0) >= 1);
  const warned = series("bus_watcher_observations_total", { verdict: "warning" });
  assert.ok((mid.get(warned) ?? 0) - (before.get(warned) ?? 0) >= 1);

  // Expiry moves the message from completed to expired (the cleanup's own statement, run here directly).
  await sql`update public.message_bus set expires_at = now() - interval '1 second' where transaction_id = ${id}`;
  await sql`select bus.expire_messages(5000, 2000)`;
  await fold();
  const after = await scrape();
  const expired = series("bus_messages", { status: "expired" });
  assert.ok((after.get(expired) ?? 0) - (mid.get(expired) ?? 0) >= 1);

  // A purge (cleanup deletes the row after its retention; here directly) counts at once, and the gauge drops by it at
  // the next fold.
  const purged = series("bus_messages_purged_total", { status: "expired" });
  await sql`delete from public.message_bus where transaction_id = ${id}`;
  const counted = await scrape();
  assert.ok((counted.get(purged) ?? 0) - (after.get(purged) ?? 0) >= 1, "bus_messages_purged_total{status=expired}");
});

Deno.test("the scrape is text/plain version 0.0.4 and rejects query parameters", async () => {
  const res = await ops("/metrics");
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.match(res.text, /^# HELP bus_requests_total /m);
  assert.equal((await ops("/metrics?x=1")).status, 400);
});

Deno.test("PUT /ops/limits/<user_id> sets a user's limit; GET reads it; bad input is 400, none set is 404", async () => {
  const user = crypto.randomUUID();
  assert.equal((await ops(`/limits/${user}`)).status, 404);
  const put = await ops(`/limits/${user}`, { method: "PUT", body: { requests_per_minute: 30 } });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.requests_per_minute, 30);
  assert.equal(put.json.user_id, user);
  const [row] = await sql`select requests_per_minute from bus.user_limits where user_id = ${user}`;
  assert.equal(row.requests_per_minute, 30);
  assert.equal(
    (await ops(`/limits/${user}`, { method: "PUT", body: { requests_per_minute: 0 } })).json.requests_per_minute,
    0,
  );
  assert.equal((await ops(`/limits/${user}`)).json.requests_per_minute, 0);
  for (
    const body of [{ requests_per_minute: -1 }, { requests_per_minute: 1.5 }, {}, { requests_per_minute: 1, x: 1 }]
  ) {
    assert.equal((await ops(`/limits/${user}`, { method: "PUT", body })).status, 400, JSON.stringify(body));
  }
  assert.equal((await ops(`/limits/not-a-uuid`, { method: "PUT", body: { requests_per_minute: 1 } })).status, 400);
});

Deno.test("GET /ops/series has one point per minute, traffic included", async () => {
  const model = `ops-series-${crypto.randomUUID().slice(0, 8)}`;
  const sentAt = Date.now();
  const res0 = await invoke({ provider: "kimi", model, input: prompt({}) });
  const answeredAt = Date.now();
  assert.equal(res0.status, 200);
  await fold();
  const res = await ops("/series?minutes=15");
  assert.equal(res.status, 200);
  assert.equal(res.json.points.length, 15);
  const last = res.json.points.at(-1);
  const prev = res.json.points.at(-2);
  assert.ok(last.requests + prev.requests >= 1, JSON.stringify(res.json.points.slice(-2)));
  // The minute of this test's invoke has its percentiles (a fast stand-in answers within a millisecond: 0 is a value;
  // a minute of only refused requests has none, so only the invoke's own minute is checked).
  const minuteOf = (t: number) => new Date(Math.floor(t / 60_000) * 60_000).toISOString();
  const own = res.json.points.filter((p: { minute: string }) =>
    [minuteOf(sentAt), minuteOf(answeredAt)].includes(p.minute)
  );
  assert.ok(
    own.some((p: { provider_p50_ms: unknown; overhead_p50_ms: unknown }) =>
      typeof p.provider_p50_ms === "number" && p.provider_p50_ms >= 0 &&
      typeof p.overhead_p50_ms === "number" && p.overhead_p50_ms >= 0
    ),
    JSON.stringify(own),
  );
  assert.equal((await ops("/series?minutes=0")).status, 400);
  assert.equal((await ops("/series?minutes=abc")).status, 400);
});

Deno.test("ops metrics tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
