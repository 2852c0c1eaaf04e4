/**
 * Running stored requests again (CONTRACT.md §4, §9): a replay by the owner or the service role (a new message with
 * `replay_of`), another run of an async message whose worker died (the dispatcher, started by pg_cron, claims such
 * messages and asks for each run through pg_net), and the dispatcher itself.
 */
import type { Context } from "hono";
import { callerOf } from "../_shared/auth.ts";
import { db, withDb } from "../_shared/db.ts";
import { BusError, notFound } from "../_shared/errors.ts";
import type { Settings } from "../_shared/env.ts";
import { readStoredRequest } from "../_shared/message/request_read.ts";
import { checkInvokeRequest, routesOf, type SubmitDeps } from "../_shared/invoke/submit.ts";
import { runMessage } from "../_shared/invoke/run.ts";
import { providerConfig } from "../_shared/providers/openai_compatible.ts";
import { toolNamed } from "../_shared/tools/registry.ts";
import { answer } from "./invoke.ts";

const SERVICE = { role: "service_role" as const, claims: { role: "service_role" } };

/** `POST /tool-invoke/<id>/replay`: the stored request of `id`, run again as a new message of the same owner. */
export async function replay(c: Context, deps: Omit<SubmitDeps, "sql">, id: string): Promise<Response> {
  const caller = callerOf(c);
  const stored = await readStoredRequest(db(), caller, id);
  if (!stored) throw notFound(`No message ${id}`);
  const { body, members } = checkInvokeRequest(stored.bytes, deps.settings);
  return await answer(c, deps, {
    caller,
    body,
    request: stored.bytes,
    members,
    replayOf: id,
    owner: stored.row.owner_id,
    idempotencyKey: c.req.header("idempotency-key"),
  });
}

/**
 * `POST /tool-invoke/<id>/run {run}` (service role; sent by the dispatcher through pg_net): runs run `run` of an
 * async message in the background and answers 202 at once, so pg_net's batch is not held (supabase-platform.md §2.3).
 */
export async function runAgain(deps: Omit<SubmitDeps, "sql">, id: string, run: number): Promise<{ status: string }> {
  const s = deps.settings;
  const stored = await readStoredRequest(db(), SERVICE, id);
  if (!stored) throw notFound(`No message ${id}`);
  if (stored.row.status !== "pending" || stored.row.run_count !== run) {
    throw new BusError(
      409,
      "not_this_run",
      `Message ${id} is ${stored.row.status}, run ${stored.row.run_count}, not run ${run}`,
    );
  }
  const { body, members } = checkInvokeRequest(stored.bytes, s);
  const config = providerConfig(body.provider ?? s.MESSAGE_BUS_DEFAULT_PROVIDER, s);
  const input = members.get("input")!;
  deps.waitUntil(
    runMessage({
      sql: db(),
      transactionId: id,
      run,
      tool: toolNamed(body.tool)!,
      input: body.input,
      inputJson: stored.bytes.subarray(input.start, input.end),
      routes: routesOf(config, body.model ?? config.defaultModel, body.fallbacks, s),
      settings: s,
      fetch: deps.fetch,
    }).catch((err) =>
      console.error(`[invoke] run ${run} of ${id} failed:`, err instanceof BusError ? err.toBody() : err)
    ),
  );
  return { status: "accepted" };
}

/**
 * `POST /tool-invoke/dispatch` (service role; pg_cron every minute): claims async messages whose worker died for
 * another run and asks for each through pg_net (a request of its own per run); those out of runs are failed.
 */
export async function dispatch(s: Settings): Promise<{ claimed: number; reaped: number }> {
  const rows = await withDb((sql) =>
    sql<{ transaction_id: string }[]>`
      select c.transaction_id, bus.request_run(c.transaction_id, c.run)
      from bus.claim_orphans(${s.MESSAGE_BUS_MAX_ATTEMPTS}, ${s.MESSAGE_BUS_LEASE_SECS}, 100) c`
  );
  if (rows.length > 0) console.log(`[invoke] dispatched ${rows.length} orphaned async message(s) for another run`);
  // A sync or streamed message whose worker died is not run again (its caller has its answer: an error, or a
  // cut connection); it is failed as worker_lost within the minute rather than at the next cleanup, so that a
  // client waiting on it learns its fate.
  const [{ reaped }] = await withDb((sql) =>
    sql<{ reaped: number }[]>`
      select bus.reap_pending(interval '15 minutes', 100, ${s.MESSAGE_BUS_MAX_ATTEMPTS})::int as reaped`
  );
  if (reaped > 0) console.log(`[invoke] failed ${reaped} message(s) whose worker died as worker_lost`);
  return { claimed: rows.length, reaped };
}
