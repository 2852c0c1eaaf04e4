-- pgTAP tests of migration 20261126000100_message_path.sql: the stored request (one statement, or chunks and a
-- seal that checks they add up), leases (renewal, the reaper acting on expired leases only), runs fencing
-- completion and failure, a failure that keeps or drops a partial payload, no Realtime event for expiry, and the
-- default privileges of functions created later in schema bus.
-- Everything happens in one transaction that is rolled back.

begin;
set local search_path = public, extensions;
select plan(32);

do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-00000000a001', true);
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- The stored request
-- ---------------------------------------------------------------------------------------------------------------
select has_table('public', 'message_bus_request_chunks', 'table message_bus_request_chunks exists');
select col_is_pk('public', 'message_bus_request_chunks', array['transaction_id', 'seq'], 'request chunks are keyed by (transaction_id, seq)');
select policies_are('public', 'message_bus_request_chunks', array['owners read their requests'], 'owners read their requests, nobody writes');

-- A request of one chunk is stored by begin_message itself.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(
    p_owner => current_setting('test.alice')::uuid, p_tool => 'chat', p_provider => 'kimi', p_model => 'm',
    p_session_id => null, p_idempotency_key => 'k1', p_ttl_seconds => 3600, p_metadata => '{}', p_mode => 'async',
    p_lease_seconds => 30, p_request_size => 2, p_request_stored_size => 2, p_request_compression => 'none',
    p_request_checksum => 'sha256:' || repeat('b', 64), p_request_chunk_count => 1, p_request_last_chunk => '\x7b7d');
  perform set_config('test.m1', v_id::text, true);
end $$;
select results_eq(
  $$select mode, request_size_bytes, request_checksum, request_chunk_count, run_count from public.message_bus
     where transaction_id = current_setting('test.m1')::uuid$$,
  $$values ('async', 2::bigint, 'sha256:' || repeat('b', 64), 1, 1)$$,
  'begin_message records mode, the request''s size, checksum and chunk count, run 1');
select is((select data from public.message_bus_request_chunks where transaction_id = current_setting('test.m1')::uuid),
  '\x7b7d'::bytea, 'and stores the request''s only chunk in the same statement');
select ok((select lease_expires_at between now() + interval '29 seconds' and now() + interval '31 seconds'
             from public.message_bus where transaction_id = current_setting('test.m1')::uuid),
  'the worker that recorded it holds a lease of p_lease_seconds');
select is(
  (select created from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, 'k1', 3600)),
  false, 'the same idempotency key returns the earlier message');
select is((select count(*)::int from public.message_bus_request_chunks where transaction_id = current_setting('test.m1')::uuid),
  1, '... and stores no second request');

-- A larger request: chunks appended, then sealed.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600);
  perform set_config('test.m2', v_id::text, true);
  perform bus.append_request_chunk(v_id, 0, '\x0102');
end $$;
select throws_ok(
  $$select bus.seal_request(current_setting('test.m2')::uuid, 5, 5, 'none', 'sha256:' || repeat('c', 64), 3, '\x03')$$,
  '22000', null, 'seal_request refuses request chunks that do not add up');
select lives_ok(
  $$select bus.seal_request(current_setting('test.m2')::uuid, 3, 3, 'none', 'sha256:' || repeat('c', 64), 2, '\x03')$$,
  'seal_request stores the last chunk and seals a request whose chunks add up');
select is((select string_agg(encode(data, 'hex'), '' order by seq) from public.message_bus_request_chunks
             where transaction_id = current_setting('test.m2')::uuid), '010203', 'the request is stored in order');
select is((select request_chunk_count from public.message_bus where transaction_id = current_setting('test.m2')::uuid),
  2, 'the seal sets the request columns');

-- ---------------------------------------------------------------------------------------------------------------
-- Leases and runs
-- ---------------------------------------------------------------------------------------------------------------
select is(bus.renew_lease(current_setting('test.m1')::uuid, 1, 120), true, 'run 1 renews its lease');
select ok((select lease_expires_at > now() + interval '100 seconds' from public.message_bus
            where transaction_id = current_setting('test.m1')::uuid), 'the renewal extends the lease from now');
select is(bus.renew_lease(current_setting('test.m1')::uuid, 2, 120), false, 'another run cannot renew it');
select throws_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 2, 2, 'none', 'sha256:' || repeat('a', 64), 1,
      'stop', null, 'm', 1, 1, '{}', null, '\x7b7d', 2)$$,
  '55000', null, 'complete_message refuses a run that does not hold the message');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid),
  0, '... and keeps nothing of what it tried to store');
select lives_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 2, 2, 'none', 'sha256:' || repeat('a', 64), 1,
      'stop', null, 'm', 1, 1, '{}', null, '\x7b7d', 1, '[{"provider":"kimi","model":"m","outcome":"ok","status":200,"error_code":null}]',
      'glm', false)$$,
  'the run holding it completes it, with its attempts and the provider that answered');
select results_eq(
  $$select status, lease_expires_at is null, provider, attempts -> 0 ->> 'outcome' from public.message_bus
     where transaction_id = current_setting('test.m1')::uuid$$,
  $$values ('completed', true, 'glm', 'ok')$$,
  'completed: the lease is gone, the provider and attempts are recorded');
select is(bus.renew_lease(current_setting('test.m1')::uuid, 1, 120), false, 'a finished message has no lease to renew');

-- Failing keeps or drops a partial payload; the request stays either way.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600,
    p_request_size => 2, p_request_stored_size => 2, p_request_compression => 'none',
    p_request_checksum => 'sha256:' || repeat('d', 64), p_request_chunk_count => 1, p_request_last_chunk => '\x7b7d');
  perform set_config('test.m3', v_id::text, true);
  perform bus.append_chunk(v_id, 0, '\x6461'::bytea);
  perform bus.fail_message(v_id, '{"code":"stream_incomplete","message":"cut"}', 5, 1, null, true);
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600);
  perform set_config('test.m4', v_id::text, true);
  perform bus.append_chunk(v_id, 0, '\x6461'::bytea);
  perform bus.fail_message(v_id, '{"code":"provider_error","message":"x"}');
end $$;
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m3')::uuid),
  1, 'fail_message with p_keep_partial keeps what arrived (a cut stream, for diagnosis)');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m4')::uuid),
  0, 'fail_message without it drops the partial payload');
select is((select count(*)::int from public.message_bus_request_chunks where transaction_id = current_setting('test.m3')::uuid),
  1, 'a failed message keeps its request (replay, audit)');

-- The reaper acts on expired leases only.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600);
  perform set_config('test.alive', v_id::text, true);
  update public.message_bus set created_at = now() - interval '3 hours' where transaction_id = v_id;
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600);
  perform set_config('test.dead', v_id::text, true);
  update public.message_bus set lease_expires_at = now() - interval '1 second' where transaction_id = v_id;
end $$;
select is(bus.reap_pending('15 minutes', 100), 1::bigint, 'one message is reaped: the one whose lease ran out');
select is((select status from public.message_bus where transaction_id = current_setting('test.alive')::uuid), 'pending',
  'a message pending for three hours with a live lease is left alone');
select is((select error ->> 'code' from public.message_bus where transaction_id = current_setting('test.dead')::uuid),
  'worker_lost', 'the reaped one failed as worker_lost');

-- ---------------------------------------------------------------------------------------------------------------
-- Realtime: expiry is not announced
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin
  update public.message_bus set expires_at = now() - interval '1 second'
   where transaction_id = current_setting('test.m4')::uuid;
  perform bus.expire_messages(100, 1000);
end $$;
select is((select status from public.message_bus where transaction_id = current_setting('test.m4')::uuid), 'expired',
  'the message expired');
select is((select count(*)::int from realtime.messages where payload ->> 'transaction_id' = current_setting('test.m4')
             and payload ->> 'status' = 'expired'), 0, 'its expiry sent no Realtime event');
select is((select count(*)::int from realtime.messages where payload ->> 'transaction_id' = current_setting('test.m4')
             and payload ->> 'status' = 'failed'), 1, 'its failure did');

-- ---------------------------------------------------------------------------------------------------------------
-- Default privileges
-- ---------------------------------------------------------------------------------------------------------------
create function bus.added_later() returns integer language sql as 'select 1';
select ok(not has_function_privilege('authenticated', 'bus.added_later()', 'execute'),
  'a function added to bus later is not executable by authenticated');
select ok(not has_function_privilege('anon', 'bus.added_later()', 'execute'), '... nor by anon');
select ok(not has_function_privilege('service_role', 'bus.added_later()', 'execute'), '... nor by the service role until granted');

select * from finish();
rollback;
