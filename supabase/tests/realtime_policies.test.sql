-- pgTAP tests of migration 20261121000200_realtime_delivery.sql: the status-change broadcast trigger on
-- public.message_bus and the RLS policies on realtime.messages that guard the private channels bus:<uid>.
-- Authorization is checked the way Realtime checks a join (supabase-platform.md §3.2): probe rows are inserted as
-- the superuser, then read back with role, realtime.topic and request.jwt.claims set locally. Write permission is
-- an INSERT as the user. Everything happens in one transaction that is rolled back.

begin;
set local search_path = public, extensions;
select plan(29);

select set_config('test.alice', 'a11ce000-0000-4000-8000-0000000000a1', true),
       set_config('test.bob', 'b0b00000-0000-4000-8000-0000000000b2', true),
       set_config('test.alice_topic', 'bus:a11ce000-0000-4000-8000-0000000000a1', true);

-- ---------------------------------------------------------------------------------------------------------------
-- Objects
-- ---------------------------------------------------------------------------------------------------------------
select has_function('bus', 'broadcast_status_change', 'trigger function bus.broadcast_status_change() exists');
select is((select prosecdef from pg_proc where oid = 'bus.broadcast_status_change()'::regprocedure), true,
  'the trigger function is security definer (user RLS on realtime.messages does not apply to it)');
select has_trigger('public', 'message_bus', 'message_bus_broadcast_insert', 'insert trigger exists');
select has_trigger('public', 'message_bus', 'message_bus_broadcast_status', 'status update trigger exists');
select ok(
  array['bus owners receive their events', 'nobody sends on bus topics']::name[]
    <@ (select array_agg(polname) from pg_policy where polrelid = 'realtime.messages'::regclass),
  'realtime.messages has the bus policies');
select policy_cmd_is('realtime', 'messages', 'bus owners receive their events', 'select', 'the receive policy is select only');
select policy_roles_are('realtime', 'messages', 'bus owners receive their events', array['authenticated'],
  'the receive policy applies to authenticated only (anon gets nothing)');
select policy_cmd_is('realtime', 'messages', 'nobody sends on bus topics', 'insert', 'the send guard is an insert policy');
select is((select polpermissive from pg_policy where polname = 'nobody sends on bus topics'
             and polrelid = 'realtime.messages'::regclass), false, 'the send guard is restrictive');

-- ---------------------------------------------------------------------------------------------------------------
-- The trigger: one private "message" broadcast per status change, never the payload
-- ---------------------------------------------------------------------------------------------------------------
select set_config('test.m1', transaction_id::text, true)
  from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600);

select is((select count(*)::int from realtime.messages where topic = current_setting('test.alice_topic')), 1,
  'begin_message broadcasts once on bus:<owner>');
select results_eq(
  $$select event, private, extension, payload ->> 'status', payload ->> 'tool', payload ->> 'provider'
      from realtime.messages where topic = current_setting('test.alice_topic')$$,
  $$values ('message'::text, true, 'broadcast'::text, 'pending'::text, 'chat'::text, 'kimi'::text)$$,
  'the pending event is a private broadcast "message" with status, tool and provider');
select is((select (payload ->> 'transaction_id')::uuid from realtime.messages where topic = current_setting('test.alice_topic')),
  current_setting('test.m1')::uuid, 'the event carries the transaction id');

select bus.append_chunk(current_setting('test.m1')::uuid, 0, convert_to('{"secret":"payload text"}', 'UTF8'));
select bus.complete_message(current_setting('test.m1')::uuid, 25, 25, 'none',
  'sha256:' || encode(sha256(convert_to('{"secret":"payload text"}', 'UTF8')), 'hex'), 1, 'stop', null, null, 1, 1);

select is((select count(*)::int from realtime.messages where topic = current_setting('test.alice_topic')), 2,
  'completing broadcasts a second event');
select is(
  (select array_agg(k order by k) from realtime.messages m, jsonb_object_keys(m.payload) k
    where m.topic = current_setting('test.alice_topic') and m.payload ->> 'status' = 'completed'),
  array['checksum', 'finish_reason', 'id', 'payload_size_bytes', 'provider', 'status', 'tool', 'transaction_id',
        'updated_at'],
  'the completed event has exactly the metadata keys (plus the id realtime.send adds)');
select ok(
  not exists (select 1 from realtime.messages where topic = current_setting('test.alice_topic')
                and payload::text like '%payload text%'),
  'no event contains the payload');
select results_eq(
  $$select payload ->> 'checksum', (payload ->> 'payload_size_bytes')::int, payload ->> 'finish_reason'
      from realtime.messages where topic = current_setting('test.alice_topic') and payload ->> 'status' = 'completed'$$,
  $$select 'sha256:' || encode(sha256(convert_to('{"secret":"payload text"}', 'UTF8')), 'hex'), 25, 'stop'::text$$,
  'the completed event has checksum, size and finish_reason');

select bus.mark_retrieved(current_setting('test.m1')::uuid);
update public.message_bus set status = status where transaction_id = current_setting('test.m1')::uuid;
select is((select count(*)::int from realtime.messages where topic = current_setting('test.alice_topic')), 2,
  'updates that do not change the status broadcast nothing');

-- ---------------------------------------------------------------------------------------------------------------
-- Receiving: the join probe of §3.2, as each identity
-- ---------------------------------------------------------------------------------------------------------------
with probe as (
  insert into realtime.messages (topic, extension) values (current_setting('test.alice_topic'), 'broadcast')
  returning id
) select set_config('test.probe_alice', id::text, true) from probe;
with probe as (
  insert into realtime.messages (topic, extension) values (current_setting('test.alice_topic'), 'presence')
  returning id
) select set_config('test.probe_alice_presence', id::text, true) from probe;

set local role authenticated;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice')::uuid), 1,
  'the owner can read the broadcast probe of bus:<own uid>');
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice_presence')::uuid), 0,
  'presence is not granted on bus:<uid>');
select set_config('realtime.topic', 'bus:' || current_setting('test.bob'), true);
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice')::uuid), 0,
  'with realtime.topic set to another topic, the owner''s row is not readable');
reset role;

set local role authenticated;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.bob'))::text, true);
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice')::uuid), 0,
  'another user cannot read the probe of bus:<alice>');
select is((select count(*)::int from realtime.messages where topic = current_setting('test.alice_topic')), 0,
  'another user sees none of alice''s events');
reset role;

set local role anon;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', '{"role":"anon"}', true);
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice')::uuid), 0,
  'anon cannot read the probe of bus:<alice>');
reset role;

set local role authenticated;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', '{"role":"authenticated"}', true);
select is((select count(*)::int from realtime.messages where id = current_setting('test.probe_alice')::uuid), 0,
  'an authenticated token without sub cannot read bus:<alice>');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- Sending: the write probe of §3.2 is an INSERT as the user; nobody may send on bus:*
-- ---------------------------------------------------------------------------------------------------------------
set local role authenticated;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
select throws_ok(
  format($$insert into realtime.messages (topic, extension) values (%L, 'broadcast')$$, current_setting('test.alice_topic')),
  '42501', null, 'the owner cannot send on bus:<own uid>');
select set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.bob'))::text, true);
select throws_ok(
  format($$insert into realtime.messages (topic, extension) values (%L, 'broadcast')$$, current_setting('test.alice_topic')),
  '42501', null, 'another user cannot send on bus:<alice>');
reset role;

set local role anon;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', '{"role":"anon"}', true);
select throws_ok(
  format($$insert into realtime.messages (topic, extension) values (%L, 'broadcast')$$, current_setting('test.alice_topic')),
  '42501', null, 'anon cannot send on bus:<alice>');
reset role;

-- The restrictive guard holds even when the project adds a broad permissive insert policy.
create policy "test: anyone may insert" on realtime.messages for insert to authenticated with check (true);
set local role authenticated;
select set_config('realtime.topic', current_setting('test.alice_topic'), true),
       set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
select throws_ok(
  format($$insert into realtime.messages (topic, extension) values (%L, 'broadcast')$$, current_setting('test.alice_topic')),
  '42501', null, 'a broad insert policy still does not allow sending on bus:*');
select lives_ok(
  $$insert into realtime.messages (topic, extension) values ('room:lobby', 'broadcast')$$,
  'the guard only concerns bus:* topics');
reset role;

select * from finish();
rollback;
