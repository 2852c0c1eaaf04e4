-- Operations, part 3: the figures behind GET /ops/metrics, /ops/providers and the operator dashboard
-- (CONTRACT.md §12), computed from the database so that every function instance answers alike.
--
-- No scrape reads public.message_bus. Rollups hold everything:
-- - bus.ops_requests / bus.ops_buckets: finished messages per minute, provider, model, final status and stream
--   (count, bytes, duration sums; histogram buckets of provider time, bus overhead, time to first token, payload
--   size), kept p_keep (8 days) for charts and windows;
-- - bus.ops_requests_total / bus.ops_buckets_total / bus.ops_event_totals: the same since the start, for the
--   Prometheus counters, a few hundred rows whatever the traffic;
-- - bus.ops_events: per-minute counts of fallbacks, provider attempts, watcher observations and findings.
--
-- They are filled by bus.ops_fold, run by pg_cron (every 10 seconds on pg_cron >= 1.5, every minute on 1.4) and
-- before the alert rules are evaluated, never by the invoke path: a counter row updated by every invoke would be a
-- lock every concurrent invoke queues on, and the invoke path stays as it was (bench/RESULTS.md, "Operations").
-- The fold is incremental from a watermark, never a full scan:
-- - messages by creation time through the primary key (transaction ids are UUIDv7: their first 48 bits are the
--   creation time in ms, so a time window is a range of the primary key index). A message is folded once, when
--   finished: those still pending when their window is folded wait in bus.ops_stragglers (a handful: calls in
--   flight) and are folded by the fold that first sees them finished;
-- - watcher observations by id;
-- - both stop p_settle (10 s) short of now, so that rows whose inserting statement is still committing (one
--   statement each: begin_message, record_observation) are not passed by. A row that takes longer than that from
--   its id to its commit would be missed by the counters (nothing else): none of the bus's inserts does.
-- bus_messages{status}: `pending` is counted live through the partial index of pending rows (there are few);
-- `completed`/`failed`/`expired` are the folded totals moved by expiry (a row trigger whose WHEN clause is false on
-- the invoke path) and purge (a statement trigger: only cleanup deletes messages).

-- ---------------------------------------------------------------------------------------------------------------
-- Buckets
-- ---------------------------------------------------------------------------------------------------------------

-- Upper bounds (le) in ms, about 1.5x apart, so that p50/p95 read from them are within a bucket's width.
create function bus.ops_duration_bounds() returns float8[] language sql immutable parallel safe as $$
  select '{0.25,0.5,1,2,3,5,7,10,15,20,30,50,70,100,150,200,300,500,700,1000,1500,2000,3000,5000,7000,10000,15000,20000,30000,60000,120000,300000}'::float8[]
$$;
comment on function bus.ops_duration_bounds() is 'Histogram upper bounds (ms) of provider time, bus overhead and time to first token; a last bucket is +Inf.';

create function bus.ops_size_bounds() returns float8[] language sql immutable parallel safe as $$
  select '{256,1024,4096,16384,65536,262144,1048576,4194304,16777216,67108864,268435456}'::float8[]
$$;
comment on function bus.ops_size_bounds() is 'Histogram upper bounds (bytes) of payload sizes; a last bucket is +Inf.';

-- width_bucket counts the bounds <= v; a Prometheus bucket holds v <= le, so a value equal to a bound belongs below
-- it: the index is the number of bounds < v (0 .. n, n meaning +Inf).
create function bus.ops_bucket(p_value float8, p_bounds float8[]) returns smallint
language sql immutable strict parallel safe as $$
  select width_bucket(p_value - 1e-9 * greatest(1, abs(p_value)), p_bounds)::smallint
$$;
comment on function bus.ops_bucket(float8, float8[]) is
  'The 0-based histogram bucket of p_value: the number of bounds below it (n = the +Inf bucket).';

-- The smallest UUIDv7 of a millisecond: the primary-key bound of a creation-time window.
create function bus.ops_uuid_floor(p_at timestamptz) returns uuid language sql immutable strict parallel safe as $$
  select (lpad(to_hex(greatest(0, floor(extract(epoch from p_at) * 1000))::bigint), 12, '0')
          || '00000000000000000000')::uuid
$$;
comment on function bus.ops_uuid_floor(timestamptz) is
  'The smallest version-7 UUID whose timestamp is p_at''s millisecond (the all-zero UUID for -infinity).';

-- ---------------------------------------------------------------------------------------------------------------
-- Rollups
-- ---------------------------------------------------------------------------------------------------------------

create table bus.ops_requests (
  minute timestamptz not null,
  provider text not null,
  model text not null,
  status text not null check (status in ('completed', 'failed')),
  stream boolean not null,
  requests bigint not null default 0,
  payload_bytes bigint not null default 0,
  request_bytes bigint not null default 0,
  provider_ms_sum float8 not null default 0,
  overhead_ms_sum float8 not null default 0,
  ttft_ms_sum float8 not null default 0,
  primary key (minute, provider, model, status, stream)
);
comment on table bus.ops_requests is
  'Finished messages per creation minute and label set (provider, model, final status, stream): counts, bytes and duration sums. Kept 8 days.';

create table bus.ops_requests_total (like bus.ops_requests including defaults including constraints);
alter table bus.ops_requests_total drop column minute;
alter table bus.ops_requests_total add primary key (provider, model, status, stream);
comment on table bus.ops_requests_total is 'bus.ops_requests summed since the start: the Prometheus counters.';

create table bus.ops_buckets (
  minute timestamptz not null,
  provider text not null,
  model text not null,
  status text not null,
  stream boolean not null,
  metric text not null check (metric in ('provider_ms', 'overhead_ms', 'ttft_ms', 'payload_bytes')),
  bucket smallint not null check (bucket >= 0),
  count bigint not null,
  primary key (minute, provider, model, status, stream, metric, bucket)
);
comment on table bus.ops_buckets is
  'Histogram buckets per creation minute and label set (only buckets with observations); bucket i counts values in (bound[i-1], bound[i]]. Kept 8 days.';

create table bus.ops_buckets_total (
  provider text not null,
  model text not null,
  status text not null,
  stream boolean not null,
  metric text not null,
  bucket smallint not null,
  count bigint not null,
  primary key (provider, model, status, stream, metric, bucket)
);
comment on table bus.ops_buckets_total is 'bus.ops_buckets summed since the start: the Prometheus histograms.';

create table bus.ops_events (
  minute timestamptz not null,
  metric text not null,
  labels jsonb not null,
  value bigint not null,
  primary key (minute, metric, labels)
);
comment on table bus.ops_events is
  'Per-minute counts: fallbacks {from,to,from_model,to_model}, attempts {provider,model,outcome}, observations {verdict}, findings {code,severity}. Kept 8 days.';

create table bus.ops_event_totals (
  metric text not null,
  labels jsonb not null,
  value bigint not null,
  primary key (metric, labels)
);
comment on table bus.ops_event_totals is
  'bus.ops_events since the start, and messages {status}: finished messages by current status (completed, failed, expired).';

create table bus.ops_stragglers (
  transaction_id uuid primary key,
  parked_at timestamptz not null default now()
);
comment on table bus.ops_stragglers is 'Messages still pending when their creation window was folded; folded once they finish.';

create table bus.ops_status_moves (
  from_status text not null,
  to_status text,
  n bigint not null
);
comment on table bus.ops_status_moves is
  'Status changes after a message was finished (expired: to_status expired; purged: to_status null), not yet applied to bus.ops_event_totals.';

create table bus.ops_fold_state (
  singleton boolean primary key default true check (singleton),
  messages_through timestamptz not null,
  observations_through bigint not null,
  folded_at timestamptz,
  duration_ms integer,
  last_result jsonb
);
comment on table bus.ops_fold_state is
  'The fold''s watermarks: messages created before messages_through and observations up to observations_through are in the rollups.';

revoke all on bus.ops_requests, bus.ops_requests_total, bus.ops_buckets, bus.ops_buckets_total, bus.ops_events,
  bus.ops_event_totals, bus.ops_stragglers, bus.ops_status_moves, bus.ops_fold_state from public, anon, authenticated;
grant select on bus.ops_requests, bus.ops_requests_total, bus.ops_buckets, bus.ops_buckets_total, bus.ops_events,
  bus.ops_event_totals, bus.ops_stragglers, bus.ops_status_moves, bus.ops_fold_state to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Status moves after a message is finished (expiry, purge): never on the invoke path
-- ---------------------------------------------------------------------------------------------------------------

create function bus.ops_note_expiry() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bus.ops_status_moves (from_status, to_status, n) values (old.status, 'expired', 1);
  return null;
end $$;
comment on function bus.ops_note_expiry() is 'Trigger: a finished message became expired (bus_messages{status}).';

create trigger message_bus_ops_expiry
  after update of status on public.message_bus
  for each row when (new.status = 'expired' and old.status in ('completed', 'failed'))
  execute function bus.ops_note_expiry();
comment on trigger message_bus_ops_expiry on public.message_bus is
  'Counts expiries for bus_messages{status}; its WHEN clause is false for every change the invoke path makes.';

create function bus.ops_note_purge() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bus.ops_status_moves (from_status, to_status, n)
  select g.status, null, count(*) from gone g where g.status <> 'pending' group by g.status;
  return null;
end $$;
comment on function bus.ops_note_purge() is 'Statement trigger: finished messages were deleted (purged).';

create trigger message_bus_ops_purge
  after delete on public.message_bus
  referencing old table as gone
  for each statement execute function bus.ops_note_purge();
comment on trigger message_bus_ops_purge on public.message_bus is
  'Counts purged messages for bus_messages{status} (only cleanup deletes messages).';

-- ---------------------------------------------------------------------------------------------------------------
-- The fold
-- ---------------------------------------------------------------------------------------------------------------

create function bus.ops_fold(
  p_settle interval default '10 seconds',
  p_max_window interval default '10 minutes',
  p_keep interval default '8 days'
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  v_started timestamptz := clock_timestamp();
  v_state bus.ops_fold_state;
  v_hi timestamptz;
  v_obs_hi bigint;
  v_messages bigint := 0;
  v_observations bigint := 0;
  v_moves bigint := 0;
  v_errors jsonb;
  v_result jsonb;
begin
  -- One fold at a time; a second one waits, then finds only what arrived meanwhile.
  perform pg_advisory_xact_lock(hashtext('bus.ops_fold'));
  select * into v_state from bus.ops_fold_state;

  v_hi := clock_timestamp() - p_settle;
  if p_max_window is not null and v_state.messages_through > '-infinity' then
    v_hi := least(v_hi, v_state.messages_through + p_max_window);
  end if;
  v_hi := greatest(v_hi, v_state.messages_through);

  -- Messages: the window's finished rows and the stragglers that finished since, folded once each.
  with win as (
    select m.transaction_id, m.status, m.provider, m.model, m.stream, m.created_at, m.completed_at, m.provider_ms,
           m.ttft_ms, m.payload_size_bytes, m.request_size_bytes, m.error, m.checksum, m.attempts
      from public.message_bus m
     where m.transaction_id >= bus.ops_uuid_floor(v_state.messages_through)
       and m.transaction_id < bus.ops_uuid_floor(v_hi)
  ), parked as (
    insert into bus.ops_stragglers (transaction_id)
    select w.transaction_id from win w where w.status = 'pending'
    on conflict (transaction_id) do nothing
  ), landed as (
    delete from bus.ops_stragglers s using public.message_bus m
     where m.transaction_id = s.transaction_id and m.status <> 'pending'
    returning m.transaction_id, m.status, m.provider, m.model, m.stream, m.created_at, m.completed_at, m.provider_ms,
              m.ttft_ms, m.payload_size_bytes, m.request_size_bytes, m.error, m.checksum, m.attempts
  ), batch as (
    select * from win where status <> 'pending'
    union all
    select * from landed
  ), facts as (
    select date_trunc('minute', b.created_at) as minute, coalesce(b.provider, '') as provider,
           coalesce(b.model, '') as model,
           -- an expired row is counted as what it was when it finished
           case when b.status in ('completed', 'failed') then b.status
                when b.error is not null then 'failed'
                when b.checksum is not null then 'completed'
                else 'failed' end as status,
           b.stream, b.provider_ms::float8 as provider_ms,
           case when b.completed_at is not null
                then greatest(0, extract(epoch from b.completed_at - b.created_at)::float8 * 1000
                                 - coalesce(b.provider_ms, 0)) end as overhead_ms,
           b.ttft_ms::float8 as ttft_ms,
           case when b.checksum is not null then b.payload_size_bytes end as payload_bytes,
           b.request_size_bytes, b.attempts
      from batch b
  ), req as (
    insert into bus.ops_requests as t (minute, provider, model, status, stream, requests, payload_bytes, request_bytes,
                                       provider_ms_sum, overhead_ms_sum, ttft_ms_sum)
    select f.minute, f.provider, f.model, f.status, f.stream, count(*), coalesce(sum(f.payload_bytes), 0),
           coalesce(sum(f.request_size_bytes), 0), coalesce(sum(f.provider_ms), 0), coalesce(sum(f.overhead_ms), 0),
           coalesce(sum(f.ttft_ms), 0)
      from facts f group by 1, 2, 3, 4, 5
    on conflict (minute, provider, model, status, stream) do update set
      requests = t.requests + excluded.requests, payload_bytes = t.payload_bytes + excluded.payload_bytes,
      request_bytes = t.request_bytes + excluded.request_bytes,
      provider_ms_sum = t.provider_ms_sum + excluded.provider_ms_sum,
      overhead_ms_sum = t.overhead_ms_sum + excluded.overhead_ms_sum, ttft_ms_sum = t.ttft_ms_sum + excluded.ttft_ms_sum
  ), req_total as (
    insert into bus.ops_requests_total as t (provider, model, status, stream, requests, payload_bytes, request_bytes,
                                             provider_ms_sum, overhead_ms_sum, ttft_ms_sum)
    select f.provider, f.model, f.status, f.stream, count(*), coalesce(sum(f.payload_bytes), 0),
           coalesce(sum(f.request_size_bytes), 0), coalesce(sum(f.provider_ms), 0), coalesce(sum(f.overhead_ms), 0),
           coalesce(sum(f.ttft_ms), 0)
      from facts f group by 1, 2, 3, 4
    on conflict (provider, model, status, stream) do update set
      requests = t.requests + excluded.requests, payload_bytes = t.payload_bytes + excluded.payload_bytes,
      request_bytes = t.request_bytes + excluded.request_bytes,
      provider_ms_sum = t.provider_ms_sum + excluded.provider_ms_sum,
      overhead_ms_sum = t.overhead_ms_sum + excluded.overhead_ms_sum, ttft_ms_sum = t.ttft_ms_sum + excluded.ttft_ms_sum
  ), observed as (
    select f.minute, f.provider, f.model, f.status, f.stream, 'provider_ms'::text as metric,
           bus.ops_bucket(f.provider_ms, bus.ops_duration_bounds()) as bucket
      from facts f where f.provider_ms is not null
    union all
    select f.minute, f.provider, f.model, f.status, f.stream, 'overhead_ms', bus.ops_bucket(f.overhead_ms, bus.ops_duration_bounds())
      from facts f where f.overhead_ms is not null
    union all
    select f.minute, f.provider, f.model, f.status, f.stream, 'ttft_ms', bus.ops_bucket(f.ttft_ms, bus.ops_duration_bounds())
      from facts f where f.ttft_ms is not null
    union all
    select f.minute, f.provider, f.model, f.status, f.stream, 'payload_bytes', bus.ops_bucket(f.payload_bytes, bus.ops_size_bounds())
      from facts f where f.payload_bytes is not null
  ), hist as (
    insert into bus.ops_buckets as t (minute, provider, model, status, stream, metric, bucket, count)
    select o.minute, o.provider, o.model, o.status, o.stream, o.metric, o.bucket, count(*)
      from observed o group by 1, 2, 3, 4, 5, 6, 7
    on conflict (minute, provider, model, status, stream, metric, bucket) do update set count = t.count + excluded.count
  ), hist_total as (
    insert into bus.ops_buckets_total as t (provider, model, status, stream, metric, bucket, count)
    select o.provider, o.model, o.status, o.stream, o.metric, o.bucket, count(*)
      from observed o group by 1, 2, 3, 4, 5, 6
    on conflict (provider, model, status, stream, metric, bucket) do update set count = t.count + excluded.count
  ), events as (
    -- A fallback: the message was answered by another route than the one its first attempt went to.
    select f.minute, 'fallbacks'::text as metric,
           jsonb_build_object('from', f.attempts -> 0 ->> 'provider', 'from_model', f.attempts -> 0 ->> 'model',
                              'to', f.provider, 'to_model', f.model) as labels
      from facts f
     where f.status = 'completed' and jsonb_array_length(f.attempts) > 0
       and (f.attempts -> 0 ->> 'provider', f.attempts -> 0 ->> 'model') is distinct from (f.provider, f.model)
    union all
    select f.minute, 'attempts', jsonb_build_object('provider', a.value ->> 'provider', 'model', a.value ->> 'model',
                                                    'outcome', a.value ->> 'outcome')
      from facts f cross join lateral jsonb_array_elements(f.attempts) a
  ), ev as (
    insert into bus.ops_events as t (minute, metric, labels, value)
    select e.minute, e.metric, e.labels, count(*) from events e group by 1, 2, 3
    on conflict (minute, metric, labels) do update set value = t.value + excluded.value
  ), ev_total as (
    insert into bus.ops_event_totals as t (metric, labels, value)
    select e.metric, e.labels, count(*) from events e group by 1, 2
    union all
    select 'messages', jsonb_build_object('status', f.status), count(*) from facts f group by f.status
    on conflict (metric, labels) do update set value = t.value + excluded.value
  )
  select count(*) into v_messages from facts;

  -- Stragglers whose message is gone (purged while pending: only by hand) are dropped.
  delete from bus.ops_stragglers s
   where not exists (select 1 from public.message_bus m where m.transaction_id = s.transaction_id);

  -- Watcher observations by id, up to the first one too recent to be sure nothing before it is still committing.
  select min(o.id) - 1 into v_obs_hi from public.message_bus_observations o
   where o.id > v_state.observations_through and o.created_at > clock_timestamp() - p_settle;
  if v_obs_hi is null then
    select coalesce(max(o.id), v_state.observations_through) into v_obs_hi
      from public.message_bus_observations o where o.id > v_state.observations_through;
  end if;
  with obs as (
    select date_trunc('minute', o.created_at) as minute, o.verdict, o.findings
      from public.message_bus_observations o
     where o.id > v_state.observations_through and o.id <= v_obs_hi
  ), events as (
    select o.minute, 'observations'::text as metric, jsonb_build_object('verdict', o.verdict) as labels from obs o
    union all
    select o.minute, 'findings', jsonb_build_object('code', f.value ->> 'code', 'severity', coalesce(f.value ->> 'severity', ''))
      from obs o cross join lateral jsonb_array_elements(o.findings) f
  ), ev as (
    insert into bus.ops_events as t (minute, metric, labels, value)
    select e.minute, e.metric, e.labels, count(*) from events e group by 1, 2, 3
    on conflict (minute, metric, labels) do update set value = t.value + excluded.value
  ), ev_total as (
    insert into bus.ops_event_totals as t (metric, labels, value)
    select e.metric, e.labels, count(*) from events e group by 1, 2
    on conflict (metric, labels) do update set value = t.value + excluded.value
  )
  select count(*) into v_observations from obs;

  -- Expiries and purges since the last fold move the status totals.
  with moved as (
    delete from bus.ops_status_moves returning from_status, to_status, n
  ), deltas as (
    select m.from_status as status, -m.n as d from moved m
    union all
    select m.to_status, m.n from moved m where m.to_status is not null
  ), applied as (
    insert into bus.ops_event_totals as t (metric, labels, value)
    select 'messages', jsonb_build_object('status', d.status), sum(d.d) from deltas d group by d.status
    on conflict (metric, labels) do update set value = t.value + excluded.value
  )
  select coalesce(sum(n), 0) into v_moves from moved;

  -- Per-minute rows past p_keep go (a few minutes' worth per fold: the primary keys lead with minute).
  delete from bus.ops_requests where minute < now() - p_keep;
  delete from bus.ops_buckets where minute < now() - p_keep;
  delete from bus.ops_events where minute < now() - p_keep;

  v_errors := bus.fold_error_groups();

  v_result := jsonb_build_object(
    'messages', v_messages, 'observations', v_observations, 'status_moves', v_moves,
    'stragglers', (select count(*) from bus.ops_stragglers), 'messages_through', v_hi,
    'observations_through', v_obs_hi, 'error_occurrences', v_errors -> 'occurrences',
    'duration_ms', round(extract(epoch from clock_timestamp() - v_started) * 1000, 1));
  update bus.ops_fold_state set messages_through = v_hi, observations_through = v_obs_hi, folded_at = clock_timestamp(),
         duration_ms = (v_result ->> 'duration_ms')::numeric::integer, last_result = v_result;
  if v_messages + v_observations > 0 then
    -- Dashboards redraw their charts when a fold brought something new (private topic ops, service role only).
    perform realtime.send(jsonb_build_object('messages', v_messages, 'observations', v_observations,
                                             'messages_through', v_hi), 'rollup', 'ops', true);
  end if;
  return v_result;
end $$;
comment on function bus.ops_fold(interval, interval, interval) is
  'Folds finished messages (by creation time, through the primary key, up to p_settle before now and at most p_max_window per call), watcher observations (by id), status moves and error occurrences into the rollups; trims per-minute rows older than p_keep. Returns what it folded.';

-- The watermarks start at the migration: what is already in the table is folded once, here.
insert into bus.ops_fold_state (messages_through, observations_through) values ('-infinity', 0);
select bus.ops_fold(p_settle => '0 seconds', p_max_window => null);
-- Rows that expired before the expiry trigger existed recorded no move: the status totals start from the table.
delete from bus.ops_event_totals where metric = 'messages';
insert into bus.ops_event_totals (metric, labels, value)
select 'messages', jsonb_build_object('status', m.status), count(*)
  from public.message_bus m where m.status <> 'pending' group by m.status;

revoke execute on function bus.ops_duration_bounds(), bus.ops_size_bounds(), bus.ops_bucket(float8, float8[]),
  bus.ops_uuid_floor(timestamptz), bus.ops_note_expiry(), bus.ops_note_purge(),
  bus.ops_fold(interval, interval, interval)
  from public, anon, authenticated;
grant execute on function bus.ops_duration_bounds(), bus.ops_size_bounds(), bus.ops_bucket(float8, float8[]),
  bus.ops_uuid_floor(timestamptz), bus.ops_fold(interval, interval, interval)
  to service_role;

-- pg_cron: every 10 seconds where pg_cron >= 1.5 (hosted), every minute on 1.4 (bus.schedule_job falls back).
select bus.schedule_job('message-bus-ops-fold', '10 seconds', 'select bus.ops_fold()');
