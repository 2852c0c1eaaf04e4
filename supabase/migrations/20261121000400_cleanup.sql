-- Cleanup: the bus must never bloat (CONTRACT.md §8). The work is done by verb-named SQL functions in schema `bus`
-- that each handle one batch-bounded step; the `cleanup` Edge Function calls bus.run_cleanup in short rounds (one
-- transaction each, so row locks are held briefly) until nothing is left or its time budget is spent, and logs the
-- run in bus.maintenance_log. Every query claims rows with `for update skip locked`, so it never waits for (or
-- blocks) a writer, and a message still being written is never touched.
-- pg_cron job `message-bus-cleanup` calls the function hourly through pg_net (supabase-platform.md §2.5, §4).

-- Expiry runs in two phases. bench/cleanup_bench.ts measured it on 100,000 messages (2 cores, fsync on): deleting
-- their chunks cost 2.7 µs a message, marking the metadata rows expired 30 µs a message, and 90 µs with the
-- realtime status trigger of migration 200 — the row updates, not the bulk DELETE, made 1,000,000 take minutes.
-- 1. the payload goes first: each chunk carries its message's expires_at (migration 100), and expired chunks are
--    deleted straight from the chunk table through their own index, without touching a metadata row (message-fetch
--    answers 410 from expires_at alone, CONTRACT.md §5);
-- 2. the metadata rows are then marked (status 'expired', payload_deleted_at, updated_at; the status change sends
--    the realtime event) by bus.expire_messages, in rounds the cleanup function paces so writers keep their latency.
--    Chunks of a message whose expiry was changed after they were stored are deleted here, by transaction ID.

-- Purging finds expired rows by expiry; the index of migration 100 covers only rows that still have a payload.
create index message_bus_purge on public.message_bus (expires_at) where payload_deleted_at is not null;

create table bus.maintenance_log (
  id bigint generated always as identity primary key,
  job text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null default clock_timestamp(),
  duration_ms integer not null check (duration_ms >= 0),
  rounds integer not null default 0 check (rounds >= 0),
  complete boolean not null,
  counts jsonb not null default '{}'::jsonb,
  error text
);
comment on table bus.maintenance_log is
  'One row per cleanup run: its counts (expired, purged, reaped, ...), whether it finished all work within its time budget, and any error.';
create index maintenance_log_started_at on bus.maintenance_log (started_at);
revoke all on bus.maintenance_log from public, anon, authenticated;
grant select, insert, delete on bus.maintenance_log to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- The steps
-- ---------------------------------------------------------------------------------------------------------------

-- Phase 1: batches of ctids through the chunks' expiry index, deleted by a TID scan (a join on ctid would scan the
-- whole table for each batch); each batch starts at the last expiry seen, so the index entries of chunks deleted
-- earlier in the same transaction are not walked again. Chunks a writer has not committed yet are invisible here
-- and wait for the next run.
create or replace function bus.delete_expired_payloads(p_batch integer default 5000, p_budget_ms integer default 2000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(p_budget_ms, 0) / 1000.0);
  v_from timestamptz := '-infinity';
  v_ctids tid[];
  v_count bigint;
  v_total bigint := 0;
begin
  loop
    select array_agg(s.ctid), max(s.expires_at) into v_ctids, v_from from (
      select ctid, expires_at from public.message_bus_chunks
       where expires_at <= now() and expires_at >= v_from
       order by expires_at
       limit p_batch) s;
    exit when v_ctids is null;
    delete from public.message_bus_chunks where ctid = any (v_ctids);
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    exit when cardinality(v_ctids) < p_batch or clock_timestamp() >= v_deadline;
  end loop;
  return v_total;
end $$;
comment on function bus.delete_expired_payloads(integer, integer) is
  'Deletes the stored chunks of expired messages (by the chunks'' own expires_at), p_batch at a time within p_budget_ms, without touching metadata rows; returns how many chunks.';

-- Phase 2, expiry: the payload goes, the metadata row stays as the audit trail (status 'expired', payload_deleted_at set)
-- until purged. Pending messages are left to the reaper (their writer may still be appending chunks).
create or replace function bus.expire_messages(p_batch integer default 5000, p_budget_ms integer default 2000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(p_budget_ms, 0) / 1000.0);
  v_ids uuid[];
  v_total bigint := 0;
begin
  loop
    select array_agg(s.transaction_id) into v_ids from (
      select m.transaction_id from public.message_bus m
       where m.payload_deleted_at is null and m.expires_at <= now() and m.status <> 'pending'
       order by m.expires_at
       limit p_batch
       for update skip locked) s;
    exit when v_ids is null;
    delete from public.message_bus_chunks where transaction_id = any (v_ids);
    update public.message_bus
       set status = 'expired', payload_deleted_at = clock_timestamp(), updated_at = clock_timestamp()
     where transaction_id = any (v_ids);
    v_total := v_total + cardinality(v_ids);
    exit when cardinality(v_ids) < p_batch or clock_timestamp() >= v_deadline;
  end loop;
  return v_total;
end $$;
comment on function bus.expire_messages(integer, integer) is
  'Deletes the payload of messages past expires_at and marks them expired (the row stays), p_batch at a time until none are left or p_budget_ms has passed; returns how many.';

-- Purge: metadata rows go p_retention after their expiry (observations and outbox rows cascade).
create or replace function bus.purge_messages(
  p_retention interval default '30 days', p_batch integer default 5000, p_budget_ms integer default 2000
) returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(p_budget_ms, 0) / 1000.0);
  v_count bigint;
  v_total bigint := 0;
begin
  loop
    delete from public.message_bus m
     where m.transaction_id in (
       select x.transaction_id from public.message_bus x
        where x.payload_deleted_at is not null and x.expires_at <= now() - p_retention
        order by x.expires_at
        limit p_batch
        for update skip locked);
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    exit when v_count < p_batch or clock_timestamp() >= v_deadline;
  end loop;
  return v_total;
end $$;
comment on function bus.purge_messages(interval, integer, integer) is
  'Deletes the metadata rows of messages expired more than p_retention ago, p_batch at a time within p_budget_ms; returns how many.';

-- Reaping: a pending message whose worker died would stay pending for ever. Rows a live writer holds (append_chunk
-- takes FOR SHARE) are skipped, never waited for. The status change fires the realtime and watcher triggers.
create or replace function bus.reap_pending(p_older_than interval default '15 minutes', p_batch integer default 5000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_ids uuid[];
begin
  select array_agg(s.transaction_id) into v_ids from (
    select m.transaction_id from public.message_bus m
     where m.status = 'pending' and m.created_at < now() - p_older_than
     order by m.created_at
     limit p_batch
     for update skip locked) s;
  if v_ids is null then
    return 0;
  end if;
  delete from public.message_bus_chunks where transaction_id = any (v_ids);
  update public.message_bus
     set status = 'failed', completed_at = clock_timestamp(), updated_at = clock_timestamp(),
         error = jsonb_build_object(
           'code', 'worker_lost',
           'message', format('No worker finished this message within %s of its creation; cleanup marked it failed', p_older_than))
   where transaction_id = any (v_ids);
  return cardinality(v_ids);
end $$;
comment on function bus.reap_pending(interval, integer) is
  'Marks messages pending for longer than p_older_than failed (error code worker_lost), at most p_batch; returns how many.';

-- pg_net keeps responses for its ttl (6 hours by default, §2.3); the bus's calls need them far less long.
create or replace function bus.trim_http_responses(p_older_than interval default '1 hour', p_batch integer default 5000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_count bigint;
begin
  if to_regclass('net._http_response') is null then
    return 0;
  end if;
  -- §2.3: the same statement pg_net's worker uses (the table has no key, §2.2).
  with rows as (
    select ctid from net._http_response where created < now() - p_older_than order by created limit p_batch
  )
  delete from net._http_response r using rows where r.ctid = rows.ctid;
  get diagnostics v_count = row_count;
  return v_count;
end $$;
comment on function bus.trim_http_responses(interval, integer) is
  'Deletes pg_net responses older than p_older_than (at most p_batch); returns how many.';

-- §4: cron.job_run_details is never cleaned by pg_cron itself; the README suggests deleting what is 7 days old.
create or replace function bus.trim_cron_history(p_older_than interval default '7 days', p_batch integer default 5000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_count bigint;
begin
  if to_regclass('cron.job_run_details') is null then
    return 0;
  end if;
  with rows as (
    select ctid from cron.job_run_details where end_time < now() - p_older_than limit p_batch
  )
  delete from cron.job_run_details d using rows where d.ctid = rows.ctid;
  get diagnostics v_count = row_count;
  return v_count;
end $$;
comment on function bus.trim_cron_history(interval, integer) is
  'Deletes pg_cron run history older than p_older_than (at most p_batch); returns how many.';

-- One round: reap, payloads, then marking, purge and trims. Marking is one batch of p_mark_batch rows a round
-- (each costs a row update and a realtime event); `payloads_left` tells the caller whether phase 1 is done, after
-- which it paces the rounds.
create or replace function bus.run_cleanup(
  p_retention interval default '30 days',
  p_reap_after interval default '15 minutes',
  p_batch integer default 5000,
  p_budget_ms integer default 2000,
  p_http_keep interval default '1 hour',
  p_cron_keep interval default '7 days',
  p_mark_batch integer default 1000
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  v_started timestamptz := clock_timestamp();
  v_left integer;
  v_reaped bigint;
  v_chunks bigint;
  v_expired bigint;
  v_purged bigint;
  v_http bigint;
  v_cron bigint;
  v_other bigint := 0;
  v_count bigint;
  v_payloads_left boolean;
  v_more boolean;
begin
  v_reaped := bus.reap_pending(p_reap_after, p_batch);
  v_chunks := bus.delete_expired_payloads(p_batch, p_budget_ms);
  v_payloads_left := exists (select 1 from public.message_bus_chunks where expires_at <= now());
  v_left := p_budget_ms - (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
  -- Marking waits until a round deletes no payload, so deleted payloads are committed (gone for good) at once.
  v_expired := case when v_payloads_left or v_chunks > 0 then 0 else bus.expire_messages(p_mark_batch, 0) end;
  v_left := p_budget_ms - (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
  v_purged := case when v_left > 0 then bus.purge_messages(p_retention, p_batch, v_left) else 0 end;
  v_http := bus.trim_http_responses(p_http_keep, p_batch);
  v_cron := bus.trim_cron_history(p_cron_keep, p_batch);
  -- The bus's own bookkeeping: review budgets of past hours, maintenance log rows older than 90 days.
  delete from bus.review_budget where hour < now() - interval '2 days';
  get diagnostics v_count = row_count;
  v_other := v_other + v_count;
  delete from bus.maintenance_log where started_at < now() - interval '90 days';
  get diagnostics v_count = row_count;
  v_other := v_other + v_count;

  v_more := v_payloads_left or v_reaped >= p_batch or v_http >= p_batch or v_cron >= p_batch
    or exists (select 1 from public.message_bus
                where payload_deleted_at is null and expires_at <= now() and status <> 'pending')
    or exists (select 1 from public.message_bus
                where payload_deleted_at is not null and expires_at <= now() - p_retention);
  return jsonb_build_object(
    'reaped', v_reaped, 'payload_chunks_deleted', v_chunks, 'expired', v_expired, 'purged', v_purged,
    'http_responses_deleted', v_http, 'cron_runs_deleted', v_cron, 'bookkeeping_deleted', v_other,
    'payloads_left', v_payloads_left, 'more', v_more
  );
end $$;
comment on function bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer) is
  'One cleanup round within p_budget_ms: reap, delete expired payloads, then mark one batch of expired rows, purge, trim pg_net and pg_cron history; returns the counts, payloads_left and whether more work is left.';

create or replace function bus.log_maintenance(
  p_job text, p_started_at timestamptz, p_rounds integer, p_complete boolean, p_counts jsonb, p_error text default null
) returns bigint language sql security definer set search_path = '' as $$
  insert into bus.maintenance_log (job, started_at, finished_at, duration_ms, rounds, complete, counts, error)
  values (p_job, p_started_at, clock_timestamp(),
          greatest(0, (extract(epoch from clock_timestamp() - p_started_at) * 1000)::integer),
          p_rounds, p_complete, coalesce(p_counts, '{}'::jsonb), p_error)
  returning id;
$$;
comment on function bus.log_maintenance(text, timestamptz, integer, boolean, jsonb, text) is
  'Records one maintenance run (its counts, rounds, completeness and error) in bus.maintenance_log; returns its id.';

-- ---------------------------------------------------------------------------------------------------------------
-- The schedule
-- ---------------------------------------------------------------------------------------------------------------

-- §2.5 verbatim in shape: URL and key read from Vault when the job runs. `async` makes the function answer 202 at
-- once and work in the background (EdgeRuntime.waitUntil), so pg_net's batch is not held for the whole run.
create or replace function bus.schedule_cleanup(p_schedule text default '0 * * * *')
returns bigint language sql security definer set search_path = '' as $$
  select bus.schedule_job('message-bus-cleanup', p_schedule, $cmd$
    select net.http_post(
      url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/cleanup',
      headers := jsonb_build_object(
        'Content-Type', 'application/json',
        'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key'),
        'apikey', (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
      body := '{"async": true}'::jsonb,
      timeout_milliseconds := 10000
    ) as request_id
  $cmd$);
$$;
comment on function bus.schedule_cleanup(text) is
  'Schedules pg_cron job message-bus-cleanup (hourly by default; a seconds schedule falls back to every minute on pg_cron < 1.5), which calls the cleanup function through pg_net.';

select bus.schedule_cleanup();

revoke execute on function bus.expire_messages(integer, integer), bus.purge_messages(interval, integer, integer),
  bus.reap_pending(interval, integer), bus.trim_http_responses(interval, integer),
  bus.trim_cron_history(interval, integer),
  bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer),
  bus.delete_expired_payloads(integer, integer),
  bus.log_maintenance(text, timestamptz, integer, boolean, jsonb, text), bus.schedule_cleanup(text)
  from public, anon, authenticated;
grant execute on function bus.expire_messages(integer, integer), bus.purge_messages(interval, integer, integer),
  bus.reap_pending(interval, integer), bus.trim_http_responses(interval, integer),
  bus.trim_cron_history(interval, integer),
  bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer),
  bus.delete_expired_payloads(integer, integer),
  bus.log_maintenance(text, timestamptz, integer, boolean, jsonb, text), bus.schedule_cleanup(text)
  to service_role;
