/**
 * The exposition is checked two ways: parsed back with parse-prometheus-text-format (a port of the official Python
 * client's parser, prom2json's output shape), and line by line against the format's grammar (strictLines), which
 * that parser is lenient about: HELP/TYPE once and first, a family's samples together, cumulative buckets ending at
 * +Inf equal to _count. The parser folds histograms without labels only (its flattenMetrics keeps one series), so
 * labelled histograms are checked by strictLines and by their lines.
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { exposition, type Family, formatValue } from "./prometheus.ts";
import { familiesOf, type MetricRow } from "./metrics.ts";
import { DURATION_BOUNDS_MS } from "./histogram.ts";
import { strictLines } from "./_exposition_check.ts";

interface Parsed {
  name: string;
  help: string;
  type: string;
  metrics: Array<
    { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }
  >;
}
const parse = (text: string) => parsePrometheusTextFormat(text) as unknown as Parsed[];

Deno.test("exposition() writes counters and gauges a parser reads back, label values escaped", () => {
  const families: Family[] = [
    {
      name: "bus_requests_total",
      help: 'Requests with "quotes", a back\\slash\nand a newline.',
      type: "counter",
      samples: [
        { labels: { provider: "kimi", status: "completed" }, value: 3 },
        { labels: { provider: 'we"ird\\name\nx', status: "ünïcode ✓" }, value: 0.5 },
      ],
    },
    { name: "bus_messages", help: "Gauge.", type: "gauge", samples: [{ labels: {}, value: NaN }] },
    { name: "bus_empty", help: "No samples yet.", type: "gauge", samples: [] },
  ];
  const text = exposition(families);
  strictLines(text);
  const parsed = parse(text);
  assert.equal(parsed[0].name, "bus_requests_total");
  assert.equal(parsed[0].type, "COUNTER");
  assert.equal(parsed[0].help, 'Requests with "quotes", a back\\slash\nand a newline.');
  assert.deepEqual(parsed[0].metrics[1].labels, { provider: 'we"ird\\name\nx', status: "ünïcode ✓" });
  assert.equal(parsed[0].metrics[1].value, "0.5");
  assert.equal(parsed[1].metrics[0].value, "NaN");
  assert.match(text, /^bus_requests_total\{provider="we\\"ird\\\\name\\nx",status="ünïcode ✓"\} 0\.5$/m);
});

Deno.test("exposition() writes a histogram with cumulative buckets, +Inf, _sum and _count", () => {
  const series = (labels: Record<string, string>, counts: number[], sum: number) => ({
    labels,
    bounds: [0.1, 0.5, 1],
    counts,
    sum,
  });
  const family = (s: ReturnType<typeof series>[]): Family[] => [
    { name: "bus_provider_duration_seconds", help: "Provider time.", type: "histogram", series: s },
  ];
  // Without labels: the parser reads it back.
  const plain = exposition(family([series({}, [2, 0, 3, 1], 3.25)]));
  strictLines(plain);
  const [h] = parse(plain);
  assert.equal(h.type, "HISTOGRAM");
  assert.deepEqual(h.metrics[0].buckets, { "0.1": "2", "0.5": "2", "1": "5", "+Inf": "6" });
  assert.equal(h.metrics[0].count, "6");
  assert.equal(h.metrics[0].sum, "3.25");
  // With labels, two series: each complete and in order.
  const text = exposition(
    family([series({ provider: "kimi" }, [2, 0, 3, 1], 3.25), series({ provider: "glm" }, [0, 0, 0, 0], 0)]),
  );
  assert.deepEqual(strictLines(text), [
    'bus_provider_duration_seconds_bucket{provider="kimi",le="0.1"} 2',
    'bus_provider_duration_seconds_bucket{provider="kimi",le="0.5"} 2',
    'bus_provider_duration_seconds_bucket{provider="kimi",le="1"} 5',
    'bus_provider_duration_seconds_bucket{provider="kimi",le="+Inf"} 6',
    'bus_provider_duration_seconds_sum{provider="kimi"} 3.25',
    'bus_provider_duration_seconds_count{provider="kimi"} 6',
    'bus_provider_duration_seconds_bucket{provider="glm",le="0.1"} 0',
    'bus_provider_duration_seconds_bucket{provider="glm",le="0.5"} 0',
    'bus_provider_duration_seconds_bucket{provider="glm",le="1"} 0',
    'bus_provider_duration_seconds_bucket{provider="glm",le="+Inf"} 0',
    'bus_provider_duration_seconds_sum{provider="glm"} 0',
    'bus_provider_duration_seconds_count{provider="glm"} 0',
  ]);
  assert.throws(
    () => strictLines(text.replace('le="1"} 5', 'le="1"} 1')),
    /cumulative/,
    "the checker catches a bad one",
  );
});

Deno.test("exposition() refuses bad names, repeated label sets and mismatched histograms", () => {
  const gauge = (
    name: string,
    labels: Record<string, string>[],
  ) => [{ name, help: "h", type: "gauge" as const, samples: labels.map((l) => ({ labels: l, value: 1 })) }];
  assert.throws(() => exposition(gauge("bus-requests", [{}])), /Invalid metric name/);
  assert.throws(() => exposition(gauge("ok", [{ "bad-label": "x" }])), /Invalid label name/);
  assert.throws(() => exposition(gauge("ok", [{ __reserved: "x" }])), /Invalid label name/);
  assert.throws(() => exposition(gauge("ok", [{ a: "1", b: "2" }, { b: "2", a: "1" }])), /written twice/);
  assert.throws(() => exposition([...gauge("ok", [{}]), ...gauge("ok", [{}])]), /written twice/);
  assert.throws(
    () =>
      exposition([{
        name: "h",
        help: "h",
        type: "histogram",
        series: [{ labels: {}, bounds: [1, 2], counts: [1, 2], sum: 0 }],
      }]),
    /need 3 counts/,
  );
});

Deno.test("formatValue() writes Go's special floats and round-tripping decimals", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.3), "0.3");
  assert.equal(formatValue(1795695741.163023), "1795695741.163023");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(Number(formatValue(1e-7)), 1e-7);
});

Deno.test("familiesOf() turns the database rows into families: ms to seconds, sums, label sets with data only", () => {
  const route = { provider: "kimi", model: "k2", status: "completed", stream: "false" };
  const rows: MetricRow[] = [
    { metric: "requests", labels: route, bucket: null, value: 4 },
    { metric: "provider_ms", labels: route, bucket: 13, value: 3 }, // (70, 100] ms
    { metric: "provider_ms", labels: route, bucket: DURATION_BOUNDS_MS.length, value: 1 }, // +Inf
    { metric: "provider_ms_sum", labels: route, bucket: null, value: 600_300 },
    { metric: "ttft_ms_sum", labels: route, bucket: null, value: 0 }, // no observations: no series
    { metric: "messages", labels: { status: "pending" }, bucket: null, value: 2 },
  ];
  const text = exposition(familiesOf(rows));
  const lines = strictLines(text);
  const parsed = parse(text);
  const get = (name: string) => parsed.find((f) => f.name === name)!;
  assert.equal(get("bus_requests_total").metrics[0].value, "4");
  assert.equal(get("bus_messages").metrics[0].value, "2");
  const labels = 'model="k2",provider="kimi",status="completed",stream="false"';
  for (
    const line of [
      `bus_provider_duration_seconds_bucket{${labels},le="0.07"} 0`,
      `bus_provider_duration_seconds_bucket{${labels},le="0.1"} 3`,
      `bus_provider_duration_seconds_bucket{${labels},le="300"} 3`,
      `bus_provider_duration_seconds_bucket{${labels},le="+Inf"} 4`,
      `bus_provider_duration_seconds_sum{${labels}} 600.3`,
      `bus_provider_duration_seconds_count{${labels}} 4`,
    ]
  ) assert.ok(lines.includes(line), line);
  assert.equal(lines.filter((l) => l.startsWith("bus_ttft_seconds")).length, 0);
  for (const name of ["bus_circuit_state", "bus_fallbacks_total", "bus_watcher_findings_total", "bus_payload_bytes"]) {
    assert.ok(get(name), `${name} is always declared`);
  }
});
