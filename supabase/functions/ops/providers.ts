/**
 * `GET /ops/providers`: per provider and per route (provider + model), the circuit state (bus.routes), calls in
 * flight (bus.provider_leases) and, over the last 5 and 60 minutes, finished messages, failures, the error rate and
 * p50/p95 of provider time (completed messages), from the per-minute rollups (bus.ops_route_window).
 */
import { withDb } from "../_shared/db.ts";
import { settings } from "../_shared/env.ts";
import { addCounts, denseCounts, DURATION_BOUNDS_MS, quantile } from "./histogram.ts";

/** The windows reported, in minutes. */
export const WINDOWS = [5, 60] as const;

export interface WindowFigures {
  requests: number;
  failed: number;
  /** failed ÷ requests; null without requests. */
  error_rate: number | null;
  /** Provider time of completed messages (ms), estimated from histogram buckets; null without any. */
  p50_ms: number | null;
  p95_ms: number | null;
}

export interface RouteFigures {
  model: string;
  circuit: "closed" | "open" | "half_open";
  consecutive_failures: number;
  open_until: string | null;
  windows: Record<string, WindowFigures>;
}

export interface ProviderFigures {
  provider: string;
  in_flight: number;
  /** open when any route is open, else half_open when any is, else closed. */
  circuit: "closed" | "open" | "half_open";
  windows: Record<string, WindowFigures>;
  routes: RouteFigures[];
}

interface WindowRow {
  provider: string;
  model: string;
  status: string;
  requests: string;
  provider_buckets: Record<string, number>;
}

interface Tally {
  requests: number;
  failed: number;
  counts: number[];
}

const emptyTally = (): Tally => ({ requests: 0, failed: 0, counts: new Array(DURATION_BOUNDS_MS.length + 1).fill(0) });

function figures(t: Tally): WindowFigures {
  const round = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
  return {
    requests: t.requests,
    failed: t.failed,
    error_rate: t.requests ? t.failed / t.requests : null,
    p50_ms: round(quantile(DURATION_BOUNDS_MS, t.counts, 0.5)),
    p95_ms: round(quantile(DURATION_BOUNDS_MS, t.counts, 0.95)),
  };
}

function tallyInto(t: Tally, row: WindowRow): void {
  const n = Number(row.requests);
  t.requests += n;
  if (row.status === "failed") t.failed += n;
  else addCounts(t.counts, denseCounts(row.provider_buckets, DURATION_BOUNDS_MS));
}

/** Reads and computes the figures (four small queries in one transaction). */
export async function providerFigures(): Promise<ProviderFigures[]> {
  const { routes, leases, windows } = await withDb((sql) =>
    sql.begin(async (tx) => {
      const routes = await tx<
        {
          provider: string;
          model: string;
          state: RouteFigures["circuit"];
          consecutive_failures: number;
          open_until: Date | null;
        }[]
      >`select provider, model, state, consecutive_failures, open_until from bus.routes`;
      const leases = await tx<{ provider: string; n: number }[]>`
        select provider, count(*)::int as n from bus.provider_leases where expires_at > now() group by provider`;
      const windows = new Map<number, WindowRow[]>();
      for (const w of WINDOWS) {
        windows.set(w, await tx<WindowRow[]>`select * from bus.ops_route_window(${w})`);
      }
      return { routes, leases, windows };
    })
  );

  const providers = new Map<string, ProviderFigures>();
  const provider = (name: string) => {
    let p = providers.get(name);
    if (!p) {
      p = { provider: name, in_flight: 0, circuit: "closed", windows: {}, routes: [] };
      providers.set(name, p);
    }
    return p;
  };
  const route = (name: string, model: string) => {
    const p = provider(name);
    let r = p.routes.find((x) => x.model === model);
    if (!r) {
      r = { model, circuit: "closed", consecutive_failures: 0, open_until: null, windows: {} };
      p.routes.push(r);
    }
    return r;
  };
  for (const name of settings().providers.keys()) provider(name);
  for (const r of routes) {
    Object.assign(route(r.provider, r.model), {
      circuit: r.state,
      consecutive_failures: r.consecutive_failures,
      open_until: r.open_until ? r.open_until.toISOString() : null,
    });
  }
  for (const l of leases) provider(l.provider).in_flight = l.n;
  for (const [minutes, rows] of windows) {
    const key = `${minutes}m`;
    const perRoute = new Map<string, Tally>();
    const perProvider = new Map<string, Tally>();
    for (const row of rows) {
      route(row.provider, row.model);
      const rk = `${row.provider}\u0000${row.model}`;
      if (!perRoute.has(rk)) perRoute.set(rk, emptyTally());
      if (!perProvider.has(row.provider)) perProvider.set(row.provider, emptyTally());
      tallyInto(perRoute.get(rk)!, row);
      tallyInto(perProvider.get(row.provider)!, row);
    }
    for (const p of providers.values()) {
      p.windows[key] = figures(perProvider.get(p.provider) ?? emptyTally());
      for (const r of p.routes) r.windows[key] = figures(perRoute.get(`${p.provider}\u0000${r.model}`) ?? emptyTally());
    }
  }
  for (const p of providers.values()) {
    p.circuit = p.routes.some((r) => r.circuit === "open")
      ? "open"
      : p.routes.some((r) => r.circuit === "half_open")
      ? "half_open"
      : "closed";
    p.routes.sort((a, b) => a.model.localeCompare(b.model));
  }
  return [...providers.values()].sort((a, b) => a.provider.localeCompare(b.provider));
}
