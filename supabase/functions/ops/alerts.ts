/**
 * Alerts (CONTRACT.md §12; migration 20261126000430). `POST /ops/alerts/evaluate` is what pg_cron calls every minute:
 * it folds the rollups (so the rules see the last minute), then runs bus.evaluate_alerts with ALERT_WEBHOOK_URL,
 * which records, POSTs (through pg_net) and broadcasts each firing and resolution once, in its transaction.
 * `GET /ops/alerts` lists what fires now, the recent notifications and the rules.
 */
import { withDb } from "../_shared/db.ts";

export interface Transition {
  rule: string;
  labels: Record<string, string>;
  status: "firing" | "resolved";
  summary: string;
  started_at: string;
  webhook_request_id: number | null;
}

export interface Evaluation {
  fold: Record<string, unknown>;
  transitions: Transition[];
}

const ISO = (col: string) => `to_char(${col} at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** Folds, then evaluates the rules (each in its own transaction: a failed evaluation keeps the fold). */
export async function evaluateAlerts(webhookUrl: string | undefined): Promise<Evaluation> {
  return await withDb(async (sql) => {
    const [{ fold }] = await sql<{ fold: Record<string, unknown> }[]>`select bus.ops_fold() as fold`;
    const transitions = await sql<Transition[]>`
      select rule, labels, status, summary, ${sql.unsafe(ISO("started_at"))} as started_at,
             webhook_request_id::float8 as webhook_request_id
        from bus.evaluate_alerts(${webhookUrl ?? null})`;
    return { fold, transitions };
  });
}

/** Alerts firing now, the last `recent` notifications (newest first) and the rules. */
export async function listAlerts(recent: number) {
  return await withDb((sql) =>
    sql.begin(async (tx) => {
      const firing = await tx`
        select rule as alert, labels, summary, ${tx.unsafe(ISO("started_at"))} as started_at
          from bus.alert_state where status = 'firing' order by started_at desc`;
      const events = await tx`
        select id::float8 as id, payload, webhook_request_id::float8 as webhook_request_id,
               ${tx.unsafe(ISO("created_at"))} as created_at
          from bus.alert_events order by id desc limit ${recent}`;
      const rules = await tx`
        select name, enabled, threshold::float8 as threshold, min_count, window_minutes, description
          from bus.alert_rules order by name`;
      return { firing, recent: events, rules };
    })
  );
}
