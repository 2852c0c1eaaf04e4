/**
 * Provider routing against the running stack and the stand-in (CONTRACT.md §4, §9, §10): retries the bus owns,
 * Retry-After, no retry of a 400, fallbacks, circuit breakers in Postgres (open, short-circuit, half-open trial, one
 * trial across instances, re-trip), 503 when every route is open, concurrency limits across instances (and a dead
 * worker's slot freed by its lease), 429 provider_busy, the per-user rate limit, and replay.
 *
 * The test stack runs with CIRCUIT_BREAKER_TIMEOUT_SECS=3, PROVIDER_QUEUE_TIMEOUT_MS=3000, PROVIDER_RETRY_BASE_MS=50
 * and a third provider `limited` with LIMITED_MAX_CONCURRENCY=2 (devstack/test_runner.ts). Each test uses a model
 * name of its own, so its routes' breakers are its own.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke, standinCalls, uniqueTag } from "./claim_check_helpers.ts";

const sql = adminSql();
const standin = new URL(testStack().standinUrl).origin;
const control = (path: string, init: RequestInit = {}) =>
  fetch(`${standin}/__standin/${path}`, init).then(async (r) => {
    assert.ok(r.ok, `stand-in ${path}: ${r.status} ${await r.clone().text()}`);
    return await r.json();
  });
const outage = (prefix: string, mode: string) =>
  control("outage", { method: "POST", body: JSON.stringify({ prefix, mode }) });
const noOutage = (prefix: string) => control(`outage?prefix=${encodeURIComponent(prefix)}`, { method: "DELETE" });
const model = (what: string) => `routing-${what}-${crypto.randomUUID().slice(0, 8)}`;
const health = async () => {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke/health`, {
    headers: { authorization: `Bearer ${testStack().anonKey}` },
  });
  return (await res.json()).circuits as Record<string, string>;
};
const meta = async (token: string, id: string) => (await fetchJson(token, `/${id}/meta`)).json;
const brief = (attempts: Array<{ provider: string; outcome: string; error_code: string | null }>) =>
  attempts.map((a) => `${a.provider}:${a.outcome}${a.error_code ? `:${a.error_code}` : ""}`);

Deno.test("retries are the bus's own: 500 and 503 retried, then the answer; every attempt in meta", async () => {
  const user = await newUser();
  const tag = uniqueTag("retry");
  const res = await invoke(user.token, chatBody({ tag, script: [500, 503, "ok"] }, { model: model("retry") }));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(await standinCalls(tag), 3, "three provider calls: the SDK retried nothing itself");
  const m = await meta(user.token, res.json.transaction_id);
  assert.deepEqual(brief(m.attempts), ["kimi:error:http_500", "kimi:error:http_503", "kimi:ok"]);
  assert.deepEqual(m.attempts.map((a: { status: number }) => a.status), [500, 503, 200]);
});

Deno.test("Retry-After is honoured (a 429 saying 1 s waits 1 s); one past PROVIDER_MAX_RETRY_AFTER_MS gives up the route", async () => {
  const user = await newUser();
  const tag = uniqueTag("retry-after");
  const started = performance.now();
  const res = await invoke(user.token, chatBody({ tag, script: [429, "ok"], retry_after: 1 }, { model: model("ra") }));
  assert.equal(res.status, 200);
  assert.ok(performance.now() - started >= 950, `waited ${performance.now() - started} ms`);
  assert.equal(await standinCalls(tag), 2);

  const tag2 = uniqueTag("retry-after-long");
  const started2 = performance.now();
  const long = await invoke(
    user.token,
    chatBody({ tag: tag2, script: [429, "ok"], retry_after: 120 }, { model: model("ra2") }),
  );
  assert.equal(long.status, 502, JSON.stringify(long.json));
  assert.ok(performance.now() - started2 < 5_000, "a 120 s Retry-After is not waited (cap 30 s)");
  assert.equal(await standinCalls(tag2), 1);
  assert.equal(long.json.error.provider_status, 429);
});

Deno.test("a provider's 400 is not retried, counted or fallen back from", async () => {
  const user = await newUser();
  const tag = uniqueTag("bad-request");
  const res = await invoke(user.token, chatBody({ tag, status: 400 }, { model: model("400"), fallbacks: ["glm"] }));
  assert.equal(res.status, 502);
  assert.equal(res.json.error.provider_status, 400);
  assert.equal(await standinCalls(tag), 1, "one call: no retry, no fallback");
  assert.deepEqual(brief((await meta(user.token, res.json.transaction_id)).attempts), ["kimi:error:http_400"]);
});

Deno.test("fallbacks: kimi down, the request's fallback answers; the 200 names glm; attempts show the path", async () => {
  const user = await newUser();
  const m = model("fallback");
  await outage("/kimi", "500");
  try {
    const res = await invoke(user.token, chatBody({}, { model: m, fallbacks: [`glm/${m}`] }));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.provider, "glm");
    const attempts = (await meta(user.token, res.json.transaction_id)).attempts;
    assert.deepEqual(brief(attempts), ["kimi:error:http_500", "kimi:error:http_500", "kimi:error:http_500", "glm:ok"]);
    assert.ok(attempts.every((a: { model: string }) => a.model === m), "model as sent");
  } finally {
    await noOutage("/kimi");
  }
});

Deno.test("circuit breaker: opens after 5 failed attempts, skips the dead route, lets one trial through after the timeout, closes", async () => {
  const user = await newUser();
  const m = model("breaker");
  const body = () => chatBody({}, { model: m, fallbacks: [`glm/${m}`] });
  await outage("/kimi", "500");
  try {
    const first = await invoke(user.token, body());
    const second = await invoke(user.token, body());
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.deepEqual(
      brief((await meta(user.token, second.json.transaction_id)).attempts).slice(0, 2),
      ["kimi:error:http_500", "kimi:error:http_500"],
      "the second request's second failure is the fifth in a row: the route opens and is not retried further",
    );
    assert.equal((await health())[`kimi/${m}`], "open");

    const before = (await control("stats")).prefixes["/kimi"].chat_requests;
    const started = performance.now();
    const third = await invoke(user.token, body());
    assert.equal(third.status, 200);
    assert.deepEqual(brief((await meta(user.token, third.json.transaction_id)).attempts), [
      "kimi:skipped:circuit_open",
      "glm:ok",
    ]);
    assert.equal((await control("stats")).prefixes["/kimi"].chat_requests, before, "the open route was not called");
    assert.ok(performance.now() - started < 1_000, "no waiting on the dead provider");

    // Half-open after CIRCUIT_BREAKER_TIMEOUT_SECS (3 s here): the provider is back, one trial closes the route.
    await noOutage("/kimi");
    await new Promise((r) => setTimeout(r, 3_100));
    assert.equal((await health())[`kimi/${m}`], "half_open");
    const trial = await invoke(user.token, body());
    assert.equal(trial.json.provider, "kimi");
    assert.deepEqual(brief((await meta(user.token, trial.json.transaction_id)).attempts), ["kimi:ok"]);
    assert.equal((await health())[`kimi/${m}`], "closed");
  } finally {
    await noOutage("/kimi");
  }
});

Deno.test("circuit breaker: a failed trial re-opens the route for a full timeout from then (a re-trip extends the deadline)", async () => {
  const user = await newUser();
  const m = model("retrip");
  await sql`insert into bus.routes (provider, model, state, consecutive_failures, open_until)
            values ('kimi', ${m}, 'open', 5, now() - interval '1 second')`;
  await outage("/kimi", "503");
  try {
    const tag = uniqueTag("trial");
    const res = await invoke(user.token, chatBody({ tag }, { model: m, fallbacks: [`glm/${m}`] }));
    assert.equal(res.status, 200);
    assert.deepEqual(brief((await meta(user.token, res.json.transaction_id)).attempts), [
      "kimi:error:http_503",
      "glm:ok",
    ], "the trial is a single call, not retried");
    const [route] = await sql<{ state: string; seconds: number }[]>`
      select state, extract(epoch from open_until - now())::float as seconds from bus.routes
      where provider = 'kimi' and model = ${m}`;
    assert.equal(route.state, "open");
    assert.ok(route.seconds > 2 && route.seconds <= 3, `open for a full timeout from now (${route.seconds} s)`);
  } finally {
    await noOutage("/kimi");
    await sql`delete from bus.routes where model = ${m}`;
  }
});

Deno.test("exactly one half-open trial at a time across instances (10 connections race for it)", async () => {
  const m = model("one-trial");
  await sql`insert into bus.routes (provider, model, state, consecutive_failures, open_until)
            values ('kimi', ${m}, 'open', 5, now() - interval '1 second')`;
  try {
    const results = await Promise.all(
      Array.from({ length: 10 }, () => sql<{ taken: boolean }[]>`select bus.try_trial('kimi', ${m}, 30) as taken`),
    );
    assert.equal(results.filter(([r]) => r.taken).length, 1);
  } finally {
    await sql`delete from bus.routes where model = ${m}`;
  }
});

Deno.test("every route open: 503 provider_unavailable with Retry-After, recorded with the skipped attempts", async () => {
  const user = await newUser();
  const m = model("all-open");
  await sql`insert into bus.routes (provider, model, state, consecutive_failures, open_until)
            values ('kimi', ${m}, 'open', 5, now() + interval '40 seconds'),
                   ('glm', ${m}, 'open', 5, now() + interval '60 seconds')`;
  try {
    const res = await invoke(user.token, chatBody({}, { model: m, fallbacks: [`glm/${m}`] }));
    assert.equal(res.status, 503, JSON.stringify(res.json));
    assert.equal(res.json.error.code, "provider_unavailable");
    assert.equal(res.json.status, "failed");
    const retryAfter = Number(res.headers.get("retry-after"));
    assert.ok(retryAfter >= 35 && retryAfter <= 41, `Retry-After ${retryAfter}: when the first route reopens`);
    const recorded = await meta(user.token, res.json.transaction_id);
    assert.equal(recorded.status, "failed");
    assert.deepEqual(brief(recorded.attempts), ["kimi:skipped:circuit_open", "glm:skipped:circuit_open"]);
  } finally {
    await sql`delete from bus.routes where model = ${m}`;
  }
});

Deno.test("concurrency limit: LIMITED_MAX_CONCURRENCY=2 holds across calls; a third waits for a slot", async () => {
  const user = await newUser();
  await control("reset", { method: "POST" });
  const results = await Promise.all(
    Array.from({ length: 6 }, () => invoke(user.token, chatBody({ latency_ms: 700 }, { provider: "limited" }))),
  );
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  const stats = await control("stats");
  assert.equal(stats.prefixes["/limited"].max_in_flight, 2, "never more than 2 calls in flight at the provider");
  const [{ n }] = await sql<
    { n: number }[]
  >`select count(*)::int as n from bus.provider_leases where provider = 'limited'`;
  assert.equal(n, 0, "every slot was freed with its message");
});

Deno.test("concurrency limit: a slot stays full past PROVIDER_QUEUE_TIMEOUT_MS → 429 provider_busy, recorded", async () => {
  const user = await newUser();
  const held = [crypto.randomUUID(), crypto.randomUUID()];
  await sql`insert into bus.provider_leases (provider, transaction_id, expires_at)
            select 'limited', id, now() + interval '30 seconds' from unnest(${held}::uuid[]) id`;
  try {
    const started = performance.now();
    const res = await invoke(user.token, chatBody({}, { provider: "limited" }));
    assert.equal(res.status, 429, JSON.stringify(res.json));
    assert.equal(res.json.error.code, "provider_busy");
    assert.ok(Number(res.headers.get("retry-after")) >= 1);
    assert.ok(performance.now() - started >= 2_900, "waited the queue timeout (3 s) for a slot");
    assert.equal((await meta(user.token, res.json.transaction_id)).status, "failed");
  } finally {
    await sql`delete from bus.provider_leases where transaction_id = any(${held}::uuid[])`;
  }
});

Deno.test("concurrency limit: the slots of a dead worker are freed when their lease runs out", async () => {
  const user = await newUser();
  const dead = [crypto.randomUUID(), crypto.randomUUID()];
  // Two slots held by workers that were killed (SIGKILL leaves their leases behind), running out in 1.5 s.
  await sql`insert into bus.provider_leases (provider, transaction_id, expires_at)
            select 'limited', id, now() + interval '1.5 seconds' from unnest(${dead}::uuid[]) id`;
  const started = performance.now();
  const res = await invoke(user.token, chatBody({}, { provider: "limited" }));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.ok(performance.now() - started >= 1_400, "it waited for the dead leases to run out");
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from bus.provider_leases where transaction_id = any(${dead}::uuid[])`;
  assert.equal(n, 0, "the dead leases are gone");
});

Deno.test("per-user limit: past requests_per_minute, 429 rate_limited with Retry-After and the IETF RateLimit headers; nothing recorded", async () => {
  const user = await newUser();
  await sql`insert into bus.user_limits (user_id, requests_per_minute) values (${user.id}::uuid, 2)`;
  const answers = [];
  for (let i = 0; i < 3; i++) answers.push(await invoke(user.token, chatBody({})));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 429]);
  assert.equal(answers[0].headers.get("ratelimit-policy"), '"user";q=2;w=60');
  assert.match(answers[1].headers.get("ratelimit") ?? "", /^"user";r=0;t=\d+$/);
  const limited = answers[2];
  assert.equal(limited.json.error.code, "rate_limited");
  const retryAfter = Number(limited.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  assert.match(limited.headers.get("ratelimit") ?? "", new RegExp(`^"user";r=0;t=${retryAfter}$`));
  assert.equal(limited.json.transaction_id, undefined, "a rate-limited request is not a message");
  const [{ n }] = await sql<
    { n: number }[]
  >`select count(*)::int as n from public.message_bus where owner_id = ${user.id}::uuid`;
  assert.equal(n, 2);
  await sql`delete from bus.user_limits where user_id = ${user.id}::uuid`;
});

Deno.test("replay: the stored request runs again as a new message with replay_of; another user gets 404", async () => {
  const user = await newUser();
  const other = await newUser();
  const first = await invoke(user.token, chatBody({ tag: uniqueTag("replay") }, { metadata: { n: 1 } }));
  assert.equal(first.status, 200);
  const replay = (token: string) =>
    fetch(`${testStack().functionsUrl}/tool-invoke/${first.json.transaction_id}/replay`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
  const res = await replay(user.token);
  const again = await res.json();
  assert.equal(res.status, 200, JSON.stringify(again));
  assert.notEqual(again.transaction_id, first.json.transaction_id);
  assert.equal(again.checksum, first.json.checksum, "the same request, answered the same by the stand-in");
  const m = await meta(user.token, again.transaction_id);
  assert.equal(m.replay_of, first.json.transaction_id);
  assert.equal(m.request_checksum, (await meta(user.token, first.json.transaction_id)).request_checksum);
  assert.equal((await replay(other.token)).status, 404);
  const service = await replay(testStack().serviceRoleKey);
  const byService = await service.json();
  assert.equal(service.status, 200);
  const [{ owner_id }] = await sql<{ owner_id: string }[]>`
    select owner_id from public.message_bus where transaction_id = ${byService.transaction_id}::uuid`;
  assert.equal(owner_id, user.id, "a replay by the service role keeps the message's owner");
});

Deno.test("health lists every route called so far with its circuit state, and no secrets", async () => {
  const user = await newUser();
  const m = model("health");
  assert.equal((await invoke(user.token, chatBody({}, { model: m }))).status, 200);
  const circuits = await waitFor("the route in health", async () => (await health())[`kimi/${m}`]);
  assert.equal(circuits, "closed");
  const text = JSON.stringify(await health());
  assert.ok(!text.includes("local-standin-key"), "no API key in health");
});

Deno.test("a sync message whose worker died is failed as worker_lost by the next dispatch (within the minute)", async () => {
  const user = await newUser();
  const [{ transaction_id: id }] = await sql`
    select transaction_id from bus.begin_message(
      p_owner => ${user.id}::uuid, p_tool => 'chat', p_provider => 'kimi', p_model => ${model("lost")},
      p_session_id => null, p_idempotency_key => null, p_ttl_seconds => 3600, p_lease_seconds => 60)`;
  await sql`update public.message_bus set lease_expires_at = now() - interval '1 second' where transaction_id = ${id}`;
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke/dispatch`, {
    method: "POST",
    headers: { authorization: `Bearer ${testStack().serviceRoleKey}`, "content-type": "application/json" },
    body: "{}",
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.reaped >= 1, JSON.stringify(body));
  const m = await meta(user.token, id);
  assert.equal(m.status, "failed");
  assert.equal(m.error.code, "worker_lost");
});

Deno.test("routing tests: close the database client", async () => {
  await sql.end();
});
