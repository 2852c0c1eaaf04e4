-- pgTAP tests of migration 20261126000600_stream_partial.sql: a failure that keeps a stream's partial payload
-- records it (last chunk stored, chunks checked to add up, checksum and sizes kept) in one statement; the watcher
-- queues such a failure like any other; bus.watch_target shows `stream`.
-- Everything happens in one transaction that is rolled back.

begin;
set local search_path = public, extensions;
select plan(15);

do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-00000000a601', true);
end $$;

create function pg_temp.pending(p_stream boolean default true) returns uuid language plpgsql as $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm',
    null, null, 3600, p_stream => p_stream);
  return v_id;
end $$;

-- The kept bytes of a stream that broke off: two chunks, the second passed with the failure.
do $$
declare v_id uuid := pg_temp.pending();
begin
  perform set_config('test.cut', v_id::text, true);
  perform bus.append_chunk(v_id, 0, '\x646174613a'::bytea);
  perform bus.fail_message(
    p_transaction_id => v_id, p_error => '{"code":"stream_incomplete","message":"cut"}', p_run => 1,
    p_keep_partial => true, p_payload_size => 8, p_stored_size => 8, p_compression => 'none',
    p_checksum => 'sha256:' || repeat('c', 64), p_chunk_count => 2, p_stored_checksum => 'sha256:' || repeat('c', 64),
    p_last_chunk => '\x207b7d'::bytea);
end $$;
select results_eq(
  $$select status, error ->> 'code', checksum, payload_size_bytes, stored_size_bytes, compression, chunk_count, stored_checksum
      from public.message_bus where transaction_id = current_setting('test.cut')::uuid$$,
  $$values ('failed', 'stream_incomplete', 'sha256:' || repeat('c', 64), 8::bigint, 8::bigint, 'none', 2,
            'sha256:' || repeat('c', 64))$$,
  'a failure with p_keep_partial and p_checksum records the kept bytes in the payload columns');
select results_eq(
  $$select seq, data from public.message_bus_chunks where transaction_id = current_setting('test.cut')::uuid order by seq$$,
  $$values (0, '\x646174613a'::bytea), (1, '\x207b7d'::bytea)$$,
  'its last chunk is stored with the failure, after the ones appended before');
select ok(exists (select 1 from bus.watch_queue where transaction_id = current_setting('test.cut')::uuid),
  'the watcher trigger queues a stream_incomplete failure (one observation like any finished message)');

-- Chunks that do not add up, and descriptions without p_keep_partial or incomplete ones, are refused.
do $$ begin perform set_config('test.bad', pg_temp.pending()::text, true); end $$;
select throws_ok(
  $$select bus.fail_message(p_transaction_id => current_setting('test.bad')::uuid, p_error => '{"code":"stream_incomplete"}',
      p_keep_partial => true, p_payload_size => 3, p_stored_size => 3, p_compression => 'none',
      p_checksum => 'sha256:' || repeat('c', 64), p_chunk_count => 2, p_last_chunk => '\x414243'::bytea)$$,
  '22000', null, 'a partial payload whose chunks do not add up is refused');
select throws_ok(
  $$select bus.fail_message(p_transaction_id => current_setting('test.bad')::uuid, p_error => '{"code":"x"}',
      p_payload_size => 3, p_stored_size => 3, p_compression => 'none', p_checksum => 'sha256:' || repeat('c', 64),
      p_chunk_count => 1, p_last_chunk => '\x414243'::bytea)$$,
  '22023', null, 'a partial payload without p_keep_partial is refused (it would be dropped)');
select throws_ok(
  $$select bus.fail_message(p_transaction_id => current_setting('test.bad')::uuid, p_error => '{"code":"x"}',
      p_keep_partial => true, p_checksum => 'sha256:' || repeat('c', 64), p_chunk_count => 1)$$,
  '22023', null, 'a partial payload without its sizes is refused');
select results_eq(
  $$select status, checksum, (select count(*)::int from public.message_bus_chunks c where c.transaction_id = m.transaction_id)
      from public.message_bus m where transaction_id = current_setting('test.bad')::uuid$$,
  $$values ('pending', null::text, 0)$$,
  'a refused failure changes nothing (the message stays pending, no chunk stored)');

-- Without a description, as before: kept or dropped, nothing recorded.
do $$
declare v_id uuid := pg_temp.pending();
begin
  perform set_config('test.legacy', v_id::text, true);
  perform bus.append_chunk(v_id, 0, '\x6461'::bytea);
  perform bus.fail_message(v_id, '{"code":"stream_incomplete","message":"cut"}', 5, 1, null, true);
end $$;
select results_eq(
  $$select checksum, chunk_count, (select count(*)::int from public.message_bus_chunks c where c.transaction_id = m.transaction_id)
      from public.message_bus m where transaction_id = current_setting('test.legacy')::uuid$$,
  $$values (null::text, null::integer, 1)$$,
  'p_keep_partial alone keeps the chunks and records nothing (as before)');
select throws_ok(
  $$select bus.fail_message(current_setting('test.cut')::uuid, '{"code":"x"}')$$,
  '55000', null, 'a failed message cannot fail again');

-- watch_target shows stream, and the partial payload of one chunk with the row.
do $$
declare v_id uuid := pg_temp.pending();
begin
  perform set_config('test.one', v_id::text, true);
  perform bus.fail_message(
    p_transaction_id => v_id, p_error => '{"code":"stream_incomplete","message":"stalled"}', p_keep_partial => true,
    p_payload_size => 2, p_stored_size => 2, p_compression => 'none', p_checksum => 'sha256:' || repeat('d', 64),
    p_chunk_count => 1, p_last_chunk => '\x3a20'::bytea);
end $$;
select results_eq(
  $$select status, stream, only_chunk, checksum from bus.watch_target(current_setting('test.one')::uuid, 'test')$$,
  $$values ('failed', true, '\x3a20'::bytea, 'sha256:' || repeat('d', 64))$$,
  'bus.watch_target returns stream and the one-chunk partial payload');
do $$ begin perform set_config('test.plain', pg_temp.pending(false)::text, true); end $$;
select is((select stream from bus.watch_target(current_setting('test.plain')::uuid, 'test')), false,
  'and stream false for a message that is not streamed');

-- Privileges: the service role only.
select ok(has_function_privilege('service_role',
  'bus.fail_message(uuid,jsonb,integer,integer,jsonb,boolean,bigint,bigint,text,text,integer,text,bytea)', 'execute'),
  'service_role can execute fail_message');
select ok(not has_function_privilege('authenticated',
  'bus.fail_message(uuid,jsonb,integer,integer,jsonb,boolean,bigint,bigint,text,text,integer,text,bytea)', 'execute'),
  'authenticated cannot execute fail_message');
select ok(not has_function_privilege('anon', 'bus.watch_target(uuid,text)', 'execute')
  and not has_function_privilege('authenticated', 'bus.watch_target(uuid,text)', 'execute'),
  'anon and authenticated cannot execute watch_target');
select ok(has_function_privilege('service_role', 'bus.watch_target(uuid,text)', 'execute'),
  'service_role can execute watch_target');

select * from finish();
rollback;
