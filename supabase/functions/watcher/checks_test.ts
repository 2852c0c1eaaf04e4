/** The content checks, in-process: one body per finding code, and bodies that must pass clean. */
import assert from "node:assert/strict";
import { checkBody, checkEdges, checkFacts, type MessageFacts } from "./checks.ts";
import { finding, verdictOf } from "./findings.ts";

const limits = { sizeWarningBytes: 32 * 1024 * 1024 };

function facts(over: Partial<MessageFacts> = {}): MessageFacts {
  return {
    finishReason: "stop",
    wantsJson: false,
    parsed: true,
    payloadSize: 500,
    usage: { completion_tokens: 20 },
    ...over,
  };
}

function completion(
  message: Record<string, unknown>,
  finishReason = "stop",
  usage: unknown = { completion_tokens: 20 },
) {
  return JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion",
    model: "m",
    choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finishReason }],
    usage,
  });
}

const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

Deno.test("checkBody() finds nothing in a plain answer", () => {
  const r = checkBody(completion({ content: "Voilà — 漢字 🙂 a/b" }), facts(), limits);
  assert.deepEqual(codes(r), []);
  assert.equal(r.view?.content, "Voilà — 漢字 🙂 a/b");
});

Deno.test("checkBody() reports truncated for finish_reason length, with the tokens spent", () => {
  const r = checkBody(
    completion({ content: "cut" }, "length", { completion_tokens: 7 }),
    facts({ usage: { completion_tokens: 7 } }),
    limits,
  );
  assert.deepEqual(codes(r), ["truncated"]);
  assert.match(r.findings[0].message, /after 7 completion tokens/);
  assert.equal(verdictOf(r.findings), "warning");
});

Deno.test("checkBody() reports empty_content for a reasoning-only answer and says so", () => {
  for (const content of ["", null]) {
    const r = checkBody(completion({ content, reasoning_content: "thinking hard" }), facts(), limits);
    assert.deepEqual(codes(r), ["empty_content"]);
    assert.match(r.findings[0].message, /only reasoning_content came back \(13 characters\)/);
  }
  const none = checkBody(completion({ content: "   " }), facts(), limits);
  assert.equal(none.findings[0].message, "The response has no content");
  assert.equal(verdictOf(none.findings), "error");
});

Deno.test("checkBody() accepts null content when the answer is a tool call", () => {
  const r = checkBody(
    completion({ content: null, tool_calls: [{ id: "c", type: "function" }] }, "tool_calls"),
    facts(),
    limits,
  );
  assert.deepEqual(codes(r), []);
});

Deno.test("checkBody() reports invalid_json only when JSON output was asked for", () => {
  const broken = completion({ content: '{"answer": "cut' });
  assert.deepEqual(codes(checkBody(broken, facts({ wantsJson: true }), limits)), ["invalid_json"]);
  assert.deepEqual(codes(checkBody(broken, facts({ wantsJson: false }), limits)), []);
  assert.deepEqual(
    codes(checkBody(completion({ content: ' {"ok": true}\n' }), facts({ wantsJson: true }), limits)),
    [],
  );
  const fenced = checkBody(completion({ content: '```json\n{"ok": true}\n```' }), facts({ wantsJson: true }), limits);
  assert.match(fenced.findings[0].message, /Markdown code fence/);
});

Deno.test("checkBody() reports provider error text passed off as content", () => {
  const texts = [
    "Error code: 429 - {'error': {'message': 'Your account request reached organization max RPM: 3', 'type': 'rate_limit_reached_error'}}",
    '{"error": {"message": "upstream failed"}}',
    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    "<html><head><title>502 Bad Gateway</title></head></html>",
    "Request failed with error: insufficient_quota",
  ];
  for (const content of texts) {
    assert.deepEqual(codes(checkBody(completion({ content }), facts(), limits)), ["error_as_content"], content);
  }
  // Answers that talk about errors are not errors.
  const fine = [
    "To handle rate_limit_exceeded, retry with backoff. " + "More detail. ".repeat(60),
    "The error code 429 means too many requests.",
  ];
  for (const content of fine) assert.deepEqual(codes(checkBody(completion({ content }), facts(), limits)), [], content);
});

Deno.test("checkBody() reports a body that is not a chat completion", () => {
  assert.deepEqual(codes(checkBody("upstream connect error", facts({ parsed: false }), limits)), [
    "not_chat_completion",
  ]);
  assert.deepEqual(codes(checkBody('{"id": "x", "choices": [{"message": {"content": "cut', facts(), limits)), [
    "not_chat_completion",
  ]);
  const err = checkBody('{"error": {"message": "bad key"}}', facts(), limits);
  assert.match(err.findings[0].message, /an error object, "bad key"/);
});

Deno.test("checkBody() reports unusual sizes: above the warning size, or bytes the tokens cannot explain", () => {
  const big = checkBody(completion({ content: "fine" }), facts({ payloadSize: 40 * 1024 * 1024 }), limits);
  assert.deepEqual(codes(big), ["unusual_size"]);
  const padded = checkBody(
    completion({ content: "x".repeat(20_000) }, "stop", { completion_tokens: 10 }),
    facts({ usage: { completion_tokens: 10 } }),
    limits,
  );
  assert.deepEqual(codes(padded), ["unusual_size"]);
  assert.match(padded.findings[0].message, /20000 bytes for 10 completion tokens/);
});

Deno.test("checkEdges() finds empty content and JSON trouble from head and tail alone", () => {
  const head =
    '{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"","reasoning_content":"Stand-in filler';
  const tail = 'filler"},"finish_reason":"length"}],"usage":{"completion_tokens":9}}';
  const found = checkEdges(head, tail, facts({ finishReason: "length", payloadSize: 9e6 }), limits);
  assert.deepEqual(found.map((f) => f.code), ["truncated", "empty_content"]);
  assert.match(found[1].message, /only reasoning_content came back:/);

  const textHead = '{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Stand-in filler';
  const jsonTail = 'filler"},"finish_reason":"stop"}]}';
  assert.deepEqual(checkEdges(textHead, jsonTail, facts({ wantsJson: true }), limits).map((f) => f.code), [
    "invalid_json",
  ]);
  const jsonHead = '{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"{\\"answer\\":\\"Stand-in';
  assert.deepEqual(checkEdges(jsonHead, jsonTail, facts({ wantsJson: true }), limits), []);
  assert.deepEqual(checkEdges("not json at all", "still not", facts({ parsed: false }), limits).map((f) => f.code), [
    "not_chat_completion",
  ]);
});

Deno.test("checkFacts() reports content_filter, and verdictOf() ignores info findings", () => {
  assert.deepEqual(checkFacts(facts({ finishReason: "content_filter" }), limits).map((f) => f.code), [
    "content_filtered",
  ]);
  assert.equal(verdictOf([finding("partial_analysis", "head and tail only")]), "ok");
  assert.equal(verdictOf([]), "ok");
  assert.equal(
    verdictOf([finding("partial_analysis", "x"), finding("checksum_mismatch", "y"), finding("truncated", "z")]),
    "error",
  );
});
