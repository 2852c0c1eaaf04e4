/**
 * The watcher on the running stack (CONTRACT.md §7): the trigger → pg_net → watcher drain path, each finding code
 * from a steered stand-in response, meta.watcher, the `observation` broadcast, idempotency, the sweep after a drain
 * died, the forced model review, and that only the service role may call it.
 */
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke, standinCalls, uniqueTag } from "./claim_check_helpers.ts";
import { codes, completionBody, observations, post, storeMessage, waitForObservation } from "./watch_helpers.ts";

const sql = adminSql();
const service = () => testStack().serviceRoleKey;

Deno.test("watcher answers 401 without a token, with the anon key and with a user token; 400 and 404 to bad ids", async () => {
  const user = await newUser();
  const id = crypto.randomUUID();
  for (const token of [null, testStack().anonKey, user.token]) {
    const res = await post("watcher", token, { transaction_id: id });
    assert.equal(res.status, 401, JSON.stringify(res.json));
    assert.equal(res.json.error.code, "unauthorized");
  }
  assert.equal((await post("watcher", service(), { transaction_id: "nope" })).status, 400);
  assert.equal((await post("watcher", service(), { id })).status, 400);
  const missing = await post("watcher", service(), { transaction_id: id });
  assert.equal(missing.status, 404);
});

Deno.test("every completed message gets one observation within 10 s, in meta.watcher and broadcast as observation", async () => {
  const user = await newUser();
  const started = Date.now();
  const answers = await Promise.all([
    invoke(user.token, chatBody({})),
    invoke(user.token, chatBody({ reasoning: true })),
    invoke(user.token, chatBody({}, { mode: "async" })),
    invoke(user.token, chatBody({ bytes: 200_000 }, { mode: "async" })),
  ]);
  for (const a of answers) assert.ok(a.status === 200 || a.status === 202, JSON.stringify(a.json));
  for (const { json: { transaction_id: id } } of answers) {
    const o = await waitForObservation(sql, id, 10_000 - (Date.now() - started));
    assert.equal(o.verdict, "ok", JSON.stringify(o.findings));
    const meta = await fetchJson(user.token, `/${id}/meta`);
    assert.deepEqual(meta.json.watcher, { verdict: "ok", findings: [] });
    // Drains are woken through pg_net (one wake serves every message finishing while a drain runs), and the
    // watcher accepts them.
    const [call] = await sql`select status_code from net._http_response
                             where content like '%"drain":true%' order by created desc limit 1`;
    assert.equal(call?.status_code, 202);
    const events = await sql`select payload from realtime.messages
                             where event = 'observation' and topic = ${`bus:${user.id}`}
                               and payload ->> 'transaction_id' = ${id}`;
    assert.equal(events.length, 1);
    assert.deepEqual({ ...events[0].payload, id: undefined }, {
      transaction_id: id,
      verdict: "ok",
      findings: [],
      id: undefined,
    });
    assert.equal((await observations(sql, id)).length, 1);
  }
});

const cases: Array<
  { name: string; directive: Record<string, unknown>; input?: Record<string, unknown>; code: string; verdict: string }
> = [
  { name: "truncated", directive: { finish_reason: "length" }, code: "truncated", verdict: "warning" },
  { name: "reasoning only", directive: { reasoning_only: true }, code: "empty_content", verdict: "error" },
  {
    name: "reasoning only, content null",
    directive: { reasoning_only: "null" },
    code: "empty_content",
    verdict: "error",
  },
  {
    name: "invalid JSON",
    directive: { json: "invalid" },
    input: { response_format: { type: "json_object" } },
    code: "invalid_json",
    verdict: "error",
  },
  { name: "error as content", directive: { error_as_content: true }, code: "error_as_content", verdict: "error" },
  { name: "not JSON", directive: { malformed: "not_json" }, code: "not_chat_completion", verdict: "error" },
  { name: "cut in half", directive: { malformed: "truncated" }, code: "not_chat_completion", verdict: "error" },
  {
    name: "content filter",
    directive: { finish_reason: "content_filter" },
    code: "content_filtered",
    verdict: "warning",
  },
];

for (const c of cases) {
  Deno.test(`a steered response (${c.name}) is observed as ${c.code} (${c.verdict})`, async () => {
    const user = await newUser();
    const body = chatBody(c.directive);
    Object.assign(body.input, c.input ?? {});
    const res = await invoke(user.token, body);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const o = await waitForObservation(sql, res.json.transaction_id);
    assert.ok(codes(o).includes(c.code), `expected ${c.code}, got ${JSON.stringify(o.findings)}`);
    assert.equal(o.verdict, c.verdict);
    const meta = await fetchJson(user.token, `/${res.json.transaction_id}/meta`);
    assert.equal(meta.json.watcher.verdict, c.verdict);
    assert.ok(
      meta.json.watcher.findings.some((f: { code: string; message: string }) =>
        f.code === c.code && f.message.length > 0
      ),
    );
    for (const f of meta.json.watcher.findings) assert.deepEqual(Object.keys(f).sort(), ["code", "message"]);
  });
}

Deno.test("valid JSON output passes, and a payload above the 8 MB cap is checked from head and tail only", async () => {
  const user = await newUser();
  const big = chatBody({ bytes: 9 * 1024 * 1024, reasoning_only: true });
  const [okJson, large] = await Promise.all([
    (async () => {
      const b = chatBody({ json: true });
      Object.assign(b.input, { response_format: { type: "json_object" } });
      return await invoke(user.token, b);
    })(),
    invoke(user.token, big),
  ]);
  assert.equal(okJson.status, 200);
  assert.equal((await waitForObservation(sql, okJson.json.transaction_id)).verdict, "ok");
  assert.equal(large.status, 200, JSON.stringify(large.json));
  const o = await waitForObservation(sql, large.json.transaction_id, 20_000);
  assert.deepEqual(codes(o).sort(), ["empty_content", "partial_analysis"]);
  assert.equal(o.partial, true);
  assert.match(o.findings.find((f) => f.code === "partial_analysis")!.message, /first and last 1 MiB only/);
});

Deno.test("stored bytes that no longer match are checksum_mismatch, raw or gzip", async () => {
  const user = await newUser();
  const small = await invoke(user.token, chatBody({}));
  const large = await invoke(user.token, chatBody({ bytes: 3 * 1024 * 1024 })); // stored gzip
  for (const { json: { transaction_id: id } } of [small, large]) {
    assert.equal((await waitForObservation(sql, id)).verdict, "ok");
    const [row] = await sql`select compression, chunk_count from public.message_bus where transaction_id = ${id}::uuid`;
    const seq = row.chunk_count > 1 ? 1 : 0;
    await sql`update public.message_bus_chunks set data = overlay(data placing '\\x00'::bytea from 20 for 1)
              where transaction_id = ${id}::uuid and seq = ${seq}`;
    await sql`delete from public.message_bus_observations where transaction_id = ${id}::uuid`;
    const res = await post("watcher", service(), { transaction_id: id });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.verdict, "error");
    assert.equal(
      res.json.findings[0].code,
      "checksum_mismatch",
      `${row.compression}: ${JSON.stringify(res.json.findings)}`,
    );
  }
  // Gzip that decodes to its checksum but not to its stored digest (what message-fetch passes through by).
  const digest = await invoke(user.token, chatBody({ bytes: 5_000 }));
  const digestId = digest.json.transaction_id;
  assert.equal((await waitForObservation(sql, digestId)).verdict, "ok");
  const changed = await sql`update public.message_bus set stored_checksum = ${"sha256:" + "2".repeat(64)}
            where transaction_id = ${digestId}::uuid and compression = 'gzip' returning 1`;
  assert.equal(changed.length, 1, "the message is stored gzip");
  await sql`delete from public.message_bus_observations where transaction_id = ${digestId}::uuid`;
  const refused = await post("watcher", service(), { transaction_id: digestId });
  assert.equal(refused.json.findings[0].code, "checksum_mismatch", JSON.stringify(refused.json));
  assert.match(refused.json.findings[0].message, /do not match their own stored checksum/);
  // A chunk that is gone.
  const gone = await invoke(user.token, chatBody({}));
  assert.equal((await waitForObservation(sql, gone.json.transaction_id)).verdict, "ok");
  await sql`delete from public.message_bus_chunks where transaction_id = ${gone.json.transaction_id}::uuid`;
  await sql`delete from public.message_bus_observations where transaction_id = ${gone.json.transaction_id}::uuid`;
  const missing = await post("watcher", service(), { transaction_id: gone.json.transaction_id });
  assert.equal(missing.json.findings[0].code, "checksum_mismatch");
  assert.match(missing.json.findings[0].message, /chunk 0 is missing/);
  // Bytes that never matched: the trigger's own observation finds it.
  const body = completionBody("a fine answer");
  const stored = body.slice();
  stored[stored.length - 3] ^= 1;
  const id = await storeMessage(sql, user.id, body, { stored });
  assert.deepEqual(codes(await waitForObservation(sql, id)), ["checksum_mismatch", "partial_analysis"]);
});

Deno.test("a failed message gets an error observation (message_failed)", async () => {
  const user = await newUser();
  const res = await invoke(user.token, chatBody({ status: 400 }));
  assert.equal(res.status, 502, JSON.stringify(res.json));
  const o = await waitForObservation(sql, res.json.transaction_id);
  assert.deepEqual(codes(o), ["message_failed"]);
  assert.equal(o.verdict, "error");
});

Deno.test("the watcher is idempotent: one observation and one broadcast per message, even when called concurrently", async () => {
  const user = await newUser();
  const res = await invoke(user.token, chatBody({ finish_reason: "length" }));
  const id = res.json.transaction_id;
  const first = await waitForObservation(sql, id);
  const again = await post("watcher", service(), { transaction_id: id });
  assert.equal(again.status, 200);
  assert.equal(again.json.created, false);
  assert.equal(again.json.observation_id, Number(first.id));

  await sql`delete from public.message_bus_observations where transaction_id = ${id}::uuid`;
  const both = await Promise.all([1, 2, 3].map(() => post("watcher", service(), { transaction_id: id })));
  assert.deepEqual(both.map((b) => b.status), [200, 200, 200]);
  assert.equal(both.filter((b) => b.json.created).length, 1);
  assert.equal(new Set(both.map((b) => b.json.observation_id)).size, 1);
  assert.equal((await observations(sql, id)).length, 1);
  const events =
    await sql`select 1 from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = ${id}`;
  assert.equal(events.length, 2, "one broadcast for the trigger's observation, one for the re-made one");
});

Deno.test("a message a dead drain held is observed after its claim ran out and the sweep; attempts are bounded", async () => {
  const user = await newUser();
  const id = await storeMessage(sql, user.id, completionBody("swept"), { loseWebhook: true });
  await new Promise((r) => setTimeout(r, 1500)); // what a drain would have needed (the one that held it is gone)
  assert.equal((await observations(sql, id)).length, 0);
  assert.equal((await sql`select bus.sweep_unobserved('0 seconds') as n`)[0].n >= 0, true);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await observations(sql, id)).length, 0, "a held message is left to its drain");

  // The claim runs out: the sweep (or a drain under way for other messages) takes it again.
  await sql`update bus.watch_queue set claimed_until = now() - interval '1 second' where transaction_id = ${id}::uuid`;
  await sql`select bus.sweep_unobserved('0 seconds')`;
  assert.equal((await waitForObservation(sql, id)).verdict, "ok");
  assert.equal((await sql`select 1 from bus.watch_queue where transaction_id = ${id}::uuid`).length, 0);

  const dead = await storeMessage(sql, user.id, completionBody("dead letter"), { loseWebhook: true });
  await sql`update bus.watch_queue set attempts = 5, claimed_until = null where transaction_id = ${dead}::uuid`;
  await sql`select bus.sweep_unobserved('0 seconds')`;
  await new Promise((r) => setTimeout(r, 1000));
  const [left] = await sql`select attempts from bus.watch_queue where transaction_id = ${dead}::uuid`;
  assert.equal(left.attempts, 5, "no sixth attempt");
  assert.equal((await observations(sql, dead)).length, 0);
  await sql`delete from public.message_bus where transaction_id = ${dead}::uuid`;
});

Deno.test("a forced model review asks the reviewer once and records its verdict and tokens", async () => {
  const user = await newUser();
  const tag = uniqueTag("watcher-review");
  const reviewer = JSON.stringify({ verdict: "error", summary: "The answer is nonsense" });
  const res = await invoke(
    user.token,
    chatBody({ content: `Some answer #standin ${JSON.stringify({ tag, content: reviewer })}` }),
  );
  const id = res.json.transaction_id;
  assert.equal((await waitForObservation(sql, id)).review, null);
  assert.equal(await standinCalls(tag), 0, "sampling is off by default: no review without asking");

  await sql`delete from public.message_bus_observations where transaction_id = ${id}::uuid`;
  const reviewed = await post("watcher", service(), { transaction_id: id, review: true });
  assert.equal(reviewed.status, 200, JSON.stringify(reviewed.json));
  assert.equal(reviewed.json.review.status, "done");
  assert.equal(reviewed.json.review.provider, "glm");
  assert.equal(reviewed.json.verdict, "warning", "a model's concern is at most a warning");
  assert.match(reviewed.json.findings.find((f: { code: string }) => f.code === "review_flagged").message, /nonsense/);
  const [o] = await observations(sql, id);
  assert.ok((o.review_tokens ?? 0) > 0);
  assert.equal(await standinCalls(tag), 1);
  const repeat = await post("watcher", service(), { transaction_id: id, review: true });
  assert.equal(repeat.json.created, false);
  assert.equal(await standinCalls(tag), 1, "a repeated call does not review again");
});

Deno.test("the owner receives the observation as Realtime event observation on bus:<uid> (supabase-js)", async () => {
  const user = await newUser();
  const supabase = createClient(testStack().url, testStack().anonKey, {
    accessToken: () => Promise.resolve(user.token),
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
  });
  try {
    await supabase.realtime.setAuth();
    const received: Array<Record<string, unknown>> = [];
    const channel = supabase.channel(`bus:${user.id}`, { config: { private: true } })
      .on("broadcast", { event: "observation" }, (msg) => received.push(msg.payload));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the channel was not joined within 10 s")), 10_000);
      channel.subscribe((status, err) => {
        if (status === "SUBSCRIBED") {
          clearTimeout(timer);
          resolve();
        } else if (status === "CHANNEL_ERROR" || status === "TIMED_OUT") {
          clearTimeout(timer);
          reject(new Error(`join failed: ${status} ${err?.message ?? ""}`));
        }
      });
    });
    const res = await invoke(user.token, chatBody({ finish_reason: "length" }));
    const id = res.json.transaction_id;
    const event = await waitFor(
      "the observation event",
      () => Promise.resolve(received.find((p) => p.transaction_id === id)),
    );
    assert.equal(event.verdict, "warning");
    assert.deepEqual((event.findings as Array<{ code: string }>).map((f) => f.code), ["truncated"]);
  } finally {
    await supabase.removeAllChannels();
    supabase.realtime.disconnect();
  }
});

Deno.test("watcher tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
