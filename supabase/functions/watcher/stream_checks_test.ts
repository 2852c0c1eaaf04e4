/** The checks of streamed messages, in-process: assembled streams per finding code, and the stream_incomplete text. */
import assert from "node:assert/strict";
import { StreamAssembler } from "../_shared/stream/assemble.ts";
import type { MessageFacts } from "./checks.ts";
import { checkStream, incompleteFinding } from "./stream_checks.ts";
import { verdictOf } from "./findings.ts";

const limits = { sizeWarningBytes: 32 * 1024 * 1024 };
const facts = (over: Partial<MessageFacts> = {}): MessageFacts => ({
  finishReason: "stop",
  wantsJson: false,
  parsed: null,
  payloadSize: 500,
  usage: null,
  ...over,
});
const codes = (r: { findings: { code: string }[] }) => r.findings.map((f) => f.code);

/** A stream of `deltas` (one event each) ending with `finish` and [DONE], assembled. */
function stream(deltas: Record<string, unknown>[], finish = "stop", opts: { maxChars?: number; tail?: string } = {}) {
  const event = (choices: unknown[]) =>
    `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices })}\n\n`;
  const text = [
    event([{ index: 0, delta: { role: "assistant", content: "" } }]),
    ...deltas.map((d) => event([{ index: 0, delta: d, finish_reason: null }])),
    event([{ index: 0, delta: {}, finish_reason: finish }]),
    opts.tail ?? "data: [DONE]\n\n",
  ].join("");
  const a = new StreamAssembler({ maxChars: opts.maxChars });
  a.push(new TextEncoder().encode(text));
  return a.end();
}

Deno.test("checkStream() finds nothing in a plain streamed answer (the SSE is not taken for a broken JSON body)", () => {
  const r = checkStream(stream([{ content: "Hello " }, { content: "world" }]), facts(), limits);
  assert.deepEqual(codes(r), []);
  assert.deepEqual(r.view, { content: "Hello world", reasoning: "" });
});

Deno.test("checkStream(): truncated, reasoning-only empty content, invalid JSON and error text, as for bodies", () => {
  assert.deepEqual(codes(checkStream(stream([{ content: "cut" }], "length"), facts(), limits)), ["truncated"]);
  const thinking = checkStream(stream([{ reasoning_content: "hmm, let me think" }]), facts(), limits);
  assert.deepEqual(codes(thinking), ["empty_content"]);
  assert.match(thinking.findings[0].message, /only reasoning_content came back \(17 characters\)/);
  assert.equal(verdictOf(thinking.findings), "error");
  const json = checkStream(stream([{ content: '{"a":' }, { content: "1" }]), facts({ wantsJson: true }), limits);
  assert.deepEqual(codes(json), ["invalid_json"]);
  const valid = checkStream(stream([{ content: '{"a":' }, { content: "1}" }]), facts({ wantsJson: true }), limits);
  assert.deepEqual(codes(valid), []);
  const error = checkStream(stream([{ content: "Error code: 429 - rate_limit_reached_error" }]), facts(), limits);
  assert.deepEqual(codes(error), ["error_as_content"]);
  const tools = stream([{ tool_calls: [{ index: 0, id: "c", function: { name: "f", arguments: "{}" } }] }]);
  assert.deepEqual(codes(checkStream(tools, facts(), limits)), [], "tool calls without content are an answer");
});

Deno.test("checkStream(): a stream without chunks, or with events that are not chunks, is not a chat completion", () => {
  const a = new StreamAssembler();
  a.push(new TextEncoder().encode("data: hello\n\n"));
  const none = checkStream(a.end(), facts(), limits);
  assert.deepEqual(codes(none), ["not_chat_completion"]);
  assert.match(none.findings[0].message, /no chat\.completion\.chunk events \(1 events in 13 bytes\)/);
  const garbage = checkStream(
    stream([{ content: "x" }], "stop", { tail: "data: <html>502</html>\n\n" }),
    facts(),
    limits,
  );
  assert.deepEqual(codes(garbage), ["not_chat_completion"]);
  assert.match(garbage.findings[0].message, /1 of the stream's 4 events .* "<html>502<\/html>"/);
});

Deno.test("checkStream(): text above the cap is checked by its start and reported as a partial analysis", () => {
  const big = stream([{ content: '{"answer":"' }, { content: "x".repeat(50) }], "stop", { maxChars: 20 });
  const r = checkStream(big, facts({ wantsJson: true }), limits);
  assert.deepEqual(codes(r), ["partial_analysis"], "a clipped JSON document is not parsed (it would not parse)");
  const prose = stream([{ content: "Sure! " + "x".repeat(50) }], "stop", { maxChars: 20 });
  assert.deepEqual(codes(checkStream(prose, facts({ wantsJson: true }), limits)), ["invalid_json", "partial_analysis"]);
});

Deno.test("incompleteFinding() says what arrived, apart from the bus's own error event", () => {
  const err = { code: "stream_incomplete", message: "The provider stopped sending for 30 s" };
  const busEvent = 'data: {"error":{"message":"cut","type":"stream_incomplete","code":"stream_incomplete"}}\n\n';
  const cut = stream([{ content: "par" }], "stop", { tail: busEvent }).stats;
  const f = incompleteFinding(err, cut);
  assert.equal(f.code, "stream_incomplete");
  assert.equal(f.severity, "error");
  assert.equal(
    f.message,
    `The provider's stream broke off (The provider stopped sending for 30 s): ${cut.bytes} bytes kept, ` +
      "3 events from the provider (3 complete chunks), no data: [DONE], a finish_reason came, 3 bytes of content and reasoning",
  );
  const provider = 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n' + busEvent;
  assert.match(
    incompleteFinding(err, stream([], "stop", { tail: provider }).stats).message,
    /error event: "overloaded"/,
  );
  assert.match(incompleteFinding(null, null).message, /without \[DONE\] or finish_reason\); nothing of it was kept$/);
});
