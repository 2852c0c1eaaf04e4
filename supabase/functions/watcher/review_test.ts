/**
 * The model review against the real database (the hourly budget, bus.take_review_slot) and the provider stand-in
 * (PROVIDER_STANDIN_URL), which counts calls per `#standin` tag. The reviewed content carries the directive, so
 * the review request's user message steers the stand-in exactly as a real response would reach a real reviewer.
 * Each test uses its own reviewer model name, hence its own budget row.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { parseSettings, type Settings } from "../_shared/env.ts";
import { maybeReview, reviewPrompt, sampled } from "./review.ts";
import { finding } from "./findings.ts";
import { expectLogged } from "../_shared/_expect_logged.ts";

const DB_URL = Deno.env.get("SUPABASE_DB_URL");
const STANDIN = Deno.env.get("PROVIDER_STANDIN_URL");
if (!DB_URL || !STANDIN) {
  throw new Error("SUPABASE_DB_URL and PROVIDER_STANDIN_URL must be set: run the tests through 'npm test'");
}

function settingsWith(over: Record<string, string | undefined>): Settings {
  return parseSettings({
    SUPABASE_URL: "http://127.0.0.1:1",
    SUPABASE_DB_URL: DB_URL,
    SUPABASE_ANON_KEY: "anon",
    SUPABASE_SERVICE_ROLE_KEY: "service",
    JWT_SECRET: "super-secret-jwt-token-with-at-least-32-characters-long",
    GLM_API_KEY: "standin-key",
    GLM_BASE_URL: STANDIN,
    WATCHER_REVIEW_MODEL: `review-test-${crypto.randomUUID()}`,
    ...over,
  });
}

async function calls(tag: string): Promise<number> {
  const res = await fetch(`${STANDIN!.replace(/\/v1\/?$/, "")}/__standin/calls?tag=${encodeURIComponent(tag)}`);
  return (await res.json()).count;
}

const context = { finishReason: "stop", wantsJson: false, findings: [] };
const id = () => crypto.randomUUID();

async function withSql(fn: (sql: postgres.Sql) => Promise<void>): Promise<void> {
  const sql = postgres(DB_URL!, { prepare: false, max: 2, onnotice: () => {} });
  try {
    await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

Deno.test("sampled() is off at 0, on at 1, deterministic, and close to the rate in between", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `01890000-0000-7000-8000-${String(i).padStart(12, "0")}`);
  assert.equal(ids.filter((t) => sampled(t, 0)).length, 0);
  assert.equal(ids.filter((t) => sampled(t, 1)).length, 2000);
  const quarter = ids.filter((t) => sampled(t, 0.25)).length;
  assert.ok(quarter > 400 && quarter < 600, `expected about 500 of 2000, got ${quarter}`);
  assert.deepEqual(ids.map((t) => sampled(t, 0.25)), ids.map((t) => sampled(t, 0.25)));
});

Deno.test("maybeReview() makes no call when sampling is off, the provider is none, or it has no key", async () => {
  await withSql(async (sql) => {
    const tag = `review-off-${crypto.randomUUID()}`;
    const view = { content: `An answer #standin {"tag":"${tag}"}`, reasoning: "" };
    assert.equal(await maybeReview(id(), view, context, { sql, settings: settingsWith({}) }), undefined);
    const none = settingsWith({ WATCHER_REVIEW_PROVIDER: "none", WATCHER_REVIEW_SAMPLE_RATE: "1" });
    assert.equal(await maybeReview(id(), view, context, { sql, settings: none }, true), undefined);
    const keyless = settingsWith({ GLM_API_KEY: undefined, WATCHER_REVIEW_SAMPLE_RATE: "1" });
    assert.equal(await maybeReview(id(), view, context, { sql, settings: keyless }, true), undefined);
    assert.equal(await calls(tag), 0);
  });
});

Deno.test("maybeReview() keeps to the hourly budget counted in the database, and records the tokens", async () => {
  await withSql(async (sql) => {
    const tag = `review-budget-${crypto.randomUUID()}`;
    const answer = JSON.stringify({ verdict: "warning", summary: "It stops mid-sentence" });
    const view = { content: `Partial answer #standin ${JSON.stringify({ tag, content: answer })}`, reasoning: "" };
    const settings = settingsWith({ WATCHER_REVIEWS_PER_HOUR: "2", WATCHER_REVIEW_SAMPLE_RATE: "1" });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await maybeReview(id(), view, context, { sql, settings }));
    assert.deepEqual(results.map((r) => r?.review.status), ["done", "done", "budget_exhausted"]);
    assert.equal(await calls(tag), 2, "the third review must not reach the provider");
    const first = results[0]!;
    assert.equal(first.review.verdict, "warning");
    assert.equal(first.review.summary, "It stops mid-sentence");
    assert.ok((first.review.usage?.total_tokens ?? 0) > 0, JSON.stringify(first.review.usage));
    assert.equal(first.finding?.code, "review_flagged");
    assert.match(first.finding!.message, /says warning: It stops mid-sentence/);
    const [{ used }] = await sql<{ used: number }[]>`
      select used from bus.review_budget where reviewer = ${`glm:${settings.WATCHER_REVIEW_MODEL}`}`;
    assert.equal(used, 2);
  });
});

Deno.test("maybeReview() records a failing reviewer once (no retries) and an unparseable answer as unknown", async () => {
  await withSql(async (sql) => {
    const settings = settingsWith({ WATCHER_REVIEW_SAMPLE_RATE: "1" });
    const failTag = `review-fail-${crypto.randomUUID()}`;
    const reviewed = id();
    const { result: failed } = await expectLogged(
      { must: [new RegExp(`^\\[watcher\\] model review of ${reviewed} failed: 500 `)] },
      () =>
        maybeReview(
          reviewed,
          { content: `#standin {"tag":"${failTag}","status":500}`, reasoning: "" },
          context,
          { sql, settings },
        ),
    );
    assert.equal(failed?.review.status, "failed");
    assert.ok(failed?.review.error);
    assert.equal(failed?.finding, undefined);
    assert.equal(await calls(failTag), 1);

    const oddTag = `review-odd-${crypto.randomUUID()}`;
    const odd = await maybeReview(
      id(),
      { content: `#standin {"tag":"${oddTag}","content":"looks fine to me"}`, reasoning: "" },
      context,
      { sql, settings },
    );
    assert.equal(odd?.review.status, "done");
    assert.equal(odd?.review.verdict, "unknown");
    assert.equal(odd?.finding, undefined);
  });
});

Deno.test("reviewPrompt() shows at most the configured characters: head and tail of long content", () => {
  const content = "A".repeat(3000) + "MIDDLE" + "Z".repeat(3000);
  const prompt = reviewPrompt({ content, reasoning: "thought" }, {
    ...context,
    findings: [finding("truncated", "cut")],
  }, 1000);
  assert.ok(prompt.length < 1400, `prompt has ${prompt.length} characters`);
  assert.ok(!prompt.includes("MIDDLE"));
  assert.match(prompt, /automatic checks found: truncated/);
  assert.match(prompt, /5006 characters omitted/);
  assert.match(prompt, /reasoning_content: 7 characters \(not shown\)/);
});
