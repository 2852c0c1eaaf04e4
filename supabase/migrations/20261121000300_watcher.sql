-- The watcher: every message that completes or fails is checked the moment it lands (CONTRACT.md §7).
-- - A trigger on public.message_bus records the message in bus.watch_queue (a transactional outbox: the queue row
--   commits with the status change or not at all) and POSTs its transaction ID, and nothing else, to the `watcher`
--   Edge Function through pg_net. URL and key come from Vault (the documented pattern, supabase-platform.md §2.5);
--   the body stays tiny because pg_net hangs on bodies over 64 KB (§2.3, pg_net issue #225).
-- - pg_net is fire-and-forget and its queue is unlogged (§2.2, §2.3): a request can be lost. A pg_cron sweep
--   re-sends what is still unobserved after a few minutes, a bounded number of times, so a dropped webhook loses
--   nothing and a message the watcher cannot handle does not cause calls without end (origin-lessons.md §3.2).
-- - The watcher stores one observation per (transaction, watcher version) (anchors.md §9 item 4), shows the latest
--   in message_bus_meta.watcher and broadcasts it as event `observation` on the owner's private topic.

-- Hosted projects enable these from migrations; locally pg_cron is preloaded and pg_net is a stand-in schema
-- without an extension (devstack/sql/20_pg_net.sql), hence the guard.
create extension if not exists pg_cron with schema pg_catalog;
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net with schema extensions;
  end if;
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Observations
-- ---------------------------------------------------------------------------------------------------------------
create table public.message_bus_observations (
  id bigint generated always as identity primary key,
  transaction_id uuid not null references public.message_bus (transaction_id) on delete cascade,
  owner_id uuid not null,
  watcher_version text not null check (length(watcher_version) between 1 and 40),
  verdict text not null check (verdict in ('ok', 'warning', 'error')),
  findings jsonb not null default '[]'::jsonb check (jsonb_typeof(findings) = 'array'),
  analysed_bytes bigint check (analysed_bytes >= 0),
  partial boolean not null default false,
  review jsonb,
  review_tokens integer check (review_tokens >= 0),
  duration_ms integer check (duration_ms >= 0),
  created_at timestamptz not null default now(),
  constraint message_bus_observations_once unique (transaction_id, watcher_version)
);
comment on table public.message_bus_observations is
  'What the watcher found in a message: one row per (transaction, watcher version); findings are [{code, message, severity}].';
comment on column public.message_bus_observations.partial is
  'True when the content checks looked at the head and tail of the payload only (payload above the analysis cap); the checksum always covers every byte.';
comment on column public.message_bus_observations.review is
  'The optional model review (a second opinion): provider, model, verdict, summary, usage; null when none ran.';
comment on column public.message_bus_observations.review_tokens is 'Total tokens the model review cost (its usage.total_tokens).';

alter table public.message_bus_observations enable row level security;
revoke all on public.message_bus_observations from anon, authenticated;
grant select on public.message_bus_observations to authenticated;
grant all on public.message_bus_observations to service_role;
create policy "owners read their observations" on public.message_bus_observations
  for select to authenticated using (owner_id = (select auth.uid()));

-- The outbox of messages waiting for their observation. Small: a row leaves when its observation is recorded.
create table bus.watch_queue (
  transaction_id uuid primary key references public.message_bus (transaction_id) on delete cascade,
  first_requested_at timestamptz not null default now(),
  requested_at timestamptz not null default now(),
  attempts integer not null default 0 check (attempts >= 0),
  last_request_id bigint,
  last_error text
);
comment on table bus.watch_queue is
  'Messages that completed or failed and have no observation yet; the sweep re-sends them (bounded attempts).';
create index watch_queue_requested_at on bus.watch_queue (requested_at);
revoke all on bus.watch_queue from public, anon, authenticated;
grant all on bus.watch_queue to service_role;

-- The hourly budget of model reviews, counted in the database so that it holds across Edge Function isolates.
create table bus.review_budget (
  reviewer text not null,
  hour timestamptz not null,
  used integer not null check (used >= 0),
  primary key (reviewer, hour)
);
comment on table bus.review_budget is 'Model reviews used per reviewer (provider:model) and clock hour (WATCHER_REVIEWS_PER_HOUR).';
revoke all on bus.review_budget from public, anon, authenticated;
grant all on bus.review_budget to service_role;

-- message_bus_meta: the same columns in the same order; `watcher` now shows the latest observation as
-- { verdict, findings: [{ code, message }] } (CONTRACT.md §5).
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
           limit 1) as watcher
  from public.message_bus m;
comment on view public.message_bus_meta is
  'Message metadata as message-fetch answers it; expired by time, latest watcher observation, RLS of the caller.';

-- ---------------------------------------------------------------------------------------------------------------
-- Calling Edge Functions from the database
-- ---------------------------------------------------------------------------------------------------------------

-- §2.5: URL and key from Vault, so the same SQL works locally and hosted. The key goes both as a Bearer token
-- (a service_role JWT) and as `apikey` (a new-format sb_secret_ key, which verify_jwt would reject as a Bearer,
-- §2.5 and §1.10); the functions accept either (requireServiceRole). Never raises: a missing secret or a pg_net
-- error is a WARNING and a null id, so the caller's transaction (a status change) always goes through and the
-- sweep retries later.
create or replace function bus.call_function(p_name text, p_body jsonb, p_timeout_ms integer default 10000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_url text;
  v_key text;
begin
  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'service_role_key';
  if v_url is null or v_key is null then
    raise warning 'bus.call_function(%): Vault secrets project_url and service_role_key must be set; request not sent', p_name;
    return null;
  end if;
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/' || p_name,
    body := p_body,
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key, 'apikey', v_key),
    timeout_milliseconds := p_timeout_ms
  );
exception when others then
  raise warning 'bus.call_function(%): request not queued: % (SQLSTATE %)', p_name, sqlerrm, sqlstate;
  return null;
end $$;
comment on function bus.call_function(text, jsonb, integer) is
  'POSTs a small JSON body to an Edge Function through pg_net with URL and service key from Vault; returns the pg_net request id, or null (with a WARNING) when it could not be queued.';

-- Sends one watch request: the transaction ID only (pg_net hangs on bodies over 64 KB, §2.3); `async` makes the
-- watcher answer 202 at once, so a slow analysis never holds up pg_net's batch (§2.3: a batch commits after its
-- slowest request).
create or replace function bus.request_watch(p_transaction_id uuid)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_request bigint;
begin
  v_request := bus.call_function('watcher', jsonb_build_object('transaction_id', p_transaction_id, 'async', true));
  update bus.watch_queue
     set attempts = attempts + 1, requested_at = now(), last_request_id = v_request,
         last_error = case when v_request is null then 'the request could not be queued (see the database log)' end
   where transaction_id = p_transaction_id;
  return v_request;
end $$;
comment on function bus.request_watch(uuid) is
  'Asks the watcher (through pg_net) to observe one message and counts the attempt in bus.watch_queue.';

-- The trigger: the outbox row commits with the status change; the request is sent at commit (§2.3 wake at commit).
create or replace function bus.watch_on_finish() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bus.watch_queue (transaction_id) values (new.transaction_id) on conflict (transaction_id) do nothing;
  perform bus.request_watch(new.transaction_id);
  return null;
end $$;
comment on function bus.watch_on_finish() is
  'Trigger: a message that completed or failed is queued for the watcher and its transaction ID sent to it.';

create trigger message_bus_watch
  after update of status on public.message_bus
  for each row when (old.status is distinct from new.status and new.status in ('completed', 'failed'))
  execute function bus.watch_on_finish();
comment on trigger message_bus_watch on public.message_bus is
  'Every message that completes or fails is sent to the watcher (CONTRACT.md §7).';

-- The sweep: whatever is still unobserved after p_min_age is sent again, at most p_max_attempts times in all and
-- p_limit per run, so a dropped webhook loses nothing and a message the watcher keeps failing on stays a bounded
-- dead letter (visible in bus.watch_queue) instead of a source of endless calls (origin-lessons.md §3.2).
create or replace function bus.sweep_unobserved(
  p_min_age interval default '2 minutes', p_max_attempts integer default 5, p_limit integer default 100
) returns integer language plpgsql security definer set search_path = '' as $$
declare
  v_id uuid;
  v_sent integer := 0;
begin
  -- A message whose payload expired has nothing left to check.
  delete from bus.watch_queue q using public.message_bus m
   where m.transaction_id = q.transaction_id and (m.payload_deleted_at is not null or m.expires_at <= now());
  for v_id in
    select q.transaction_id from bus.watch_queue q
     where q.requested_at <= now() - p_min_age and q.attempts < p_max_attempts
     order by q.requested_at
     limit p_limit
     for update skip locked
  loop
    perform bus.request_watch(v_id);
    v_sent := v_sent + 1;
  end loop;
  return v_sent;
end $$;
comment on function bus.sweep_unobserved(interval, integer, integer) is
  'Re-sends watch requests for messages still unobserved after p_min_age (at most p_max_attempts each, p_limit per run); returns how many were sent.';

-- ---------------------------------------------------------------------------------------------------------------
-- Recording observations
-- ---------------------------------------------------------------------------------------------------------------

-- Idempotent: the unique (transaction_id, watcher_version) makes a second call return the first observation
-- (created = false) without a second broadcast. §3.1: realtime.send publishes at commit and turns its own errors
-- into a WARNING.
create or replace function bus.record_observation(
  p_transaction_id uuid, p_watcher_version text, p_verdict text, p_findings jsonb,
  p_analysed_bytes bigint default null, p_partial boolean default false, p_review jsonb default null,
  p_review_tokens integer default null, p_duration_ms integer default null
) returns table (observation_id bigint, created boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_owner uuid;
  v_id bigint;
begin
  select owner_id into v_owner from public.message_bus where transaction_id = p_transaction_id;
  if v_owner is null then
    raise exception 'message % does not exist', p_transaction_id using errcode = 'P0002';
  end if;
  insert into public.message_bus_observations as o
    (transaction_id, owner_id, watcher_version, verdict, findings, analysed_bytes, partial, review, review_tokens, duration_ms)
  values (p_transaction_id, v_owner, p_watcher_version, p_verdict, coalesce(p_findings, '[]'::jsonb), p_analysed_bytes,
          coalesce(p_partial, false), p_review, p_review_tokens, p_duration_ms)
  on conflict on constraint message_bus_observations_once do nothing
  returning o.id into v_id;
  if v_id is null then
    return query select o.id, false from public.message_bus_observations o
      where o.transaction_id = p_transaction_id and o.watcher_version = p_watcher_version;
    return;
  end if;
  delete from bus.watch_queue where transaction_id = p_transaction_id;
  perform realtime.send(
    jsonb_build_object(
      'transaction_id', p_transaction_id,
      'verdict', p_verdict,
      'findings', (select coalesce(jsonb_agg(jsonb_build_object('code', f.value ->> 'code', 'message', f.value ->> 'message')
                                             order by f.ordinality), '[]'::jsonb)
                   from jsonb_array_elements(coalesce(p_findings, '[]'::jsonb)) with ordinality as f)
    ),
    'observation',
    'bus:' || v_owner::text,
    true
  );
  return query select v_id, true;
end $$;
comment on function bus.record_observation(uuid, text, text, jsonb, bigint, boolean, jsonb, integer, integer) is
  'Stores the watcher''s observation of a message once per watcher version, clears its watch_queue row and broadcasts event "observation" on bus:<owner_id>; a repeat returns the first (created = false).';

-- A hard hourly budget for model reviews: one row per reviewer and hour, incremented only while below the limit.
create or replace function bus.take_review_slot(p_reviewer text, p_per_hour integer)
returns boolean language plpgsql security definer set search_path = '' as $$
declare
  v_used integer;
begin
  if p_per_hour is null or p_per_hour <= 0 then
    return false;
  end if;
  insert into bus.review_budget as b (reviewer, hour, used)
  values (p_reviewer, date_trunc('hour', now() at time zone 'utc') at time zone 'utc', 1)
  on conflict (reviewer, hour) do update set used = b.used + 1 where b.used < p_per_hour
  returning b.used into v_used;
  return v_used is not null;
end $$;
comment on function bus.take_review_slot(text, integer) is
  'Takes one model review from the reviewer''s budget for the current UTC hour; false when p_per_hour are used up.';

-- ---------------------------------------------------------------------------------------------------------------
-- Scheduling
-- ---------------------------------------------------------------------------------------------------------------

-- §4, §0.3: '[1-59] seconds' schedules need pg_cron 1.5 (hosted); Debian's 1.4.2 accepts cron syntax only. A
-- seconds schedule on an older pg_cron falls back to every minute, with a NOTICE, instead of failing.
create or replace function bus.schedule_job(p_name text, p_schedule text, p_command text)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_version text;
  v_schedule text := p_schedule;
begin
  select extversion into v_version from pg_catalog.pg_extension where extname = 'pg_cron';
  if v_version is null then
    raise exception 'pg_cron is not installed; cannot schedule %', p_name using errcode = '55000';
  end if;
  if v_schedule ~* '^\s*[0-9]+\s+seconds?\s*$'
     and string_to_array(regexp_replace(v_version, '[^0-9.].*$', ''), '.')::int[] < array[1, 5] then
    raise notice 'pg_cron % cannot run % every "%"; scheduling it every minute instead', v_version, p_name, p_schedule;
    v_schedule := '* * * * *';
  end if;
  return cron.schedule(p_name, v_schedule, p_command);
end $$;
comment on function bus.schedule_job(text, text, text) is
  'Schedules (or reschedules) a pg_cron job by name; a seconds schedule falls back to every minute on pg_cron < 1.5.';

select bus.schedule_job('message-bus-watcher-sweep', '* * * * *', 'select bus.sweep_unobserved()');

-- New functions in schema bus: nobody but the service role (and the owner) may execute them; the internal ones
-- (which run SQL or HTTP as the owner) not even the service role.
revoke execute on function bus.call_function(text, jsonb, integer), bus.request_watch(uuid), bus.watch_on_finish(),
  bus.sweep_unobserved(interval, integer, integer),
  bus.record_observation(uuid, text, text, jsonb, bigint, boolean, jsonb, integer, integer),
  bus.take_review_slot(text, integer), bus.schedule_job(text, text, text)
  from public, anon, authenticated;
grant execute on function bus.request_watch(uuid), bus.sweep_unobserved(interval, integer, integer),
  bus.record_observation(uuid, text, text, jsonb, bigint, boolean, jsonb, integer, integer),
  bus.take_review_slot(text, integer)
  to service_role;
