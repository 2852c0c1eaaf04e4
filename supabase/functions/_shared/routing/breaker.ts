/**
 * The circuit breakers in Postgres (migration 20261126000200, CONTRACT.md §9): what the routing reads and writes
 * beyond what begin_message and complete_message already do on the healthy path.
 */
import { db, type Query, withDb } from "../db.ts";

export type CircuitState = "closed" | "open" | "half_open";

export interface RouteKey {
  provider: string;
  model: string;
}

export interface RouteStatus {
  state: CircuitState;
  openUntil: Date | null;
  trialInFlight: boolean;
}

const key = (r: RouteKey) => `${r.provider}/${r.model}`;

/** The state of each route (closed when never seen), keyed `provider/model`. */
export async function routeStates(sql: Query, routes: RouteKey[]): Promise<Map<string, RouteStatus>> {
  const rows = await withDb(
    (sql) =>
      sql<
        { provider: string; model: string; state: CircuitState; open_until: Date | null; trial_in_flight: boolean }[]
      >`
      select * from bus.route_states(${sql.json(routes as never)})`,
    sql,
  );
  return new Map(
    rows.map((r) => [key(r), { state: r.state, openUntil: r.open_until, trialInFlight: r.trial_in_flight }]),
  );
}

/** Takes the one trial of a half-open route; false when another caller holds it. */
export async function tryTrial(sql: Query, route: RouteKey, holdSeconds: number): Promise<boolean> {
  const [{ taken }] = await withDb(
    (sql) =>
      sql<{ taken: boolean }[]>`select bus.try_trial(${route.provider}, ${route.model}, ${holdSeconds}) as taken`,
    sql,
  );
  return taken;
}

/** Counts a failed attempt that counts; returns the route's state after it. */
export async function recordRouteFailure(
  sql: Query,
  route: RouteKey,
  threshold: number,
  timeoutSeconds: number,
  error: string,
): Promise<CircuitState> {
  const [{ state }] = await withDb((sql) =>
    sql<{ state: CircuitState }[]>`
      select bus.record_route_failure(${route.provider}, ${route.model}, ${threshold}, ${timeoutSeconds}, ${error})
             as state`, sql);
  return state;
}

/** Every route the bus has called, with its state now (for health and operators). */
export async function circuits(sql: Query = db()): Promise<Record<string, CircuitState>> {
  const rows = await withDb((sql) =>
    sql<{ route: string; state: CircuitState }[]>`
      select provider || '/' || model as route, bus.route_state(state, open_until, trial_until) as state
      from bus.routes order by provider, model`, sql);
  return Object.fromEntries(rows.map((r) => [r.route, r.state]));
}
