-- The watcher in batches (issue 17).
--
-- Until now every finished message set off its own watch: the trigger read two Vault secrets and queued a pg_net
-- request, the pg_net worker POSTed it, the watcher read the message and recorded its observation, each a statement
-- and a commit of its own. On this machine that was half of all the CPU an invoke cost (bench/RESULTS.md "Invoke
-- path": 1.9 ms of the stack's 4.4 and 1.9 of Postgres's 4.6 per invoke went away with the trigger disabled).
--
-- Now the trigger only adds the message to bus.watch_queue (the outbox, as before) and wakes the watcher when no
-- drain is under way. A drain (`POST /watcher {"drain": true}`) takes the queue in batches (bus.take_watch_batch,
-- skip locked, so drains never take the same row), observes them and records the batch's observations in one
-- statement (bus.record_observations), and goes on until the queue is empty. One pg_net request and one watcher
-- call then serve as many messages as finish while the drain runs.
--
-- Every message is still checked:
-- - the queue row commits with the status change or not at all (as before);
-- - bus.watch_wake says whether a drain is under way (woken_at). A completion that sees none sends a wake; one that
--   sees a drain leaves its row to it. A drain stops only through bus.end_watch_drain, which takes the exclusive
--   side of an advisory lock whose shared side every completion holds from its look at watch_wake until it commits:
--   while any such transaction is in flight the drain goes on, so a row whose transaction decided not to wake is
--   either seen by the drain or followed by a wake of its own (its transaction sees woken_at cleared);
-- - a drain that dies (its function stopped) stops refreshing woken_at: after 5 s of silence the next completion
--   wakes another, and its claimed rows are taken again once their claim runs out;
-- - bus.sweep_unobserved (pg_cron, every minute) wakes a drain when rows have waited past its minimum age, however
--   the wake was lost. Attempts (claims) stay bounded, as before.
--
-- The drain's own statements commit without waiting for their WAL flush (synchronous_commit off for their
-- transaction, as the single observation does, observe.ts): a crash loses at most claims, the clearing of woken_at,
-- or observations together with the removal of their queue rows, and every one of those is taken up again.

alter table bus.watch_queue add column claimed_until timestamptz;
comment on column bus.watch_queue.claimed_until is
  'Until when a watcher drain holds the row (null: not taken); a claim that runs out (its drain died) is taken again.';
comment on column bus.watch_queue.attempts is
  'Times a watcher took the row (a drain''s claim, or a per-message request); bounded by the sweep''s p_max_attempts.';
comment on column bus.watch_queue.requested_at is 'When the row was last taken (or queued).';
comment on table bus.watch_queue is
  'Messages that completed or failed and have no observation yet; watcher drains take them in batches (bounded attempts).';
create index watch_queue_first_requested_at on bus.watch_queue (first_requested_at);

create table bus.watch_wake (
  id boolean primary key default true check (id),
  woken_at timestamptz,
  last_request_id bigint,
  last_error text
);
comment on table bus.watch_wake is
  'One row: whether a watcher drain is under way (woken_at, refreshed by every batch it takes; null when none) and the last wake sent.';
comment on column bus.watch_wake.woken_at is
  'When a drain was last woken or last took a batch; null once a drain found the queue empty. Older than 5 s: the drain is presumed dead.';
insert into bus.watch_wake default values;
revoke all on bus.watch_wake from public, anon, authenticated;
grant select on bus.watch_wake to service_role;

-- The trigger: the outbox row, and a wake unless a drain is under way. Holds the shared side of the drain lock until
-- the transaction ends (see the top of this file).
create or replace function bus.watch_on_finish() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_request bigint;
begin
  insert into bus.watch_queue (transaction_id) values (new.transaction_id) on conflict (transaction_id) do nothing;
  perform pg_advisory_xact_lock_shared(hashtextextended('bus.watch_wake', 0));
  perform 1 from bus.watch_wake w where w.woken_at > clock_timestamp() - interval '5 seconds';
  if found then
    return null;
  end if;
  -- Of transactions that find no drain at once, the first one wakes one; the others wait for its commit and then
  -- find woken_at set.
  update bus.watch_wake set woken_at = clock_timestamp()
   where id and (woken_at is null or woken_at <= clock_timestamp() - interval '5 seconds');
  if not found then
    return null;
  end if;
  v_request := bus.call_function('watcher', '{"drain": true}'::jsonb);
  update bus.watch_wake
     set last_request_id = v_request,
         last_error = case when v_request is null then 'the request could not be queued (see the database log)' end,
         woken_at = case when v_request is null then null else woken_at end -- not sent: the next completion tries
   where id;
  return null;
end $$;
comment on function bus.watch_on_finish() is
  'Trigger: a message that completed or failed is queued for the watcher, which is woken (through pg_net) unless a drain is under way; holds the shared side of the drain lock until the transaction ends.';

-- A drain's batch: the rows taken (oldest first, skipping rows other drains hold), with what the checks need of
-- each (as bus.watch_target answers it for one message).
create function bus.take_watch_batch(
  p_watcher_version text, p_limit integer default 50, p_claim_seconds integer default 60,
  p_max_attempts integer default 5
)
returns table (
  transaction_id uuid, status text, checksum text, stored_checksum text, chunk_count integer, compression text,
  payload_size_bytes bigint, finish_reason text, usage jsonb, error jsonb, metadata jsonb, expired boolean,
  observation jsonb, only_chunk bytea, stream boolean
)
language plpgsql security definer set search_path = '' as $$
begin
  perform set_config('synchronous_commit', 'off', true); -- see the top of this file
  -- This drain is alive (written at most once a second: the 5 s of presumed death are far).
  update bus.watch_wake set woken_at = clock_timestamp()
   where id and (woken_at is null or woken_at < clock_timestamp() - interval '1 second');
  -- Rows are found by key (`= any (array(...))`), never by a join the planner may turn into a scan of the queue,
  -- which keeps dead rows between vacuums: its plan is cached and generic (the same holds below).
  return query
    with claimed as (
      update bus.watch_queue q
         set claimed_until = now() + make_interval(secs => p_claim_seconds), attempts = q.attempts + 1,
             requested_at = now()
       where q.transaction_id = any (array(
         select p.transaction_id from bus.watch_queue p
          where (p.claimed_until is null or p.claimed_until < now()) and p.attempts < p_max_attempts
          order by p.first_requested_at
          limit p_limit
          for update skip locked))
      returning q.transaction_id
    )
    select m.transaction_id, m.status, m.checksum, m.stored_checksum, m.chunk_count, m.compression,
           m.payload_size_bytes, m.finish_reason, m.usage, m.error, m.metadata,
           (m.payload_deleted_at is not null or m.expires_at <= now()),
           (select to_jsonb(o) from (
              select o.id as observation_id, o.watcher_version, o.verdict, o.findings, o.partial, o.analysed_bytes,
                     o.review
              from public.message_bus_observations o
              where o.transaction_id = m.transaction_id and o.watcher_version = p_watcher_version) o),
           (select c.data from public.message_bus_chunks c
             where c.transaction_id = m.transaction_id and c.seq = 0 and m.chunk_count = 1),
           m.stream
    from claimed c join public.message_bus m on m.transaction_id = c.transaction_id;
end $$;
comment on function bus.take_watch_batch(text, integer, integer, integer) is
  'Takes up to p_limit rows of bus.watch_queue for a watcher drain (skip locked, claimed for p_claim_seconds, at most p_max_attempts each) and answers each message as bus.watch_target does; refreshes bus.watch_wake.';

-- Records a drain's observations in one statement: each as bus.record_observation does (once per watcher version,
-- the queue row cleared, event `observation` on the owner's topic); `drop` rows (payload expired, nothing left to
-- check) only leave the queue. Elements: {transaction_id, verdict, findings, analysed_bytes, partial, review,
-- review_tokens, duration_ms} or {transaction_id, drop: true}.
create function bus.record_observations(p_watcher_version text, p_observations jsonb)
returns table (transaction_id uuid, observation_id bigint, created boolean)
language plpgsql security definer set search_path = '' as $$
begin
  perform set_config('synchronous_commit', 'off', true); -- see the top of this file
  return query
    with given as (
      select x.transaction_id, x.verdict, coalesce(x.findings, '[]'::jsonb) as findings, x.analysed_bytes,
             coalesce(x.partial, false) as partial, x.review, x.review_tokens, x.duration_ms,
             coalesce(x.drop, false) as drop
      from jsonb_to_recordset(p_observations) as x(transaction_id uuid, verdict text, findings jsonb,
        analysed_bytes bigint, partial boolean, review jsonb, review_tokens integer, duration_ms integer, drop boolean)
    ), owned as (
      -- Each message's owner by key (a correlated subquery, so never a scan of the table, whatever the plan).
      select g.*, (select m.owner_id from public.message_bus m where m.transaction_id = g.transaction_id) as owner_id
      from given g where not g.drop
    ), inserted as (
      insert into public.message_bus_observations as o
        (transaction_id, owner_id, watcher_version, verdict, findings, analysed_bytes, partial, review, review_tokens,
         duration_ms)
      select w.transaction_id, w.owner_id, p_watcher_version, w.verdict, w.findings, w.analysed_bytes, w.partial,
             w.review, w.review_tokens, w.duration_ms
      from owned w where w.owner_id is not null
      on conflict on constraint message_bus_observations_once do nothing
      returning o.id, o.transaction_id, o.owner_id, o.verdict, o.findings
    ), cleared as (
      delete from bus.watch_queue q where q.transaction_id = any (array(select g.transaction_id from given g))
    ), announced as (
      select i.id, i.transaction_id, realtime.send(
        jsonb_build_object(
          'transaction_id', i.transaction_id,
          'verdict', i.verdict,
          'findings', (select coalesce(jsonb_agg(jsonb_build_object('code', f.value ->> 'code', 'message', f.value ->> 'message')
                                                 order by f.ordinality), '[]'::jsonb)
                       from jsonb_array_elements(i.findings) with ordinality as f)
        ),
        'observation',
        'bus:' || i.owner_id::text,
        true
      ) as sent
      from inserted i
    ), earlier as (
      select w.transaction_id,
             (select o.id from public.message_bus_observations o
               where o.transaction_id = w.transaction_id and o.watcher_version = p_watcher_version) as id
      from owned w
      where w.owner_id is not null and not exists (select 1 from inserted i where i.transaction_id = w.transaction_id)
    )
    select a.transaction_id, a.id, true from announced a
    union all
    select e.transaction_id, e.id, false from earlier e where e.id is not null;
end $$;
comment on function bus.record_observations(text, jsonb) is
  'Records a watcher drain''s observations in one statement (each once per watcher version, broadcast as event observation on bus:<owner_id>), clears their queue rows (and those of dropped messages); answers each with created = false when it had been observed before.';

-- Ends a drain: true (and woken_at cleared) when the queue holds nothing it could take and no transaction that
-- may add a row without waking is in flight; false when the drain should go on. With p_more (the drain ran out of
-- its time with work left) a fresh drain is woken to take over.
create function bus.end_watch_drain(p_max_attempts integer default 5, p_more boolean default false)
returns boolean
language plpgsql security definer set search_path = '' as $$
declare
  v_request bigint;
begin
  if p_more then
    v_request := bus.call_function('watcher', '{"drain": true}'::jsonb);
    update bus.watch_wake
       set woken_at = case when v_request is null then null else clock_timestamp() end, last_request_id = v_request,
           last_error = case when v_request is null then 'the request could not be queued (see the database log)' end
     where id;
    return true;
  end if;
  perform set_config('synchronous_commit', 'off', true); -- see the top of this file
  -- Not waited for: while completions hold the shared side, more rows are coming and the drain goes on (waiting
  -- here would also hold up every completion behind this request).
  if not pg_try_advisory_xact_lock(hashtextextended('bus.watch_wake', 0)) then
    return false;
  end if;
  perform 1 from bus.watch_queue q
   where (q.claimed_until is null or q.claimed_until < now()) and q.attempts < p_max_attempts
   limit 1;
  if found then
    return false;
  end if;
  update bus.watch_wake set woken_at = null where id;
  return true;
end $$;
comment on function bus.end_watch_drain(integer, boolean) is
  'Ends a watcher drain when nothing is left for it and no completion is in flight (false: go on); with p_more, wakes a fresh drain to take over.';

-- The sweep: wakes a drain when rows have waited past p_min_age (a lost wake, a drain that died); returns how many
-- rows are waiting (at most p_limit counted).
create or replace function bus.sweep_unobserved(
  p_min_age interval default interval '2 minutes', p_max_attempts integer default 5, p_limit integer default 100
)
returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_waiting integer;
  v_request bigint;
begin
  -- A message whose payload expired has nothing left to check.
  delete from bus.watch_queue q using public.message_bus m
   where m.transaction_id = q.transaction_id and (m.payload_deleted_at is not null or m.expires_at <= now());
  select count(*) into v_waiting from (
    select 1 from bus.watch_queue q
     where q.requested_at <= now() - p_min_age and q.attempts < p_max_attempts
       and (q.claimed_until is null or q.claimed_until < now())
     limit p_limit) w;
  if v_waiting > 0 then
    v_request := bus.call_function('watcher', '{"drain": true}'::jsonb);
    update bus.watch_wake
       set woken_at = case when v_request is null then woken_at else clock_timestamp() end,
           last_request_id = coalesce(v_request, last_request_id),
           last_error = case when v_request is null then 'the request could not be queued (see the database log)' end
     where id;
  end if;
  return v_waiting;
end $$;
comment on function bus.sweep_unobserved(interval, integer, integer) is
  'Wakes a watcher drain when queued messages have waited past p_min_age without being taken (at most p_max_attempts each); returns how many are waiting (counted up to p_limit).';

revoke execute on function bus.take_watch_batch(text, integer, integer, integer),
  bus.record_observations(text, jsonb), bus.end_watch_drain(integer, boolean)
  from public, anon, authenticated;
grant execute on function bus.take_watch_batch(text, integer, integer, integer), bus.record_observations(text, jsonb),
  bus.end_watch_drain(integer, boolean) to service_role;
