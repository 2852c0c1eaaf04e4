/**
 * `GET /ops/metrics`: every series from one call of bus.ops_metric_rows (rollup totals and small tables, never the
 * message table: migration 20261126000440), shaped into Prometheus families. Durations are stored in ms and exposed
 * in seconds, as Prometheus names them.
 */
import { withDb } from "../_shared/db.ts";
import { DURATION_BOUNDS_MS, SIZE_BOUNDS_BYTES } from "./histogram.ts";
import type { Family, HistogramSeries, Labels, Sample } from "./prometheus.ts";

/** One row of bus.ops_metric_rows(). */
export interface MetricRow {
  metric: string;
  labels: Record<string, unknown>;
  bucket: number | null;
  value: number;
}

interface ScalarDef {
  id: string;
  name: string;
  type: "counter" | "gauge";
  help: string;
}

interface HistogramDef {
  id: string;
  name: string;
  help: string;
  bounds: readonly number[];
  /** Stored unit ÷ this = exposed unit (a division: 300 / 1000 is 0.3, 300 * 0.001 is not). */
  divisor: number;
}

const SCALARS: ScalarDef[] = [
  {
    id: "requests",
    name: "bus_requests_total",
    type: "counter",
    help: "Finished messages by provider, model, final status (completed or failed) and stream.",
  },
  {
    id: "request_bytes",
    name: "bus_request_bytes_total",
    type: "counter",
    help: "Bytes of the stored requests of finished messages.",
  },
  {
    id: "messages",
    name: "bus_messages",
    type: "gauge",
    help: "Messages by current status (pending live; the others as of the last fold).",
  },
  {
    id: "messages_purged",
    name: "bus_messages_purged_total",
    type: "counter",
    help: "Finished messages deleted (cleanup purges them after their retention), by the status they had.",
  },
  {
    id: "circuit_state",
    name: "bus_circuit_state",
    type: "gauge",
    help: "Circuit breaker state per route: 0 closed, 1 open, 2 half-open.",
  },
  {
    id: "circuit_consecutive_failures",
    name: "bus_circuit_consecutive_failures",
    type: "gauge",
    help: "Failed attempts in a row per route.",
  },
  {
    id: "in_flight",
    name: "bus_provider_in_flight",
    type: "gauge",
    help: "Provider calls in flight (unexpired concurrency leases).",
  },
  {
    id: "fallbacks",
    name: "bus_fallbacks_total",
    type: "counter",
    help: "Messages answered by another route than their first attempt's (from, to: providers; from_model, to_model).",
  },
  {
    id: "attempts",
    name: "bus_provider_attempts_total",
    type: "counter",
    help: "Provider attempts (retries and fallbacks included) by outcome.",
  },
  {
    id: "observations",
    name: "bus_watcher_observations_total",
    type: "counter",
    help: "Watcher observations by verdict.",
  },
  {
    id: "findings",
    name: "bus_watcher_findings_total",
    type: "counter",
    help: "Watcher findings by code and severity.",
  },
  {
    id: "pg_net_queue_depth",
    name: "bus_pg_net_queue_depth",
    type: "gauge",
    help: "Requests waiting in pg_net's queue.",
  },
  {
    id: "cleanup_runs",
    name: "bus_cleanup_runs_total",
    type: "counter",
    help: "Cleanup runs by result (complete, incomplete: budget spent, failed).",
  },
  {
    id: "cleanup_last_run",
    name: "bus_cleanup_last_run_timestamp_seconds",
    type: "gauge",
    help: "When the last cleanup run finished.",
  },
  {
    id: "cleanup_last_success",
    name: "bus_cleanup_last_success_timestamp_seconds",
    type: "gauge",
    help: "When the last cleanup run without an error finished.",
  },
  { id: "error_groups", name: "bus_error_groups", type: "gauge", help: "Error groups by status." },
  { id: "alerts_firing", name: "bus_alerts_firing", type: "gauge", help: "Alerts firing now, by rule." },
  {
    id: "fold_last_run",
    name: "bus_ops_fold_timestamp_seconds",
    type: "gauge",
    help: "When the rollups were last folded.",
  },
  {
    id: "fold_through",
    name: "bus_ops_fold_watermark_timestamp_seconds",
    type: "gauge",
    help: "Messages created before this time are in the rollups (stragglers aside).",
  },
];

const HISTOGRAMS: HistogramDef[] = [
  {
    id: "provider_ms",
    name: "bus_provider_duration_seconds",
    help: "Provider call time (retries included) per finished message.",
    bounds: DURATION_BOUNDS_MS,
    divisor: 1000,
  },
  {
    id: "overhead_ms",
    name: "bus_overhead_seconds",
    help: "Time the bus added to a message: recording to completion, less the provider's time.",
    bounds: DURATION_BOUNDS_MS,
    divisor: 1000,
  },
  {
    id: "ttft_ms",
    name: "bus_ttft_seconds",
    help: "Time to the first token of streamed answers.",
    bounds: DURATION_BOUNDS_MS,
    divisor: 1000,
  },
  {
    id: "payload_bytes",
    name: "bus_payload_bytes",
    help: "Payload size of completed messages.",
    bounds: SIZE_BOUNDS_BYTES,
    divisor: 1,
  },
];

function labelsOf(raw: Record<string, unknown>): Labels {
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)]));
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

/** Shapes the rows of bus.ops_metric_rows into families (scalars first, then histograms). Pure. */
export function familiesOf(rows: readonly MetricRow[]): Family[] {
  const byMetric = new Map<string, MetricRow[]>();
  for (const r of rows) byMetric.set(r.metric, [...(byMetric.get(r.metric) ?? []), r]);
  const families: Family[] = SCALARS.map((d) => ({
    name: d.name,
    help: d.help,
    type: d.type,
    samples: (byMetric.get(d.id) ?? []).map((r): Sample => ({ labels: labelsOf(r.labels), value: Number(r.value) })),
  }));
  for (const d of HISTOGRAMS) {
    const series = new Map<string, HistogramSeries & { counts: number[] }>();
    for (const r of byMetric.get(d.id) ?? []) {
      const labels = labelsOf(r.labels);
      const key = keyOf(labels);
      let s = series.get(key);
      if (!s) {
        s = {
          labels,
          bounds: d.bounds.map((b) => b / d.divisor),
          counts: new Array(d.bounds.length + 1).fill(0),
          sum: 0,
        };
        series.set(key, s);
      }
      const i = Number(r.bucket);
      if (Number.isInteger(i) && i >= 0 && i <= d.bounds.length) s.counts[i] += Number(r.value);
    }
    // Sums of label sets that have observations only: a label set with none (e.g. TTFT of unstreamed messages)
    // would be an empty histogram for every route.
    for (const r of byMetric.get(`${d.id}_sum`) ?? []) {
      const s = series.get(keyOf(labelsOf(r.labels)));
      if (s) s.sum = Number(r.value) / d.divisor;
    }
    families.push({ name: d.name, help: d.help, type: "histogram", series: [...series.values()] });
  }
  return families;
}

/** Reads every series (one round trip). */
export async function readMetricRows(): Promise<MetricRow[]> {
  return await withDb((sql) => sql<MetricRow[]>`select metric, labels, bucket, value from bus.ops_metric_rows()`);
}
