-- pgTAP tests of the operations migrations (20261126000400..440): privileges (nothing of ops is readable or executable
-- by anon or authenticated), the expiry trigger's WHEN clause (the invoke path never fires it), fingerprints,
-- the fold's exactly-once counting and the topic ops. One transaction, rolled back.

begin;
set local search_path = public, extensions;
select plan(28);

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------------------------------------------
select ok(not has_table_privilege('authenticated', t, 'select'), format('authenticated cannot read %s', t))
  from unnest(array['bus.ops_requests_total', 'bus.error_groups', 'bus.alert_state', 'bus.user_limits',
                    'bus.routes']) t;
select ok(not has_function_privilege('authenticated', f, 'execute'), format('authenticated cannot execute %s', f))
  from unnest(array['bus.ops_fold(interval,interval,interval)', 'bus.evaluate_alerts(text)',
                    'bus.ops_metric_rows()', 'bus.resolve_error_group(text)', 'bus.set_user_limit(uuid,integer)']) f;
select ok(has_function_privilege('service_role', 'bus.ops_metric_rows()', 'execute'), 'the service role reads metrics');
select ok(not has_function_privilege('service_role', 'bus.add_error_occurrence(text,text,text,text,uuid)', 'execute'),
  'occurrences are written by the triggers only');

-- ---------------------------------------------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------------------------------------------
select ok((select pg_get_triggerdef(oid) from pg_trigger where tgname = 'message_bus_ops_expiry')
            like '%WHEN (((new.status = ''expired''::text)%', 'the expiry trigger fires only on expiry');
select ok((select pg_get_triggerdef(oid) from pg_trigger where tgname = 'message_bus_error_group')
            like '%WHEN (((new.status = ''failed''::text)%', 'the error-group trigger fires only on failure');

-- ---------------------------------------------------------------------------------------------------------------
-- Fingerprints and buckets
-- ---------------------------------------------------------------------------------------------------------------
select is(bus.normalise_error_message('id 0b1e2d3c-aaaa-4bbb-8ccc-0123456789ab took 12.5 s at 2026-01-02T03:04:05Z'),
  'id <id> took <n> s at <time>', 'ids, numbers and timestamps are removed');
select is(bus.error_fingerprint('c', 'p', 'm'), encode(sha256(convert_to('c' || chr(31) || 'p' || chr(31) || 'm', 'UTF8')), 'hex'),
  'the fingerprint is the SHA-256 of code, provider and message');
select is(bus.ops_bucket(100, bus.ops_duration_bounds()), 13::smallint, 'a value equal to a bound is in that bucket (le)');
select is(bus.ops_bucket(100.5, bus.ops_duration_bounds()), 14::smallint, 'just above it, the next');
select is(bus.ops_bucket(1e9, bus.ops_duration_bounds()), 32::smallint, 'past the last bound: +Inf');
select is(bus.ops_uuid_floor('2026-01-01T00:00:00Z'), '019b76da-a800-0000-0000-000000000000'::uuid,
  'the UUIDv7 floor of a millisecond');

-- ---------------------------------------------------------------------------------------------------------------
-- The fold counts a message once; a straggler when it finishes
-- ---------------------------------------------------------------------------------------------------------------
select bus.ops_fold(p_settle => '0 seconds');
select set_config('test.done', (select transaction_id::text from bus.begin_message(
  gen_random_uuid(), 'chat', 'kimi', 'pgtap-ops', null, null, 3600)), true);
select set_config('test.late', (select transaction_id::text from bus.begin_message(
  gen_random_uuid(), 'chat', 'kimi', 'pgtap-ops', null, null, 3600)), true);
select bus.fail_message(current_setting('test.done')::uuid, '{"code": "pgtap", "message": "x"}');
select bus.ops_fold(p_settle => '0 seconds');
select is((select requests from bus.ops_requests_total where model = 'pgtap-ops' and status = 'failed'), 1::bigint,
  'the finished message is counted');
select ok(exists (select 1 from bus.ops_stragglers where transaction_id = current_setting('test.late')::uuid),
  'the pending one is parked');
select bus.fail_message(current_setting('test.late')::uuid, '{"code": "pgtap", "message": "y"}');
select bus.ops_fold(p_settle => '0 seconds');
select bus.ops_fold(p_settle => '0 seconds');
select is((select requests from bus.ops_requests_total where model = 'pgtap-ops' and status = 'failed'), 2::bigint,
  'the straggler is counted once it finished, once');

-- ---------------------------------------------------------------------------------------------------------------
-- Expiry moves bus_messages{status}: bus.expire_messages counts a batch in one row (migration 20261126000800),
-- the row trigger counts an expiry made by any other statement
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin perform bus.expire_messages(100000, 600000); end $$;
delete from bus.ops_status_moves;
do $$
declare v_id uuid;
begin
  for i in 1..4 loop
    select transaction_id into v_id from bus.begin_message(gen_random_uuid(), 'chat', 'kimi', 'pgtap-expiry', null, null, 3600);
    perform bus.fail_message(v_id, '{"code": "pgtap", "message": "x"}');
    perform set_config('test.x' || i, v_id::text, true);
  end loop;
end $$;
update public.message_bus set expires_at = now() - interval '1 second'
  where transaction_id in (select current_setting('test.x' || i)::uuid from generate_series(1, 3) i);
select is(bus.expire_messages(5000, 0), 3::bigint, 'expire_messages marks the three expired messages');
select is((select array_agg(row(from_status, to_status, n)::text) from bus.ops_status_moves),
  array[row('failed', 'expired', 3)::text], 'and records their move in one row, not one per message');
delete from bus.ops_status_moves;
update public.message_bus set status = 'expired', payload_deleted_at = now() where transaction_id = current_setting('test.x4')::uuid;
select is((select array_agg(row(from_status, to_status, n)::text) from bus.ops_status_moves),
  array[row('failed', 'expired', 1)::text], 'an expiry made outside expire_messages is counted by the row trigger');

-- ---------------------------------------------------------------------------------------------------------------
-- Topic ops
-- ---------------------------------------------------------------------------------------------------------------
insert into realtime.messages (topic, extension, payload, event, private) values ('ops', 'broadcast', '{}', 'alert', true);
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "a11ce000-0000-4000-8000-0000000000a1"}', true),
       set_config('realtime.topic', 'ops', true);
select is((select count(*)::int from realtime.messages where topic = 'ops'), 0, 'a user reads nothing of topic ops');
select throws_ok($$insert into realtime.messages (topic, extension) values ('ops', 'broadcast')$$, '42501', null,
  'a user cannot send on topic ops');
reset role;

select * from finish();
rollback;
