import assert from "node:assert/strict";
import OpenAI from "openai";
import { chatBody, clientAt, eventually, postChat, readAll, ssePayloads, withStandin } from "./_testing.ts";

const streamBody = (prompt: string, directive: Record<string, unknown>) => ({
  ...chatBody(prompt, directive),
  stream: true as const,
});

/** Iterates an SDK stream to its end; returns the chunks and the error that ended it, if any. */
async function iterate(client: OpenAI, body: ReturnType<typeof streamBody>) {
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  try {
    for await (const chunk of await client.chat.completions.create(body)) chunks.push(chunk);
    return { chunks, error: null };
  } catch (error) {
    return { chunks, error };
  }
}

Deno.test("cut_after_bytes sends exactly that many stream bytes, then drops the connection mid-event", async () => {
  await withStandin(async (served, client) => {
    const whole = await (await postChat(served, streamBody("cut me", {}))).text();
    const cutAt = Math.floor(new TextEncoder().encode(whole).length / 2) + 3;
    const { bytes, error } = await readAll(await postChat(served, streamBody("cut me", { cut_after_bytes: cutAt })));
    assert.equal(bytes.length, cutAt);
    assert.ok(error instanceof TypeError, `expected a network error, got ${error}`);
    assert.ok(!new TextDecoder().decode(bytes).includes("[DONE]"));
    const sameIds = (text: string) => text.replaceAll(/chatcmpl-[0-9a-f]{24}/g, "chatcmpl-x");
    const arrived = new TextDecoder().decode(bytes).replace(/\uFFFD$/, "");
    assert.ok(sameIds(whole).startsWith(sameIds(arrived)), "the bytes before the cut differ from the whole stream");

    const sdk = await iterate(client, streamBody("cut me", { cut_after_bytes: cutAt }));
    assert.ok(sdk.error, "the SDK must see the cut as an error");
    assert.ok(sdk.chunks.length > 0 && sdk.chunks.every((c) => c.choices[0]?.finish_reason == null));
    assert.ok(await eventually(() => served.stats().inFlight === 0));
  });
});

Deno.test("cut_after_bytes also cuts a non-streamed body, which the SDK reports as an error", async () => {
  await withStandin(async (served, client) => {
    const { bytes, error } = await readAll(await postChat(served, chatBody("cut json", { cut_after_bytes: 100 })));
    assert.equal(bytes.length, 100);
    assert.ok(error instanceof TypeError, String(error));
    const failed = await client.chat.completions.create(chatBody("cut json", { cut_after_bytes: 100 })).then(
      () => null,
      (e) => e,
    );
    assert.ok(failed, "the SDK resolved a cut body");
  });
});

Deno.test("stall_after_bytes sends that many bytes and then nothing, with the call still in flight", async () => {
  await withStandin(async (served) => {
    const left = new AbortController();
    const res = await fetch(`${served.url}/kimi/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: "Bearer k", "content-type": "application/json" },
      body: JSON.stringify(streamBody("stall", { stall_after_bytes: 50 })),
      signal: left.signal,
    });
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 50) received += (await reader.read()).value!.length;
    assert.equal(received, 50);
    const next = reader.read().then(() => "data", () => "aborted");
    const idle = new Promise((r) => setTimeout(() => r("idle"), 200));
    assert.equal(await Promise.race([next, idle]), "idle", "bytes arrived after the stall mark");
    assert.equal(served.stats().prefixes["/kimi/v1"].in_flight, 1);
    left.abort();
    assert.equal(await next, "aborted");
    assert.ok(
      await eventually(() => served.stats().prefixes["/kimi/v1"].in_flight === 0),
      "the stall outlived its client",
    );
  });
});

Deno.test("first_event_ms delays the first event but not the headers; event_delay_ms spaces events", async () => {
  await withStandin(async (served) => {
    const started = performance.now();
    const body = streamBody("slow", { content: "abc", first_event_ms: 250, event_delay_ms: 40 });
    const res = await postChat(served, body);
    const headersAt = performance.now() - started;
    const text = await res.text();
    const doneAt = performance.now() - started;
    assert.ok(headersAt < 200, `headers after ${headersAt} ms`);
    const events = ssePayloads(text).length;
    assert.equal(events, 4, "role, content, finish, [DONE]");
    assert.ok(doneAt >= 250 + 3 * 40, `stream took ${doneAt} ms`);
  });
});

Deno.test("error_after_events sends an error event instead of the rest and no [DONE]; the SDK throws it", async () => {
  await withStandin(async (served, client) => {
    const body = streamBody("fail mid-way", { error_after_events: 2 });
    const payloads = ssePayloads(await (await postChat(served, body)).text());
    assert.equal(payloads.length, 3);
    assert.equal(JSON.parse(payloads[2]).error.code, "stream_error");
    assert.ok(!payloads.includes("[DONE]"));

    const sdk = await iterate(client, body);
    assert.equal(sdk.chunks.length, 2);
    assert.ok(sdk.error instanceof OpenAI.APIError, String(sdk.error));
    assert.match(sdk.error.message, /error_after_events/);
  });
});

Deno.test("no_done ends after the finish_reason chunk without [DONE]; the SDK does not notice", async () => {
  await withStandin(async (served, client) => {
    const body = streamBody("no done", { no_done: true });
    const text = await (await postChat(served, body)).text();
    const payloads = ssePayloads(text);
    assert.ok(!text.includes("[DONE]"));
    assert.equal(JSON.parse(payloads.at(-1)!).choices[0].finish_reason, "stop");
    const sdk = await iterate(client, body);
    assert.equal(sdk.error, null, "the SDK ends quietly: a relay must check for [DONE] itself");
    assert.equal(sdk.chunks.at(-1)!.choices[0].finish_reason, "stop");
  });
});

Deno.test("no_finish ends with [DONE] but no finish_reason, which finalChatCompletion() rejects", async () => {
  await withStandin(async (served, client) => {
    const body = streamBody("no finish", { no_finish: true });
    const payloads = ssePayloads(await (await postChat(served, body)).text());
    assert.equal(payloads.pop(), "[DONE]");
    assert.ok(
      payloads.every((p) => JSON.parse(p).choices.every((c: { finish_reason: unknown }) => c.finish_reason === null)),
    );
    const error = await client.chat.completions.stream(chatBody("no finish", { no_finish: true })).finalChatCompletion()
      .then(() => null, (e) => e);
    assert.match(String(error), /missing finish_reason/);
  });
});

Deno.test("malformed streams: a non-JSON event, or a clean end in the middle of an event", async () => {
  await withStandin(async (served) => {
    const notJson = ssePayloads(await (await postChat(served, streamBody("bad", { malformed: "not_json" }))).text());
    assert.throws(() => JSON.parse(notJson[1]), SyntaxError);
    const quiet = new OpenAI({ apiKey: "k", baseURL: served.baseURL, maxRetries: 0, logLevel: "off" });
    const sdk = await iterate(quiet, streamBody("bad", { malformed: "not_json" }));
    assert.ok(sdk.error instanceof SyntaxError, String(sdk.error));

    const { bytes, error } = await readAll(await postChat(served, streamBody("bad", { malformed: "truncated" })));
    assert.equal(error, null, "a truncated stream closes cleanly");
    const text = new TextDecoder().decode(bytes);
    assert.ok(!text.endsWith("\n\n") && !text.includes("[DONE]"), JSON.stringify(text));
  });
});

Deno.test("stream faults work under any base path and are counted per prefix", async () => {
  await withStandin(async (served) => {
    const glm = clientAt(served, "/glm/api/paas/v4");
    const sdk = await iterate(glm, streamBody("glm", { error_after_events: 1 }));
    assert.ok(sdk.error instanceof OpenAI.APIError);
    const stats = served.stats().prefixes;
    assert.equal(stats["/glm"].streams, 1);
    assert.equal(stats["/glm/api/paas/v4"].chat_requests, 1);
  });
});
