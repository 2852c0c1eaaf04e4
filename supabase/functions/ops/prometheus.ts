/**
 * The Prometheus text exposition format, version 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats), written
 * out by hand because the values come from the database, not from in-process instruments (prom-client's histograms
 * can only `observe()`). The rules it keeps, each tested in prometheus_test.ts against a parser:
 * - one `# HELP` and one `# TYPE` per family, before its samples, and a family's samples together;
 * - metric names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*` not starting with `__`;
 * - label values escape `\` `"` and newline; HELP text escapes `\` and newline;
 * - values as Go floats: `+Inf`, `-Inf`, `NaN`, otherwise the shortest round-tripping decimal;
 * - a histogram is `_bucket{le}` cumulative and ending at `le="+Inf"`, then `_sum` and `_count` (= the +Inf bucket);
 * - no label set twice in a family; the text ends with a newline.
 */

/** The content type of this format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

/** A counter or gauge sample. */
export interface Sample {
  labels: Labels;
  value: number;
}

/** One histogram series: `counts[i]` observations in (bounds[i-1], bounds[i]], the last in (bounds[n-1], +Inf). */
export interface HistogramSeries {
  labels: Labels;
  /** Finite upper bounds, ascending. */
  bounds: readonly number[];
  /** Per-bucket (not cumulative) counts; length bounds.length + 1. */
  counts: readonly number[];
  sum: number;
}

export type Family =
  | { name: string; help: string; type: "counter" | "gauge"; samples: Sample[] }
  | { name: string; help: string; type: "histogram"; series: HistogramSeries[] };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A value as Prometheus writes floats. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  if (extra) entries.push(extra);
  if (entries.length === 0) return "";
  for (const [name] of entries) {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`Invalid label name ${JSON.stringify(name)}`);
  }
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/**
 * Writes `families` in the text format.
 * @throws Error on an invalid metric or label name, a label set repeated within a family, or a histogram whose
 *   counts do not match its bounds.
 * @example
 * exposition([{ name: "up", help: "Up.", type: "gauge", samples: [{ labels: {}, value: 1 }] }]);
 * // "# HELP up Up.\n# TYPE up gauge\nup 1\n"
 */
export function exposition(families: readonly Family[]): string {
  const lines: string[] = [];
  const names = new Set<string>();
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`Invalid metric name ${JSON.stringify(f.name)}`);
    if (names.has(f.name)) throw new Error(`Metric family ${f.name} written twice`);
    names.add(f.name);
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    const seen = new Set<string>();
    const once = (labels: Labels) => {
      const key = labelText(labels);
      if (seen.has(key)) throw new Error(`${f.name}: label set ${key} written twice`);
      seen.add(key);
      return key;
    };
    if (f.type !== "histogram") {
      for (const s of f.samples) lines.push(`${f.name}${once(s.labels)} ${formatValue(s.value)}`);
      continue;
    }
    for (const s of f.series) {
      if ("le" in s.labels) throw new Error(`${f.name}: a histogram's labels may not include le`);
      if (s.counts.length !== s.bounds.length + 1) {
        throw new Error(
          `${f.name}: ${s.bounds.length} bounds need ${s.bounds.length + 1} counts, got ${s.counts.length}`,
        );
      }
      once(s.labels);
      let cumulative = 0;
      s.bounds.forEach((le, i) => {
        cumulative += s.counts[i];
        lines.push(`${f.name}_bucket${labelText(s.labels, ["le", formatValue(le)])} ${formatValue(cumulative)}`);
      });
      cumulative += s.counts[s.bounds.length];
      lines.push(`${f.name}_bucket${labelText(s.labels, ["le", "+Inf"])} ${formatValue(cumulative)}`);
      lines.push(`${f.name}_sum${labelText(s.labels)} ${formatValue(s.sum)}`);
      lines.push(`${f.name}_count${labelText(s.labels)} ${formatValue(cumulative)}`);
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}
