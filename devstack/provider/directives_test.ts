import assert from "node:assert/strict";
import { DirectiveError, parseDirective } from "./directives.ts";

Deno.test("parseDirective() returns null and the whole prompt without a marker", () => {
  assert.deepEqual(parseDirective("Hello there"), { directive: null, prompt: "Hello there" });
});

Deno.test("parseDirective() reads the JSON object and strips it from the prompt", () => {
  const { directive, prompt } = parseDirective('Say hi #standin {"tag":"a}b{","bytes":1024,"json":true} please');
  assert.deepEqual(directive, { tag: "a}b{", bytes: 1024, json: true });
  assert.equal(prompt, "Say hi  please");
});

Deno.test("parseDirective() accepts a directive spread over lines", () => {
  const { directive } = parseDirective('x\n#standin\n{\n "status": 429,\n "retry_after": 0\n}');
  assert.deepEqual(directive, { status: 429, retry_after: 0 });
});

Deno.test("parseDirective() rejects unknown keys, so typos are loud", () => {
  assert.throws(() => parseDirective('#standin {"latency":5}'), DirectiveError);
});

Deno.test("parseDirective() rejects a marker without a JSON object", () => {
  assert.throws(() => parseDirective("#standin please"), /Expected a JSON object after #standin/);
  assert.throws(() => parseDirective('#standin {"tag": "x"'), /closing/);
  assert.throws(() => parseDirective("#standin {tag: 1}"), /Expected valid JSON/);
});

Deno.test("parseDirective() rejects out-of-range and conflicting keys", () => {
  assert.throws(() => parseDirective('#standin {"status":200}'), /status/);
  assert.throws(() => parseDirective('#standin {"finish_reason":"done"}'), /finish_reason/);
  assert.throws(() => parseDirective('#standin {"content":"x","bytes":10}'), /content and bytes exclude each other/);
  assert.throws(() => parseDirective('#standin {"fail_times":2,"status":500}'), /fail_times needs status and tag/);
});

Deno.test("parseDirective() accepts scripts of statuses, words and directive objects, with a tag", () => {
  const { directive } = parseDirective(
    '#standin {"tag":"s","script":[500,429,"hang","reset","slow_body",{"cut_after_bytes":10},"ok"]}',
  );
  assert.equal(directive?.script?.length, 7);
  assert.throws(() => parseDirective('#standin {"script":[500]}'), /script needs tag/);
  assert.throws(() => parseDirective('#standin {"tag":"s","script":[500],"status":500}'), /script and status/);
  assert.throws(() => parseDirective('#standin {"tag":"s","script":[200]}'), /script/);
  assert.throws(() => parseDirective('#standin {"tag":"s","script":["flaky"]}'), /script/);
  assert.throws(() => parseDirective('#standin {"tag":"s","script":[{"tag":"x"}]}'), /tag/);
  assert.throws(() => parseDirective('#standin {"tag":"s","script":[{"content":"a","bytes":1}]}'), /exclude/);
});

Deno.test("parseDirective() accepts the stream keys and rejects their bad values", () => {
  const keys = {
    first_event_ms: 5,
    event_delay_ms: 1,
    delta_bytes: 4,
    error_after_events: 0,
    no_done: true,
    no_finish: true,
    omit_tool_index: true,
    usage_in_choice: true,
    cut_after_bytes: 0,
  };
  assert.deepEqual(parseDirective(`#standin ${JSON.stringify(keys)}`).directive, keys);
  assert.throws(() => parseDirective('#standin {"delta_bytes":3}'), /delta_bytes/);
  assert.throws(() => parseDirective('#standin {"no_done":false}'), /no_done/);
  assert.throws(() => parseDirective('#standin {"cut_after_bytes":1,"stall_after_bytes":2}'), /exclude/);
});
