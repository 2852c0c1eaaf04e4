/**
 * Per-provider figures for the dashboard, computed from the caller's message metadata: volume, error rate,
 * truncation rate (finish_reason `length`, the origin system's silent failure), watcher findings, provider latency
 * and bytes. Pure: the dashboard and its tests feed it `MessageMeta` rows.
 */
import type { MessageMeta } from "../types.ts";

export interface ProviderFigures {
  provider: string;
  total: number;
  pending: number;
  completed: number;
  failed: number;
  expired: number;
  /** failed ÷ (completed + failed); null before anything finished. */
  errorRate: number | null;
  /** completed with finish_reason `length` ÷ completed. */
  truncationRate: number | null;
  /** Completed messages whose watcher verdict is warning or error. */
  flagged: number;
  /** Median provider call time (ms) of completed messages. */
  medianProviderMs: number | null;
  payloadBytes: number;
}

/** Groups `messages` by provider (sorted by name) with their figures. */
export function providerFigures(messages: Iterable<MessageMeta>): ProviderFigures[] {
  const groups = new Map<string, MessageMeta[]>();
  for (const m of messages) {
    const key = m.provider ?? "(none)";
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([provider, rows]) => {
    const count = (status: string) => rows.filter((r) => r.status === status).length;
    const completed = rows.filter((r) => r.status === "completed");
    const failed = count("failed");
    const finished = completed.length + failed;
    const latencies = completed.map((r) => Number(r.provider_ms)).filter((v) => Number.isFinite(v));
    return {
      provider,
      total: rows.length,
      pending: count("pending"),
      completed: completed.length,
      failed,
      expired: count("expired"),
      errorRate: finished ? failed / finished : null,
      truncationRate: completed.length
        ? completed.filter((r) => r.finish_reason === "length").length / completed.length
        : null,
      flagged: completed.filter((r) => r.watcher && r.watcher.verdict !== "ok").length,
      medianProviderMs: median(latencies),
      payloadBytes: completed.reduce((n, r) => n + (r.payload_size_bytes ?? 0), 0),
    };
  });
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
