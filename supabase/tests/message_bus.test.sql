-- pgTAP tests of the claim-check core: migration 20261121000100_message_bus.sql (tables, constraints, indexes,
-- row-level security, the view message_bus_meta and the SQL API in schema `bus`), as changed by
-- 20261121000500_stored_checksum_single_statement_store.sql (stored_checksum, complete_message with the last chunk).
-- Run with `pg_prove --ext .sql -r supabase/tests` after `create extension pgtap with schema extensions`
-- (what `supabase test db` does, supabase-platform.md §6). Everything happens in one transaction that is
-- rolled back, so the database is left as it was.
-- Identities are switched as PostgREST does (§7): `set local role` plus `request.jwt.claims` set with
-- set_config(..., true). Ids created along the way are kept in transaction-local settings `test.*` so that every
-- role can read them.

begin;
set local search_path = public, extensions;
select plan(126);

-- Fixed users (random uuids are not needed: the transaction is rolled back).
do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-000000000001', true),
         set_config('test.bob', 'b0b00000-0000-4000-8000-000000000002', true);
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------------------------------
select has_schema('bus', 'schema bus exists');
select has_table('public', 'message_bus', 'table message_bus exists');
select has_table('public', 'message_bus_chunks', 'table message_bus_chunks exists');
select has_view('public', 'message_bus_meta', 'view message_bus_meta exists');

select columns_are('public', 'message_bus', array[
  'transaction_id', 'owner_id', 'session_id', 'tool', 'provider', 'model', 'idempotency_key', 'status',
  'message_type', 'payload_size_bytes', 'stored_size_bytes', 'compression', 'checksum', 'chunk_count',
  'finish_reason', 'usage', 'error', 'provider_ms', 'write_ms', 'created_at', 'updated_at', 'completed_at',
  'expires_at', 'payload_deleted_at', 'retrieved_at', 'retrieved_count', 'metadata', 'stored_checksum',
  'mode', 'stream', 'run_count', 'lease_expires_at', 'attempts', 'replay_of', 'request_size_bytes',
  'request_stored_size_bytes', 'request_compression', 'request_checksum', 'request_chunk_count', 'ttft_ms', 'files'
], 'message_bus has exactly the expected columns (migration 20261126000100 added mode .. request_chunk_count, 20261126000400 ttft_ms, 20261126000500 files)');
select columns_are('public', 'message_bus_chunks', array['transaction_id', 'seq', 'owner_id', 'data', 'expires_at'],
  'message_bus_chunks has exactly the expected columns');
select columns_are('public', 'message_bus_meta', array[
  'transaction_id', 'owner_id', 'status', 'tool', 'provider', 'model', 'session_id', 'checksum',
  'payload_size_bytes', 'stored_size_bytes', 'compression', 'chunk_count', 'finish_reason', 'usage', 'error',
  'created_at', 'updated_at', 'completed_at', 'expires_at', 'retrieved_at', 'retrieved_count', 'provider_ms',
  'write_ms', 'watcher', 'stored_checksum', 'content_type', 'mode', 'stream', 'attempts', 'replay_of',
  'request_checksum', 'request_size_bytes', 'metadata', 'files'
], 'message_bus_meta has exactly the expected columns');

select col_is_pk('public', 'message_bus', 'transaction_id', 'transaction_id is the primary key');
select col_type_is('public', 'message_bus', 'transaction_id', 'uuid', 'transaction_id is a uuid');
select col_default_is('public', 'message_bus', 'transaction_id', 'bus.uuid_v7()', 'transaction_id defaults to bus.uuid_v7()');
select col_not_null('public', 'message_bus', 'owner_id', 'owner_id is not null');
select col_not_null('public', 'message_bus', 'expires_at', 'expires_at is not null');
select col_type_is('public', 'message_bus', 'payload_size_bytes', 'bigint', 'payload_size_bytes is a bigint (payloads can pass 2 GiB)');
select col_default_is('public', 'message_bus', 'status', 'pending', 'status defaults to pending');
select col_is_pk('public', 'message_bus_chunks', array['transaction_id', 'seq'], 'chunks are keyed by (transaction_id, seq)');
select col_type_is('public', 'message_bus_chunks', 'data', 'bytea', 'chunk data is bytea (bytes, not a JSON re-serialisation)');
select fk_ok('public', 'message_bus_chunks', 'transaction_id', 'public', 'message_bus', 'transaction_id',
  'chunks reference their message');
select is(
  (select confdeltype::text from pg_constraint where conname = 'message_bus_chunks_transaction_id_fkey'),
  'c', 'deleting a message cascades to its chunks');
select col_is_unique('public', 'message_bus', array['owner_id', 'idempotency_key'],
  'idempotency keys are unique per owner');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint where conname = 'message_bus_owner_idempotency_key'),
  'UNIQUE (owner_id, idempotency_key)', 'the unique constraint is (owner_id, idempotency_key) under its own name');
select ok(
  exists (select 1 from pg_constraint where conname = 'message_bus_completed_has_payload' and contype = 'c'
            and conrelid = 'public.message_bus'::regclass),
  'check constraint message_bus_completed_has_payload exists');

select has_index('public', 'message_bus', 'message_bus_owner_updated', array['owner_id', 'updated_at', 'transaction_id'],
  'index for the catch-up list (owner_id, updated_at, transaction_id)');
select has_index('public', 'message_bus', 'message_bus_expires_at', array['expires_at'], 'index on expires_at for cleanup');
select has_index('public', 'message_bus', 'message_bus_lease', array['lease_expires_at'],
  'index on the leases of pending messages (the reaper; migration 20261126000100 replaced message_bus_pending)');

select ok((select relrowsecurity from pg_class where oid = 'public.message_bus'::regclass), 'RLS is enabled on message_bus');
select ok((select relrowsecurity from pg_class where oid = 'public.message_bus_chunks'::regclass),
  'RLS is enabled on message_bus_chunks');
select policies_are('public', 'message_bus', array['owners read their messages'], 'message_bus has only the owner read policy');
select policies_are('public', 'message_bus_chunks', array['owners read their payloads'],
  'message_bus_chunks has only the owner read policy');
select policy_cmd_is('public', 'message_bus', 'owners read their messages', 'select', 'the message policy is select only');
select policy_roles_are('public', 'message_bus', 'owners read their messages', array['authenticated'],
  'the message policy applies to authenticated');
select ok(
  (select 'security_invoker=true' = any (reloptions) from pg_class where oid = 'public.message_bus_meta'::regclass),
  'message_bus_meta is security_invoker (the caller''s RLS applies)');

-- ---------------------------------------------------------------------------------------------------------------
-- Constraints, exercised with direct inserts (as the superuser running the tests)
-- ---------------------------------------------------------------------------------------------------------------
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, status, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', 'completed', now() + interval '1 hour')$$,
  '23514', null, 'a completed message without checksum/sizes/compression/chunk_count is refused');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, status, checksum, payload_size_bytes, stored_size_bytes,
      chunk_count, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', 'completed', 'sha256:' || repeat('0', 64), 1, 1, 1,
      now() + interval '1 hour')$$,
  '23514', null, 'a completed message without compression is refused');
select lives_ok(
  $$insert into public.message_bus (owner_id, tool, status, checksum, payload_size_bytes, stored_size_bytes,
      compression, chunk_count, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', 'completed', 'sha256:' || repeat('0', 64), 0, 0, 'none', 0,
      now() + interval '1 hour')$$,
  'a completed message with all its payload fields is accepted');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, status, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', 'delivered', now() + interval '1 hour')$$,
  '23514', null, 'an unknown status is refused');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, checksum, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', repeat('0', 64), now() + interval '1 hour')$$,
  '23514', null, 'a checksum without the sha256: prefix is refused');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, compression, expires_at)
    values (current_setting('test.alice')::uuid, 'chat', 'zstd', now() + interval '1 hour')$$,
  '23514', null, 'an unknown compression is refused');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, expires_at) values (current_setting('test.alice')::uuid, '', now())$$,
  '23514', null, 'an empty tool name is refused');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, idempotency_key, expires_at) values
      (current_setting('test.alice')::uuid, 'chat', 'dup-key', now() + interval '1 hour'),
      (current_setting('test.alice')::uuid, 'chat', 'dup-key', now() + interval '1 hour')$$,
  '23505', null, 'the same idempotency key twice for one owner is refused');
select lives_ok(
  $$insert into public.message_bus (owner_id, tool, idempotency_key, expires_at) values
      (current_setting('test.alice')::uuid, 'chat', 'shared-key', now() + interval '1 hour'),
      (current_setting('test.bob')::uuid, 'chat', 'shared-key', now() + interval '1 hour'),
      (current_setting('test.bob')::uuid, 'chat', null, now() + interval '1 hour'),
      (current_setting('test.bob')::uuid, 'chat', null, now() + interval '1 hour')$$,
  'the same key for two owners, and many messages without a key, are accepted');

-- ---------------------------------------------------------------------------------------------------------------
-- uuid_v7
-- ---------------------------------------------------------------------------------------------------------------
create temp table v7 (n int primary key, id uuid not null) on commit drop;
insert into v7 select 1, bus.uuid_v7();
do $$ begin
  perform pg_sleep(0.002);
end $$;
insert into v7 select 2, bus.uuid_v7();
do $$ begin
  perform pg_sleep(0.002);
end $$;
insert into v7 select 3, bus.uuid_v7();
insert into v7 select 3 + g, bus.uuid_v7() from generate_series(1, 200) g;

select is((select count(*)::int from v7 where substr(id::text, 15, 1) = '7'), 203, 'every uuid_v7 has version 7');
select is((select count(*)::int from v7 where substr(id::text, 20, 1) in ('8', '9', 'a', 'b')), 203,
  'every uuid_v7 has the RFC 9562 variant');
select is((select count(distinct id)::int from v7), 203, 'uuid_v7 values are distinct');
select ok((select id from v7 where n = 1) < (select id from v7 where n = 2)
          and (select id from v7 where n = 2) < (select id from v7 where n = 3),
  'uuid_v7 values made milliseconds apart sort in creation order');
select ok(
  abs(('x' || substr(replace(bus.uuid_v7()::text, '-', ''), 1, 12))::bit(48)::bigint
      - floor(extract(epoch from clock_timestamp()) * 1000)::bigint) < 1000,
  'the first 48 bits of uuid_v7 are the current Unix time in milliseconds');

-- ---------------------------------------------------------------------------------------------------------------
-- bus functions: definitions and permissions
-- ---------------------------------------------------------------------------------------------------------------
select has_function('bus', 'uuid_v7', array[]::text[], 'bus.uuid_v7() exists');
select is_definer('bus', 'begin_message', 'begin_message is security definer');
select is_definer('bus', 'append_chunk', 'append_chunk is security definer');
select is_definer('bus', 'complete_message', 'complete_message is security definer');
select is_definer('bus', 'fail_message', 'fail_message is security definer');
select is_definer('bus', 'mark_retrieved', 'mark_retrieved is security definer');
select is(
  (select count(*)::int from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'bus' and p.proname in ('begin_message', 'append_chunk', 'complete_message', 'fail_message',
             'mark_retrieved')
       and not (p.prosecdef and 'search_path=""' = any (p.proconfig))),
  0, 'the security definer functions of the claim check pin search_path to empty');

create temp table bus_fns (sig text) on commit drop;
insert into bus_fns values
  ('bus.begin_message(uuid,text,text,text,text,text,integer,jsonb,text,integer,bigint,bigint,text,text,integer,bytea,boolean,uuid,integer,integer,integer)'),
  ('bus.append_chunk(uuid,integer,bytea)'),
  ('bus.complete_message(uuid,bigint,bigint,text,text,integer,text,jsonb,text,integer,integer,jsonb,text,bytea,integer,jsonb,text,boolean,integer)'),
  ('bus.fail_message(uuid,jsonb,integer,integer,jsonb,boolean,bigint,bigint,text,text,integer,text,bytea)');
select is((select count(*)::int from bus_fns where has_function_privilege('anon', sig, 'execute')), 0,
  'anon cannot execute begin_message, append_chunk, complete_message, fail_message');
select is((select count(*)::int from bus_fns where has_function_privilege('authenticated', sig, 'execute')), 0,
  'authenticated cannot execute begin_message, append_chunk, complete_message, fail_message');
select is((select count(*)::int from bus_fns where has_function_privilege('service_role', sig, 'execute')), 4,
  'service_role can execute begin_message, append_chunk, complete_message, fail_message');
select ok(not has_function_privilege('anon', 'bus.mark_retrieved(uuid)', 'execute'), 'anon cannot execute mark_retrieved');
select ok(has_function_privilege('authenticated', 'bus.mark_retrieved(uuid)', 'execute'),
  'authenticated can execute mark_retrieved');
select ok(has_function_privilege('service_role', 'bus.mark_retrieved(uuid)', 'execute'),
  'service_role can execute mark_retrieved');

-- Calling them as a user fails with insufficient_privilege, not with a result.
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
end $$;
select throws_ok(
  $$select * from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 60)$$,
  '42501', null, 'a user calling bus.begin_message gets permission denied');
select throws_ok(
  $$select bus.fail_message('00000000-0000-7000-8000-000000000000'::uuid, '{}'::jsonb)$$,
  '42501', null, 'a user calling bus.fail_message gets permission denied');
reset role;
set local role anon;
do $$ begin
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
end $$;
select throws_ok(
  $$select bus.append_chunk('00000000-0000-7000-8000-000000000000'::uuid, 0, '\x00'::bytea)$$,
  '42501', null, 'anon calling bus.append_chunk gets permission denied');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- bus functions: behaviour (as service_role, as tool-invoke calls them)
-- ---------------------------------------------------------------------------------------------------------------
set local role service_role;
do $$ begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
end $$;

select throws_ok(
  $$select * from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 0)$$,
  '22023', null, 'begin_message refuses a ttl of 0');

create temp table begun (name text primary key, transaction_id uuid, status text, created boolean) on commit drop;
insert into begun select 'first', transaction_id, status, created from bus.begin_message(
  current_setting('test.alice')::uuid, 'chat', 'kimi', 'model-a', 'session-1', 'idem-1', 3600, '{"k":1}'::jsonb);
insert into begun select 'again', transaction_id, status, created from bus.begin_message(
  current_setting('test.alice')::uuid, 'chat', 'glm', 'model-b', 'session-2', 'idem-1', 60);
insert into begun select 'bob', transaction_id, status, created from bus.begin_message(
  current_setting('test.bob')::uuid, 'chat', 'kimi', 'model-a', null, 'idem-1', 3600);
do $$ begin
  perform set_config('test.m1', (select transaction_id::text from begun where name = 'first'), true);
end $$;

select results_eq($$select status, created from begun where name = 'first'$$, $$values ('pending'::text, true)$$,
  'begin_message creates a pending message (created = true)');
select is((select transaction_id from begun where name = 'again'), current_setting('test.m1')::uuid,
  'begin_message with a reused idempotency key returns the existing transaction id');
select is((select created from begun where name = 'again'), false, '... with created = false');
select isnt((select transaction_id from begun where name = 'bob'), current_setting('test.m1')::uuid,
  'the same idempotency key from another owner is a different message');
select results_eq(
  $$select provider, model, session_id, metadata, expires_at - created_at from public.message_bus
    where transaction_id = current_setting('test.m1')::uuid$$,
  $$values ('kimi'::text, 'model-a'::text, 'session-1'::text, '{"k":1}'::jsonb, interval '3600 seconds')$$,
  'the replay did not change the first message (provider, model, session, metadata, ttl)');
select isnt(
  (select transaction_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 60)),
  (select transaction_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 60)),
  'without an idempotency key every begin_message is a new message');

-- append_chunk + complete_message
select lives_ok($$select bus.append_chunk(current_setting('test.m1')::uuid, 0, '\x0102030405'::bytea)$$,
  'append_chunk stores chunk 0 of a pending message');
select lives_ok($$select bus.append_chunk(current_setting('test.m1')::uuid, 1, '\x0607'::bytea)$$,
  'append_chunk stores chunk 1');
select throws_ok($$select bus.append_chunk(current_setting('test.m1')::uuid, 1, '\x08'::bytea)$$,
  '23505', null, 'append_chunk refuses a sequence number twice');
select throws_ok($$select bus.append_chunk('00000000-0000-7000-8000-000000000000'::uuid, 0, '\x00'::bytea)$$,
  '55000', null, 'append_chunk refuses an unknown message');
select is((select owner_id from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid and seq = 0),
  current_setting('test.alice')::uuid, 'chunks carry the owner of their message (for RLS)');

select throws_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 7, 7, 'none', 'sha256:' || repeat('a', 64), 3,
      'stop', null, null, 1, 1)$$,
  '22000', null, 'complete_message refuses when the chunk count disagrees');
select throws_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 7, 8, 'none', 'sha256:' || repeat('a', 64), 2,
      'stop', null, null, 1, 1)$$,
  '22000', null, 'complete_message refuses when the stored size disagrees');
select is((select status from public.message_bus where transaction_id = current_setting('test.m1')::uuid), 'pending',
  'a refused completion leaves the message pending');

-- Make updated_at visibly older, so that the status change can be seen to move it (now() is fixed in a transaction).
reset role;
update public.message_bus set updated_at = now() - interval '1 minute', created_at = now() - interval '1 minute'
  where transaction_id = current_setting('test.m1')::uuid;
set local role service_role;

select lives_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 9, 7, 'gzip', 'sha256:' || repeat('a', 64), 2,
      'stop', '{"total_tokens":3}'::jsonb, 'model-served', 11, 12, '{"content_type":"application/json"}'::jsonb)$$,
  'complete_message accepts matching chunk count and size');
select results_eq(
  $$select status, payload_size_bytes, stored_size_bytes, compression, checksum, chunk_count, finish_reason, model,
           usage, provider_ms, write_ms, metadata, completed_at is not null, updated_at > now()
    from public.message_bus where transaction_id = current_setting('test.m1')::uuid$$,
  $$values ('completed'::text, 9::bigint, 7::bigint, 'gzip'::text, 'sha256:' || repeat('a', 64), 2, 'stop'::text,
            'model-served'::text, '{"total_tokens":3}'::jsonb, 11, 12,
            '{"k":1,"content_type":"application/json"}'::jsonb, true, true)$$,
  'complete_message records every field, merges metadata and moves updated_at');
select throws_ok($$select bus.append_chunk(current_setting('test.m1')::uuid, 2, '\x09'::bytea)$$,
  '55000', null, 'append_chunk refuses a completed message');
select throws_ok(
  $$select bus.complete_message(current_setting('test.m1')::uuid, 9, 7, 'gzip', 'sha256:' || repeat('a', 64), 2,
      'stop', null, null, 1, 1)$$,
  '55000', null, 'complete_message refuses a message that is not pending');
select is((select content_type from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid),
  'application/json', 'message_bus_meta shows the content type message-fetch serves');

-- complete_message with the last chunk: a one-chunk payload is stored and completed by one statement.
do $$ begin
  perform set_config('test.m4', (select transaction_id::text from bus.begin_message(
    current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, null, 3600)), true);
end $$;
select throws_ok(
  $$select bus.complete_message(current_setting('test.m4')::uuid, 3, 3, 'gzip', 'sha256:' || repeat('c', 64), 1,
      'stop', null, null, 1, 1, '{}', 'sha256:' || repeat('d', 64), '\x0a0b'::bytea)$$,
  '22000', null, 'complete_message with a last chunk refuses a stored size that disagrees');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m4')::uuid), 0,
  '... and the refused statement keeps no chunk');
select lives_ok(
  $$select bus.complete_message(current_setting('test.m4')::uuid, 3, 3, 'gzip', 'sha256:' || repeat('c', 64), 1,
      'stop', null, null, 1, 1, '{}', 'sha256:' || repeat('d', 64), '\x0a0b0c'::bytea)$$,
  'complete_message stores the last chunk and completes in one statement');
select results_eq(
  $$select seq, data from public.message_bus_chunks where transaction_id = current_setting('test.m4')::uuid$$,
  $$values (0, '\x0a0b0c'::bytea)$$,
  'the last chunk is stored as chunk p_chunk_count - 1');
select results_eq(
  $$select status, stored_checksum from public.message_bus_meta where transaction_id = current_setting('test.m4')::uuid$$,
  $$values ('completed'::text, 'sha256:' || repeat('d', 64))$$,
  'complete_message records stored_checksum, and message_bus_meta shows it');
select throws_ok(
  $$update public.message_bus set stored_checksum = 'md5:0' where transaction_id = current_setting('test.m4')::uuid$$,
  '23514', null, 'stored_checksum must be sha256:<64 hex>');
select throws_ok($$select bus.fail_message(current_setting('test.m1')::uuid, '{"code":"x"}'::jsonb)$$,
  '55000', null, 'fail_message refuses a completed message');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid), 2,
  '... and its refusal keeps the completed message''s chunks');

-- fail_message drops partial chunks
do $$ begin
  perform set_config('test.m2', (select transaction_id::text from bus.begin_message(
    current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, 'idem-2', 3600)), true);
  perform bus.append_chunk(current_setting('test.m2')::uuid, 0, '\xdeadbeef'::bytea);
end $$;
select lives_ok($$select bus.fail_message(current_setting('test.m2')::uuid, '{"code":"provider_error","message":"boom"}'::jsonb, 42)$$,
  'fail_message fails a pending message');
select results_eq(
  $$select status, error ->> 'code', provider_ms, completed_at is not null from public.message_bus
    where transaction_id = current_setting('test.m2')::uuid$$,
  $$values ('failed'::text, 'provider_error'::text, 42, true)$$,
  'fail_message records status failed, the error and provider_ms');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m2')::uuid), 0,
  'fail_message drops the partial chunks');
select throws_ok($$select bus.append_chunk(current_setting('test.m2')::uuid, 1, '\x00'::bytea)$$,
  '55000', null, 'append_chunk refuses a failed message');
select results_eq(
  $$select status, created from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'kimi', 'm', null, 'idem-2', 60)$$,
  $$values ('failed'::text, false)$$,
  'begin_message with the key of a failed message returns it as failed (created = false)');

-- A message of bob's, completed, for the RLS tests.
do $$ begin
  perform set_config('test.m3', (select transaction_id::text from bus.begin_message(
    current_setting('test.bob')::uuid, 'chat', 'kimi', 'm', null, null, 3600)), true);
  perform bus.append_chunk(current_setting('test.m3')::uuid, 0, '\x7b7d'::bytea);
  perform bus.complete_message(current_setting('test.m3')::uuid, 2, 2, 'none', 'sha256:' || repeat('b', 64), 1, 'stop',
    null, null, 1, 1);
end $$;
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- Row-level security with each identity
-- ---------------------------------------------------------------------------------------------------------------
-- alice: sees her messages and chunks only
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
end $$;
select is((select count(*)::int from public.message_bus where owner_id <> current_setting('test.alice')::uuid), 0,
  'a user sees no message of another owner');
select is((select count(*)::int from public.message_bus where transaction_id = current_setting('test.m1')::uuid), 1,
  'the owner sees her message');
select is((select count(*)::int from public.message_bus where transaction_id = current_setting('test.m3')::uuid), 0,
  'the owner does not see bob''s message');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid), 2,
  'the owner sees her chunks');
select is((select string_agg(encode(data, 'hex'), '' order by seq) from public.message_bus_chunks
           where transaction_id = current_setting('test.m1')::uuid), '01020304050607',
  'the owner reads her chunk bytes back exactly, in order');
select is((select count(*)::int from public.message_bus_chunks where owner_id <> current_setting('test.alice')::uuid), 0,
  'a user sees no chunk of another owner');
select is((select count(*)::int from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), 1,
  'the owner sees her message in message_bus_meta');
select is((select count(*)::int from public.message_bus_meta where transaction_id = current_setting('test.m3')::uuid), 0,
  'message_bus_meta applies the caller''s RLS (no message of bob''s)');

select throws_ok(
  $$insert into public.message_bus (owner_id, tool, expires_at) values (current_setting('test.alice')::uuid, 'chat', now() + interval '1 day')$$,
  '42501', null, 'a user cannot insert into message_bus, not even her own row');
select throws_ok(
  $$update public.message_bus set status = 'completed' where transaction_id = current_setting('test.m1')::uuid$$,
  '42501', null, 'a user cannot update message_bus');
select throws_ok(
  $$delete from public.message_bus where transaction_id = current_setting('test.m1')::uuid$$,
  '42501', null, 'a user cannot delete from message_bus');
select throws_ok(
  $$insert into public.message_bus_chunks (transaction_id, seq, owner_id, data)
    values (current_setting('test.m1')::uuid, 9, current_setting('test.alice')::uuid, '\x00')$$,
  '42501', null, 'a user cannot insert chunks');
select throws_ok(
  $$update public.message_bus_chunks set data = '\x00' where transaction_id = current_setting('test.m1')::uuid$$,
  '42501', null, 'a user cannot update chunks');
select throws_ok(
  $$delete from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid$$,
  '42501', null, 'a user cannot delete chunks');

-- mark_retrieved: own rows only
do $$ begin
  perform bus.mark_retrieved(current_setting('test.m1')::uuid);
  perform bus.mark_retrieved(current_setting('test.m1')::uuid);
  perform bus.mark_retrieved(current_setting('test.m3')::uuid);
end $$;
reset role;
select results_eq(
  $$select retrieved_count, retrieved_at is not null from public.message_bus where transaction_id = current_setting('test.m1')::uuid$$,
  $$values (2, true)$$, 'mark_retrieved by the owner counts each retrieval');
select results_eq(
  $$select retrieved_count, retrieved_at is null from public.message_bus where transaction_id = current_setting('test.m3')::uuid$$,
  $$values (0, true)$$, 'mark_retrieved by another user changes nothing');

-- bob: sees his message, none of alice's
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.bob'))::text, true);
end $$;
select is((select count(*)::int from public.message_bus where owner_id = current_setting('test.alice')::uuid), 0,
  'another user sees none of the owner''s messages');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid), 0,
  'another user sees none of the owner''s chunks');
select is((select count(*)::int from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), 0,
  'another user sees none of the owner''s meta');
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m3')::uuid), 1,
  'bob sees his own chunk');
reset role;

-- a user token without sub (or with a forged claim of another role) sees nothing
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', '{"role":"authenticated"}', true);
end $$;
select is((select count(*)::int from public.message_bus), 0, 'an authenticated caller without sub sees no message');
reset role;

-- anon: no access at all
set local role anon;
do $$ begin
  perform set_config('request.jwt.claims', '{"role":"anon"}', true);
end $$;
select throws_ok($$select count(*) from public.message_bus$$, '42501', null, 'anon cannot read message_bus');
select throws_ok($$select count(*) from public.message_bus_chunks$$, '42501', null, 'anon cannot read message_bus_chunks');
select throws_ok($$select count(*) from public.message_bus_meta$$, '42501', null, 'anon cannot read message_bus_meta');
select throws_ok(
  $$insert into public.message_bus (owner_id, tool, expires_at) values (current_setting('test.alice')::uuid, 'chat', now() + interval '1 day')$$,
  '42501', null, 'anon cannot insert into message_bus');
reset role;

-- service_role bypasses RLS (the functions' writes and the cleanup need it)
set local role service_role;
select ok((select count(*) from public.message_bus where transaction_id in
  (current_setting('test.m1')::uuid, current_setting('test.m3')::uuid)) = 2, 'service_role sees every owner''s messages');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- message_bus_meta: expired by time, whether or not cleanup has run
-- ---------------------------------------------------------------------------------------------------------------
select is((select status from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), 'completed',
  'meta shows completed before expires_at');
update public.message_bus set expires_at = now() - interval '1 second' where transaction_id = current_setting('test.m1')::uuid;
select is((select status from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), 'expired',
  'meta shows expired once expires_at has passed');
select is((select status from public.message_bus where transaction_id = current_setting('test.m1')::uuid), 'completed',
  '... while the stored status is untouched (no cleanup has run)');
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
end $$;
select is((select status from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), 'expired',
  'the owner sees expired through the view too');
reset role;
select is((select watcher from public.message_bus_meta where transaction_id = current_setting('test.m1')::uuid), null,
  'meta has a watcher column (null until a watcher verdict exists)');

-- Deleting a message removes its chunks.
delete from public.message_bus where transaction_id = current_setting('test.m1')::uuid;
select is((select count(*)::int from public.message_bus_chunks where transaction_id = current_setting('test.m1')::uuid), 0,
  'deleting a message deletes its chunks');

select * from finish();
rollback;
