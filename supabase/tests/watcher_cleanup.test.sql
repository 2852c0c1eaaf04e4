-- pgTAP tests of the watcher and cleanup migrations (20261121000300_watcher.sql, 20261121000400_cleanup.sql,
-- 20261126000900_watch_batches.sql): tables, the watch trigger and its wake of a drain through pg_net, observations
-- (idempotent, broadcast, shown in message_bus_meta), drains (take, record, end), the sweep, the review budget, the
-- pg_cron jobs, and every cleanup step with its batch limits.
-- Everything happens in one transaction that is rolled back: queued pg_net requests are never sent (pg_net wakes
-- at commit only, supabase-platform.md §2.3) and cron jobs scheduled here never run.

begin;
set local search_path = public, extensions;
select plan(116);

do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-0000000000a1', true),
         set_config('test.bob', 'b0b00000-0000-4000-8000-0000000000b2', true);
end $$;

-- A completed message of `owner` (1 chunk), made through the bus API as tool-invoke makes it.
create function pg_temp.completed(p_owner uuid, p_ttl integer default 3600) returns uuid language plpgsql as $$
declare
  v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(p_owner, 'chat', 'kimi', 'm', null, null, p_ttl);
  perform bus.append_chunk(v_id, 0, '\x7b7d'::bytea);
  perform bus.complete_message(v_id, 2, 2, 'none', 'sha256:' || repeat('a', 64), 1, 'stop', null, 'm', 1, 1);
  return v_id;
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------------------------------
select has_table('public', 'message_bus_observations', 'table message_bus_observations exists');
select has_table('bus', 'watch_queue', 'table bus.watch_queue exists');
select has_table('bus', 'review_budget', 'table bus.review_budget exists');
select has_table('bus', 'maintenance_log', 'table bus.maintenance_log exists');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint where conname = 'message_bus_observations_once'),
  'UNIQUE (transaction_id, watcher_version)', 'one observation per (transaction, watcher version)');
select is(
  (select confdeltype::text from pg_constraint where conrelid = 'public.message_bus_observations'::regclass and contype = 'f'),
  'c', 'purging a message deletes its observations');
select is(
  (select confdeltype::text from pg_constraint where conrelid = 'bus.watch_queue'::regclass and contype = 'f'),
  'c', 'purging a message deletes its watch_queue row');
select ok((select relrowsecurity from pg_class where oid = 'public.message_bus_observations'::regclass),
  'RLS is enabled on message_bus_observations');
select policies_are('public', 'message_bus_observations', array['owners read their observations'],
  'observations have only the owner read policy');
select has_index('public', 'message_bus', 'message_bus_purge', array['expires_at'], 'index for purging expired rows');
select columns_are('public', 'message_bus_meta', array[
  'transaction_id', 'owner_id', 'status', 'tool', 'provider', 'model', 'session_id', 'checksum',
  'payload_size_bytes', 'stored_size_bytes', 'compression', 'chunk_count', 'finish_reason', 'usage', 'error',
  'created_at', 'updated_at', 'completed_at', 'expires_at', 'retrieved_at', 'retrieved_count', 'provider_ms',
  'write_ms', 'watcher', 'stored_checksum', 'content_type', 'mode', 'stream', 'attempts', 'replay_of',
  'request_checksum', 'request_size_bytes', 'metadata', 'files'
], 'message_bus_meta keeps every column in order');
select ok(
  (select 'security_invoker=true' = any (reloptions) from pg_class where oid = 'public.message_bus_meta'::regclass),
  'message_bus_meta is still security_invoker');
select has_trigger('public', 'message_bus', 'message_bus_watch', 'the watch trigger exists');

-- Permissions: nobody but the service role runs the API; the internal functions not even the service role.
create temp table api (sig text) on commit drop;
insert into api values ('bus.request_watch(uuid)'), ('bus.sweep_unobserved(interval,integer,integer)'),
  ('bus.record_observation(uuid,text,text,jsonb,bigint,boolean,jsonb,integer,integer)'),
  ('bus.take_review_slot(text,integer)'), ('bus.expire_messages(integer,integer)'),
  ('bus.purge_messages(interval,integer,integer)'), ('bus.reap_pending(interval,integer,integer)'),
  ('bus.trim_http_responses(interval,integer)'), ('bus.trim_cron_history(interval,integer)'),
  ('bus.run_cleanup(interval,interval,integer,integer,interval,interval,integer,integer)'),
  ('bus.log_maintenance(text,timestamp with time zone,integer,boolean,jsonb,text)'), ('bus.schedule_cleanup(text)'),
  ('bus.watch_target(uuid,text)');
select is((select count(*)::int from api where has_function_privilege('anon', sig, 'execute')), 0,
  'anon cannot execute the watcher and cleanup functions');
select is((select count(*)::int from api where has_function_privilege('authenticated', sig, 'execute')), 0,
  'authenticated cannot execute the watcher and cleanup functions');
select is((select count(*)::int from api where has_function_privilege('service_role', sig, 'execute')), 13,
  'service_role can execute the watcher and cleanup functions');
select ok(not has_function_privilege('service_role', 'bus.schedule_job(text,text,text)', 'execute'),
  'service_role cannot schedule arbitrary cron jobs');
select ok(not has_function_privilege('service_role', 'bus.call_function(text,jsonb,integer)', 'execute'),
  'service_role cannot call bus.call_function directly');
select ok(not has_table_privilege('authenticated', 'bus.maintenance_log', 'select'), 'users cannot read the maintenance log');
select ok(not has_table_privilege('authenticated', 'bus.watch_queue', 'select'), 'users cannot read the watch queue');

-- ---------------------------------------------------------------------------------------------------------------
-- The watch trigger
-- ---------------------------------------------------------------------------------------------------------------
-- No drain under way (as on a quiet bus; rolled back with the rest).
update bus.watch_wake set woken_at = null, last_request_id = null, last_error = null;
do $$ begin perform set_config('test.queue_before', coalesce(max(id), 0)::text, true) from net.http_request_queue; end $$;
do $$ begin perform set_config('test.m1', pg_temp.completed(current_setting('test.alice')::uuid)::text, true); end $$;
select is((select attempts from bus.watch_queue where transaction_id = current_setting('test.m1')::uuid), 0,
  'completing a message puts it in the watch queue, not yet taken');
select is(
  (select count(*)::int from net.http_request_queue where id > current_setting('test.queue_before')::bigint),
  1, 'completing a message while no drain is under way queues exactly one pg_net request');
select is(
  (select url from net.http_request_queue where id > current_setting('test.queue_before')::bigint),
  (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/watcher',
  'the request goes to the watcher at the Vault project_url');
select is(
  (select convert_from(body, 'utf8')::jsonb from net.http_request_queue where id > current_setting('test.queue_before')::bigint),
  '{"drain": true}'::jsonb, 'the request asks for a drain of the queue (a tiny body, no message data)');
select is(
  (select headers ->> 'Authorization' from net.http_request_queue where id > current_setting('test.queue_before')::bigint),
  'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key'),
  'the request carries the Vault service_role_key');
select ok(
  (select last_request_id = (select max(id) from net.http_request_queue) and woken_at is not null from bus.watch_wake),
  'bus.watch_wake remembers the wake and that a drain is under way');
do $$ begin perform set_config('test.m1b', pg_temp.completed(current_setting('test.alice')::uuid)::text, true); end $$;
select is(
  (select count(*)::int from net.http_request_queue where id > current_setting('test.queue_before')::bigint),
  1, 'a completion while a drain is under way queues no second request');
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.m1b')::uuid), 1,
  'and leaves its message in the queue for that drain');

do $$ begin
  perform set_config('test.p1', (select transaction_id from bus.begin_message(current_setting('test.alice')::uuid,
    'chat', 'kimi', 'm', null, null, 3600))::text, true);
end $$;
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.p1')::uuid), 0,
  'a pending message is not watched');
do $$ begin perform bus.fail_message(current_setting('test.p1')::uuid, '{"code": "provider_error", "message": "boom"}'::jsonb); end $$;
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.p1')::uuid), 1,
  'a failed message is watched too');

-- Without the Vault secrets the status change still goes through; bus.watch_wake records why nothing was sent.
do $$ begin perform set_config('test.url', (select secret from vault.secrets where name = 'project_url'), true); end $$;
delete from vault.secrets where name = 'project_url';
update bus.watch_wake set woken_at = null;
-- The WARNING bus.call_function raises here is the expected one; kept out of the test output.
set client_min_messages = error;
do $$ begin perform set_config('test.m2', pg_temp.completed(current_setting('test.alice')::uuid)::text, true); end $$;
reset client_min_messages;
select is((select status from public.message_bus where transaction_id = current_setting('test.m2')::uuid), 'completed',
  'a message completes even when the watcher cannot be called');
select ok(
  (select last_request_id is null and last_error like '%could not be queued%' from bus.watch_wake),
  'bus.watch_wake says the wake could not be queued');
select ok((select woken_at is null from bus.watch_wake), 'so the next completion tries to wake a drain again');
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.m2')::uuid), 1,
  'the message waits in the queue meanwhile');
do $$ begin perform vault.create_secret(current_setting('test.url'), 'project_url'); end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Observations
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin perform set_config('test.rt_before', count(*)::text, true) from realtime.messages where event = 'observation'; end $$;
create temp table recorded (n int, observation_id bigint, created boolean) on commit drop;
insert into recorded select 1, * from bus.record_observation(current_setting('test.m1')::uuid, '1', 'warning',
  '[{"code": "truncated", "message": "cut", "severity": "warning"}, {"code": "partial_analysis", "message": "head", "severity": "info"}]'::jsonb,
  2, false, null, null, 5);
insert into recorded select 2, * from bus.record_observation(current_setting('test.m1')::uuid, '1', 'ok', '[]'::jsonb);
select is((select created from recorded where n = 1), true, 'the first observation is created');
select is((select created from recorded where n = 2), false, 'a second one for the same version is not');
select is((select count(distinct observation_id)::int from recorded), 1, 'and both calls return the same observation');
select is((select verdict from public.message_bus_observations where transaction_id = current_setting('test.m1')::uuid),
  'warning', 'the first verdict stands');
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.m1')::uuid), 0,
  'an observed message leaves the watch queue');
select is((select count(*)::int from realtime.messages where event = 'observation') - current_setting('test.rt_before')::int,
  1, 'one observation broadcast, not two');
select is(
  (select topic from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = current_setting('test.m1')),
  'bus:' || current_setting('test.alice'), 'broadcast on the owner''s topic');
select is(
  (select payload - 'id' from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = current_setting('test.m1')),
  jsonb_build_object('transaction_id', current_setting('test.m1'), 'verdict', 'warning',
    'findings', '[{"code": "truncated", "message": "cut"}, {"code": "partial_analysis", "message": "head"}]'::jsonb),
  'the broadcast carries transaction_id, verdict and findings as {code, message}');
select ok(
  (select private from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = current_setting('test.m1')),
  'the broadcast is private');
insert into recorded select 3, * from bus.record_observation(current_setting('test.m1')::uuid, '2', 'ok', '[]'::jsonb);
select is((select created from recorded where n = 3), true, 'a new watcher version adds its own observation');
select throws_ok($$select bus.record_observation('00000000-0000-7000-8000-000000000000'::uuid, '1', 'ok', '[]'::jsonb)$$,
  'P0002', null, 'observing an unknown message fails');
select throws_ok($$select bus.record_observation(current_setting('test.m2')::uuid, '1', 'fine', '[]'::jsonb)$$,
  '23514', null, 'an unknown verdict is refused');

-- What the watcher reads: the row, its observation by the watcher's version, the bytes of a one-chunk payload.
select is((select observation ->> 'verdict' from bus.watch_target(current_setting('test.m1')::uuid, '1')), 'warning',
  'watch_target returns the observation of the version asked for');
select is((select observation ->> 'watcher_version' from bus.watch_target(current_setting('test.m1')::uuid, '2')), '2',
  'and of another version its own');
select ok((select observation is null from bus.watch_target(current_setting('test.m2')::uuid, '1')),
  'watch_target: no observation yet, none returned');
select is(
  (select array[status, only_chunk::text, expired::text, chunk_count::text, checksum]
     from bus.watch_target(current_setting('test.m2')::uuid, '1')),
  array['completed', '\x7b7d', 'false', '1', 'sha256:' || repeat('a', 64)],
  'watch_target returns the row and the bytes of a one-chunk payload');
select is((select count(*)::int from bus.watch_target('00000000-0000-7000-8000-000000000000'::uuid, '1')), 0,
  'watch_target: no row for an unknown message');

-- meta.watcher shows the latest observation to its owner only.
select is((select watcher from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid),
  '{"verdict": "ok", "findings": []}'::jsonb, 'meta.watcher is the latest observation');
select is((select watcher from public.message_bus_meta where transaction_id = current_setting('test.m2')::uuid), null,
  'meta.watcher is null before any observation');
update public.message_bus_observations set created_at = created_at - interval '1 minute' where watcher_version = '2';
select is((select watcher from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid),
  '{"verdict": "warning", "findings": [{"code": "truncated", "message": "cut"}, {"code": "partial_analysis", "message": "head"}]}'::jsonb,
  'meta.watcher is {verdict, findings: [{code, message}]}, in the order found');
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
end $$;
select is((select watcher ->> 'verdict' from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid),
  'warning', 'the owner sees the watcher verdict in meta');
select is((select count(*)::int from public.message_bus_observations where transaction_id = current_setting('test.m1')::uuid),
  2, 'the owner reads their observations');
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.bob'))::text, true);
end $$;
select is((select count(*)::int from public.message_bus_observations where transaction_id = current_setting('test.m1')::uuid),
  0, 'another user reads none of them');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- The sweep
-- ---------------------------------------------------------------------------------------------------------------
update bus.watch_queue set requested_at = now() - interval '1 hour';
do $$ begin perform set_config('test.m3', pg_temp.completed(current_setting('test.alice')::uuid)::text, true); end $$;
update bus.watch_queue set attempts = 5 where transaction_id = current_setting('test.p1')::uuid;
-- Only the three rows this part is about (rolled back with the rest).
delete from bus.watch_queue where transaction_id not in
  (current_setting('test.m2')::uuid, current_setting('test.m3')::uuid, current_setting('test.p1')::uuid);
do $$ begin perform set_config('test.queue_before', coalesce(max(id), 0)::text, true) from net.http_request_queue; end $$;
select is(bus.sweep_unobserved('2 minutes', 5, 1000), 1,
  'the sweep counts what waited past its minimum age with attempts left (not the young one, not the one out of attempts)');
select is(
  (select count(*)::int from net.http_request_queue
    where id > current_setting('test.queue_before')::bigint and convert_from(body, 'utf8')::jsonb = '{"drain": true}'),
  1, 'and wakes a drain');
update bus.watch_queue set claimed_until = now() + interval '1 minute' where transaction_id = current_setting('test.m2')::uuid;
select is(bus.sweep_unobserved('2 minutes', 5, 1000), 0, 'a message a drain holds is left to it');
update bus.watch_queue set claimed_until = now() - interval '1 second' where transaction_id = current_setting('test.m2')::uuid;
select is(bus.sweep_unobserved('2 minutes', 5, 1000), 1, 'once that claim has run out, the sweep counts it again');
update public.message_bus set expires_at = now() - interval '1 second' where transaction_id = current_setting('test.m3')::uuid;
do $$ begin perform bus.sweep_unobserved('2 minutes', 5, 1000); end $$;
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.m3')::uuid), 0,
  'an expired message leaves the watch queue');

-- ---------------------------------------------------------------------------------------------------------------
-- Drains (20261126000900_watch_batches.sql)
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform set_config('test.d1', pg_temp.completed(current_setting('test.alice')::uuid)::text, true);
  perform set_config('test.d2', pg_temp.completed(current_setting('test.bob')::uuid)::text, true);
end $$;
-- Only these two in the queue (rolled back with the rest).
delete from bus.watch_queue where transaction_id not in (current_setting('test.d1')::uuid, current_setting('test.d2')::uuid);
create temp table taken on commit drop as select * from bus.take_watch_batch('1', 50, 60, 5);
select is((select count(*)::int from taken), 2, 'a drain takes the queued messages');
select is((select only_chunk from taken where transaction_id = current_setting('test.d1')::uuid), '\x7b7d'::bytea,
  'each with what the checks need (its row and its one-chunk payload, as bus.watch_target answers)');
select ok((select bool_and(attempts = 1 and claimed_until > now()) from bus.watch_queue),
  'each taken once, claimed for the claim time');
select is((select count(*)::int from bus.take_watch_batch('1', 50, 60, 5)), 0, 'a claimed message is not taken again');
do $$ begin
  perform set_config('test.rt_before2', count(*)::text, true) from realtime.messages where event = 'observation';
end $$;
create temp table batch_recorded on commit drop as select * from bus.record_observations('1', jsonb_build_array(
  jsonb_build_object('transaction_id', current_setting('test.d1'), 'verdict', 'warning',
    'findings', '[{"code": "truncated", "message": "cut", "severity": "warning"}]'::jsonb, 'analysed_bytes', 2,
    'partial', false, 'duration_ms', 3),
  jsonb_build_object('transaction_id', current_setting('test.d2'), 'drop', true)));
select is((select count(*)::int from batch_recorded where created), 1, 'a batch records its observations');
select is((select count(*)::int from bus.watch_queue), 0, 'and clears the queue rows of the batch, dropped ones too');
select is((select count(*)::int from public.message_bus_observations where transaction_id = current_setting('test.d2')::uuid),
  0, 'a dropped message gets no observation');
select is(
  (select payload - 'id' from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = current_setting('test.d1')),
  jsonb_build_object('transaction_id', current_setting('test.d1'), 'verdict', 'warning',
    'findings', '[{"code": "truncated", "message": "cut"}]'::jsonb),
  'each observation of a batch is broadcast with transaction_id, verdict and findings');
select is(
  (select topic from realtime.messages where event = 'observation' and payload ->> 'transaction_id' = current_setting('test.d1')),
  'bus:' || current_setting('test.alice'), 'on its owner''s topic');
select is(
  (select created from bus.record_observations('1', jsonb_build_array(
    jsonb_build_object('transaction_id', current_setting('test.d1'), 'verdict', 'ok')))),
  false, 'a second observation by the same watcher version is not recorded');
select is((select count(*)::int from realtime.messages where event = 'observation') - current_setting('test.rt_before2')::int,
  1, 'nor broadcast');
update bus.watch_wake set woken_at = now();
select is(bus.end_watch_drain(), true, 'a drain that finds nothing left ends');
select ok((select woken_at is null from bus.watch_wake), 'and says so in bus.watch_wake');
do $$ begin perform set_config('test.d3', pg_temp.completed(current_setting('test.alice')::uuid)::text, true); end $$;
select is(bus.end_watch_drain(), false, 'a drain goes on while a message waits in the queue');

-- ---------------------------------------------------------------------------------------------------------------
-- Review budget and scheduling
-- ---------------------------------------------------------------------------------------------------------------
select is(array[bus.take_review_slot('pgtap:m', 2), bus.take_review_slot('pgtap:m', 2), bus.take_review_slot('pgtap:m', 2)],
  array[true, true, false], 'the review budget allows exactly its hourly limit');
select is(bus.take_review_slot('pgtap:other', 0), false, 'a budget of 0 allows nothing');
select is((select used from bus.review_budget where reviewer = 'pgtap:m'), 2, 'the budget row counts what was used');

select is((select schedule from cron.job where jobname = 'message-bus-cleanup'), '0 * * * *', 'cleanup runs hourly');
select ok((select command like '%net.http_post(%/functions/v1/cleanup%' from cron.job where jobname = 'message-bus-cleanup'),
  'the cleanup job calls the cleanup function through pg_net');
select is((select schedule from cron.job where jobname = 'message-bus-watcher-sweep'), '* * * * *', 'the sweep runs every minute');
set client_min_messages = warning; -- the NOTICE about the fallback on pg_cron < 1.5 is expected
do $$ begin perform bus.schedule_job('pgtap-probe', '30 seconds', 'select 1'); end $$;
reset client_min_messages;
select is((select schedule from cron.job where jobname = 'pgtap-probe'),
  case when string_to_array(regexp_replace((select extversion from pg_extension where extname = 'pg_cron'), '[^0-9.].*$', ''), '.')::int[] < array[1, 5]
       then '* * * * *' else '30 seconds' end,
  'a seconds schedule falls back to every minute on pg_cron < 1.5 and is kept on newer');
do $$ begin perform bus.schedule_cleanup('15 * * * *'); end $$;
select is((select schedule from cron.job where jobname = 'message-bus-cleanup'), '15 * * * *', 'schedule_cleanup reschedules');

-- ---------------------------------------------------------------------------------------------------------------
-- Cleanup steps (what is already due in the shared database is handled first, so the counts below are exact)
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform bus.reap_pending('15 minutes', 100000);
  perform bus.expire_messages(100000, 600000);
  perform bus.purge_messages('30 days', 100000, 600000);
end $$;

do $$ begin
  perform set_config('test.e' || i, pg_temp.completed(current_setting('test.bob')::uuid)::text, true) from generate_series(1, 5) i;
  perform set_config('test.keep', pg_temp.completed(current_setting('test.bob')::uuid)::text, true);
  perform set_config('test.pending_due', (select transaction_id from bus.begin_message(current_setting('test.bob')::uuid,
    'chat', 'kimi', 'm', null, null, 3600))::text, true);
end $$;
update public.message_bus set expires_at = now() - interval '1 minute', updated_at = now() - interval '1 hour'
  where transaction_id in (select current_setting('test.e' || i)::uuid from generate_series(1, 5) i)
     or transaction_id = current_setting('test.pending_due')::uuid;

select is(bus.expire_messages(2, 0), 2::bigint, 'expire_messages stops after one batch when its budget is spent');
select is(bus.expire_messages(2, 600000), 3::bigint, 'and finishes the rest in batches when the budget allows');
select is(
  (select count(*)::int from public.message_bus
    where transaction_id in (select current_setting('test.e' || i)::uuid from generate_series(1, 5) i)
      and status = 'expired' and payload_deleted_at is not null and updated_at > now() - interval '1 minute'),
  5, 'expired messages keep their row: status expired, payload_deleted_at and updated_at set');
select is(
  (select count(*)::int from public.message_bus_chunks
    where transaction_id in (select current_setting('test.e' || i)::uuid from generate_series(1, 5) i)),
  0, 'their chunks are gone');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.keep')::uuid), 1,
  'a message not yet expired keeps its payload');
select is((select status from public.message_bus where transaction_id = current_setting('test.pending_due')::uuid), 'pending',
  'a pending message past expiry is left to the reaper');
select is(bus.expire_messages(10, 1000), 0::bigint, 'a second run finds nothing');

select is(bus.purge_messages('30 days', 10, 1000), 0::bigint, 'nothing is purged within the retention period');
update public.message_bus set expires_at = now() - interval '31 days'
  where transaction_id in (select current_setting('test.e' || i)::uuid from generate_series(1, 2) i);
select is(bus.purge_messages('30 days', 10, 1000), 2::bigint, 'rows past the retention period are purged');
select is((select count(*)::int from public.message_bus
  where transaction_id in (select current_setting('test.e' || i)::uuid from generate_series(1, 5) i)), 3,
  'and only those');

update public.message_bus set lease_expires_at = now() - interval '1 second' where transaction_id = current_setting('test.pending_due')::uuid;
select is(bus.reap_pending('15 minutes', 10), 1::bigint, 'a message whose lease ran out is reaped');
select is((select status || ':' || (error ->> 'code') from public.message_bus where transaction_id = current_setting('test.pending_due')::uuid),
  'failed:worker_lost', 'as failed with error code worker_lost');
select is((select count(*)::int from bus.watch_queue where transaction_id = current_setting('test.pending_due')::uuid), 1,
  'and its failure goes to the watcher');
select is(bus.reap_pending('15 minutes', 10), 0::bigint, 'reaping twice reaps nothing more');

insert into net._http_response (id, status_code, created) values (-101, 200, now() - interval '2 hours'), (-102, 200, now());
select is(bus.trim_http_responses('1 hour', 100000) >= 1, true, 'old pg_net responses are trimmed');
select is((select array_agg(id order by id) from net._http_response where id in (-101, -102)), array[-102::bigint],
  'recent pg_net responses stay');
insert into cron.job_run_details (jobid, command, status, start_time, end_time)
  values (0, 'pgtap', 'succeeded', now() - interval '9 days', now() - interval '9 days'), (0, 'pgtap', 'succeeded', now(), now());
select is(bus.trim_cron_history('7 days', 100000) >= 1, true, 'pg_cron history older than 7 days is trimmed');
select is((select count(*)::int from cron.job_run_details where command = 'pgtap'), 1, 'recent history stays');

-- Payload first (migration 400, two phases): chunks carry their message's expiry and go without touching the metadata row.
do $$ begin
  perform bus.delete_expired_payloads(100000, 600000);
  perform set_config('test.f1', pg_temp.completed(current_setting('test.bob')::uuid, 60)::text, true);
  perform set_config('test.f2', pg_temp.completed(current_setting('test.bob')::uuid, 60)::text, true);
  perform set_config('test.f3', pg_temp.completed(current_setting('test.bob')::uuid, 3600)::text, true);
end $$;
select is((select expires_at from public.message_bus_chunks where transaction_id = current_setting('test.f1')::uuid),
  (select expires_at from public.message_bus where transaction_id = current_setting('test.f1')::uuid),
  'append_chunk copies the message''s expires_at onto its chunk');
update public.message_bus_chunks set expires_at = now() - interval '1 second'
  where transaction_id in (current_setting('test.f1')::uuid, current_setting('test.f2')::uuid);
update public.message_bus set expires_at = now() - interval '1 second'
  where transaction_id in (current_setting('test.f1')::uuid, current_setting('test.f2')::uuid);
create temp table f_before on commit drop as select transaction_id, status, updated_at, payload_deleted_at
  from public.message_bus where transaction_id in (current_setting('test.f1')::uuid, current_setting('test.f2')::uuid);
select is(bus.delete_expired_payloads(1, 0), 1::bigint, 'delete_expired_payloads stops after one batch when its budget is spent');
select is(bus.delete_expired_payloads(1, 600000), 1::bigint, 'and deletes the rest when the budget allows');
select is((select count(*)::int from public.message_bus_chunks
  where transaction_id in (current_setting('test.f1')::uuid, current_setting('test.f2')::uuid)), 0, 'the expired payloads are gone');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.f3')::uuid), 1,
  'a payload not yet expired stays');
select set_eq(
  $$select transaction_id, status, updated_at, payload_deleted_at from public.message_bus
    where transaction_id in (current_setting('test.f1')::uuid, current_setting('test.f2')::uuid)$$,
  $$select * from f_before$$, 'their metadata rows are untouched until they are marked');
select is((select status from public.message_bus_meta where transaction_id = current_setting('test.f1')::uuid), 'expired',
  'meta already answers expired');
select is((select (r ->> 'payloads_left')::boolean from bus.run_cleanup('30 days', '15 minutes', 100, 5000) r), false,
  'run_cleanup reports when no expired payload is left');
select is((select status from public.message_bus where transaction_id = current_setting('test.f2')::uuid), 'expired',
  'and marks the rows once the payloads are gone');

-- run_cleanup: one round, its counts and whether more is left. Two messages are due: keep and m1.
update public.message_bus set expires_at = now() - interval '1 minute'
  where transaction_id in (current_setting('test.keep')::uuid, current_setting('test.m1')::uuid);
select is(bus.run_cleanup('30 days', '15 minutes', 1, 0, p_mark_batch => 1) - 'bookkeeping_deleted' - 'http_responses_deleted' - 'cron_runs_deleted',
  '{"expired": 1, "purged": 0, "reaped": 0, "payload_chunks_deleted": 0, "payloads_left": false, "more": true}'::jsonb,
  'a round out of budget after one batch of one says more work is left');
select is(bus.run_cleanup('30 days', '15 minutes', 100, 5000) - 'bookkeeping_deleted' - 'http_responses_deleted' - 'cron_runs_deleted',
  '{"expired": 1, "purged": 0, "reaped": 0, "payload_chunks_deleted": 0, "payloads_left": false, "more": false}'::jsonb,
  'the next round finishes and reports its counts');
select is((select status from public.message_bus_meta where transaction_id = current_setting('test.keep')::uuid), 'expired',
  'meta answers expired for an expired message until it is purged');

select is(bus.log_maintenance('pgtap', now() - interval '2 seconds', 3, true, '{"expired": 7}'::jsonb) > 0, true,
  'log_maintenance records a run');
select is((select row(job, rounds, complete, counts ->> 'expired', duration_ms >= 0)::text from bus.maintenance_log where job = 'pgtap'),
  row('pgtap', 3, true, '7', true)::text, 'with its rounds, completeness, counts and duration');

select * from finish();
rollback;
