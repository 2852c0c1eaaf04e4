-- Cleanup, payload first. bench/cleanup_bench.ts measured expiry on 100,000 messages (2 cores, fsync on): deleting
-- their chunks cost 2.7 µs a message, marking the metadata rows expired 30 µs a message, and 90 µs with the
-- realtime status trigger of migration 200 — the row updates, not the bulk DELETE, made 1,000,000 take minutes.
-- So expiry now runs in two phases:
-- 1. the payload goes first: each chunk carries its message's expires_at, and expired chunks are deleted straight
--    from the chunk table through their own index, without touching a metadata row (the storage is reclaimed and,
--    as before, message-fetch answers 410 from expires_at alone, CONTRACT.md §5);
-- 2. the metadata rows are then marked (status 'expired', payload_deleted_at, updated_at; the status change sends
--    the realtime event) by bus.expire_messages, in rounds the cleanup function paces so writers keep their latency.
-- A chunk's expires_at is a copy taken when it is stored; chunks without one (stored before this migration) or of
-- a message whose expiry was changed later are still deleted in phase 2, which deletes by transaction ID.

alter table public.message_bus_chunks add column expires_at timestamptz;
comment on column public.message_bus_chunks.expires_at is
  'Copy of message_bus.expires_at taken when the chunk was stored, so that cleanup can delete expired payloads without touching the metadata rows.';
create index message_bus_chunks_expires_at on public.message_bus_chunks (expires_at);

-- The same as migration 100's append_chunk, plus the copy of expires_at.
create or replace function bus.append_chunk(p_transaction_id uuid, p_seq integer, p_data bytea)
returns void language plpgsql security definer set search_path = '' as $$
declare
  v_owner uuid;
  v_expires timestamptz;
begin
  select owner_id, expires_at into v_owner, v_expires from public.message_bus
    where transaction_id = p_transaction_id and status = 'pending' for share;
  if v_owner is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  insert into public.message_bus_chunks (transaction_id, seq, owner_id, data, expires_at)
  values (p_transaction_id, p_seq, v_owner, p_data, v_expires);
end $$;
comment on function bus.append_chunk(uuid, integer, bytea) is
  'Stores chunk p_seq of a pending message''s payload (with the message''s expires_at, for cleanup).';

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

-- Migration 100 now records status changes at clock_timestamp() (updated_at is when the change was made, not when
-- its transaction began); expiry and reaping follow, otherwise unchanged from migration 400.
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

-- One round: reap, payloads, then marking, purge and trims. Marking is one batch of p_mark_batch rows a round
-- (each costs a row update and a realtime event); `payloads_left` tells the caller whether phase 1 is done, after
-- which it paces the rounds. Replaces migration 400's run_cleanup (one more parameter).
drop function bus.run_cleanup(interval, interval, integer, integer, interval, interval);
create function bus.run_cleanup(
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

revoke execute on function bus.delete_expired_payloads(integer, integer),
  bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer) from public, anon, authenticated;
grant execute on function bus.delete_expired_payloads(integer, integer),
  bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer) to service_role;
