import assert from "node:assert/strict";
import OpenAI from "openai";
import { chatBody, clientAt, controlRoute, eventually, withStandin } from "./_testing.ts";

/** The error a call rejects with (fails the test if it resolves). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return await call.then(
    (value) => assert.fail(`expected a failure, got ${JSON.stringify(value).slice(0, 200)}`),
    (e) => e,
  );
}

Deno.test("base paths with any prefix serve chat completions: /kimi/v1 and /glm/api/paas/v4", async () => {
  await withStandin(async (served) => {
    const kimi = await clientAt(served, "/kimi/v1").chat.completions.create(chatBody("hi kimi"));
    const glm = await clientAt(served, "/glm/api/paas/v4").chat.completions.create(
      chatBody("hi glm", undefined, "glm-4.6"),
    );
    assert.equal(kimi.choices[0].finish_reason, "stop");
    assert.equal(glm.model, "glm-4.6");
    const { prefixes } = served.stats();
    assert.equal(prefixes["/kimi"].chat_requests, 1);
    assert.equal(prefixes["/kimi/v1"].chat_requests, 1);
    assert.equal(prefixes["/glm/api/paas/v4"].chat_requests, 1);
    assert.equal(prefixes["/glm"].requests, 1);
  });
});

Deno.test("an outage answers its status under its prefix only, before authentication, until switched off", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const glm = clientAt(served, "/glm/api/paas/v4");
    const set = await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: "503", retry_after: 2 });
    assert.equal(set.status, 200);
    const error = await failure(kimi.chat.completions.create(chatBody("down")));
    assert.ok(error instanceof OpenAI.InternalServerError && error.status === 503, String(error));
    assert.equal(error.headers.get("retry-after"), "2");
    const models = await fetch(`${served.url}/kimi/v1/models`); // no key: the outage comes first
    assert.equal(models.status, 503);
    await models.body?.cancel();
    assert.equal((await glm.chat.completions.create(chatBody("up"))).choices[0].finish_reason, "stop");

    await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: 429 });
    const limited = await failure(kimi.chat.completions.create(chatBody("limited")));
    assert.ok(limited instanceof OpenAI.RateLimitError, String(limited));
    assert.equal(limited.headers.get("retry-after"), "1");

    await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: "off" });
    assert.equal((await kimi.chat.completions.create(chatBody("back"))).choices[0].finish_reason, "stop");
    await controlRoute(served, "POST", "outage", { prefix: "/kimi/", mode: "502" });
    assert.deepEqual(Object.keys(served.stats().outages), ["/kimi"]);
    assert.equal(((await failure(kimi.models.list())) as InstanceType<typeof OpenAI.APIError>).status, 502);
    const removed = await controlRoute(served, "DELETE", "outage?prefix=/kimi");
    assert.equal(removed.json.removed, 1);
    assert.equal((await kimi.models.list()).data.length > 0, true);
  });
});

Deno.test("outage hang never answers: the client times out, and the call leaves the gauge when it gives up", async () => {
  await withStandin(async (served) => {
    await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: "hang" });
    const started = performance.now();
    const error = await failure(clientAt(served, "/kimi/v1", 300).chat.completions.create(chatBody("hang")));
    assert.ok(error instanceof OpenAI.APIConnectionTimeoutError, String(error));
    assert.ok(performance.now() - started >= 300);
    assert.ok(await eventually(() => served.stats().prefixes["/kimi"].in_flight === 0), "the hang outlived its client");
    assert.equal(served.stats().prefixes["/kimi"].max_in_flight, 1);
  });
});

Deno.test("close() ends a hanging request at once", async () => {
  await withStandin(async (served) => {
    await controlRoute(served, "POST", "outage", { prefix: "/", mode: "hang" });
    const pending = fetch(`${served.url}/v1/models`).then((res) => res.status, (e) => e);
    assert.ok(await eventually(() => served.stats().inFlight === 1));
    const started = performance.now();
    await served.close();
    assert.ok(performance.now() - started < 2_000);
    const outcome = await pending;
    assert.ok(outcome === 499 || outcome instanceof TypeError, String(outcome));
    assert.equal(served.stats().inFlight, 0);
  });
});

Deno.test("outage reset closes the connection without an HTTP answer", async () => {
  await withStandin(async (served) => {
    await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: "reset" });
    const error = await failure(clientAt(served, "/kimi/v1").chat.completions.create(chatBody("reset")));
    assert.ok(error instanceof OpenAI.APIConnectionError && !(error instanceof OpenAI.APIConnectionTimeoutError));
    const raw = await failure(fetch(`${served.url}/kimi/v1/models`));
    assert.ok(raw instanceof TypeError, String(raw));
    assert.ok(await eventually(() => served.stats().prefixes["/kimi"].in_flight === 0));
  });
});

Deno.test("outage slow_body sends the headers at once and the body slowly", async () => {
  await withStandin(async (served) => {
    await controlRoute(served, "POST", "outage", { prefix: "/kimi", mode: "slow_body", interval_ms: 20 });
    const started = performance.now();
    const res = await fetch(`${served.url}/kimi/v1/models`, { headers: { authorization: "Bearer k" } });
    const headersAt = performance.now() - started;
    assert.equal(res.status, 200);
    const body = await res.json();
    const doneAt = performance.now() - started;
    assert.ok(body.data.length > 0);
    assert.ok(headersAt < 100, `headers after ${headersAt} ms`);
    assert.ok(doneAt > headersAt + 300, `the body took ${doneAt - headersAt} ms`);
  });
});

Deno.test("a script directive plays 500, 429, hang, then ok for the calls of its tag", async () => {
  await withStandin(async (served) => {
    const body = chatBody("scripted", { tag: "s1", script: [500, 429, "hang", "ok"], retry_after: 0 });
    const client = clientAt(served, "/v1", 300);
    const first = await failure(client.chat.completions.create(body));
    assert.ok(first instanceof OpenAI.InternalServerError && first.status === 500, String(first));
    const second = await failure(client.chat.completions.create(body));
    assert.ok(second instanceof OpenAI.RateLimitError, String(second));
    assert.equal(second.headers.get("retry-after"), "0");
    const third = await failure(client.chat.completions.create(body));
    assert.ok(third instanceof OpenAI.APIConnectionTimeoutError, String(third));
    for (let call = 4; call <= 5; call++) {
      assert.equal((await client.chat.completions.create(body)).choices[0].finish_reason, "stop", `call ${call}`);
    }
    assert.equal(served.standin.calls("s1"), 5);
  });
});

Deno.test("script steps can reset the connection or merge directive keys such as a cut", async () => {
  await withStandin(async (served, client) => {
    const script = ["reset", "reset", { cut_after_bytes: 20 }, { content: "fourth" }];
    const body = chatBody("steps", { tag: "s2", script });
    const reset = await failure(client.chat.completions.create(body));
    assert.ok(reset instanceof OpenAI.APIConnectionError, String(reset));
    // Deno's fetch sends a request again, once, when the connection closes without an answer: one SDK call
    // played two steps. A test scripting a reset for a Deno client writes it twice.
    assert.equal(served.standin.calls("s2"), 2);
    assert.ok(await failure(client.chat.completions.create(body)), "the cut body");
    assert.equal((await client.chat.completions.create(body)).choices[0].message.content, "fourth");
    assert.match((await client.chat.completions.create(body)).choices[0].message.content ?? "", /^Stand-in answer/);
  });
});

Deno.test("POST /__standin/script scripts a prefix's chat calls without touching the prompt", async () => {
  await withStandin(async (served) => {
    const set = await controlRoute(served, "POST", "script", {
      prefix: "/glm",
      steps: [503, { finish_reason: "length" }, "ok"],
      retry_after: 0,
    });
    assert.equal(set.status, 200);
    const glm = clientAt(served, "/glm/api/paas/v4");
    const unavailable = await failure(glm.chat.completions.create(chatBody("a")));
    assert.ok(unavailable instanceof OpenAI.APIError && unavailable.status === 503);
    assert.equal(unavailable.headers.get("retry-after"), "0");
    assert.equal((await glm.chat.completions.create(chatBody("b"))).choices[0].finish_reason, "length");
    assert.equal((await glm.chat.completions.create(chatBody("c"))).choices[0].finish_reason, "stop");
    assert.equal(
      (await clientAt(served, "/kimi/v1").chat.completions.create(chatBody("d"))).choices[0].finish_reason,
      "stop",
    );
    assert.equal(served.stats().scripts["/glm"].calls, 3);
    assert.equal((await controlRoute(served, "DELETE", "script?prefix=/glm")).json.removed, 1);
  });
});

Deno.test("max_in_flight records how many calls ran at once per prefix; reset lowers it", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const slow = (n: number) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => kimi.chat.completions.create(chatBody(`c${i}`, { latency_ms: 150 }))),
      );
    await slow(6);
    assert.equal(served.stats().prefixes["/kimi/v1"].max_in_flight, 6);
    assert.equal(served.stats().prefixes["/kimi/v1"].in_flight, 0);
    const reset = await controlRoute(served, "POST", "reset");
    assert.equal(reset.status, 200);
    assert.equal(served.stats().prefixes["/kimi/v1"], undefined);
    for (let i = 0; i < 3; i++) await kimi.chat.completions.create(chatBody(`seq${i}`));
    assert.equal(served.stats().prefixes["/kimi/v1"].max_in_flight, 1);
    await slow(3);
    assert.equal(served.stats().prefixes["/kimi/v1"].max_in_flight, 3);
  });
});

Deno.test("a stream counts as in flight until its body has been sent", async () => {
  await withStandin(async (served) => {
    const kimi = clientAt(served, "/kimi/v1");
    const streams = Array.from(
      { length: 4 },
      (_, i) =>
        kimi.chat.completions.create({ ...chatBody(`s${i}`, { event_delay_ms: 20 }), stream: true }).then(async (s) => {
          for await (const _ of s) { /* drain */ }
        }),
    );
    assert.ok(await eventually(() => served.stats().prefixes["/kimi/v1"]?.in_flight === 4));
    await Promise.all(streams);
    assert.ok(await eventually(() => served.stats().prefixes["/kimi/v1"].in_flight === 0));
    assert.equal(served.stats().prefixes["/kimi/v1"].max_in_flight, 4);
  });
});

Deno.test("POST /__standin/reset clears tags, counters, outages and scripts", async () => {
  await withStandin(async (served, client) => {
    await client.chat.completions.create(chatBody("x", { tag: "t" }));
    await controlRoute(served, "POST", "outage", { prefix: "/glm", mode: "500" });
    await controlRoute(served, "POST", "script", { prefix: "/kimi", steps: [500] });
    await controlRoute(served, "POST", "reset");
    const { json } = await controlRoute(served, "GET", "stats");
    assert.deepEqual(json.tags, {});
    assert.deepEqual(json.outages, {});
    assert.deepEqual(json.scripts, {});
    assert.equal(json.chatRequests, 0);
    assert.equal(json.requests, 1, "only this stats request");
    assert.equal(served.standin.calls("t"), 0);
  });
});

Deno.test("control routes reject unknown keys, bad modes and prefixes, wrong methods and unknown routes", async () => {
  await withStandin(async (served) => {
    const bad = [
      { prefix: "/kimi", mode: "503", retry: 1 },
      { prefix: "/kimi", mode: "200" },
      { prefix: "/kimi", mode: "flaky" },
      { prefix: "kimi", mode: "503" },
      { prefix: "/__standin/stats", mode: "503" },
    ];
    for (const body of bad) {
      assert.equal((await controlRoute(served, "POST", "outage", body)).status, 400, JSON.stringify(body));
    }
    assert.equal((await controlRoute(served, "POST", "script", { prefix: "/x", steps: [200] })).status, 400);
    assert.equal((await controlRoute(served, "POST", "script", { prefix: "/x", steps: [{ latency: 1 }] })).status, 400);
    assert.equal((await controlRoute(served, "GET", "outage")).status, 405);
    assert.equal((await controlRoute(served, "GET", "nope")).status, 404);
    assert.deepEqual(served.stats().outages, {});
  });
});
