import assert from "node:assert/strict";
import { chatBody, postChat, withStandin } from "./_testing.ts";

Deno.test("a 20 MB body is streamed and received completely through the openai SDK", async () => {
  await withStandin(async (served, client) => {
    const target = 20 * 1024 * 1024;
    const raw = await client.chat.completions.create(chatBody("big", { bytes: target, tag: "big" })).asResponse();
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get("content-length"), null, "a streamed body has no Content-Length");
    const bytes = new Uint8Array(await raw.arrayBuffer());
    assert.equal(bytes.length, target);
    const body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.ok(body.choices[0].message.content.includes("🙂"));
    assert.equal(served.stats().inFlight, 0);
  });
});

Deno.test("a 1 GiB body starts at once without being built in memory, and a client leaving frees it", async () => {
  await withStandin(async (served) => {
    const started = performance.now();
    const res = await postChat(served, chatBody("huge", { bytes: 1024 ** 3 }));
    const reader = res.body!.getReader();
    let received = 0;
    while (received < 1024 * 1024) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the stream ended early");
      received += value.length;
    }
    assert.ok(performance.now() - started < 5_000, "the first MiB took too long: the body was built up front");
    assert.ok(Deno.memoryUsage().rss < 900 * 1024 * 1024, "the process holds a body-sized buffer");
    await reader.cancel();
    const deadline = Date.now() + 5_000;
    while (served.stats().inFlight !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(served.stats().inFlight, 0, "the cancelled stream still counts as in flight");
  });
});
