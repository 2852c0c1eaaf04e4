/**
 * Cleanup on the running stack (CONTRACT.md §8): who may call it, the pg_cron job and what it calls, expiry (410
 * before and after cleanup, metadata kept until purge), purge, reaping, trimming pg_net and pg_cron history, and
 * the maintenance log.
 */
import assert from "node:assert/strict";
import { adminSql, newUser, testStack, waitFor } from "../devstack/testing/env.ts";
import { chatBody, fetchJson, invoke } from "./claim_check_helpers.ts";
import { post, waitForObservation } from "./watch_helpers.ts";

const sql = adminSql();
const service = () => testStack().serviceRoleKey;

async function fetchStatus(token: string, id: string): Promise<number> {
  const res = await fetch(`${testStack().functionsUrl}/message-fetch/${id}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.body?.cancel();
  return res.status;
}

async function cleanupNow() {
  const res = await post("cleanup", service());
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

Deno.test("cleanup answers 401 without a token, with the anon key and with a user token; 400 to a bad body", async () => {
  const user = await newUser();
  const before = (await sql`select count(*)::int as n from bus.maintenance_log`)[0].n;
  for (const token of [null, testStack().anonKey, user.token]) {
    const res = await post("cleanup", token);
    assert.equal(res.status, 401, JSON.stringify(res.json));
  }
  assert.equal((await post("cleanup", service(), { async: "yes" })).status, 400);
  assert.equal((await post("cleanup", service(), { purge_everything: true })).status, 400);
  assert.equal(
    (await sql`select count(*)::int as n from bus.maintenance_log`)[0].n,
    before,
    "no run for refused callers",
  );
});

Deno.test("pg_cron job message-bus-cleanup runs hourly and calls the cleanup function through pg_net with Vault secrets", async () => {
  const [job] = await sql`select schedule, command, active from cron.job where jobname = 'message-bus-cleanup'`;
  assert.ok(job, "the job exists");
  assert.equal(job.schedule, "0 * * * *");
  assert.equal(job.active, true);
  for (
    const part of [
      /net\.http_post\(/,
      /\|\| '\/functions\/v1\/cleanup'/,
      /vault\.decrypted_secrets where name = 'project_url'/,
      /name = 'service_role_key'/,
    ]
  ) {
    assert.match(job.command, part);
  }
  const [sweep] = await sql`select schedule, command from cron.job where jobname = 'message-bus-watcher-sweep'`;
  assert.equal(sweep.schedule, "* * * * *");
  assert.match(sweep.command, /bus\.sweep_unobserved\(\)/);

  // Run the job's command as pg_cron would: it queues one request; the function accepts it and logs a run.
  const [{ last }] = await sql`select coalesce(max(id), 0)::int as last from bus.maintenance_log`;
  const [{ request_id }] = await sql.unsafe(job.command);
  const response = await waitFor(
    "the pg_net response",
    async () => (await sql`select status_code from net._http_response where id = ${request_id}`)[0],
  );
  assert.equal(response.status_code, 202);
  const run = await waitFor(
    "the maintenance log row",
    async () =>
      (await sql`select complete, counts, error from bus.maintenance_log where id > ${last} and job = 'cleanup'`)[0],
  );
  assert.equal(run.error, null);
  assert.deepEqual(Object.keys(run.counts).sort(), [
    "bookkeeping_deleted",
    "cron_runs_deleted",
    "expired",
    "file_chunks_deleted",
    "files_deleted",
    "http_responses_deleted",
    "payload_chunks_deleted",
    "provider_file_deletions_failed",
    "provider_files_deleted",
    "purged",
    "reaped",
  ]);
});

Deno.test("an expired message answers 410 before and after cleanup; cleanup deletes its payload, keeps its row until purge", async () => {
  const user = await newUser();
  const res = await invoke(user.token, chatBody({}));
  const id = res.json.transaction_id;
  await waitForObservation(sql, id);
  assert.equal(await fetchStatus(user.token, id), 200);
  await sql`update public.message_bus set expires_at = now() - interval '1 minute' where transaction_id = ${id}::uuid`;

  assert.equal(await fetchStatus(user.token, id), 410, "410 once expires_at has passed, before any cleanup");
  assert.equal((await fetchJson(user.token, `/${id}/meta`)).json.status, "expired");
  assert.equal(
    (await sql`select count(*)::int as n from public.message_bus_chunks where transaction_id = ${id}::uuid`)[0].n,
    1,
  );

  const counts = await cleanupNow();
  assert.ok(counts.expired >= 1, JSON.stringify(counts));
  for (const key of ["expired", "purged", "reaped"]) assert.equal(typeof counts[key], "number");
  const [row] = await sql`select status, payload_deleted_at from public.message_bus where transaction_id = ${id}::uuid`;
  assert.equal(row.status, "expired");
  assert.ok(row.payload_deleted_at);
  assert.equal(
    (await sql`select count(*)::int as n from public.message_bus_chunks where transaction_id = ${id}::uuid`)[0].n,
    0,
  );
  assert.equal(await fetchStatus(user.token, id), 410);
  const meta = await fetchJson(user.token, `/${id}/meta`);
  assert.equal(meta.status, 200);
  assert.equal(meta.json.status, "expired");
  assert.equal(meta.json.watcher.verdict, "ok", "the observation stays with the audit row");

  // Past the retention period (30 days by default) the row goes too, with its observation.
  await sql`update public.message_bus set expires_at = now() - interval '31 days' where transaction_id = ${id}::uuid`;
  const later = await cleanupNow();
  assert.ok(later.purged >= 1, JSON.stringify(later));
  assert.equal((await fetchJson(user.token, `/${id}/meta`)).status, 404);
  assert.equal(
    (await sql`select count(*)::int as n from public.message_bus_observations where transaction_id = ${id}::uuid`)[0].n,
    0,
  );
});

Deno.test("cleanup reaps only messages whose lease ran out (failed, worker_lost), never one whose worker renews it", async () => {
  const user = await newUser();
  const begin = async () =>
    (await sql`select transaction_id from bus.begin_message(${user.id}::uuid, 'chat', 'kimi', 'm', null, null, 3600)`)[
      0
    ]
      .transaction_id as string;
  const stale = await begin();
  const young = await begin();
  const old = await begin();
  const legacy = await begin();
  // stale: its worker stopped renewing; old: pending for two hours but its lease is fresh (a long call, alive);
  // legacy: recorded before leases existed, by the old rule (older than MESSAGE_BUS_REAP_PENDING_MINUTES).
  await sql`update public.message_bus set lease_expires_at = now() - interval '1 second' where transaction_id = ${stale}::uuid`;
  await sql`update public.message_bus set created_at = now() - interval '2 hours' where transaction_id = ${old}::uuid`;
  await sql`update public.message_bus set lease_expires_at = null, created_at = now() - interval '16 minutes'
            where transaction_id = ${legacy}::uuid`;

  const counts = await cleanupNow();
  assert.ok(counts.reaped >= 2, JSON.stringify(counts));
  const rows = await sql`select transaction_id, status, error from public.message_bus
                         where transaction_id in (${stale}::uuid, ${young}::uuid, ${old}::uuid, ${legacy}::uuid)`;
  const byId = Object.fromEntries(rows.map((r) => [r.transaction_id, r]));
  assert.equal(byId[stale].status, "failed");
  assert.equal(byId[stale].error.code, "worker_lost");
  assert.equal(byId[legacy].status, "failed");
  assert.equal(byId[young].status, "pending");
  assert.equal(byId[old].status, "pending", "a call whose lease is renewed is never reaped, however long it runs");
  assert.equal(await fetchStatus(user.token, stale), 409);
  // The status change reached the owner's channel and the watcher.
  const events = await sql`select 1 from realtime.messages where event = 'message' and topic = ${`bus:${user.id}`}
                           and payload ->> 'transaction_id' = ${stale} and payload ->> 'status' = 'failed'`;
  assert.equal(events.length, 1);
  assert.equal((await waitForObservation(sql, stale)).findings[0].code, "message_failed");
  await sql`delete from public.message_bus where transaction_id in (${young}::uuid, ${old}::uuid)`;
});

Deno.test("cleanup trims pg_net responses older than an hour and pg_cron history older than 7 days", async () => {
  const marker = `cleanup-test-${crypto.randomUUID()}`;
  await sql`insert into net._http_response (id, status_code, content, created)
            values (-1, 200, ${marker}, now() - interval '2 hours'), (-2, 200, ${marker}, now() - interval '10 minutes')`;
  await sql`insert into cron.job_run_details (jobid, command, status, return_message, start_time, end_time)
            values (0, ${marker}, 'succeeded', 'old', now() - interval '8 days', now() - interval '8 days'),
                   (0, ${marker}, 'succeeded', 'new', now() - interval '6 days', now() - interval '6 days')`;
  const counts = await cleanupNow();
  assert.ok(counts.http_responses_deleted >= 1 && counts.cron_runs_deleted >= 1, JSON.stringify(counts));
  const http = await sql`select id from net._http_response where content = ${marker}`;
  assert.deepEqual(http.map((r) => Number(r.id)), [-2]);
  const cron = await sql`select return_message from cron.job_run_details where command = ${marker}`;
  assert.deepEqual(cron.map((r) => r.return_message), ["new"]);
  await sql`delete from net._http_response where content = ${marker}`;
  await sql`delete from cron.job_run_details where command = ${marker}`;
});

Deno.test("every run is logged in bus.maintenance_log with the counts it answered", async () => {
  const counts = await cleanupNow();
  assert.equal(counts.complete, true);
  assert.ok(counts.rounds >= 1);
  const [row] =
    await sql`select job, complete, counts, rounds, duration_ms, error from bus.maintenance_log where id = ${counts.run_id}`;
  assert.equal(row.job, "cleanup");
  assert.equal(row.complete, true);
  assert.equal(row.rounds, counts.rounds);
  assert.equal(row.error, null);
  for (const key of ["expired", "purged", "reaped", "http_responses_deleted", "cron_runs_deleted"]) {
    assert.equal(row.counts[key], counts[key], key);
  }
  const accepted = await post("cleanup", service(), { async: true });
  assert.equal(accepted.status, 202);
  await waitFor(
    "the background run's log row",
    async () => (await sql`select id from bus.maintenance_log where id > ${counts.run_id}`)[0],
  );
});

Deno.test("cleanup tests: close the database client", async () => {
  await sql.end({ timeout: 5 });
});
