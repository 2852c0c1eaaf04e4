-- Provider routing (issue "Provider routing that survives outages"): the state every function instance must share
-- lives here, in Postgres, not in a process (LiteLLM and Portkey keep it in Redis or memory: lost on restart, and
-- without Redis each worker counts alone; gateways-streaming-mcp.md §1).
--
-- 1. Circuit breakers per route (provider + model as sent): bus.routes. A route opens after N failed attempts in a
--    row (only retried kinds of failure count), stays open for a timeout, then lets exactly one trial through
--    across all instances (half-open); a failure while open or in the trial re-opens it for a full timeout from
--    now (a re-trip extends the deadline, LiteLLM#40130). A healthy call costs no extra round trip: begin_message
--    returns the requested route's state, complete_message closes a route that needed it.
-- 2. Concurrency limits per provider: bus.provider_leases, one row per call in flight, expiring (a worker killed
--    with SIGKILL frees its slot when its lease runs out), renewed with the message's lease.
-- 3. Per-user request rate: bus.user_limits (overrides) and bus.rate_windows (one counter per user and minute),
--    checked by begin_message before anything is recorded.
-- 4. Async messages whose worker died are run again (bus.claim_orphans), at most MESSAGE_BUS_MAX_ATTEMPTS runs.

-- ---------------------------------------------------------------------------------------------------------------
-- Circuit breakers
-- ---------------------------------------------------------------------------------------------------------------
create table if not exists bus.routes (
  provider text not null,
  model text not null,
  state text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
  open_until timestamptz,
  updated_at timestamptz not null default now(),
  primary key (provider, model)
);
alter table bus.routes
  add column if not exists opened_at timestamptz,
  add column if not exists trial_until timestamptz,
  add column if not exists last_error text;
comment on table bus.routes is
  'One circuit breaker per route (provider, model as sent): closed, open until open_until, then half-open with one trial at a time (trial_until).';
comment on column bus.routes.trial_until is 'While half-open: the trial call in flight holds the route until then (a trial whose worker died frees it then).';
revoke all on bus.routes from public, anon, authenticated;
grant all on bus.routes to service_role;

-- The state a caller acts on: open_until in the future is open; an open route past it, or a half-open one whose
-- trial is not in flight, is half_open (the next caller may take the trial).
create function bus.route_state(p_state text, p_open_until timestamptz, p_trial_until timestamptz)
returns text language sql stable as $$
  select case
    when p_state = 'closed' then 'closed'
    when p_state = 'open' and p_open_until > now() then 'open'
    else 'half_open'
  end
$$;
comment on function bus.route_state(text, timestamptz, timestamptz) is 'The effective state of a route row now: closed, open, or half_open.';

-- The states of several routes (the fallbacks, read only once the requested route has failed).
create function bus.route_states(p_routes jsonb)
returns table (provider text, model text, state text, open_until timestamptz, trial_in_flight boolean)
language sql stable security definer set search_path = '' as $$
  select r.value ->> 'provider', r.value ->> 'model',
         case when x.provider is null then 'closed' else bus.route_state(x.state, x.open_until, x.trial_until) end,
         x.open_until,
         coalesce(x.state = 'half_open' and x.trial_until > now(), false)
  from jsonb_array_elements(p_routes) r
  left join bus.routes x on x.provider = r.value ->> 'provider' and x.model = r.value ->> 'model'
$$;
comment on function bus.route_states(jsonb) is 'The breaker state of each route in p_routes ([{provider, model}]), closed when never seen.';

-- Takes the one trial of a half-open route: true for exactly one caller across all instances until the trial
-- ends (success or failure) or its hold of p_hold_seconds runs out.
create function bus.try_trial(p_provider text, p_model text, p_hold_seconds integer)
returns boolean language sql security definer set search_path = '' as $$
  with taken as (
    update bus.routes set state = 'half_open', trial_until = now() + make_interval(secs => p_hold_seconds),
                          updated_at = now()
     where provider = p_provider and model = p_model
       and ((state = 'open' and open_until <= now())
            or (state = 'half_open' and (trial_until is null or trial_until <= now())))
    returning 1)
  select exists (select 1 from taken);
$$;
comment on function bus.try_trial(text, text, integer) is
  'Takes the single trial call of a half-open route for p_hold_seconds; false when the route is not half-open or another caller holds the trial.';

-- A failed attempt that counts (429, 408, 5xx, timeout, connection error): N in a row open the route; any failure
-- while open or in a trial re-opens it for a full timeout from now. Returns the route's state after it.
create function bus.record_route_failure(
  p_provider text, p_model text, p_threshold integer, p_timeout_seconds integer, p_error text
) returns text language plpgsql security definer set search_path = '' as $$
declare
  v_state text;
begin
  insert into bus.routes as r (provider, model, state, consecutive_failures, open_until, opened_at, last_error)
  values (p_provider, p_model,
          case when p_threshold <= 1 then 'open' else 'closed' end, 1,
          case when p_threshold <= 1 then now() + make_interval(secs => p_timeout_seconds) end,
          case when p_threshold <= 1 then now() end, left(p_error, 500))
  on conflict (provider, model) do update set
    consecutive_failures = r.consecutive_failures + 1,
    state = case when r.state <> 'closed' or r.consecutive_failures + 1 >= p_threshold then 'open' else 'closed' end,
    open_until = case when r.state <> 'closed' or r.consecutive_failures + 1 >= p_threshold
                      then now() + make_interval(secs => p_timeout_seconds) else r.open_until end,
    opened_at = case when r.state = 'closed' and r.consecutive_failures + 1 >= p_threshold then now() else r.opened_at end,
    trial_until = null,
    last_error = left(p_error, 500),
    updated_at = now()
  returning state into v_state;
  return v_state;
end $$;
comment on function bus.record_route_failure(text, text, integer, integer, text) is
  'Counts a failed attempt of a route; opens it at p_threshold failures in a row, and re-opens it for a full p_timeout_seconds from now on a failure while open or half-open. Returns the new state.';

-- A success closes the route (a no-op, and no lock, for a route that is closed with no failures counted).
create function bus.record_route_success(p_provider text, p_model text)
returns void language sql security definer set search_path = '' as $$
  update bus.routes set state = 'closed', consecutive_failures = 0, open_until = null, trial_until = null,
                        updated_at = now()
   where provider = p_provider and model = p_model and (state <> 'closed' or consecutive_failures > 0);
$$;
comment on function bus.record_route_success(text, text) is 'Closes a route after a successful call (resets its failure count).';

-- ---------------------------------------------------------------------------------------------------------------
-- Concurrency leases
-- ---------------------------------------------------------------------------------------------------------------
create table if not exists bus.provider_leases (
  provider text not null,
  transaction_id uuid not null,
  expires_at timestamptz not null
);
do $$ begin
  if not exists (select 1 from pg_constraint where conname = 'provider_leases_pkey') then
    alter table bus.provider_leases add constraint provider_leases_pkey primary key (provider, transaction_id);
  end if;
end $$;
create index if not exists provider_leases_transaction on bus.provider_leases (transaction_id);
comment on table bus.provider_leases is
  'One row per provider call in flight under <NAME>_MAX_CONCURRENCY; a row past expires_at belongs to a dead worker and no longer counts.';
revoke all on bus.provider_leases from public, anon, authenticated;
grant all on bus.provider_leases to service_role;

-- Takes one of p_max slots of a provider for a message, for p_lease_seconds. Acquisitions of one provider are
-- serialised by a transaction-scoped advisory lock (works through the transaction pooler), so the count is exact.
create function bus.acquire_provider_slot(p_provider text, p_transaction_id uuid, p_max integer, p_lease_seconds integer)
returns boolean language plpgsql security definer set search_path = '' as $$
begin
  perform pg_advisory_xact_lock(hashtextextended('bus.provider_slot:' || p_provider, 0));
  delete from bus.provider_leases where provider = p_provider and expires_at <= now();
  if exists (select 1 from bus.provider_leases where provider = p_provider and transaction_id = p_transaction_id) then
    update bus.provider_leases set expires_at = now() + make_interval(secs => p_lease_seconds)
     where provider = p_provider and transaction_id = p_transaction_id;
    return true;
  end if;
  if (select count(*) from bus.provider_leases where provider = p_provider) >= p_max then
    return false;
  end if;
  insert into bus.provider_leases (provider, transaction_id, expires_at)
  values (p_provider, p_transaction_id, now() + make_interval(secs => p_lease_seconds));
  return true;
end $$;
comment on function bus.acquire_provider_slot(text, uuid, integer, integer) is
  'Takes a concurrency slot of p_provider (at most p_max in flight across all instances) for p_lease_seconds; false when all are taken by live leases.';

create function bus.release_provider_slot(p_provider text, p_transaction_id uuid)
returns void language sql security definer set search_path = '' as $$
  delete from bus.provider_leases where provider = p_provider and transaction_id = p_transaction_id;
$$;
comment on function bus.release_provider_slot(text, uuid) is 'Frees the concurrency slot a message holds of a provider.';

-- ---------------------------------------------------------------------------------------------------------------
-- Per-user request rate
-- ---------------------------------------------------------------------------------------------------------------
create table if not exists bus.user_limits (
  user_id uuid primary key,
  requests_per_minute integer not null check (requests_per_minute >= 0),
  updated_at timestamptz not null default now()
);
comment on table bus.user_limits is 'Per-user override of MESSAGE_BUS_USER_RPM (0 = unlimited), set with PUT /ops/limits/<user_id>.';
revoke all on bus.user_limits from public, anon, authenticated;
grant all on bus.user_limits to service_role;

create table bus.rate_windows (
  user_id uuid not null,
  window_start timestamptz not null,
  requests integer not null check (requests >= 0),
  primary key (user_id, window_start)
);
comment on table bus.rate_windows is 'Requests per user and clock minute, for the per-user limit (rows of past minutes are trimmed by cleanup).';
revoke all on bus.rate_windows from public, anon, authenticated;
grant all on bus.rate_windows to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- begin_message: the rate limit, the route's breaker state and a concurrency slot, in the statement that records
-- the message (no round trip of its own on the healthy path)
-- ---------------------------------------------------------------------------------------------------------------
drop function bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid);

create function bus.begin_message(
  p_owner uuid, p_tool text, p_provider text, p_model text, p_session_id text, p_idempotency_key text,
  p_ttl_seconds integer, p_metadata jsonb default '{}'::jsonb, p_mode text default 'sync',
  p_lease_seconds integer default 60, p_request_size bigint default null, p_request_stored_size bigint default null,
  p_request_compression text default null, p_request_checksum text default null,
  p_request_chunk_count integer default null, p_request_last_chunk bytea default null, p_stream boolean default false,
  p_replay_of uuid default null, p_default_rpm integer default 0, p_slot_max integer default null,
  p_slot_lease_seconds integer default 60
) returns table (
  transaction_id uuid, status text, created boolean, route_state text, route_open_until timestamptz,
  slot boolean, rate_limit integer, rate_remaining integer, rate_reset_seconds integer
)
language plpgsql security definer set search_path = '' as $$
declare
  v_id uuid;
  v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
  v_limit integer;
  v_used integer;
  v_window timestamptz := date_trunc('minute', now());
  v_reset integer := greatest(1, ceil(extract(epoch from (date_trunc('minute', now()) + interval '1 minute' - now())))::integer);
  v_state text;
  v_open_until timestamptz;
  v_trial timestamptz;
  v_slot boolean := null;
begin
  if p_ttl_seconds is null or p_ttl_seconds <= 0 then
    raise exception 'ttl must be positive, got %', p_ttl_seconds using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds <= 0 then
    raise exception 'lease must be positive, got %', p_lease_seconds using errcode = '22023';
  end if;

  -- The caller's limit: an override, else the default (0 = unlimited). Counted before anything is recorded; a
  -- request past it records nothing (status rate_limited).
  select l.requests_per_minute into v_limit from bus.user_limits l where l.user_id = p_owner;
  v_limit := coalesce(v_limit, p_default_rpm, 0);
  if v_limit > 0 then
    insert into bus.rate_windows as w (user_id, window_start, requests) values (p_owner, v_window, 1)
    on conflict (user_id, window_start) do update set requests = w.requests + 1
    returning w.requests into v_used;
    if v_used > v_limit then
      return query select null::uuid, 'rate_limited'::text, false, null::text, null::timestamptz, null::boolean,
                          v_limit, 0, v_reset;
      return;
    end if;
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
  if v_id is null then
    return query select m.transaction_id, m.status, false, null::text, null::timestamptz, null::boolean,
                        nullif(v_limit, 0), greatest(v_limit - coalesce(v_used, 0), 0), v_reset
      from public.message_bus m where m.owner_id = p_owner and m.idempotency_key = p_idempotency_key;
    return;
  end if;
  if p_request_last_chunk is not null then
    insert into public.message_bus_request_chunks (transaction_id, seq, owner_id, data, expires_at)
    values (v_id, p_request_chunk_count - 1, p_owner, p_request_last_chunk, v_expires);
  end if;

  -- The requested route: its state (a route seen for the first time is recorded, closed; no lock is taken).
  select r.state, r.open_until, r.trial_until into v_state, v_open_until, v_trial
    from bus.routes r where r.provider = p_provider and r.model = p_model;
  if not found then
    insert into bus.routes (provider, model) values (p_provider, p_model) on conflict do nothing;
    v_state := 'closed';
  end if;
  v_state := bus.route_state(v_state, v_open_until, v_trial);

  if p_slot_max is not null and v_state = 'closed' then
    v_slot := bus.acquire_provider_slot(p_provider, v_id, p_slot_max, p_slot_lease_seconds);
  end if;
  return query select v_id, 'pending'::text, true, v_state, v_open_until, v_slot,
                      nullif(v_limit, 0), greatest(v_limit - coalesce(v_used, 0), 0), v_reset;
end $$;
comment on function bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid, integer, integer, integer) is
  'Records a pending message and its stored request under a lease, after counting the caller against their per-minute limit (status rate_limited, nothing recorded, when past it); returns the requested route''s breaker state and, with p_slot_max, whether a concurrency slot was taken. With an idempotency key already used by the owner, returns the existing message with created = false.';

-- ---------------------------------------------------------------------------------------------------------------
-- Finishing: the answering route closes, the message's slots are freed
-- ---------------------------------------------------------------------------------------------------------------
create or replace function bus.complete_message(
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
  v_last jsonb := p_attempts -> -1;
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
  -- The route that answered (the last attempt) is healthy; the message's concurrency slots are free.
  if v_last is not null then
    perform bus.record_route_success(v_last ->> 'provider', v_last ->> 'model');
  end if;
  delete from bus.provider_leases where transaction_id = p_transaction_id;
  return v_row;
end $$;

create or replace function bus.fail_message(
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
  delete from bus.provider_leases where transaction_id = p_transaction_id;
  return v_row;
end $$;

-- The partial payload of an attempt that failed mid-body, before the next attempt writes from chunk 0.
create function bus.discard_payload(p_transaction_id uuid, p_run integer)
returns void language plpgsql security definer set search_path = '' as $$
begin
  if not exists (select 1 from public.message_bus
                  where transaction_id = p_transaction_id and status = 'pending' and run_count = p_run) then
    raise exception 'message % is not pending for run %', p_transaction_id, p_run using errcode = '55000';
  end if;
  delete from public.message_bus_chunks where transaction_id = p_transaction_id;
end $$;
comment on function bus.discard_payload(uuid, integer) is
  'Drops the chunks a failed attempt of run p_run appended, so that the next attempt (a retry or a fallback) stores from chunk 0.';

-- The worker's heartbeat also keeps its concurrency slots.
create or replace function bus.renew_lease(p_transaction_id uuid, p_run integer, p_lease_seconds integer)
returns boolean language plpgsql security definer set search_path = '' as $$
declare
  v_renewed boolean;
begin
  update public.message_bus set lease_expires_at = now() + make_interval(secs => p_lease_seconds)
   where transaction_id = p_transaction_id and status = 'pending' and run_count = p_run;
  v_renewed := found;
  if v_renewed then
    update bus.provider_leases set expires_at = greatest(expires_at, now() + make_interval(secs => p_lease_seconds))
     where transaction_id = p_transaction_id;
  end if;
  return v_renewed;
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Async messages whose worker died
-- ---------------------------------------------------------------------------------------------------------------

-- Takes async messages whose lease ran out for another run (run_count + 1, a new lease), at most p_limit, and
-- fails those that have had p_max_attempts runs already. The caller (tool-invoke's dispatch route) starts a run
-- of each through pg_net, so every run is a request of its own.
create function bus.claim_orphans(p_max_attempts integer, p_lease_seconds integer, p_limit integer default 100)
returns table (transaction_id uuid, run integer)
language plpgsql security definer set search_path = '' as $$
begin
  update public.message_bus m
     set status = 'failed', completed_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = null,
         error = jsonb_build_object('code', 'worker_lost',
           'message', format('The worker died in each of %s runs of this message; it was not run again', m.run_count))
   where m.transaction_id in (
     select x.transaction_id from public.message_bus x
      where x.status = 'pending' and x.mode = 'async' and x.lease_expires_at < now()
        and x.run_count >= p_max_attempts
      limit p_limit for update skip locked);
  return query
    with claimed as (
      update public.message_bus m
         set run_count = m.run_count + 1, lease_expires_at = now() + make_interval(secs => p_lease_seconds)
       where m.transaction_id in (
         select x.transaction_id from public.message_bus x
          where x.status = 'pending' and x.mode = 'async' and x.lease_expires_at < now()
            and x.run_count < p_max_attempts and x.request_checksum is not null
          order by x.lease_expires_at
          limit p_limit for update skip locked)
      returning m.transaction_id, m.run_count),
    -- What the dead run left (chunks of a broken body, its concurrency slots) goes before the next run starts.
    no_chunks as (delete from public.message_bus_chunks c using claimed where c.transaction_id = claimed.transaction_id),
    no_slots as (delete from bus.provider_leases l using claimed where l.transaction_id = claimed.transaction_id)
    select claimed.transaction_id, claimed.run_count from claimed;
end $$;
comment on function bus.claim_orphans(integer, integer, integer) is
  'Claims async messages whose worker died (lease run out) for another run, at most p_limit; fails those that already had p_max_attempts runs (worker_lost). Returns the claimed ids and their run numbers.';

-- Asks tool-invoke (through pg_net, with URL and key from Vault) to run a claimed message.
create function bus.request_run(p_transaction_id uuid, p_run integer)
returns bigint language sql security definer set search_path = '' as $$
  select bus.call_function('tool-invoke/' || p_transaction_id::text || '/run', jsonb_build_object('run', p_run));
$$;
comment on function bus.request_run(uuid, integer) is 'POSTs {run} to tool-invoke/<id>/run through pg_net; returns the pg_net request id (null when it could not be queued).';

-- The reaper leaves async messages with runs left to the dispatcher.
create or replace function bus.reap_pending(p_older_than interval default '15 minutes', p_batch integer default 5000,
  p_max_attempts integer default 1)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_ids uuid[];
begin
  select array_agg(s.transaction_id) into v_ids from (
    select m.transaction_id from public.message_bus m
     where m.status = 'pending'
       and ((m.lease_expires_at < now() and (m.mode = 'sync' or m.run_count >= p_max_attempts))
            or (m.lease_expires_at is null and m.created_at < now() - p_older_than))
     limit p_batch
     for update skip locked) s;
  if v_ids is null then
    return 0;
  end if;
  delete from public.message_bus_chunks where transaction_id = any (v_ids);
  delete from bus.provider_leases where transaction_id = any (v_ids);
  update public.message_bus
     set status = 'failed', completed_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = null,
         error = jsonb_build_object(
           'code', 'worker_lost',
           'message', 'The worker running this message stopped renewing its lease (it died or lost the database); cleanup marked it failed')
   where transaction_id = any (v_ids);
  return cardinality(v_ids);
end $$;
drop function bus.reap_pending(interval, integer);

-- run_cleanup: the reaper leaves async messages with runs left to the dispatcher (p_max_attempts), and past
-- minutes' rate counters go with the other bookkeeping.
drop function bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer);
create function bus.run_cleanup(
  p_retention interval default '30 days',
  p_reap_after interval default '15 minutes',
  p_batch integer default 5000,
  p_budget_ms integer default 2000,
  p_http_keep interval default '1 hour',
  p_cron_keep interval default '7 days',
  p_mark_batch integer default 1000,
  p_max_attempts integer default 3
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
  v_reaped := bus.reap_pending(p_reap_after, p_batch, p_max_attempts);
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
  delete from bus.rate_windows where window_start < now() - interval '2 minutes';
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
comment on function bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer, integer) is
  'One cleanup round within p_budget_ms: reap (async messages with fewer than p_max_attempts runs are left to the dispatcher), delete expired payloads, then mark one batch of expired rows, purge, trim pg_net and pg_cron history and the bus''s bookkeeping; returns the counts, payloads_left and whether more work is left.';

-- ---------------------------------------------------------------------------------------------------------------
-- Scheduling: pg_cron starts the dispatcher every minute (the finest pg_cron 1.4 can do; hosted pg_cron 1.5 could
-- run it every few seconds with bus.schedule_job('message-bus-dispatch', '10 seconds', ...)).
-- ---------------------------------------------------------------------------------------------------------------
select bus.schedule_job('message-bus-dispatch', '* * * * *',
  $cmd$select bus.call_function('tool-invoke/dispatch', '{}'::jsonb)$cmd$);

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges (functions created here are executable by nobody until granted, migration 20261126000100)
-- ---------------------------------------------------------------------------------------------------------------
grant execute on function
  bus.route_states(jsonb), bus.try_trial(text, text, integer),
  bus.record_route_failure(text, text, integer, integer, text), bus.record_route_success(text, text),
  bus.acquire_provider_slot(text, uuid, integer, integer), bus.release_provider_slot(text, uuid),
  bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text, integer, bigint, bigint, text, text, integer, bytea, boolean, uuid, integer, integer, integer),
  bus.discard_payload(uuid, integer), bus.claim_orphans(integer, integer, integer), bus.request_run(uuid, integer),
  bus.reap_pending(interval, integer, integer),
  bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer, integer)
  to service_role;
grant execute on function bus.route_state(text, timestamptz, timestamptz) to service_role;
