/**
 * The fault benchmark's figures (JSON) and its section of bench/RESULTS.md: lost (the headline), final states,
 * fallbacks, retries, recovery after each fault, and latency of direct vs fallback answers.
 */
import { ms, quantile } from "../results.ts";
import type { Checked } from "./verify.ts";
import type { FaultRecord } from "./schedule.ts";
import type { BacklogSample, HealthSample } from "./monitor.ts";

export interface ReportInput {
  /** The stack's settings that differ from the defaults. */
  env: Record<string, string>;
  count: number;
  concurrency: number;
  faultMs: number;
  loadMs: number;
  drainMs: number;
  totalMs: number;
  checked: Checked[];
  faults: FaultRecord[];
  skipped: string[];
  samples: HealthSample[];
  backlogs: BacklogSample[];
  /** Completed messages the watcher had not observed at the check (and how many of them its sweep still holds). */
  watcher: { unobserved: number; queued: number };
}

const tally = (keys: string[]) => {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
};
const secs = (v: number | null) => v === null ? "never" : `${(v / 1000).toFixed(1)} s`;
const list = (t: Record<string, number>) => Object.entries(t).map(([k, v]) => `${k} ${v}`).join(", ") || "none";

/** How a completed sync answer was routed, from its attempts. */
function route(c: Checked): string | null {
  const row = c.row;
  if (c.result.status !== 200 || !row || row.status !== "completed") return null;
  if (c.plan.provider === "glm") return row.attempts.length === 1 ? "direct glm (the fallback, asked for)" : null;
  if (row.provider === "kimi") return row.attempts.length === 1 ? "direct kimi" : "kimi after retries";
  const kimi = row.attempts.filter((a) => a.provider === "kimi");
  if (kimi.every((a) => a.outcome === "skipped")) return "fallback to glm, kimi's circuit open";
  return "fallback to glm after kimi failed";
}

function latencies(checked: Checked[]) {
  const by: Record<string, number[]> = {};
  for (const c of checked) {
    const r = route(c);
    if (r) (by[r] ??= []).push(c.result.latencyMs);
  }
  return Object.fromEntries(
    Object.entries(by).map(([k, v]) => [k, { count: v.length, p50_ms: quantile(v, 0.5), p95_ms: quantile(v, 0.95) }]),
  );
}

/** pg_net's queue and the watcher's backlog from a fault's start to 30 s after its end (peak, and at the end of that). */
function backlogs(f: FaultRecord, input: ReportInput) {
  const within = input.backlogs.filter((b) => b.at >= f.start && b.at <= f.end + 30_000 && b.pgNetQueue !== null);
  const last = within.at(-1);
  return {
    pg_net_queue_peak: Math.max(0, ...within.map((b) => b.pgNetQueue!)),
    pg_net_queue_30s_after: last?.pgNetQueue ?? null,
    watch_backlog_peak: Math.max(0, ...within.map((b) => b.watchBacklog!)),
    watch_backlog_30s_after: last?.watchBacklog ?? null,
    pg_net_responses_ok: within.reduce((n, b) => n + (b.pgNetOk ?? 0), 0),
    pg_net_responses_failed: within.reduce((n, b) => n + (b.pgNetFailed ?? 0), 0),
    pg_net_failures: [...new Set(within.flatMap((b) => b.pgNetWhy?.split("; ") ?? []))],
  };
}

/** Recovery figures of one fault, from the messages, the clients' answers and the health samples. */
function recovery(f: FaultRecord, input: ReportInput) {
  const rows = input.checked.flatMap((c) => c.row ? [c.row] : []);
  const firstCompletion = (from: number, provider?: string) => {
    const times = rows.filter((r) =>
      r.status === "completed" && r.completed_at && r.completed_at.getTime() >= from &&
      (!provider || r.provider === provider)
    ).map((r) => r.completed_at!.getTime());
    return times.length ? Math.min(...times) - from : null;
  };
  const firstSample = (from: number, test: (s: HealthSample) => boolean) => {
    const s = input.samples.find((s) => s.at >= from && test(s));
    return s ? s.at - from : null;
  };
  const inWindow = input.checked.filter((c) => c.result.sentAt >= f.start && c.result.sentAt < f.end);
  // Recovery after a fault is only seen when invokes went on after it.
  const loadAfter = input.checked.filter((c) => c.result.answeredAt >= f.end + 2_000).length;
  // Failures recorded from the fault's start until 10 s after its end (or the next fault's start, if sooner); the
  // reaper's worker_lost comes later (a lease, then cleanup's minute), so it is counted by creation time instead.
  const next = input.faults.find((g) => g.start > f.start)?.start ?? Infinity;
  const until = Math.min(f.end + 10_000, next);
  const failedNear = tally(
    rows.filter((r) => {
      if (r.status !== "failed") return false;
      const at = (r.error?.code === "worker_lost" ? r.created_at : r.completed_at ?? r.created_at).getTime();
      return at >= f.start && at < until;
    }).map((r) => String(r.error?.code)),
  );
  if (f.name.startsWith("provider_")) {
    return {
      invokes_answered_2s_after_end: loadAfter,
      invokes_sent_during: inWindow.length,
      answered_by_fallback: inWindow.filter((c) =>
        c.row?.status === "completed" && c.plan.provider === "kimi" &&
        c.row.provider === "glm"
      ).length,
      failed: tally(inWindow.filter((c) => c.row?.status === "failed").map((c) => String(c.row!.error?.code))),
      circuit_open_after_ms: firstSample(f.start, (s) => s.circuit === "open"),
      circuit_closed_after_end_ms: firstSample(f.end, (s) => s.circuit === "closed"),
      first_primary_success_after_end_ms: firstCompletion(f.end, "kimi"),
    };
  }
  if (f.name === "db_terminate") {
    return {
      invokes_answered_2s_after_end: loadAfter,
      connections_terminated: f.detail.terminated,
      failed_messages_created_near: failedNear,
      first_completion_after_last_termination_ms: firstCompletion(f.end),
    };
  }
  if (f.name === "postgres_restart") {
    return {
      invokes_answered_2s_after_end: loadAfter,
      health_ok_after_ms: f.end - f.start,
      first_completion_after_kill_ms: firstCompletion(f.start),
      failed_messages_created_near: failedNear,
    };
  }
  const ids = new Set(f.detail.pending_at_restart as string[]);
  const left = rows.filter((r) => ids.has(r.transaction_id));
  const finished = left.filter((r) => r.status !== "pending" && r.completed_at).map((r) => r.completed_at!.getTime());
  const answers = input.checked.filter((c) => c.result.status === 200 && c.result.answeredAt >= f.end);
  return {
    invokes_answered_2s_after_end: loadAfter,
    stack_ready_after_ms: f.end - f.start,
    first_200_after_kill_ms: answers.length ? Math.min(...answers.map((c) => c.result.answeredAt)) - f.start : null,
    pending_at_restart: { async: f.detail.pending_async, sync: f.detail.pending_sync },
    all_pending_done_after_kill_ms: left.length && finished.length === left.length
      ? Math.max(...finished) - f.start
      : null,
    how_they_ended: tally(
      left.map((r) => `${r.mode} ${r.status}${r.error ? ` ${r.error.code}` : ""} (run ${r.run_count})`),
    ),
  };
}

/** The JSON figures and the markdown section. */
export function report(input: ReportInput): { json: Record<string, unknown>; markdown: string } {
  const { checked } = input;
  const rows = checked.flatMap((c) => c.row ? [c.row] : []);
  const acknowledged = checked.filter((c) => c.result.transactionId !== null);
  const lost = checked.filter((c) => c.lost !== null);
  const final = tally(checked.map((c) => c.row ? `${c.row.status}` : "no message"));
  const failedBy = tally(rows.filter((r) => r.status === "failed").map((r) => String(r.error?.code)));
  const attempts = rows.flatMap((r) => r.attempts);
  let busRetries = 0;
  for (const r of rows) {
    r.attempts.forEach((a, i) => {
      if (a.outcome === "error" && r.attempts[i + 1]?.provider === a.provider) busRetries++;
    });
  }
  const clientRetries: Record<string, number> = {};
  for (const c of checked) {
    for (const [k, v] of Object.entries(c.result.retries)) clientRetries[k] = (clientRetries[k] ?? 0) + v;
  }
  const answeredByFallback =
    checked.filter((c) => c.plan.provider === "kimi" && c.row?.status === "completed" && c.row.provider === "glm")
      .length;
  const providerWindows = input.faults.filter((f) => f.name.startsWith("provider_"));
  const duringOutage = checked.filter((c) =>
    providerWindows.some((f) => c.result.sentAt >= f.start && c.result.sentAt < f.end)
  );
  const json = {
    date: new Date().toISOString(),
    env: input.env,
    count: input.count,
    concurrency: input.concurrency,
    fault_ms: input.faultMs,
    load_ms: input.loadMs,
    drain_ms: input.drainMs,
    total_ms: input.totalMs,
    lost: lost.length,
    lost_reasons: tally(lost.map((c) => c.lost!)),
    lost_examples: lost.slice(0, 20).map((c) => ({ plan: c.plan.key, result: c.result, row: c.row, why: c.lost })),
    acknowledged: acknowledged.length,
    unacknowledged: checked.length - acknowledged.length,
    unacknowledged_states: tally(
      checked.filter((c) => c.result.transactionId === null).map((c) =>
        `${c.result.status} ${c.result.code}: ${c.row?.status ?? "no message"}`
      ),
    ),
    final_status: final,
    final_status_by_mode: tally(checked.map((c) => `${c.plan.mode} ${c.row?.status ?? "no message"}`)),
    failed_by_code: failedBy,
    client_answers: tally(checked.map((c) => `${c.result.status}${c.result.code ? ` ${c.result.code}` : ""}`)),
    unrecorded_failure_answers: checked.filter((c) => c.result.unrecorded).length,
    payloads_verified: checked.filter((c) => c.fetched?.verified).length,
    answered_by_fallback: answeredByFallback,
    attempts: { total: attempts.length, by_outcome: tally(attempts.map((a) => `${a.outcome} ${a.error_code ?? ""}`)) },
    bus_retries: busRetries,
    runs_after_the_first: rows.filter((r) => r.run_count > 1).length,
    client_retries: clientRetries,
    invokes_retried_by_client: checked.filter((c) => Object.keys(c.result.retries).length > 0).length,
    faults: input.faults.map((f) => ({
      name: f.name,
      start: new Date(f.start).toISOString(),
      duration_ms: f.end - f.start,
      detail: { ...f.detail, pending_at_restart: undefined },
      recovery: recovery(f, input),
      backlogs: backlogs(f, input),
    })),
    skipped_faults: input.skipped,
    watcher: input.watcher,
    backlog_series: input.backlogs.map((b) => [
      b.at - input.backlogs[0].at,
      b.pgNetQueue,
      b.watchBacklog,
      b.pending,
      b.pgNetOk,
      b.pgNetFailed,
    ]),
    latency_sync_200: latencies(checked),
    latency_sync_200_during_provider_faults: latencies(duringOutage),
  };
  return { json, markdown: markdown(json, input) };
}

function markdown(j: ReturnType<typeof report>["json"] & Record<string, unknown>, input: ReportInput): string {
  const lat = j.latency_sync_200 as Record<string, { count: number; p50_ms: number; p95_ms: number }>;
  const latOut = j.latency_sync_200_during_provider_faults as typeof lat;
  const latRows = Object.entries(lat).map(([k, v]) =>
    `| ${k} | ${v.count} | ${ms(v.p50_ms)} | ${ms(v.p95_ms)} | ${
      latOut[k] ? `${latOut[k].count}: ${ms(latOut[k].p50_ms)} / ${ms(latOut[k].p95_ms)}` : "-"
    } |`
  ).join("\n");
  const faults = j.faults as Array<
    { name: string; duration_ms: number; recovery: Record<string, unknown>; backlogs: ReturnType<typeof backlogs> }
  >;
  const backlogRows = faults.map((f) =>
    `| ${f.name} | ${f.backlogs.pg_net_queue_peak} / ${
      f.backlogs.pg_net_queue_30s_after ?? "-"
    } | ${f.backlogs.pg_net_responses_ok} / ${f.backlogs.pg_net_responses_failed} | ${f.backlogs.watch_backlog_peak} / ${
      f.backlogs.watch_backlog_30s_after ?? "-"
    } |`
  ).join("\n");
  const faultRows = faults.map((f) => {
    const r = f.recovery;
    const idle = r.invokes_answered_2s_after_end === 0 ? " (the invokes had run out: no load after it)" : "";
    const cell = (k: string) => secs(r[k] as number | null);
    switch (f.name) {
      case "db_terminate":
        return `| database connections terminated (3 rounds, 1.5 s apart: ${
          (r.connections_terminated as number[]).join(", ")
        }) | ${secs(f.duration_ms)} | failed from its start to 10 s after it: ${
          list(r.failed_messages_created_near as Record<string, number>)
        } | first completion after the last round: ${cell("first_completion_after_last_termination_ms")}${idle} |`;
      case "postgres_restart":
        return `| Postgres killed (SIGKILL of the postmaster; restarted by the supervisor after 1 s) | ${
          secs(f.duration_ms)
        } | failed from its start to 10 s after it: ${
          list(r.failed_messages_created_near as Record<string, number>)
        } | health 200 after ${cell("health_ok_after_ms")}; first completion after ${
          cell("first_completion_after_kill_ms")
        }${idle} |`;
      case "stack_restart": {
        const p = r.pending_at_restart as { async: number; sync: number };
        return `| stack killed (SIGKILL) and started again on the same data | ${
          secs(f.duration_ms)
        } | left pending: ${p.async} async, ${p.sync} sync; they ended: ${
          list(r.how_they_ended as Record<string, number>)
        } | stack ready after ${cell("stack_ready_after_ms")}; first 200 after ${
          cell("first_200_after_kill_ms")
        }; all left pending done after ${cell("all_pending_done_after_kill_ms")}${idle} |`;
      }
      default:
        return `| primary (kimi) ${
          { provider_500: "answers 500", provider_429: "answers 429, Retry-After: 1", provider_hang: "hangs" }[f.name]
        } | ${
          secs(f.duration_ms)
        } | ${r.invokes_sent_during} sent, ${r.answered_by_fallback} answered by glm; failed: ${
          list(r.failed as Record<string, number>)
        }; circuit open after ${cell("circuit_open_after_ms")} | circuit closed ${
          cell("circuit_closed_after_end_ms")
        } after the end; first kimi success ${cell("first_primary_success_after_end_ms")} after${idle} |`;
    }
  }).join("\n");
  const direct = lat["direct glm (the fallback, asked for)"];
  const viaOpen = latOut["fallback to glm, kimi's circuit open"];
  const directOut = latOut["direct glm (the fallback, asked for)"];
  return `## Faults (\`npm run bench -- faults\`)

${String(j.date).slice(0, 10)}, 2 shared cores, Postgres with fsync on. ${input.count.toLocaleString("en")} invokes
(tool-invoke; 30 % async; 10 % naming glm directly, 3 % with a scripted provider 502 before the answer, 1 % with a
provider 400; each with an Idempotency-Key, sent again with it after a connection error or an answer without a
transaction id) from ${input.concurrency} clients against a stack with kimi (primary, \`KIMI_FALLBACKS=glm\`)
and glm, both on the stand-in (settings: ${
    Object.entries(input.env).map(([k, v]) => `${k}=${v}`).join(", ")
  }; cleanup every minute). Method: bench/faults_bench.ts and bench/faults/.

**Lost: ${j.lost}** of ${(j.acknowledged as number).toLocaleString("en")} acknowledged invokes (an invoke whose
transaction id the client got, and whose message is missing, still pending after the drain, or completed with a
payload that does not verify through message-fetch or disagrees with the 200).${
    j.lost ? ` Why: ${list(j.lost_reasons as Record<string, number>)}.` : ""
  } Unacknowledged (no transaction id within the client's bound of 60 sends / 300 s): ${j.unacknowledged}${
    j.unacknowledged ? ` (${list(j.unacknowledged_states as Record<string, number>)})` : ""
  }. Payloads fetched and verified: ${j.payloads_verified}.

Final states: ${list(j.final_status as Record<string, number>)} (${
    list(j.final_status_by_mode as Record<string, number>)
  }); failed by recorded reason: ${list(j.failed_by_code as Record<string, number>)}. Answers the clients ended with:
${list(j.client_answers as Record<string, number>)}.

Answered by the fallback: ${j.answered_by_fallback}. Provider attempts: ${(j.attempts as { total: number }).total} (${
    list((j.attempts as { by_outcome: Record<string, number> }).by_outcome)
  }); retries inside the bus (an
error followed by another attempt on the same provider): ${j.bus_retries}; messages run again by the dispatcher:
${j.runs_after_the_first}. Client sends after the first: ${
    list(j.client_retries as Record<string, number>)
  } (${j.invokes_retried_by_client} invokes). Load ${secs(input.loadMs)}, drain ${secs(input.drainMs)}, whole run ${
    secs(input.totalMs)
  }.
Completed messages the watcher had not observed at the check: ${input.watcher.unobserved} (held by its sweep:
${input.watcher.queued}).

| fault | lasted | effect | recovery |
| --- | --- | --- | --- |
${faultRows}

Backlogs in the database from each fault's start to 30 s after its end (sampled every second): pg_net's request
queue (the watcher's, the dispatcher's and cleanup's calls go through it), peak / 30 s after; pg_net's responses in
that time, 2xx / others (errors, timeouts, 4xx, 5xx); the watcher's outbox (completed messages not yet observed), peak
/ 30 s after.

| fault | pg_net queue | pg_net responses | watcher outbox |
| --- | --- | --- | --- |
${backlogRows}
${input.skipped.length ? `\nSkipped (the invokes ran out before their turn): ${input.skipped.join(", ")}.\n` : ""}
Latency of sync invokes answered 200 (the request that got the answer), by route (from meta \`attempts\`):

| route | count | p50 | p95 | sent during the provider faults: count: p50 / p95 |
| --- | --- | --- | --- | --- |
${latRows}
${
    viaOpen && (directOut ?? direct)
      ? `
Target (issue 12): with the primary down and its circuit open, p50 of a fallback answer ≤ 1.5 × the fallback's
direct p50 + 5 ms: ${ms(viaOpen.p50_ms)} vs ${ms(1.5 * (directOut ?? direct).p50_ms + 5)} (direct glm p50 ${
        ms((directOut ?? direct).p50_ms)
      }${directOut ? ", sent during the same faults" : ""}).`
      : ""
  }

**What the runs of 2026-11-26 showed** (nine of 10,000 invokes from 20 clients and a dozen shorter ones, with this
benchmark as it evolved that day, on this shared machine; the figures above are the last run's):

- Lost: 0 in seven full runs, **1 in one** (and 1 in one quick run of 1,500): each time a sync invoke sent within
  ~10 ms of the postmaster's kill. Its row had been committed without waiting for the WAL flush (record.ts, for sync
  invokes: "nothing is answered before the completion's commit"), storing the answer then failed, recording the
  failure failed too, and the caller got 500 storage_failed with the transaction id and \`recorded: false\`; crash
  recovery had dropped the row. Fixed the same day: every begin_message now waits for its flush
  (tests/crash_durable_id_test.ts).
- Every other failure carries its reason. Besides the mix's provider 400s they come from the database faults:
  \`storage_failed\` (3 to 45 per run) when the connection running a chunk append (or the completion) of an answer is
  terminated or Postgres dies mid-store: the message is failed for good (sync: 500; async: not run again), although
  the database is back within a second. Fixed the same day: a chunk append or a completion whose connection is
  lost runs again on a fresh one (db.ts withDbReconnecting; tests/storage_fault_test.ts); the run above, after both
  fixes, has no \`storage_failed\`.
  \`worker_lost\`: sync messages whose stack was killed (their caller is gone; the reaper fails them), and rarely a
  sync message recorded while its function lost the database: the caller got a 503 without a transaction id, its
  retry with the same key 202 (pending), and the message was reaped a minute later with no attempt (it never ran).
- Async messages left pending by the killed stack were all run again by the dispatcher (run 2) and finished.
- postgres.js 3.4.9 ended the whole local stack twice (on the platform: the function's isolate, with every request in
  it), both now kept alive by the driver guard (supabase/functions/_shared/driver_guard.ts): an unhandled rejection
  of the type query every new connection runs first, when its connection is terminated (porsager/postgres#1192,
  #1223; while reproducing the storage failures), and the null-socket write of porsager/postgres#1208 thrown inside
  a query's promise job rather than from its timer (in a full run, during the Postgres restart).
- Once, pg_net's queue stayed at 892 requests for more than 30 s after the connection terminations (drained only after
  the Postgres restart), so 1,392 completed messages waited for the watcher's 2-minute sweep; other runs drained
  within seconds. Not explained (pg_net batches wait for their slowest request, 10 s at most). A restart on new ports
  failed every pg_net request queued before it ("Couldn't connect to server": their URL named the old port); the
  stack now restarts on its own ports, as a server keeps its address.`;
}
