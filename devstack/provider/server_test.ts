import assert from "node:assert/strict";
import OpenAI from "openai";
import { chatBody, postChat, sha256Hex, withStandin } from "./_testing.ts";
import { ConnectionReset } from "./errors.ts";
import { createProviderStandin } from "./standin.ts";

Deno.test("chat without a directive answers a short deterministic answer with finish_reason stop", async () => {
  await withStandin(async (_served, client) => {
    const completion = await client.chat.completions.create(chatBody("What is a claim check?", undefined, "glm-4.6"));
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.model, "glm-4.6");
    assert.equal(completion.choices[0].finish_reason, "stop");
    assert.equal(completion.choices[0].message.role, "assistant");
    assert.match(completion.choices[0].message.content ?? "", /^Stand-in answer from glm-4\.6: you wrote 5 words/);
    assert.ok((completion.usage?.prompt_tokens ?? 0) > 0);
  });
});

Deno.test("a bytes directive of 1 MB gives a body within 1 % of that size whose multi-byte content parses", async () => {
  await withStandin(async (_served, client) => {
    const target = 1_000_000;
    const raw = await client.chat.completions.create(chatBody("fill", { bytes: target })).asResponse();
    const bytes = new Uint8Array(await raw.arrayBuffer());
    assert.ok(Math.abs(bytes.length - target) <= target / 100, `got ${bytes.length} bytes`);
    const body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    const content: string = body.choices[0].message.content;
    for (const needle of ["é", "漢字", "🙂"]) assert.ok(content.includes(needle), needle);
    assert.ok(new TextEncoder().encode(content).length > target * 0.99 - 1000);
  });
});

Deno.test("finish_reason length, content_filter and tool_calls come back as asked", async () => {
  await withStandin(async (_served, client) => {
    const length = await client.chat.completions.create(chatBody("long", { finish_reason: "length" }));
    assert.equal(length.choices[0].finish_reason, "length");
    const filtered = await client.chat.completions.create(chatBody("x", { finish_reason: "content_filter" }));
    assert.equal(filtered.choices[0].finish_reason, "content_filter");
    const tools = await client.chat.completions.create(chatBody("x", { finish_reason: "tool_calls" }));
    assert.equal(tools.choices[0].message.content, null);
    const call = tools.choices[0].message.tool_calls?.[0];
    assert.ok(call?.type === "function" && call.function.name === "lookup");
  });
});

Deno.test("reasoning_only returns empty content and a non-empty reasoning_content", async () => {
  await withStandin(async (_served, client) => {
    const empty = await client.chat.completions.create(chatBody("think", { reasoning_only: true }));
    const message = empty.choices[0].message as typeof empty.choices[0]["message"] & { reasoning_content?: string };
    assert.equal(message.content, "");
    assert.ok((message.reasoning_content ?? "").length > 20);
    const nulled = await client.chat.completions.create(chatBody("think", { reasoning_only: "null" }));
    assert.equal(nulled.choices[0].message.content, null);
  });
});

Deno.test("status 429 surfaces as the SDK's RateLimitError with Retry-After", async () => {
  await withStandin(async (_served, client) => {
    const error = await client.chat.completions.create(chatBody("x", { status: 429, retry_after: 7 })).then(
      () => assert.fail("expected a RateLimitError"),
      (e) => e,
    );
    assert.ok(error instanceof OpenAI.RateLimitError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.headers.get("retry-after"), "7");
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
  });
});

Deno.test("fail_times fails the first N calls with the tag, then succeeds", async () => {
  await withStandin(async (served, client) => {
    const body = chatBody("retry me", { tag: "retry-1", status: 503, fail_times: 2 });
    for (let i = 0; i < 2; i++) {
      const error = await client.chat.completions.create(body).then(() => null, (e) => e);
      assert.ok(error instanceof OpenAI.InternalServerError, `call ${i + 1}: ${error}`);
      assert.equal(error.status, 503);
      assert.equal(error.headers.get("retry-after"), "1");
    }
    const completion = await client.chat.completions.create(body);
    assert.equal(completion.choices[0].finish_reason, "stop");
    assert.equal(served.standin.calls("retry-1"), 3);
  });
});

Deno.test("latency_ms delays the answer by at least that long", async () => {
  await withStandin(async (_served, client) => {
    const started = performance.now();
    await client.chat.completions.create(chatBody("slow", { latency_ms: 300 }));
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 300 && elapsed < 10_000, `took ${elapsed} ms`);
  });
});

Deno.test("close() cuts a pending latency wait short", async () => {
  await withStandin(async (served) => {
    const pending = postChat(served, chatBody("slow", { latency_ms: 600_000 })).then(
      async (res) => {
        await res.body?.cancel();
        return res.status;
      },
      (e) => e,
    );
    const deadline = Date.now() + 5_000;
    while (served.stats().inFlight === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(served.stats().inFlight, 1);
    const started = performance.now();
    await served.close();
    assert.ok(performance.now() - started < 5_000, "close() waited for the latency");
    const outcome = await pending;
    assert.ok(outcome === 499 || outcome instanceof Error, `got ${outcome}`);
    assert.equal(served.stats().inFlight, 0);
  });
});

Deno.test("GET /__standin/calls counts the chat requests that carried a tag", async () => {
  await withStandin(async (served, client) => {
    const count = async (tag: string) =>
      (await (await fetch(`${served.url}/__standin/calls?tag=${encodeURIComponent(tag)}`)).json()).count;
    assert.equal(await count("once"), 0);
    await client.chat.completions.create(chatBody("a", { tag: "once" }));
    await client.chat.completions.create(chatBody("b", { tag: "twice" }));
    await client.chat.completions.create(chatBody("c", { tag: "twice" }));
    assert.equal(await count("once"), 1);
    assert.equal(await count("twice"), 2);
    assert.deepEqual(served.stats().tags, { once: 1, twice: 2 });
    assert.equal(served.stats().inFlight, 0);
    const missing = await fetch(`${served.url}/__standin/calls`);
    assert.equal(missing.status, 400);
    await missing.body?.cancel();
  });
});

Deno.test("a request without an API key gets 401 in the OpenAI error shape", async () => {
  await withStandin(async (served) => {
    // The SDK refuses an empty key, so send a blank one: the header becomes "Bearer" with no key.
    const noKey = new OpenAI({ apiKey: " ", baseURL: served.baseURL, maxRetries: 0 });
    const error = await noKey.chat.completions.create(chatBody("x")).then(() => null, (e) => e);
    assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
    const res = await postChat(served, chatBody("x"), null);
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.deepEqual(Object.keys(body.error), ["message", "type", "param", "code"]);
    assert.equal(body.error.code, "invalid_api_key");
    assert.equal(served.stats().chatRequests, 0);
  });
});

Deno.test("a body without model or messages gets a 400 naming the field", async () => {
  await withStandin(async (served) => {
    for (
      const [body, param] of [[{ messages: [{ role: "user", content: "x" }] }, "model"], [{ model: "m" }, "messages"]]
    ) {
      const res = await postChat(served, body);
      assert.equal(res.status, 400);
      const { error } = await res.json();
      assert.equal(error.param, param);
      assert.equal(error.type, "invalid_request_error");
    }
    const bad = await postChat(served, chatBody("x", { nope: 1 }));
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /Invalid #standin directive/);
  });
});

Deno.test("identical requests get byte-identical bodies", async () => {
  await withStandin(async (served) => {
    for (const body of [chatBody("same question"), chatBody("same", { bytes: 300_000, reasoning: true })]) {
      const first = new Uint8Array(await (await postChat(served, body)).arrayBuffer());
      const second = new Uint8Array(await (await postChat(served, body)).arrayBuffer());
      assert.ok(first.length > 100);
      assert.equal(await sha256Hex(first), await sha256Hex(second));
    }
    const other = new Uint8Array(await (await postChat(served, chatBody("other question"))).arrayBuffer());
    const same = new Uint8Array(await (await postChat(served, chatBody("same question"))).arrayBuffer());
    assert.notEqual(await sha256Hex(other), await sha256Hex(same));
  });
});

Deno.test("in process, a reset rejects fetch() with ConnectionReset, a TypeError like a network error", async () => {
  const standin = createProviderStandin();
  const body = JSON.stringify(chatBody("x", { tag: "r", script: ["reset"] }));
  const error = await standin.fetch(
    new Request("http://standin/v1/chat/completions", {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body,
    }),
  ).then(() => null, (e) => e);
  assert.ok(error instanceof ConnectionReset && error instanceof TypeError, String(error));
  assert.equal(standin.stats().inFlight, 0);
});
