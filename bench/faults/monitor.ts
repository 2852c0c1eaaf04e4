/**
 * Watches `GET /tool-invoke/health` during the run (every 250 ms): whether the bus and its database answer, and the
 * primary route's circuit, with times, so that recovery after each fault can be read off afterwards. Beside it, once
 * a second, the backlogs in the database: pg_net's request queue, the watcher's outbox (messages not yet observed)
 * and the pending messages.
 */
import type { FaultStack } from "./stack.ts";

/** One health sample: when, the HTTP status (0: no answer) and the primary route's circuit state. */
export interface HealthSample {
  at: number;
  status: number;
  circuit: string | null;
}

/** One sample of the database's backlogs (null counts: the database did not answer). */
export interface BacklogSample {
  at: number;
  pgNetQueue: number | null;
  watchBacklog: number | null;
  pending: number | null;
  /** pg_net responses since the previous sample: 2xx, and the others (errors, timeouts, 4xx/5xx). */
  pgNetOk: number | null;
  pgNetFailed: number | null;
  /** What the failed responses said (status, error, timed out), distinct. */
  pgNetWhy: string | null;
}

/** Polls health until stopped; `samples` and `backlogs` grow meanwhile. */
export class HealthMonitor {
  readonly samples: HealthSample[] = [];
  readonly backlogs: BacklogSample[] = [];
  #running = true;
  #loops: Promise<void>[];
  #lastResponse = 0;

  constructor(private readonly stack: FaultStack, private readonly route: string) {
    this.#loops = [this.#poll(), this.#backlog()];
  }

  /** Waits for a serving stack; false when a restart failed (the run is over). */
  async #serving(): Promise<boolean> {
    try {
      await this.stack.ready;
      return true;
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      return false;
    }
  }

  async #backlog(): Promise<void> {
    while (this.#running) {
      if (!(await this.#serving())) return;
      const at = Date.now();
      try {
        // pg_net's responses are counted by id past the last sample's highest (pg_net sets `created` per batch); a
        // Postgres crash empties the unlogged table and may restart its ids.
        const [row] = await this.stack.sql<
          { q: number; w: number; p: number; ok: number; bad: number; why: string | null; top: string }[]
        >`
          with b as (select coalesce(max(id), 0) as top from net._http_response),
               s as (select case when b.top < ${this.#lastResponse} then 0 else ${this.#lastResponse} end as after, b.top
                       from b)
          select (select count(*) from net.http_request_queue)::int as q, (select count(*) from bus.watch_queue)::int as w,
                 (select count(*) from public.message_bus where status = 'pending')::int as p,
                 (select count(*) from net._http_response r
                   where r.id > s.after and r.id <= s.top and r.status_code between 200 and 299)::int as ok,
                 (select count(*) from net._http_response r
                   where r.id > s.after and r.id <= s.top
                     and (r.status_code is null or r.status_code not between 200 and 299))::int as bad,
                 (select string_agg(distinct coalesce(r.status_code::text, '') || ' ' || coalesce(left(r.error_msg, 80), '')
                                    || case when r.timed_out then ' timed out' else '' end, '; ')
                    from net._http_response r
                   where r.id > s.after and r.id <= s.top
                     and (r.status_code is null or r.status_code not between 200 and 299)) as why,
                 s.top::text as top
            from s`;
        this.#lastResponse = Number(row.top);
        this.backlogs.push({
          at,
          pgNetQueue: row.q,
          watchBacklog: row.w,
          pending: row.p,
          pgNetOk: row.ok,
          pgNetFailed: row.bad,
          pgNetWhy: row.why,
        });
      } catch (err) {
        if (!(err instanceof Error)) throw err;
        this.backlogs.push({
          at,
          pgNetQueue: null,
          watchBacklog: null,
          pending: null,
          pgNetOk: null,
          pgNetFailed: null,
          pgNetWhy: null,
        });
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }

  async #poll(): Promise<void> {
    while (this.#running) {
      if (!(await this.#serving())) return;
      const at = Date.now();
      try {
        const res = await fetch(`${this.stack.apiUrl}/functions/v1/tool-invoke/health`, {
          headers: { authorization: `Bearer ${this.stack.stack.keys.anon}` },
          signal: AbortSignal.timeout(5_000),
        });
        const body = await res.json().catch(() => ({}));
        this.samples.push({ at, status: res.status, circuit: body.circuits?.[this.route] ?? null });
      } catch (err) {
        this.samples.push({ at, status: 0, circuit: err instanceof Error ? `error: ${err.name}` : null });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The first sample at or after `from` that satisfies `test`; its time, or null. */
  firstAfter(from: number, test: (s: HealthSample) => boolean): number | null {
    return this.samples.find((s) => s.at >= from && test(s))?.at ?? null;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}
