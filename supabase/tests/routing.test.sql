-- pgTAP tests of migration 20261126000200_routing.sql: circuit breakers (state, failure counting, opening, re-trip,
-- success, one trial), concurrency leases (limit, expiry, release with the message), the per-user rate limit in
-- begin_message, orphaned async messages claimed for another run, the reaper leaving them to the dispatcher, and
-- privileges. Everything happens in one transaction that is rolled back.

begin;
set local search_path = public, extensions;
select plan(43);

do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-00000000b001', true),
         set_config('test.bob', 'b0b00000-0000-4000-8000-00000000b002', true);
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Breakers
-- ---------------------------------------------------------------------------------------------------------------
select is(bus.route_state('closed', null, null), 'closed', 'closed is closed');
select is(bus.route_state('open', now() + interval '10 seconds', null), 'open', 'open until a future time is open');
select is(bus.route_state('open', now() - interval '1 second', null), 'half_open', 'open past its time is half-open');
select is((select state from bus.route_states('[{"provider":"p","model":"never-seen"}]')), 'closed',
  'a route never seen is closed');

select is(bus.record_route_failure('p', 'm1', 3, 60, 'x'), 'closed', 'failure 1 of 3: closed');
select is(bus.record_route_failure('p', 'm1', 3, 60, 'x'), 'closed', 'failure 2 of 3: closed');
select is(bus.record_route_failure('p', 'm1', 3, 60, 'boom'), 'open', 'failure 3 of 3 opens the route');
select results_eq(
  $$select consecutive_failures, last_error, open_until between now() + interval '59 seconds' and now() + interval '61 seconds'
      from bus.routes where provider = 'p' and model = 'm1'$$,
  $$values (3, 'boom', true)$$, 'opened for the timeout, with the last error');
update bus.routes set open_until = now() + interval '5 seconds' where provider = 'p' and model = 'm1';
select is(bus.record_route_failure('p', 'm1', 3, 60, 'again'), 'open', 'a failure while open keeps it open ...');
select ok((select open_until > now() + interval '59 seconds' from bus.routes where provider = 'p' and model = 'm1'),
  '... and extends the deadline to a full timeout from now (a re-trip)');

update bus.routes set open_until = now() - interval '1 second' where provider = 'p' and model = 'm1';
select is(bus.try_trial('p', 'm1', 30), true, 'past the timeout, one caller takes the trial');
select is(bus.try_trial('p', 'm1', 30), false, '... and no other while it is in flight');
select is((select state from bus.route_states('[{"provider":"p","model":"m1"}]')), 'half_open', 'the route is half-open');
select lives_ok($$select bus.record_route_success('p', 'm1')$$, 'the trial succeeds');
select results_eq($$select state, consecutive_failures, open_until, trial_until from bus.routes where provider = 'p' and model = 'm1'$$,
  $$values ('closed'::text, 0, null::timestamptz, null::timestamptz)$$, 'success closes the route and clears it');
select is(bus.record_route_failure('p', 'm2', 1, 60, 'x'), 'open', 'a threshold of 1 opens at the first failure');

-- ---------------------------------------------------------------------------------------------------------------
-- Concurrency leases
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform set_config('test.t1', gen_random_uuid()::text, true), set_config('test.t2', gen_random_uuid()::text, true),
          set_config('test.t3', gen_random_uuid()::text, true);
end $$;
select is(bus.acquire_provider_slot('lim', current_setting('test.t1')::uuid, 2, 60), true, 'slot 1 of 2');
select is(bus.acquire_provider_slot('lim', current_setting('test.t2')::uuid, 2, 60), true, 'slot 2 of 2');
select is(bus.acquire_provider_slot('lim', current_setting('test.t3')::uuid, 2, 60), false, 'no third slot');
select is(bus.acquire_provider_slot('lim', current_setting('test.t1')::uuid, 2, 60), true,
  'a holder asking again keeps its slot (and its lease is extended)');
update bus.provider_leases set expires_at = now() - interval '1 second' where transaction_id = current_setting('test.t2')::uuid;
select is(bus.acquire_provider_slot('lim', current_setting('test.t3')::uuid, 2, 60), true,
  'a lease that ran out (a dead worker) no longer counts: the slot is taken');
select is((select count(*)::int from bus.provider_leases where provider = 'lim'), 2, 'the expired lease is gone');
select lives_ok($$select bus.release_provider_slot('lim', current_setting('test.t1')::uuid)$$, 'release');
select is((select count(*)::int from bus.provider_leases where provider = 'lim'), 1, 'one slot left taken');

-- ---------------------------------------------------------------------------------------------------------------
-- begin_message: rate limit, route state, slot
-- ---------------------------------------------------------------------------------------------------------------
create temp table begun on commit drop as
  select * from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'p', 'm1', null, null, 3600,
                                  p_default_rpm => 2);
insert into begun select * from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'p', 'm1', null, null, 3600,
                                                  p_default_rpm => 2);
insert into begun select * from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'p', 'm1', null, null, 3600,
                                                  p_default_rpm => 2);
select results_eq($$select status, rate_limit, rate_remaining from begun order by rate_remaining desc, status$$,
  $$values ('pending'::text, 2, 1), ('pending'::text, 2, 0), ('rate_limited'::text, 2, 0)$$,
  'the caller''s third request in a minute past a limit of 2 is rate_limited');
select is((select count(*)::int from public.message_bus where owner_id = current_setting('test.alice')::uuid), 2,
  'a rate-limited request records nothing');
select ok((select rate_reset_seconds between 1 and 60 from begun where status = 'rate_limited'), 'it says when the minute ends');
insert into bus.user_limits (user_id, requests_per_minute) values (current_setting('test.alice')::uuid, 0);
select is((select status from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'p', 'm1', null, null, 3600,
                                                p_default_rpm => 2)), 'pending', 'an override of 0 lifts the limit');
select is((select route_state from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'p', 'm2', null, null, 3600)),
  'open', 'begin_message returns the requested route''s state');
select is((select slot from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'lim', 'x', null, null, 3600,
                                              p_slot_max => 2)), true, 'and takes a slot of a limited provider');
select is((select slot from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'lim', 'x', null, null, 3600,
                                              p_slot_max => 2)), false, 'or says it could not');

-- The message's slots go with its completion or failure; its route closes.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'p', 'm3', null, null, 3600);
  perform set_config('test.m', v_id::text, true);
  perform bus.acquire_provider_slot('lim2', v_id, 5, 60);
  perform bus.record_route_failure('p', 'm3', 5, 60, 'x');
  perform bus.complete_message(v_id, 2, 2, 'none', 'sha256:' || repeat('a', 64), 1, 'stop', null, 'm3', 1, 1, '{}',
    null, '\x7b7d', 1, '[{"provider":"p","model":"m3","outcome":"ok","status":200,"error_code":null}]', 'p', false);
end $$;
select is((select count(*)::int from bus.provider_leases where transaction_id = current_setting('test.m')::uuid), 0,
  'completing a message frees its slots');
select is((select consecutive_failures from bus.routes where provider = 'p' and model = 'm3'), 0,
  'and resets the failures of the route that answered');

-- ---------------------------------------------------------------------------------------------------------------
-- Orphaned async messages
-- ---------------------------------------------------------------------------------------------------------------
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'p', 'm', null, null,
    3600, p_mode => 'async', p_request_size => 2, p_request_stored_size => 2, p_request_compression => 'none',
    p_request_checksum => 'sha256:' || repeat('b', 64), p_request_chunk_count => 1, p_request_last_chunk => '\x7b7d');
  perform set_config('test.orphan', v_id::text, true);
  perform bus.append_chunk(v_id, 0, '\x01'::bytea);
  perform bus.acquire_provider_slot('lim3', v_id, 5, 60);
  select transaction_id into v_id from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'p', 'm', null, null,
    3600, p_mode => 'async', p_request_checksum => 'sha256:' || repeat('c', 64));
  perform set_config('test.exhausted', v_id::text, true);
  update public.message_bus set run_count = 3 where transaction_id = v_id;
  select transaction_id into v_id from bus.begin_message(current_setting('test.bob')::uuid, 'chat', 'p', 'm', null, null, 3600);
  perform set_config('test.sync', v_id::text, true);
  update public.message_bus set lease_expires_at = now() - interval '1 second'
   where transaction_id in (current_setting('test.orphan')::uuid, current_setting('test.exhausted')::uuid,
                            current_setting('test.sync')::uuid);
end $$;
select results_eq(
  $$select transaction_id, run from bus.claim_orphans(3, 30)
     where transaction_id in (current_setting('test.orphan')::uuid, current_setting('test.exhausted')::uuid,
                              current_setting('test.sync')::uuid)$$,
  $$values (current_setting('test.orphan')::uuid, 2)$$,
  'claim_orphans takes the async message whose lease ran out for run 2, and only it');
select results_eq(
  $$select status, run_count, lease_expires_at > now() from public.message_bus where transaction_id = current_setting('test.orphan')::uuid$$,
  $$values ('pending'::text, 2, true)$$, 'the claimed message is pending under a new lease');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.orphan')::uuid)
          + (select count(*)::int from bus.provider_leases where transaction_id = current_setting('test.orphan')::uuid),
  0, 'what the dead run left (chunks, slots) is gone');
select is((select error ->> 'code' from public.message_bus where transaction_id = current_setting('test.exhausted')::uuid),
  'worker_lost', 'a message that had its runs is failed as worker_lost');
select is((select status from public.message_bus where transaction_id = current_setting('test.sync')::uuid), 'pending',
  'a sync message is never run again (its caller is gone): left to the reaper');
select is(bus.reap_pending('15 minutes', 100, 3), 1::bigint, 'the reaper fails the sync one ...');
select is((select status from public.message_bus where transaction_id = current_setting('test.orphan')::uuid), 'pending',
  '... and leaves an async one with runs left');

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------------------------
select ok(not has_function_privilege('authenticated', 'bus.claim_orphans(integer,integer,integer)', 'execute')
          and not has_function_privilege('authenticated', 'bus.try_trial(text,text,integer)', 'execute')
          and not has_function_privilege('authenticated', 'bus.acquire_provider_slot(text,uuid,integer,integer)', 'execute'),
  'users cannot run the routing functions');
select ok(has_function_privilege('service_role', 'bus.claim_orphans(integer,integer,integer)', 'execute')
          and has_function_privilege('service_role', 'bus.try_trial(text,text,integer)', 'execute')
          and has_function_privilege('service_role', 'bus.acquire_provider_slot(text,uuid,integer,integer)', 'execute'),
  'the service role can');
select ok(not has_table_privilege('authenticated', 'bus.routes', 'select')
          and not has_table_privilege('authenticated', 'bus.user_limits', 'select'),
  'users cannot read the routes or the limits');

select * from finish();
rollback;
