/**
 * Closed-loop load for the throughput benchmarks: `clients` loops, each sending its next request as soon as the
 * previous one is answered, for `seconds`; counts answers by status and keeps every latency.
 */
import { quantile } from "./results.ts";

/** What one run of load gave. */
export interface LoadResult {
  clients: number;
  seconds: number;
  requests: number;
  per_second: number;
  /** Answers by HTTP status, and `error` for requests that threw. */
  statuses: Record<string, number>;
  errors: number;
  p50_ms: number;
  p99_ms: number;
}

/**
 * Runs `send(client, n)` from `clients` concurrent loops for `seconds`; `send` answers the HTTP status (200 and 202
 * count as success). Requests still in flight at the end are awaited and counted.
 */
export async function closedLoop(
  clients: number,
  seconds: number,
  send: (client: number, n: number) => Promise<number>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const started = performance.now();
  const until = started + seconds * 1000;
  const loop = async (client: number) => {
    for (let n = 0; performance.now() < until; n++) {
      const t = performance.now();
      let key: string;
      try {
        key = String(await send(client, n));
      } catch (err) {
        key = "error";
        if ((statuses.error ?? 0) < 3) console.error(`[load] client ${client}: ${err}`);
      }
      latencies.push(performance.now() - t);
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => loop(c)));
  const elapsed = (performance.now() - started) / 1000;
  const ok = (statuses["200"] ?? 0) + (statuses["202"] ?? 0);
  return {
    clients,
    seconds: elapsed,
    requests: latencies.length,
    per_second: ok / elapsed,
    statuses,
    errors: latencies.length - ok,
    p50_ms: quantile(latencies, 0.5),
    p99_ms: quantile(latencies, 0.99),
  };
}
