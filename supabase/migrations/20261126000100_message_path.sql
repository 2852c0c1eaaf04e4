-- The message path, hardened (issue "Hardening"):
--
-- 1. The request of every message is stored with it, checksummed and chunked like the payload
--    (public.message_bus_request_chunks, request_* columns): for audit, for replay, and so that a message whose
--    worker died can be run again from what was asked.
-- 2. A lease instead of an age: a pending message's worker holds a lease (lease_expires_at) that it renews while it
--    works (bus.renew_lease). The reaper only fails messages whose lease has run out, so it can no longer fail a call
--    that is still in progress (it used to fail anything pending for 15 minutes, whatever its worker was doing).
--    run_count fences the writers: complete_message and fail_message take the run they belong to, so a worker that
--    lost its message cannot complete it over a newer run.
-- 3. Meta gains what the contract now shows: mode, stream, attempts (every provider attempt), replay_of.
-- 4. Expiry is no longer announced on Realtime (CONTRACT.md §6): one event per expired row cost 60 µs of a
--    cleanup's 90 µs per row (migration 20261121000400).
-- 5. Default privileges: a function created later in schema bus is executable by nobody but its owner until a
--    migration grants it (Postgres grants EXECUTE to PUBLIC by default; migration 100 revoked that only for the role
--    that ran it, and only for functions, not for the service role's needs).
-- bus.complete_message and bus.fail_message are replaced (new parameters); supabase/schema.sql shows the current
-- definition of every object.

-- Default privileges. Postgres lets every role (PUBLIC) execute a new function; a per-schema ALTER DEFAULT
-- PRIVILEGES can only add to that, never take it away (Postgres docs, ALTER DEFAULT PRIVILEGES: "you cannot revoke
-- privileges per-schema if they are granted globally"), so migration 100's `in schema bus revoke` did nothing: a
-- function added to bus later was executable by `authenticated`. So the global default for the role that runs the
-- migrations revokes it, and per-schema defaults give it back where the usual behaviour is expected: `public` (what
-- Supabase projects expect there) and `extensions` (extensions installed later, such as pgTAP for `supabase test
-- db`). A function created in bus from now on is executable by nobody until a migration grants it; every migration
-- here grants what it creates.
alter default privileges for role postgres revoke execute on functions from public;
alter default privileges for role postgres in schema public grant execute on functions to public;
alter default privileges for role postgres in schema extensions grant execute on functions to public;

alter table public.message_bus
  add column mode text not null default 'sync' check (mode in ('sync', 'async')),
  add column stream boolean not null default false,
  add column run_count integer not null default 1 check (run_count >= 0),
  add column lease_expires_at timestamptz,
  add column attempts jsonb not null default '[]'::jsonb check (jsonb_typeof(attempts) = 'array'),
  add column replay_of uuid,
  add column request_size_bytes bigint check (request_size_bytes >= 0),
  add column request_stored_size_bytes bigint check (request_stored_size_bytes >= 0),
  add column request_compression text check (request_compression in ('none', 'gzip')),
  add column request_checksum text check (request_checksum ~ '^sha256:[0-9a-f]{64}$'),
  add column request_chunk_count integer check (request_chunk_count >= 0);
comment on column public.message_bus.mode is 'sync: the caller waits for the answer; async: answered 202 at once, run in the background.';
comment on column public.message_bus.stream is 'True when the provider''s answer was a server-sent event stream, stored as relayed.';
comment on column public.message_bus.run_count is 'How many workers have taken this message (1 for the worker that recorded it); complete and fail name their run.';
comment on column public.message_bus.lease_expires_at is
  'While pending: the worker renews this lease as it works; once it has passed, the worker is presumed dead and the reaper may act.';
comment on column public.message_bus.attempts is
  'Every provider attempt in order, retries and fallbacks included: [{provider, model, outcome, status, error_code}].';
comment on column public.message_bus.replay_of is 'The message whose stored request this one ran again (POST tool-invoke/<id>/replay).';
comment on column public.message_bus.request_checksum is 'sha256:<hex> of the request body exactly as received.';

create index message_bus_lease on public.message_bus (lease_expires_at) where status = 'pending';
drop index public.message_bus_pending;

create table public.message_bus_request_chunks (
  transaction_id uuid not null references public.message_bus (transaction_id) on delete cascade,
  seq integer not null check (seq >= 0),
  owner_id uuid not null,
  data bytea not null,
  expires_at timestamptz not null,
  primary key (transaction_id, seq)
);
alter table public.message_bus_request_chunks alter column data set storage external;
comment on table public.message_bus_request_chunks is
  'The stored request of a message (seq 0..request_chunk_count-1, about 1 MiB a row; gzip when message_bus.request_compression = gzip). Kept until the message expires, whatever its status.';
create index message_bus_request_chunks_expires_at on public.message_bus_request_chunks (expires_at);
alter table public.message_bus_request_chunks enable row level security;
revoke all on public.message_bus_request_chunks from anon, authenticated;
grant select on public.message_bus_request_chunks to authenticated;
grant all on public.message_bus_request_chunks to service_role;
create policy "owners read their requests" on public.message_bus_request_chunks
  for select to authenticated using (owner_id = (select auth.uid()));

-- ---------------------------------------------------------------------------------------------------------------
-- Recording a message
-- ---------------------------------------------------------------------------------------------------------------

drop function bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text);

-- begin_message: record a request (and its stored bytes) before the provider is called. Race-safe idempotency: the
-- unique constraint (owner_id, idempotency_key) makes a concurrent second insert wait for the first and then return
-- its row. The request's chunks go with it: the last one (all of a request of one chunk) in this statement, the others
-- appended by bus.append_request_chunk before the provider is called.
create function bus.begin_message(
  p_owner uuid, p_tool text, p_provider text, p_model text, p_session_id text, p_idempotency_key text,
  p_ttl_seconds integer, p_metadata jsonb default '{}'::jsonb, p_mode text default 'sync',
  p_lease_seconds integer default 60, p_request_size bigint default null, p_request_stored_size bigint default null,
  p_request_compression text default null, p_request_checksum text default null,
  p_request_chunk_count integer default null, p_request_last_chunk bytea default null, p_stream boolean default false,
  p_replay_of uuid default null
) returns table (transaction_id uuid, status text, created boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_id uuid;
  v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
begin
  if p_ttl_seconds is null or p_ttl_seconds <= 0 then
    raise exception 'ttl must be positive, got %', p_ttl_seconds using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds <= 0 then
    raise exception 'lease must be positive, got %', p_lease_seconds using errcode = '22023';
  end if;
  insert into public.message_bus as m (owner_id, tool, provider, model, session_id, idempotency_key, expires_at,
    metadata, mode, stream, replay_of, lease_expires_at, request_size_bytes, request_stored_size_bytes,
    request_compression, request_checksum, request_chunk_count)
  values (p_owner, p_tool, p_provider, p_model, p_session_id, p_idempotency_key, v_expires,
          coalesce(p_metadata, '{}'::jsonb), p_mode, coalesce(p_stream, false), p_replay_of,
          now() + make_interval(secs => p_lease_seconds), p_request_size, p_request_stored_size,
          p_request_compression, p_request_checksum, p_request_chunk_count)
  on conflict on constraint message_bus_owner_idempotency_key do nothing
  returning m.transaction_id into v_id;
  if v_id is not null then
    if p_request_last_chunk is not null then
      insert into public.message_bus_request_chunks (transaction_id, seq, owner_id, data, expires_at)
      values (v_id, p_request_chunk_count - 1, p_owner, p_request_last_chunk, v_expires);
    end if;
    return query select v_id, 'pending'::text, true;
    return;
  end if;
  return query select m.transaction_id, m.status, false from public.message_bus m
    where m.owner_id = p_owner and m.idempotency_key = p_idempotency_key;
end $$;
comment on function bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid) is
  'Records a pending message and its stored request (the last request chunk in this statement) under a lease of p_lease_seconds, before the provider is called. With an idempotency key already used by the owner, returns the existing message with created = false.';

-- append_request_chunk: one more piece of a pending message's request (requests of more than one chunk).
create function bus.append_request_chunk(p_transaction_id uuid, p_seq integer, p_data bytea)
returns void language plpgsql security definer set search_path = '' as $$
declare
  v_owner uuid;
  v_expires timestamptz;
begin
  select owner_id, expires_at into v_owner, v_expires from public.message_bus
    where transaction_id = p_transaction_id and status = 'pending';
  if v_owner is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  insert into public.message_bus_request_chunks (transaction_id, seq, owner_id, data, expires_at)
  values (p_transaction_id, p_seq, v_owner, p_data, v_expires);
end $$;
comment on function bus.append_request_chunk(uuid, integer, bytea) is 'Stores chunk p_seq of a pending message''s request.';

-- renew_lease: the heartbeat of a worker. False when the message is no longer pending or another run took it.
create function bus.renew_lease(p_transaction_id uuid, p_run integer, p_lease_seconds integer)
returns boolean language sql security definer set search_path = '' as $$
  with renewed as (
    update public.message_bus set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
     where transaction_id = p_transaction_id and status = 'pending' and run_count = p_run
    returning 1)
  select exists (select 1 from renewed);
$$;
comment on function bus.renew_lease(uuid, integer, integer) is
  'Extends the lease of run p_run of a pending message by p_lease_seconds from now; false when it is no longer that run''s.';

-- ---------------------------------------------------------------------------------------------------------------
-- Finishing a message
-- ---------------------------------------------------------------------------------------------------------------

drop function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea);

-- complete_message: the pointer becomes valid only if the chunks add up to what the writer says it wrote, and only
-- for the run that holds the message (p_run; null skips that check, for tools and tests).
create function bus.complete_message(
  p_transaction_id uuid, p_payload_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_finish_reason text, p_usage jsonb, p_model text, p_provider_ms integer, p_write_ms integer,
  p_metadata jsonb default '{}'::jsonb, p_stored_checksum text default null, p_last_chunk bytea default null,
  p_run integer default null, p_attempts jsonb default null, p_provider text default null, p_stream boolean default null
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
begin
  if p_last_chunk is not null then
    perform bus.append_chunk(p_transaction_id, p_chunk_count - 1, p_last_chunk);
  end if;
  select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
    from public.message_bus_chunks where transaction_id = p_transaction_id;
  if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
    raise exception 'message % has % chunks / % bytes stored, the writer reported % / %',
      p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
  end if;
  update public.message_bus set
    status = 'completed', payload_size_bytes = p_payload_size, stored_size_bytes = p_stored_size,
    compression = p_compression, checksum = p_checksum, stored_checksum = p_stored_checksum,
    chunk_count = p_chunk_count, finish_reason = p_finish_reason, usage = p_usage, model = coalesce(p_model, model),
    provider = coalesce(p_provider, provider), stream = coalesce(p_stream, stream),
    attempts = coalesce(p_attempts, attempts), provider_ms = p_provider_ms, write_ms = p_write_ms,
    completed_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = null,
    metadata = metadata || coalesce(p_metadata, '{}'::jsonb)
  where transaction_id = p_transaction_id and status = 'pending' and (p_run is null or run_count = p_run)
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending for run %', p_transaction_id, p_run using errcode = '55000';
  end if;
  return v_row;
end $$;
comment on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea, integer, jsonb, text, boolean) is
  'Marks a pending message completed (for run p_run) after checking that its stored chunks match the reported count and size. With p_last_chunk, first stores it as chunk p_chunk_count - 1 (a one-chunk payload: one statement).';

drop function bus.fail_message(uuid, jsonb, integer);

-- fail_message: a provider failure (or a failed write) is recorded, never lost. Partial payload chunks are removed
-- unless p_keep_partial (a cut stream keeps what arrived, for diagnosis); the stored request stays (replay, audit).
create function bus.fail_message(
  p_transaction_id uuid, p_error jsonb, p_provider_ms integer default null, p_run integer default null,
  p_attempts jsonb default null, p_keep_partial boolean default false
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_row public.message_bus;
begin
  update public.message_bus set status = 'failed', error = p_error, provider_ms = coalesce(p_provider_ms, provider_ms),
         attempts = coalesce(p_attempts, attempts), completed_at = clock_timestamp(), updated_at = clock_timestamp(),
         lease_expires_at = null
  where transaction_id = p_transaction_id and status = 'pending' and (p_run is null or run_count = p_run)
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending for run %', p_transaction_id, p_run using errcode = '55000';
  end if;
  if not coalesce(p_keep_partial, false) then
    delete from public.message_bus_chunks where transaction_id = p_transaction_id;
  end if;
  return v_row;
end $$;
comment on function bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean) is
  'Marks a pending message failed (for run p_run) with a JSON error; drops any partial payload unless p_keep_partial. The stored request stays.';

-- ---------------------------------------------------------------------------------------------------------------
-- Reaping by lease
-- ---------------------------------------------------------------------------------------------------------------

-- A pending message is reaped only once its lease has run out (its worker stopped renewing it), never by age while
-- a worker renews it. Messages recorded before leases existed (lease null) keep the old rule: older than
-- p_older_than. Rows a live writer holds are skipped (skip locked), never waited for.
create or replace function bus.reap_pending(p_older_than interval default '15 minutes', p_batch integer default 5000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_ids uuid[];
begin
  select array_agg(s.transaction_id) into v_ids from (
    select m.transaction_id from public.message_bus m
     where m.status = 'pending'
       and (m.lease_expires_at < now() or (m.lease_expires_at is null and m.created_at < now() - p_older_than))
     limit p_batch
     for update skip locked) s;
  if v_ids is null then
    return 0;
  end if;
  delete from public.message_bus_chunks where transaction_id = any (v_ids);
  update public.message_bus
     set status = 'failed', completed_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = null,
         error = jsonb_build_object(
           'code', 'worker_lost',
           'message', 'The worker running this message stopped renewing its lease (it died or lost the database); cleanup marked it failed')
   where transaction_id = any (v_ids);
  return cardinality(v_ids);
end $$;
comment on function bus.reap_pending(interval, integer) is
  'Marks pending messages whose lease ran out failed (error code worker_lost), at most p_batch; returns how many.';

-- Request chunks expire with their message (cleanup phase 1 deletes them by their own expires_at).
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
  v_from := '-infinity';
  loop
    exit when clock_timestamp() >= v_deadline;
    select array_agg(s.ctid), max(s.expires_at) into v_ctids, v_from from (
      select ctid, expires_at from public.message_bus_request_chunks
       where expires_at <= now() and expires_at >= v_from
       order by expires_at
       limit p_batch) s;
    exit when v_ctids is null;
    delete from public.message_bus_request_chunks where ctid = any (v_ctids);
    get diagnostics v_count = row_count;
    v_total := v_total + v_count;
    exit when cardinality(v_ctids) < p_batch;
  end loop;
  return v_total;
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Realtime: expiry is not announced
-- ---------------------------------------------------------------------------------------------------------------
drop trigger message_bus_broadcast_status on public.message_bus;
create trigger message_bus_broadcast_status
  after update of status on public.message_bus
  for each row when (old.status is distinct from new.status and new.status <> 'expired')
  execute function bus.broadcast_status_change();
comment on trigger message_bus_broadcast_status on public.message_bus is
  'Every status change but expiry (completed, failed) is announced to the owner on bus:<owner_id> (CONTRACT.md §6).';

-- ---------------------------------------------------------------------------------------------------------------
-- What callers see: the same columns in the same order, then the new ones
-- ---------------------------------------------------------------------------------------------------------------
create or replace view public.message_bus_meta with (security_invoker = true) as
  select m.transaction_id, m.owner_id,
         case when m.status <> 'expired' and m.expires_at <= now() then 'expired' else m.status end as status,
         m.tool, m.provider, m.model, m.session_id, m.checksum, m.payload_size_bytes, m.stored_size_bytes,
         m.compression, m.chunk_count, m.finish_reason, m.usage, m.error, m.created_at, m.updated_at,
         m.completed_at, m.expires_at, m.retrieved_at, m.retrieved_count, m.provider_ms, m.write_ms,
         (select jsonb_build_object('verdict', o.verdict, 'findings', (
                   select coalesce(jsonb_agg(jsonb_build_object('code', f.value ->> 'code', 'message', f.value ->> 'message')
                                             order by f.ordinality), '[]'::jsonb)
                   from jsonb_array_elements(o.findings) with ordinality as f))
            from public.message_bus_observations o
           where o.transaction_id = m.transaction_id
           order by o.created_at desc, o.id desc
           limit 1) as watcher,
         m.stored_checksum, m.metadata ->> 'content_type' as content_type,
         m.mode, m.stream, m.attempts, m.replay_of, m.request_checksum, m.request_size_bytes, m.metadata
  from public.message_bus m;

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------------------------
revoke execute on function
  bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid),
  bus.append_request_chunk(uuid, integer, bytea), bus.renew_lease(uuid, integer, integer),
  bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea, integer, jsonb, text, boolean),
  bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean)
  from public, anon, authenticated;
grant execute on function
  bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid),
  bus.append_request_chunk(uuid, integer, bytea), bus.renew_lease(uuid, integer, integer),
  bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea, integer, jsonb, text, boolean),
  bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean)
  to service_role;



-- seal_request: a request of more than one chunk is recorded by begin_message without its request columns, its
-- chunks appended (bus.append_request_chunk), then sealed here with its last chunk once they add up.
create function bus.seal_request(
  p_transaction_id uuid, p_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_last_chunk bytea
) returns void language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
begin
  if p_last_chunk is not null then
    perform bus.append_request_chunk(p_transaction_id, p_chunk_count - 1, p_last_chunk);
  end if;
  select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
    from public.message_bus_request_chunks where transaction_id = p_transaction_id;
  if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
    raise exception 'message % has % request chunks / % bytes stored, the writer reported % / %',
      p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
  end if;
  update public.message_bus set request_size_bytes = p_size, request_stored_size_bytes = p_stored_size,
         request_compression = p_compression, request_checksum = p_checksum, request_chunk_count = p_chunk_count
   where transaction_id = p_transaction_id and status = 'pending';
end $$;
comment on function bus.seal_request(uuid, bigint, bigint, text, text, integer, bytea) is
  'Completes the stored request of a pending message recorded without it: stores the last chunk, checks that the chunks add up, sets the request columns.';
revoke execute on function bus.seal_request(uuid, bigint, bigint, text, text, integer, bytea) from public, anon, authenticated;
grant execute on function bus.seal_request(uuid, bigint, bigint, text, text, integer, bytea) to service_role;
