/**
 * Test helper (not used by the function): checks Prometheus text exposition line by line against the 0.0.4 grammar
 * and the family rules that parse-prometheus-text-format does not enforce. Shared by prometheus_test.ts and the
 * stack tests (tests/ops_metrics_test.ts).
 */
import assert from "node:assert/strict";

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABELS =
  '\\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*")*)?\\}';
const VALUE = "(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|[+-]Inf|NaN)";
const SAMPLE = new RegExp(`^(${NAME})(${LABELS})? (${VALUE})$`);

/** Checks the text line by line against the 0.0.4 grammar and the family rules; returns the sample lines. */
export function strictLines(text: string): string[] {
  assert.ok(text === "" || text.endsWith("\n"), "the text ends with a newline");
  const lines = text.split("\n").slice(0, -1);
  const families = new Map<string, string>();
  let current: { name: string; type: string } | undefined;
  const samples: string[] = [];
  const histogram = new Map<string, { last: number; inf?: number; count?: number }>();
  for (const line of lines) {
    const help = /^# HELP ([^ ]+) (.*)$/.exec(line);
    const type = /^# TYPE ([^ ]+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (help) {
      assert.match(help[1], new RegExp(`^${NAME}$`));
      assert.ok(!families.has(help[1]), `HELP of ${help[1]} once`);
      assert.match(help[2], /^(?:[^\\]|\\[\\n])*$/, "HELP escapes only \\ and newline");
      current = { name: help[1], type: "" };
      continue;
    }
    if (type) {
      assert.equal(type[1], current?.name, "TYPE right after its HELP");
      families.set(type[1], type[2]);
      current = { name: type[1], type: type[2] };
      continue;
    }
    assert.doesNotMatch(line, /^#/, `no other comments: ${line}`);
    const m = SAMPLE.exec(line);
    assert.ok(m, `sample line matches the grammar: ${line}`);
    assert.ok(current, "a sample belongs to the family above it");
    const base = current.type === "histogram" ? m[1].replace(/_(bucket|sum|count)$/, "") : m[1];
    assert.equal(base, current.name, `${m[1]} is in its family's block`);
    samples.push(line);
    if (current.type === "histogram") {
      const labels = (m[2] ?? "").replace(/,?le="[^"]*"/, "").replace(/^\{\}$/, "");
      const key = `${current.name}${labels}`;
      const h = histogram.get(key) ?? { last: 0 };
      const v = Number(m[3] === "+Inf" ? Infinity : m[3]);
      if (m[1].endsWith("_bucket")) {
        assert.ok(h.inf === undefined, "no bucket after +Inf");
        assert.ok(v >= h.last, "buckets are cumulative");
        h.last = v;
        if (/le="\+Inf"/.test(m[2] ?? "")) h.inf = v;
      } else if (m[1].endsWith("_count")) h.count = v;
      histogram.set(key, h);
    }
  }
  for (const [key, h] of histogram) {
    if (h.inf !== undefined || h.count !== undefined) assert.equal(h.count, h.inf, `${key}: _count equals +Inf`);
  }
  return samples;
}
