/**
 * Alerts on the running stack (CONTRACT.md §12; migration 20261126000430): each firing and each resolution reaches a
 * webhook sink on 127.0.0.1 once (through pg_net) and arrives as event `alert` on the private topic `ops`, which a
 * user cannot join. pg_cron evaluates every minute; the tests call bus.evaluate_alerts themselves (with the sink's
 * URL) and pause the cron job meanwhile, so that no evaluation without the sink takes their transitions.
 */
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { beginMessage, completeMessage, failMessage, fold, ops, webhookSink } from "./ops_helpers.ts";

const sql = adminSql();
const JOB = "message-bus-ops-alerts";

interface Alert {
  alert: string;
  status: "firing" | "resolved";
  summary: string;
  labels: Record<string, string>;
  started_at: string;
  text: string;
}

/** Runs `fn` with the every-minute alert job paused. */
async function withCronPaused<T>(fn: () => Promise<T>): Promise<T> {
  await sql`update cron.job set active = false where jobname = ${JOB}`;
  try {
    return await fn();
  } finally {
    await sql`update cron.job set active = true where jobname = ${JOB}`;
  }
}

/** The service role on the private topic `ops`, collecting `alert` events. */
async function opsChannel() {
  const stack = testStack();
  const supabase = createClient(stack.url, stack.serviceRoleKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { reconnectAfterMs: () => 60_000 },
  });
  await supabase.realtime.setAuth(stack.serviceRoleKey);
  const alerts: Alert[] = [];
  const channel = supabase.channel("ops", { config: { private: true } });
  channel.on("broadcast", { event: "alert" }, (m) => alerts.push(m.payload as Alert));
  const status = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no subscribe status within 5 s")), 5000);
    channel.subscribe((s, err) => {
      if (s === "SUBSCRIBED" || err) {
        clearTimeout(timer);
        resolve(err ? `${s}: ${err.message}` : s);
      }
    });
  });
  assert.equal(status, "SUBSCRIBED");
  return {
    alerts,
    close: async () => {
      await supabase.removeAllChannels();
      await supabase.realtime.disconnect();
    },
  };
}

const evaluate = (url: string) => sql`select * from bus.evaluate_alerts(${url})`;
const about = (bodies: Array<Record<string, unknown>>, alert: string, key: string, value: string) =>
  bodies.filter((b) => b.alert === alert && (b.labels as Record<string, string>)[key] === value) as unknown as Alert[];

Deno.test("a circuit that opens fires once and resolves once, to the webhook and on Realtime topic ops", async () => {
  const provider = `ops-alert-${crypto.randomUUID().slice(0, 8)}`;
  const sink = webhookSink();
  const channel = await opsChannel();
  try {
    await withCronPaused(async () => {
      await sql`insert into bus.routes (provider, model, state, consecutive_failures) values (${provider}, 'm', 'open', 5)`;
      const fired = (await evaluate(sink.url)).filter((t) => t.labels.provider === provider);
      assert.deepEqual(fired.map((t) => [t.rule, t.status]), [["circuit_open", "firing"]]);
      assert.ok(fired[0].webhook_request_id, "the webhook POST was queued");
      // Evaluated again while it still holds: nothing new is sent.
      assert.equal((await evaluate(sink.url)).filter((t) => t.labels.provider === provider).length, 0);

      await sql`update bus.routes set state = 'closed', consecutive_failures = 0 where provider = ${provider}`;
      const resolved = (await evaluate(sink.url)).filter((t) => t.labels.provider === provider);
      assert.deepEqual(resolved.map((t) => t.status), ["resolved"]);
      assert.equal((await evaluate(sink.url)).filter((t) => t.labels.provider === provider).length, 0);
    });

    const mine = await waitFor("both webhook POSTs", () => {
      const got = about(sink.bodies, "circuit_open", "provider", provider);
      return Promise.resolve(got.length >= 2 ? got : undefined);
    }, 15_000);
    assert.deepEqual(mine.map((b) => b.status), ["firing", "resolved"]);
    assert.deepEqual(mine[0].labels, { provider, model: "m" });
    assert.match(mine[0].summary, new RegExp(`Circuit open for ${provider}/m`));
    assert.equal(mine[0].text, `[FIRING] circuit_open: ${mine[0].summary}`);
    assert.equal(mine[1].started_at, mine[0].started_at, "the resolution names when it started");
    assert.ok(!Number.isNaN(Date.parse(mine[0].started_at)));

    const live = await waitFor("both Realtime events", () => {
      const got = channel.alerts.filter((a) => a.alert === "circuit_open" && a.labels.provider === provider);
      return Promise.resolve(got.length >= 2 ? got : undefined);
    });
    assert.deepEqual(live.map((a) => a.status), ["firing", "resolved"]);
    const { id: _id, ...firstLive } = live[0] as Alert & { id?: string };
    assert.deepEqual(firstLive, mine[0], "the Realtime payload is the webhook's JSON");
    // Give a duplicate time to show up: none may.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(about(sink.bodies, "circuit_open", "provider", provider).length, 2);
    assert.equal(channel.alerts.filter((a) => a.labels.provider === provider).length, 2);
  } finally {
    await sql`delete from bus.routes where provider = ${provider}`;
    await channel.close();
    await sink.close();
  }
});

Deno.test("a provider's error rate over 20 % with at least 20 messages fires; more successes resolve it", async () => {
  const provider = `ops-rate-${crypto.randomUUID().slice(0, 8)}`;
  const sink = webhookSink();
  try {
    await withCronPaused(async () => {
      for (let i = 0; i < 19; i++) {
        const id = await beginMessage(sql, { provider, model: "m" });
        if (i < 6) await failMessage(sql, id, { code: "provider_error", message: "boom" });
        else await completeMessage(sql, id);
      }
      await fold();
      assert.equal((await evaluate(sink.url)).filter((t) => t.labels.provider === provider).length, 0, "19 < 20");
      await failMessage(sql, await beginMessage(sql, { provider, model: "m" }), {
        code: "provider_error",
        message: "boom",
      });
      await fold();
      const fired = (await evaluate(sink.url)).filter((t) => t.labels.provider === provider);
      assert.deepEqual(fired.map((t) => [t.rule, t.status]), [["provider_error_rate", "firing"]]);
      assert.match(fired[0].summary, /7 of 20 messages failed \(35\.0 %\)/);
      for (let i = 0; i < 20; i++) await completeMessage(sql, await beginMessage(sql, { provider, model: "m" }));
      await fold();
      const resolved = (await evaluate(sink.url)).filter((t) => t.labels.provider === provider);
      assert.deepEqual(resolved.map((t) => [t.rule, t.status]), [["provider_error_rate", "resolved"]]);
    });
    const got = await waitFor("two webhook POSTs", () => {
      const b = about(sink.bodies, "provider_error_rate", "provider", provider);
      return Promise.resolve(b.length >= 2 ? b : undefined);
    }, 15_000);
    assert.deepEqual(got.map((b) => b.status), ["firing", "resolved"]);
  } finally {
    await sink.close();
  }
});

Deno.test("pending messages older than the reap window and a failing cleanup fire and resolve", async () => {
  const sink = webhookSink();
  try {
    await withCronPaused(async () => {
      // Whatever fires already (other tests' leftovers) is settled first.
      await evaluate(sink.url);
      const id = await beginMessage(sql, { provider: "kimi", model: "ops-stale" });
      await sql`update public.message_bus set created_at = now() - interval '16 minutes' where transaction_id = ${id}`;
      const [{ log }] = await sql`
        select bus.log_maintenance('cleanup', now(), 1, false, '{}'::jsonb, 'ops test: the cleanup failed') as log`;
      const fired = await evaluate(sink.url);
      assert.ok(fired.some((t) => t.rule === "pending_stale" && t.status === "firing"), JSON.stringify(fired));
      assert.ok(fired.some((t) => t.rule === "cleanup_failing" && t.status === "firing" && t.labels.job === "cleanup"));
      await failMessage(sql, id, { code: "worker_lost", message: "ops test" });
      await sql`select bus.log_maintenance('cleanup', now(), 1, true, '{}'::jsonb, null)`;
      const resolved = await evaluate(sink.url);
      assert.ok(
        resolved.some((t) => t.rule === "cleanup_failing" && t.status === "resolved"),
        JSON.stringify(resolved),
      );
      await sql`delete from bus.maintenance_log where id = ${log}`;
      const stale = await sql`select count(*)::int as n from public.message_bus
                               where status = 'pending' and created_at < now() - interval '15 minutes'`;
      if (stale[0].n === 0) assert.ok(resolved.some((t) => t.rule === "pending_stale" && t.status === "resolved"));
    });
  } finally {
    await sink.close();
  }
});

Deno.test("watcher error observations over the threshold make watcher_errors hold", async () => {
  const res = await fetch(`${testStack().functionsUrl}/tool-invoke`, {
    method: "POST",
    headers: { authorization: `Bearer ${testStack().serviceRoleKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      tool: "chat",
      owner_id: crypto.randomUUID(),
      input: { messages: [{ role: "user", content: `ops ${crypto.randomUUID()} #standin {"reasoning_only": true}` }] },
    }),
  }).then((r) => r.json());
  await waitFor(
    "the error observation",
    async () =>
      (await sql`select 1 from public.message_bus_observations
                            where transaction_id = ${res.transaction_id} and verdict = 'error'`)[0],
  );
  await fold();
  // The rule's threshold is changed inside a savepoint that is rolled back: no other test sees it.
  const held = { low: 0, high: 0, summary: "" };
  const ROLLBACK = "roll the rule back";
  await sql.begin((tx) =>
    tx.savepoint(async (sp) => {
      await sp`update bus.alert_rules set threshold = 1 where name = 'watcher_errors'`;
      const low = await sp`select * from bus.alert_conditions() where rule = 'watcher_errors'`;
      await sp`update bus.alert_rules set threshold = 1000000 where name = 'watcher_errors'`;
      const high = await sp`select * from bus.alert_conditions() where rule = 'watcher_errors'`;
      Object.assign(held, { low: low.length, high: high.length, summary: low[0]?.summary });
      throw new Error(ROLLBACK);
    }).catch((err) => {
      if (err.message !== ROLLBACK) throw err;
    })
  );
  assert.equal(held.low, 1);
  assert.equal(held.high, 0);
  const [{ threshold }] =
    await sql`select threshold::float8 as threshold from bus.alert_rules where name = 'watcher_errors'`;
  assert.equal(threshold, 10, "the rule is as it was");
  assert.match(held.summary, /watcher observations of verdict error in the last 5 minutes/);
});

Deno.test("another user cannot join the private topic ops, nor send on it", async () => {
  const stack = testStack();
  const user = await newUser();
  const supabase = createClient(stack.url, stack.anonKey, {
    accessToken: () => Promise.resolve(user.token),
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { reconnectAfterMs: () => 60_000 },
  });
  try {
    const channel = supabase.channel("ops", { config: { private: true } });
    const { status, err } = await new Promise<{ status: string; err?: Error }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no status within 5 s")), 5000);
      channel.subscribe((s, e) => {
        clearTimeout(timer);
        resolve({ status: s, err: e });
      });
    });
    assert.equal(status, "CHANNEL_ERROR");
    assert.match(err?.message ?? "", /Unauthorized/);
  } finally {
    await supabase.removeAllChannels();
    await supabase.realtime.disconnect();
  }
  // The database says the same: as that user, no row of topic ops is readable or writable.
  const rows = await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify({ role: "authenticated", sub: user.id })}, true),
                    set_config('realtime.topic', 'ops', true)`;
    const insert = await tx.savepoint((sp) =>
      sp`insert into realtime.messages (topic, extension, payload, event) values ('ops', 'broadcast', '{}', 'alert')`
    ).then(() => "allowed", (e) => e.code);
    const visible = await tx`select count(*)::int as n from realtime.messages where topic = 'ops'`;
    return { insert, visible: visible[0].n };
  });
  assert.equal(rows.insert, "42501");
  assert.equal(rows.visible, 0);
});

Deno.test("POST /ops/alerts/evaluate folds and evaluates; GET /ops/alerts lists what fires and the rules", async () => {
  const provider = `ops-alert-api-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await withCronPaused(async () => {
      await sql`insert into bus.routes (provider, model, state) values (${provider}, 'm', 'open')`;
      const res = await ops("/alerts/evaluate", { body: {} });
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.fold.messages_through);
      const mine = res.json.transitions.filter((t: { labels: { provider?: string } }) =>
        t.labels.provider === provider
      );
      assert.equal(mine.length, 1);
      assert.equal(mine[0].webhook_request_id, null, "no ALERT_WEBHOOK_URL on the test stack");
      const list = await ops("/alerts");
      assert.equal(list.status, 200);
      assert.ok(list.json.firing.some((a: { labels: { provider?: string } }) => a.labels.provider === provider));
      assert.deepEqual(
        list.json.rules.map((r: { name: string }) => r.name),
        ["circuit_open", "cleanup_failing", "pending_stale", "provider_error_rate", "watcher_errors"],
      );
      assert.ok(list.json.recent.some((e: { payload: Alert }) => e.payload.labels.provider === provider));
      await sql`delete from bus.routes where provider = ${provider}`;
      await ops("/alerts/evaluate", { body: {} });
      assert.ok(!(await ops("/alerts")).json.firing.some((a: Alert) => a.labels.provider === provider));
    });
    assert.equal((await ops("/alerts/evaluate", { body: { async: "yes" } })).status, 400);
    assert.equal((await ops("/alerts?recent=9999")).status, 400);
  } finally {
    await sql`delete from bus.routes where provider = ${provider}`;
  }
});

Deno.test("pg_cron folds and evaluates every minute; the alert job's command reaches the ops function", async () => {
  const jobs = await sql`select jobname, schedule, command, active from cron.job
                          where jobname in ('message-bus-ops-fold', 'message-bus-ops-alerts') order by jobname`;
  assert.deepEqual(jobs.map((j) => [j.jobname, j.schedule, j.active]), [
    ["message-bus-ops-alerts", "* * * * *", true],
    ["message-bus-ops-fold", "* * * * *", true],
  ]);
  assert.match(jobs[0].command, /bus\.call_function\('ops\/alerts\/evaluate'/);
  assert.equal(jobs[1].command, "select bus.ops_fold()");
  const [{ request_id }] = await sql.unsafe(jobs[0].command.replace(/^select /, "select ") + " as request_id");
  const response = await waitFor(
    "the pg_net response",
    async () => (await sql`select status_code from net._http_response where id = ${request_id}`)[0],
  );
  assert.equal(response.status_code, 202);
});

Deno.test("ops alerts tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
