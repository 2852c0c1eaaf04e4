/**
 * The OpenAI-compatible endpoint and streaming (CONTRACT.md §10) against the running stack, with the `openai` npm
 * SDK as the client (unchanged: only its base URL and API key point at the bus) and raw fetches where bytes are
 * compared: non-streamed answers are the provider's bytes with their checksum; streamed answers are relayed as they
 * arrive and the bytes the client received equal the stored bytes (1 KB, 100 KB, 10 MB of content); a client that
 * leaves loses nothing; a cut, stalled or broken stream is never a clean end; fallbacks happen only before the first
 * byte; errors come in OpenAI's shape.
 *
 * The test stack runs with PROVIDER_STREAM_IDLE_MS=1500 (devstack/test_runner.ts).
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { fetchJson, sha256Hex, standinCalls, uniqueTag } from "./claim_check_helpers.ts";

const sql = adminSql();
const base = `${testStack().functionsUrl}/openai/v1`;
const client = (token: string) => new OpenAI({ apiKey: token, baseURL: base, maxRetries: 0 });
const prompt = (directive?: Record<string, unknown>) =>
  `openai ${crypto.randomUUID()}${directive ? ` #standin ${JSON.stringify(directive)}` : ""}`;
const model = (what: string) => `kimi/openai-${what}-${crypto.randomUUID().slice(0, 8)}`;
const decoder = new TextDecoder();

/** A raw POST to the endpoint; the body's bytes exactly as they came. */
async function post(token: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** The stored payload through message-fetch, and the meta. */
async function stored(token: string, id: string, query = "") {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, bytes };
}
const meta = async (token: string, id: string) => (await fetchJson(token, `/${id}/meta`)).json;

/** Waits for the message to leave `pending`. */
const finished = (token: string, id: string) =>
  waitFor(`message ${id} finished`, async () => {
    const m = await meta(token, id);
    return m.status === "pending" ? undefined : m;
  }, 20_000);

const events = (bytes: Uint8Array) =>
  decoder.decode(bytes).split(/\n\n/).filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));

Deno.test("non-streamed, through the openai SDK: the provider's bytes exactly, with x-bus-transaction-id and x-bus-checksum", async () => {
  const user = await newUser();
  const { data, response } = await client(user.token).chat.completions.create({
    model: model("plain"),
    messages: [{ role: "user", content: prompt() }],
  }).withResponse();
  assert.equal(response.status, 200);
  const id = response.headers.get("x-bus-transaction-id")!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.match(data.choices[0].message.content!, /Stand-in answer/);

  const raw = await post(user.token, { model: model("plain-raw"), messages: [{ role: "user", content: prompt() }] });
  const rawId = raw.res.headers.get("x-bus-transaction-id")!;
  assert.equal(raw.res.headers.get("x-bus-checksum"), `sha256:${sha256Hex(raw.bytes)}`);
  const fetched = await stored(user.token, rawId);
  assert.equal(fetched.status, 200);
  assert.deepEqual(fetched.bytes, raw.bytes, "the answer is the stored payload, byte for byte");
  const m = await meta(user.token, rawId);
  assert.equal(m.stream, false);
  assert.equal(m.provider, "kimi");
  assert.equal(m.checksum, `sha256:${sha256Hex(raw.bytes)}`);
});

for (const size of [1024, 100 * 1024, 10 * 1024 * 1024]) {
  Deno.test(`a streamed answer with ${size} bytes of content: the bytes the client received are the stored bytes`, async () => {
    const user = await newUser();
    const { res, bytes } = await post(user.token, {
      model: model(`s${size}`),
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: prompt({ bytes: size, reasoning: size === 1024 }) }],
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    assert.equal(res.headers.get("x-accel-buffering"), "no");
    const id = res.headers.get("x-bus-transaction-id")!;
    const all = events(bytes);
    assert.equal(all.at(-1), "[DONE]");
    assert.ok(all.length >= 3, `${all.length} events`);
    const m = await finished(user.token, id);
    assert.equal(m.status, "completed");
    assert.equal(m.stream, true);
    assert.equal(m.checksum, `sha256:${sha256Hex(bytes)}`, "the checksum is the sha256 of the bytes relayed");
    assert.equal(m.payload_size_bytes, bytes.length);
    assert.equal(m.finish_reason, "stop");
    const fetched = await stored(user.token, id);
    assert.equal(fetched.status, 200);
    assert.ok(fetched.bytes.length === bytes.length && sha256Hex(fetched.bytes) === sha256Hex(bytes));
    const [row] = await sql`select ttft_ms, usage from public.message_bus where transaction_id = ${id}`;
    assert.ok(row.ttft_ms !== null && row.ttft_ms >= 0, `ttft_ms ${row.ttft_ms}`);
    assert.ok(row.usage?.total_tokens > 0, "the usage chunk was read");
  });
}

Deno.test("the openai SDK's stream helpers (create with stream, chat.completions.stream) read the relayed stream", async () => {
  const user = await newUser();
  const openai = client(user.token);
  const { data: stream, response } = await openai.chat.completions.create({
    model: model("sdk-stream"),
    stream: true,
    messages: [{ role: "user", content: prompt({ reasoning: true }) }],
  }).withResponse();
  let text = "", reasoning = "";
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
    text += delta?.content ?? "";
    reasoning += delta?.reasoning_content ?? "";
  }
  assert.match(text, /Stand-in answer/);
  const id = response.headers.get("x-bus-transaction-id")!;
  assert.equal((await finished(user.token, id)).status, "completed");
  // The stored stream assembled into one chat.completion (message-fetch /completion) says what the client read.
  const assembled = await fetchJson(user.token, `/${id}/completion`);
  assert.equal(assembled.status, 200);
  assert.equal(assembled.json.object, "chat.completion");
  assert.equal(assembled.json.choices[0].message.content, text);
  assert.equal(assembled.json.choices[0].message.reasoning_content, reasoning);
  assert.ok(reasoning.length > 0);

  const runner = openai.chat.completions.stream({
    model: model("sdk-helper"),
    messages: [{ role: "user", content: prompt({ finish_reason: "tool_calls" }) }],
  });
  const completion = await runner.finalChatCompletion();
  assert.equal(completion.choices[0].finish_reason, "tool_calls");
  assert.ok(completion.choices[0].message.tool_calls?.length, "tool-call fragments assembled by the SDK");
});

Deno.test("a client that leaves mid-stream loses nothing: the bus reads the provider to the end and completes the message", async () => {
  const user = await newUser();
  const controller = new AbortController();
  const res = await fetch(`${base}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: model("abort"),
      stream: true,
      messages: [{ role: "user", content: prompt({ bytes: 4096, delta_bytes: 64, event_delay_ms: 20 }) }],
    }),
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const id = res.headers.get("x-bus-transaction-id")!;
  const reader = res.body!.getReader();
  await reader.read(); // the first bytes
  controller.abort();
  await reader.cancel().catch((err) => assert.ok(err instanceof Error));
  const m = await finished(user.token, id);
  assert.equal(m.status, "completed", JSON.stringify(m.error));
  const all = events((await stored(user.token, id)).bytes);
  assert.equal(all.at(-1), "[DONE]", "the whole stream is stored");
  assert.ok(all.length > 60, `${all.length} events stored`);
});

/** A stream that must end badly: the client's bytes, the message failed as `code`, the partial kept. */
async function brokenStream(directive: Record<string, unknown>, code = "stream_incomplete") {
  const user = await newUser();
  const { res, bytes } = await post(user.token, {
    model: model("broken"),
    stream: true,
    messages: [{ role: "user", content: prompt({ bytes: 4096, ...directive }) }],
  });
  assert.equal(res.status, 200);
  const id = res.headers.get("x-bus-transaction-id")!;
  const all = events(bytes);
  assert.ok(!all.includes("[DONE]"), "no [DONE] after a broken stream");
  const last = JSON.parse(all.at(-1)!);
  assert.equal(last.error?.code, code, `the last event is the bus's error: ${all.at(-1)}`);
  const m = await finished(user.token, id);
  assert.equal(m.status, "failed");
  assert.equal(m.error.code, code);
  assert.equal(m.stream, true);
  // What the client received is what stays stored for diagnosis, checksummed.
  const [row] = await sql`
    select checksum, payload_size_bytes, (select count(*)::int from public.message_bus_chunks c
                                           where c.transaction_id = m.transaction_id) as chunks
      from public.message_bus m where transaction_id = ${id}`;
  assert.equal(row.checksum, `sha256:${sha256Hex(bytes)}`);
  assert.equal(Number(row.payload_size_bytes), bytes.length);
  assert.ok(row.chunks >= 1);
  assert.equal((await stored(user.token, id)).status, 409, "a failed message has no payload for a plain fetch");
  const partial = await stored(user.token, id, "?partial=1");
  assert.equal(partial.status, 200);
  assert.deepEqual(partial.bytes, bytes, "?partial=1 serves exactly what the client received");
  const observed = await waitFor(
    "the watcher's observation",
    async () => (await meta(user.token, id)).watcher ?? undefined,
  );
  assert.equal(observed.verdict, "error");
  assert.ok(observed.findings.some((f: { code: string }) => f.code === code || f.code === "stream_incomplete"));
  return { user, id, bytes, m };
}

Deno.test("a provider that cuts the stream mid-event: an error event to the client, failed stream_incomplete, partial kept", async () => {
  const { bytes } = await brokenStream({ cut_after_bytes: 700 });
  assert.ok(bytes.length > 700);
});

Deno.test("a stalled stream ends after PROVIDER_STREAM_IDLE_MS as stream_incomplete", async () => {
  const started = performance.now();
  const { m } = await brokenStream({ stall_after_bytes: 500 });
  assert.ok(performance.now() - started >= 1400, "waited for the idle limit");
  assert.match(m.error.message, /sent nothing for 1500 ms/);
});

Deno.test("an error event mid-stream is never a clean end", async () => {
  const { id, m } = await brokenStream({ error_after_events: 3 });
  assert.match(m.error.message, /error event/);
  const [row] = await sql`select error from public.message_bus where transaction_id = ${id}`;
  assert.equal(typeof row.error.provider_error?.message, "string", "the provider's error event is recorded");
  assert.equal(row.error.saw_done, false);
});

Deno.test("a stream ending with neither [DONE] nor a finish_reason is incomplete; one with either is clean", async () => {
  await brokenStream({ malformed: true }); // ends cleanly in the middle of its second event
  const user = await newUser();
  for (const directive of [{ no_done: true }, { no_finish: true }]) {
    const { res } = await post(user.token, {
      model: model("ends"),
      stream: true,
      messages: [{ role: "user", content: prompt(directive) }],
    });
    const m = await finished(user.token, res.headers.get("x-bus-transaction-id")!);
    assert.equal(m.status, "completed", `${JSON.stringify(directive)}: ${JSON.stringify(m.error)}`);
  }
});

Deno.test("before the first byte a failed stream falls back (5xx, and a first event that is an error); after it, never", async () => {
  const user = await newUser();
  const tag = uniqueTag("stream-fallback");
  // `fallbacks` is the bus's own member (CONTRACT.md §10): the SDK sends unknown members as given.
  const params = {
    model: model("fb"),
    stream: true as const,
    fallbacks: ["glm"],
    // kimi's three attempts fail (one call and two retries), the fourth call (glm's) answers.
    messages: [{ role: "user" as const, content: prompt({ tag, script: [500, 500, 500, "ok"] }) }],
  };
  const { data, response } = await client(user.token).chat.completions.create(params).withResponse();
  let text = "";
  for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? "";
  assert.match(text, /glm/, "glm answered");
  const id = response.headers.get("x-bus-transaction-id")!;
  const m = await finished(user.token, id);
  assert.equal(m.status, "completed");
  assert.equal(m.provider, "glm");
  assert.deepEqual(m.attempts.map((a: { provider: string; outcome: string }) => `${a.provider}:${a.outcome}`), [
    "kimi:error",
    "kimi:error",
    "kimi:error",
    "glm:ok",
  ]);

  const errorFirst = await post(user.token, {
    model: model("fb-first-error"),
    stream: true,
    fallbacks: ["glm"],
    messages: [{
      role: "user",
      content: prompt({ tag: uniqueTag("first-error"), script: Array(3).fill({ error_after_events: 0 }) }),
    }],
  });
  const m2 = await finished(user.token, errorFirst.res.headers.get("x-bus-transaction-id")!);
  assert.equal(m2.status, "completed");
  assert.equal(m2.provider, "glm");
  assert.ok(m2.attempts.some((a: { error_code: string }) => a.error_code === "stream_error"));

  // Cut after the first event: the client already has bytes, so no fallback.
  const tag2 = uniqueTag("stream-no-fallback");
  const cut = await post(user.token, {
    model: model("fb-cut"),
    stream: true,
    fallbacks: ["glm"],
    messages: [{ role: "user", content: prompt({ tag: tag2, bytes: 4096, cut_after_bytes: 600 }) }],
  });
  const m3 = await finished(user.token, cut.res.headers.get("x-bus-transaction-id")!);
  assert.equal(m3.status, "failed");
  assert.equal(m3.error.code, "stream_incomplete");
  assert.deepEqual(m3.attempts.map((a: { provider: string }) => a.provider), ["kimi"]);
  assert.equal(await standinCalls(tag2), 1);
});

Deno.test("errors in OpenAI's shape: 400 naming the field, a provider's own 4xx passed on, 502 with the transaction id", async () => {
  const user = await newUser();
  const openai = client(user.token);
  await assert.rejects(
    openai.chat.completions.create({ model: "kimi", messages: [] }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      const e = err.error as { type: string; code: string; param: string };
      assert.equal(e.type, "invalid_request_error");
      assert.equal(e.code, "invalid_request");
      assert.equal(e.param, "messages");
      return true;
    },
  );
  const notFound = await post(user.token, {
    model: model("404"),
    messages: [{ role: "user", content: prompt({ status: 404 }) }],
  });
  assert.equal(notFound.res.status, 404, "the provider's 404 is passed on");
  const body404 = JSON.parse(decoder.decode(notFound.bytes));
  assert.equal(typeof body404.error.message, "string");
  assert.ok(notFound.res.headers.get("x-bus-transaction-id"), "the failure was recorded");

  const failed = await post(user.token, {
    model: model("502"),
    messages: [{ role: "user", content: prompt({ status: 500 }) }],
  });
  assert.equal(failed.res.status, 502);
  const body = JSON.parse(decoder.decode(failed.bytes));
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  assert.equal(body.error.type, "api_error");
  const id = failed.res.headers.get("x-bus-transaction-id")!;
  assert.equal((await meta(user.token, id)).status, "failed");

  const noAuth = await fetch(`${base}/chat/completions`, { method: "POST", body: "{}" });
  assert.equal(noAuth.status, 401);
  await noAuth.body?.cancel();
});

Deno.test("model routing: provider/model, provider alone (its default model), a bare name (the default provider)", async () => {
  const user = await newUser();
  const cases: [string, string, RegExp][] = [
    ["glm/glm-test-model", "glm", /^glm-test-model$/],
    ["glm", "glm", /./],
    ["some-bare-model", "kimi", /^some-bare-model$/],
    ["not-a-provider/x-model", "kimi", /^not-a-provider\/x-model$/],
  ];
  for (const [asked, provider, sent] of cases) {
    const { res } = await post(user.token, { model: asked, messages: [{ role: "user", content: prompt() }] });
    assert.equal(res.status, 200, asked);
    const m = await meta(user.token, res.headers.get("x-bus-transaction-id")!);
    assert.equal(m.provider, provider, asked);
    assert.match(m.attempts.at(-1).model, sent, asked);
  }
  const models = await client(user.token).models.list();
  assert.ok(models.data.some((m) => m.id.startsWith("kimi/")));
});

Deno.test("bus options by header: Idempotency-Key (one provider call, the same answer), X-Bus-Session-Id, X-Bus-TTL-Seconds", async () => {
  const user = await newUser();
  const tag = uniqueTag("openai-idem");
  const body = { model: model("idem"), stream: true, messages: [{ role: "user", content: prompt({ tag }) }] };
  const headers = { "idempotency-key": `k-${tag}`, "x-bus-session-id": "session-7", "x-bus-ttl-seconds": "3600" };
  const first = await post(user.token, body, headers);
  const id = first.res.headers.get("x-bus-transaction-id")!;
  await finished(user.token, id);
  const again = await post(user.token, body, headers);
  assert.equal(again.res.headers.get("x-bus-transaction-id"), id);
  assert.deepEqual(again.bytes, first.bytes, "the repeat is the stored stream");
  assert.equal(await standinCalls(tag), 1);
  const [row] = await sql`select session_id, extract(epoch from expires_at - created_at)::int as ttl
                            from public.message_bus where transaction_id = ${id}`;
  assert.equal(row.session_id, "session-7");
  assert.ok(Math.abs(row.ttl - 3600) <= 1, `ttl ${row.ttl}`);
  const bad = await post(user.token, body, { "x-bus-ttl-seconds": "soon" });
  assert.equal(bad.res.status, 400);
});

Deno.test("the stored request is the invoke it amounts to: a replay runs it again", async () => {
  const user = await newUser();
  const { res } = await post(user.token, {
    model: model("replay"),
    temperature: 0.5,
    messages: [{ role: "user", content: prompt() }],
  });
  const id = res.headers.get("x-bus-transaction-id")!;
  const replay = await fetch(`${testStack().functionsUrl}/tool-invoke/${id}/replay`, {
    method: "POST",
    headers: { authorization: `Bearer ${user.token}` },
  });
  const answer = await replay.json();
  assert.equal(replay.status, 200, JSON.stringify(answer));
  assert.equal((await meta(user.token, answer.transaction_id)).replay_of, id);
});

Deno.test("openai tests: close the database client", async () => {
  await sql.end();
});
