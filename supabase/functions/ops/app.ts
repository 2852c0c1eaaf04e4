/**
 * The `ops` function's routes, for the service role only (others 401; CONTRACT.md §12). config.toml has
 * verify_jwt = false, as for `watcher` and `cleanup`: pg_cron calls it through pg_net with the service key, and the
 * code checks the caller (supabase-platform.md §1.10).
 *
 * - `GET  /ops/metrics`                     Prometheus text exposition (metrics.ts)
 * - `GET  /ops/providers`                   per provider and route: circuit, in flight, error rate, p50/p95
 * - `GET  /ops/errors?status=&limit=`       error groups
 * - `POST /ops/errors/<fingerprint>/resolve`
 * - `GET  /ops/alerts?recent=`              firing alerts, recent notifications, rules
 * - `POST /ops/alerts/evaluate`             fold, evaluate the rules, notify (pg_cron, every minute)
 * - `POST /ops/fold`                        fold the rollups now
 * - `GET  /ops/series?minutes=`             per-minute points for the operator dashboard
 * - `PUT  /ops/limits/<user_id>`, `GET /ops/limits/<user_id>`
 */
import { z } from "zod";
import { createApp } from "../_shared/http.ts";
import { addHealthRoute } from "../_shared/health.ts";
import { settings } from "../_shared/env.ts";
import { serviceRoleDoor } from "../_shared/auth.ts";
import { withDb } from "../_shared/db.ts";
import { waitUntil } from "../_shared/background.ts";
import { door, smallJsonBody } from "../_shared/door/validate.ts";
import { CONTENT_TYPE, exposition } from "./prometheus.ts";
import { familiesOf, readMetricRows } from "./metrics.ts";
import { providerFigures } from "./providers.ts";
import { listErrorGroups, resolveErrorGroup } from "./errors.ts";
import { evaluateAlerts, listAlerts } from "./alerts.ts";
import { readSeries } from "./series.ts";
import { getUserLimit, setUserLimit } from "./limits.ts";
import { investigateNewGroups } from "./investigate.ts";

const s = settings(); // fail at boot, with every problem listed, when a setting is bad

export const app = createApp("ops");
addHealthRoute(app, "ops");

const depth = s.MESSAGE_BUS_MAX_JSON_DEPTH;
const intIn = (min: number, max: number, fallback: number) =>
  z.string().regex(/^\d{1,7}$/, "must be a whole number").default(String(fallback)).transform(Number).pipe(
    z.number().int().min(min).max(max),
  );
const noQuery = door("query", z.strictObject({}));
const fingerprintParam = door(
  "param",
  z.strictObject({
    fingerprint: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be a SHA-256 hex fingerprint").transform((f) =>
      f.toLowerCase()
    ),
  }),
);
const userParam = door("param", z.strictObject({ user_id: z.uuid({ error: "must be a UUID" }) }));

app.get("/metrics", serviceRoleDoor, noQuery, async (c) => {
  const text = exposition(familiesOf(await readMetricRows()));
  return c.body(text, 200, { "content-type": CONTENT_TYPE, "cache-control": "no-store" });
});

app.get("/providers", serviceRoleDoor, noQuery, async (c) => {
  return c.json({ generated_at: new Date().toISOString(), providers: await providerFigures() });
});

app.get(
  "/errors",
  serviceRoleDoor,
  door(
    "query",
    z.strictObject({ status: z.enum(["open", "resolved", "all"]).default("open"), limit: intIn(1, 1000, 100) }),
  ),
  async (c) => {
    const { status, limit } = c.req.valid("query");
    return c.json({ groups: await listErrorGroups(status, limit) });
  },
);

app.post(
  "/errors/:fingerprint/resolve",
  serviceRoleDoor,
  fingerprintParam,
  noQuery,
  smallJsonBody(z.strictObject({}), depth),
  async (c) => c.json({ group: await resolveErrorGroup(c.req.valid("param").fingerprint) }),
);

app.get("/alerts", serviceRoleDoor, door("query", z.strictObject({ recent: intIn(0, 500, 50) })), async (c) => {
  return c.json(await listAlerts(c.req.valid("query").recent));
});

app.post(
  "/alerts/evaluate",
  serviceRoleDoor,
  noQuery,
  smallJsonBody(z.strictObject({ async: z.boolean().default(false) }), depth),
  async (c) => {
    const run = async () => {
      const evaluation = await evaluateAlerts(s.ALERT_WEBHOOK_URL);
      const investigated = await investigateNewGroups(s);
      return { ...evaluation, investigated };
    };
    if (c.req.valid("json").async) {
      waitUntil(
        run().then(
          (r) => r.transitions.length && console.log(`[ops] alerts: ${JSON.stringify(r.transitions)}`),
          (err) => console.error("[ops] background alert evaluation failed:", err),
        ),
      );
      return c.json({ status: "accepted" }, 202);
    }
    return c.json(await run(), 200);
  },
);

app.post(
  "/fold",
  serviceRoleDoor,
  noQuery,
  smallJsonBody(z.strictObject({ settle_seconds: z.number().int().min(0).max(600).default(10) }), depth),
  async (c) => {
    const settle = c.req.valid("json").settle_seconds;
    const [{ fold }] = await withDb((sql) =>
      sql<{ fold: Record<string, unknown> }[]>`
        select bus.ops_fold(p_settle => make_interval(secs => ${settle})) as fold`
    );
    return c.json({ fold });
  },
);

app.get("/series", serviceRoleDoor, door("query", z.strictObject({ minutes: intIn(1, 1440, 60) })), async (c) => {
  return c.json(await readSeries(c.req.valid("query").minutes));
});

app.put(
  "/limits/:user_id",
  serviceRoleDoor,
  userParam,
  noQuery,
  smallJsonBody(z.strictObject({ requests_per_minute: z.number().int().min(0).max(1_000_000) }), depth),
  async (c) => {
    const { user_id } = c.req.valid("param");
    return c.json(await setUserLimit(user_id, c.req.valid("json").requests_per_minute));
  },
);

app.get("/limits/:user_id", serviceRoleDoor, userParam, noQuery, async (c) => {
  return c.json(await getUserLimit(c.req.valid("param").user_id));
});
