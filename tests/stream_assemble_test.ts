/**
 * The stream assembler (supabase/functions/_shared/stream/assemble.ts) against the provider stand-in's promise: a
 * streamed answer carries the same content as the non-streamed answer to the same request (devstack/provider
 * chat.ts). For random directives (reasoning, tool calls with and without `index`, usage at either level, tiny
 * deltas, filler), the stream, read incrementally straight off the wire, must assemble to the non-streamed body.
 * The stand-in runs in this process on 127.0.0.1.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { serveProviderStandin } from "../devstack/provider/server.ts";
import { assembleStream } from "../supabase/functions/_shared/stream/assemble.ts";

type Directive = Record<string, unknown>;

async function withStandin(fn: (baseURL: string) => Promise<void>): Promise<void> {
  const served = serveProviderStandin({ hostname: "127.0.0.1", port: 0 });
  try {
    await served.ready;
    await fn(`${served.url}/kimi/v1`);
  } finally {
    await served.close();
  }
}

async function chat(baseURL: string, prompt: string, d: Directive, stream: boolean, includeUsage: boolean) {
  const res = await fetch(`${baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: "Bearer standin", "content-type": "application/json" },
    body: JSON.stringify({
      model: "kimi-k2-thinking",
      messages: [{ role: "user", content: `${prompt} #standin ${JSON.stringify(d)}` }],
      stream,
      ...(stream && includeUsage ? { stream_options: { include_usage: true } } : {}),
    }),
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(res.status, 200, await (stream ? Promise.resolve("") : res.clone().text()));
  return res;
}

/**
 * The non-streamed body as the stream should assemble to it. The stand-in derives `id` and the tool call's id from
 * the request bytes, which differ by `stream`; usage is only streamed when asked for.
 */
function expectedFrom(whole: Record<string, unknown>, got: Record<string, unknown>, usageStreamed: boolean) {
  const expected = structuredClone(whole);
  expected.id = got.id;
  const message = (expected.choices as Record<string, Record<string, unknown>>[])[0].message;
  const gotMessage = (got.choices as Record<string, Record<string, unknown>>[])[0]?.message;
  if (Array.isArray(message.tool_calls)) {
    message.tool_calls.forEach((call, i) => {
      const gotId = (gotMessage?.tool_calls as { id: string }[] | undefined)?.[i]?.id;
      assert.match(gotId ?? "", /^call_/);
      call.id = gotId;
    });
  }
  // An empty reasoning field (`reasoning_only` with `bytes: 0`) is "" in the body but no delta at all in the stream,
  // as a provider sends no empty deltas: nothing to assemble, so the field is left out.
  if (message.reasoning_content === "" && !(gotMessage && "reasoning_content" in gotMessage)) {
    delete message.reasoning_content;
  }
  if (!usageStreamed) delete expected.usage;
  return expected;
}

const directives: fc.Arbitrary<{ d: Directive; includeUsage: boolean }> = fc.record({
  text: fc.oneof(
    fc.record({ content: fc.string({ unit: "grapheme", maxLength: 80 }) }, { requiredKeys: [] }),
    fc.record({
      bytes: fc.integer({ min: 0, max: 40_000 }),
      json: fc.constantFrom(true, "invalid"),
      reasoning_only: fc.constantFrom(true, "null"),
    }, { requiredKeys: [] }),
  ),
  reasoning: fc.boolean(),
  finish_reason: fc.constantFrom("stop", "length", "content_filter", "tool_calls"),
  omit_tool_index: fc.constant(true),
  usage_in_choice: fc.constant(true),
  delta_bytes: fc.integer({ min: 4, max: 64 }),
  seed: fc.integer(),
}, { requiredKeys: ["finish_reason"] }).chain(({ text, ...rest }) =>
  fc.record({ d: fc.constant({ ...text, ...rest } as Directive), includeUsage: fc.boolean() })
);

Deno.test("property: a stand-in stream assembles to the stand-in's non-streamed answer", async () => {
  await withStandin(async (baseURL) => {
    await fc.assert(
      fc.asyncProperty(directives, async ({ d, includeUsage }) => {
        const prompt = `assemble ${crypto.randomUUID()}`;
        const whole = await (await chat(baseURL, prompt, d, false, false)).json();
        const { completion, stats } = await assembleStream((await chat(baseURL, prompt, d, true, includeUsage)).body!);
        const usageStreamed = includeUsage || d.usage_in_choice === true;
        assert.deepEqual(completion, expectedFrom(whole, completion, usageStreamed));
        assert.equal(stats.done, true);
        assert.equal(stats.finished, true);
        assert.equal(stats.errors.length + stats.invalid, 0);
      }),
      { numRuns: 60 },
    );
  });
});

Deno.test("a 10 MB stream is read as it arrives and assembles to the non-streamed content", async () => {
  await withStandin(async (baseURL) => {
    const d = { bytes: 10 * 1024 * 1024, reasoning: true };
    const whole = await (await chat(baseURL, "large", d, false, false)).json();
    const res = await chat(baseURL, "large", d, true, true);
    let reads = 0, largest = 0;
    const counted = (async function* () {
      for await (const piece of res.body!) {
        reads++;
        largest = Math.max(largest, piece.length);
        yield piece;
      }
    })();
    const { completion, stats } = await assembleStream(counted);
    assert.deepEqual(completion, expectedFrom(whole, completion, true));
    assert.ok(stats.bytes > 10 * 1024 * 1024, `${stats.bytes} bytes`);
    assert.ok(reads > 10 && largest < stats.bytes / 4, `${reads} reads, the largest ${largest} bytes`);
  });
});
