/**
 * `GET /ops/series?minutes=<n>`: the operator dashboard's charts, one point per minute of the last n (minutes without
 * traffic included, as zeros): requests per second, error rate, p50/p95 of provider time, bus overhead and time to
 * first token, payload bytes. From the per-minute rollups (bus.ops_series).
 */
import { withDb } from "../_shared/db.ts";
import { denseCounts, DURATION_BOUNDS_MS, quantile } from "./histogram.ts";

export interface SeriesPoint {
  /** Start of the minute, ISO 8601. */
  minute: string;
  requests: number;
  failed: number;
  requests_per_second: number;
  error_rate: number | null;
  payload_bytes: number;
  provider_p50_ms: number | null;
  provider_p95_ms: number | null;
  overhead_p50_ms: number | null;
  overhead_p95_ms: number | null;
  ttft_p50_ms: number | null;
  ttft_p95_ms: number | null;
}

interface Row {
  minute: Date;
  requests: string;
  failed: string;
  payload_bytes: string;
  buckets: Record<string, Record<string, number>>;
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);

/** Builds the points from the rollup rows, filling the minutes without rows. Pure. */
export function seriesPoints(rows: readonly Row[], minutes: number, now: Date): SeriesPoint[] {
  const byMinute = new Map(rows.map((r) => [new Date(r.minute).getTime(), r]));
  const last = Math.floor(now.getTime() / 60_000) * 60_000;
  const points: SeriesPoint[] = [];
  for (let t = last - (minutes - 1) * 60_000; t <= last; t += 60_000) {
    const r = byMinute.get(t);
    const requests = Number(r?.requests ?? 0), failed = Number(r?.failed ?? 0);
    const q = (metric: string, p: number) =>
      round(quantile(DURATION_BOUNDS_MS, denseCounts(r?.buckets?.[metric] ?? {}, DURATION_BOUNDS_MS), p));
    points.push({
      minute: new Date(t).toISOString(),
      requests,
      failed,
      requests_per_second: Math.round((requests / 60) * 1000) / 1000,
      error_rate: requests ? failed / requests : null,
      payload_bytes: Number(r?.payload_bytes ?? 0),
      provider_p50_ms: q("provider_ms", 0.5),
      provider_p95_ms: q("provider_ms", 0.95),
      overhead_p50_ms: q("overhead_ms", 0.5),
      overhead_p95_ms: q("overhead_ms", 0.95),
      ttft_p50_ms: q("ttft_ms", 0.5),
      ttft_p95_ms: q("ttft_ms", 0.95),
    });
  }
  return points;
}

/** Reads the last `minutes` minutes. */
export async function readSeries(minutes: number): Promise<{ generated_at: string; points: SeriesPoint[] }> {
  // One transaction: the minutes of the rows and `now` agree.
  const { rows, now } = await withDb((sql) =>
    sql.begin(async (tx) => {
      const [{ now }] = await tx<{ now: Date }[]>`select now() as now`;
      return { rows: await tx<Row[]>`select * from bus.ops_series(${minutes})`, now };
    })
  );
  return { generated_at: now.toISOString(), points: seriesPoints(rows, minutes, now) };
}
