-- pgTAP tests of migration 20261126000500_files.sql: uploads sealed once their chunks add up, deduplication per
-- owner by SHA-256 (the new chunks dropped, the expiry renewed), the chunk guard, owners reading their ready files
-- only, files used by messages (references, meta `files`, the owner check), the expiry rule with references,
-- provider ids remembered once (a second upload queued for deletion), deletes, and who may execute what.
-- Everything happens in one transaction that is rolled back.

begin;
set local search_path = public, extensions;
select plan(39);

do $$ begin
  perform set_config('test.alice', 'a11ce000-0000-4000-8000-0000000f0001', true);
  perform set_config('test.bob', 'b0b00000-0000-4000-8000-0000000f0002', true);
end $$;

-- ---------------------------------------------------------------------------------------------------------------
-- Shape
-- ---------------------------------------------------------------------------------------------------------------
select has_table('public', 'message_bus_files', 'table message_bus_files exists');
select has_table('public', 'message_bus_file_chunks', 'table message_bus_file_chunks exists');
select col_is_pk('public', 'message_bus_file_chunks', array['file_id', 'seq'], 'file chunks are keyed by (file_id, seq)');
select col_is_unique('public', 'message_bus_files', array['owner_id', 'sha256'], 'one file per owner and SHA-256');
select policies_are('public', 'message_bus_files', array['owners read their files'], 'owners read their files, nobody writes');
select policies_are('public', 'message_bus_file_chunks', array['owners read their file bytes'], 'owners read their file bytes');
select has_column('public', 'message_bus', 'files', 'messages record their files');
select is((select attname::text from pg_attribute where attrelid = 'public.message_bus_meta'::regclass and attnum > 0
            order by attnum desc limit 1), 'files', 'files is the last column of the meta view');

-- ---------------------------------------------------------------------------------------------------------------
-- Uploading, sealing, deduplication (as service_role, as the files function calls them)
-- ---------------------------------------------------------------------------------------------------------------
set local role service_role;
do $$ begin
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  perform set_config('test.f1', bus.begin_file(current_setting('test.alice')::uuid, 'a.txt', 'text/plain', 3600)::text, true);
  insert into public.message_bus_file_chunks (file_id, seq, data) values (current_setting('test.f1')::uuid, 0, '\x6869');
end $$;
select is((select owner_id from public.message_bus_file_chunks where file_id = current_setting('test.f1')::uuid),
  current_setting('test.alice')::uuid, 'a chunk takes its file''s owner (the guard trigger)');
select throws_ok(
  $$select * from bus.seal_file(current_setting('test.f1')::uuid, repeat('a', 64), 3, 9, 'none', 'sha256:' || repeat('a', 64), 2, '\x21', true)$$,
  '22000', null, 'seal_file refuses chunks that do not add up');
select results_eq(
  $$select filename, sha256, size_bytes, deduplicated from bus.seal_file(current_setting('test.f1')::uuid, repeat('a', 64),
      3, 3, 'none', 'sha256:' || repeat('a', 64), 2, '\x21', true)$$,
  $$values ('a.txt', repeat('a', 64), 3::bigint, false)$$,
  'seal_file stores the last chunk and makes the file ready');
select is((select status from public.message_bus_files where file_id = current_setting('test.f1')::uuid), 'ready', 'it is ready');
select throws_ok(
  $$insert into public.message_bus_file_chunks (file_id, seq, data) values (current_setting('test.f1')::uuid, 5, '\x00')$$,
  '55000', null, 'no chunk can be added to a ready file');

-- The same bytes again: the existing file answers, the new upload and its chunks go, the expiry is the later one.
do $$ begin
  update public.message_bus_files set expires_at = now() + interval '1 minute' where file_id = current_setting('test.f1')::uuid;
  perform set_config('test.f2', bus.begin_file(current_setting('test.alice')::uuid, 'b.txt', 'text/plain', 7200)::text, true);
  insert into public.message_bus_file_chunks (file_id, seq, data) values (current_setting('test.f2')::uuid, 0, '\x6869');
end $$;
select results_eq(
  $$select file_id, filename, deduplicated from bus.seal_file(current_setting('test.f2')::uuid, repeat('a', 64), 3, 3,
      'none', 'sha256:' || repeat('a', 64), 2, '\x21', true)$$,
  $$values (current_setting('test.f1')::uuid, 'a.txt', true)$$,
  'the same SHA-256 from the same owner answers the existing file, deduplicated');
select is((select count(*)::int from public.message_bus_files where file_id = current_setting('test.f2')::uuid), 0,
  'the duplicate upload is gone');
select is((select count(*)::int from public.message_bus_file_chunks where file_id = current_setting('test.f2')::uuid), 0,
  '... with its chunks');
select ok((select expires_at > now() + interval '1 hour' from public.message_bus_files where file_id = current_setting('test.f1')::uuid),
  'the existing file''s expiry is renewed to the later of the two');

-- Another owner's upload of the same bytes is their own file.
do $$ begin
  perform set_config('test.fb', bus.begin_file(current_setting('test.bob')::uuid, 'a.txt', 'text/plain', 3600)::text, true);
  perform bus.seal_file(current_setting('test.fb')::uuid, repeat('a', 64), 3, 3, 'none', 'sha256:' || repeat('a', 64), 1, '\x686921', true);
  perform set_config('test.bin', bus.begin_file(current_setting('test.alice')::uuid, 'b.bin', 'application/octet-stream', 3600)::text, true);
  perform bus.seal_file(current_setting('test.bin')::uuid, repeat('b', 64), 1, 1, 'none', 'sha256:' || repeat('b', 64), 1, '\xff', false);
  perform set_config('test.up', bus.begin_file(current_setting('test.alice')::uuid, 'c.txt', 'text/plain', 3600)::text, true);
end $$;
select results_eq(
  $$select status, sha256 from public.message_bus_files where file_id = current_setting('test.fb')::uuid$$,
  $$values ('ready', repeat('a', 64))$$,
  'bob''s upload of the same bytes is a file of his own (deduplication is per owner)');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- Owners read their ready files only
-- ---------------------------------------------------------------------------------------------------------------
set local role authenticated;
do $$ begin
  perform set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'sub', current_setting('test.alice'))::text, true);
end $$;
select results_eq($$select file_id from public.message_bus_files order by file_id$$,
  $$select unnest(array[current_setting('test.f1')::uuid, current_setting('test.bin')::uuid]) order by 1$$,
  'alice sees her ready files: not bob''s, not her upload in progress');
select is((select count(*)::int from public.message_bus_file_chunks where file_id = current_setting('test.fb')::uuid), 0,
  'nor bob''s bytes');
select ok(not has_function_privilege('authenticated', 'bus.seal_file(uuid, text, bigint, bigint, text, text, integer, bytea, boolean)', 'execute'),
  'users cannot seal files');
select ok(not has_function_privilege('authenticated', 'bus.use_files(uuid, uuid[])', 'execute'), '... nor use them for messages');
select ok(has_function_privilege('authenticated', 'bus.file_live_until(uuid, timestamptz)', 'execute'),
  'but they can ask how long their file lives');
select throws_ok($$insert into public.message_bus_files (owner_id, filename, expires_at) values (auth.uid(), 'x', now())$$,
  '42501', null, 'users cannot write files directly');
reset role;

-- ---------------------------------------------------------------------------------------------------------------
-- Files used by messages
-- ---------------------------------------------------------------------------------------------------------------
set local role service_role;
do $$ begin
  perform set_config('test.m1', (select transaction_id from bus.begin_message(current_setting('test.alice')::uuid, 'chat', 'glm', 'm', null, null, 7200))::text, true);
end $$;
select throws_ok(
  format($$select * from bus.use_files(%L, array[%L, %L]::uuid[])$$, current_setting('test.m1'), current_setting('test.f1'), current_setting('test.fb')),
  'P0002', null, 'a message cannot use another owner''s file');
select is((select count(*)::int from bus.message_files where transaction_id = current_setting('test.m1')::uuid), 0,
  '... and nothing is recorded');
select results_eq(
  format($$select file_id from bus.use_files(%L, array[%L, %L]::uuid[])$$, current_setting('test.m1'), current_setting('test.bin'), current_setting('test.f1')),
  format($$values (%L::uuid), (%L::uuid)$$, current_setting('test.bin'), current_setting('test.f1')),
  'use_files returns the files in the order given');
select is((select jsonb_path_query_array(files, '$[*].filename') from public.message_bus where transaction_id = current_setting('test.m1')::uuid),
  '["b.bin", "a.txt"]'::jsonb, 'the message records them, in order, with sha256 and filename');

-- The expiry rule: a file past its expiry lives on while a message that used it lives.
do $$ begin
  update public.message_bus_files set expires_at = now() - interval '1 minute'
   where file_id in (current_setting('test.f1')::uuid, current_setting('test.bin')::uuid, current_setting('test.fb')::uuid);
  update public.message_bus_files set created_at = now() - interval '2 hours' where file_id = current_setting('test.up')::uuid;
  insert into bus.provider_files (file_id, provider, base_url, provider_file_id)
  values (current_setting('test.fb')::uuid, 'kimi', 'http://p/v1', 'prov-bob');
end $$;
select ok((select bus.file_live_until(current_setting('test.f1')::uuid, expires_at) > now() from public.message_bus_files
            where file_id = current_setting('test.f1')::uuid), 'a used file lives as long as its message');
select ok((bus.cleanup_files(100, 1000, '1 hour') ->> 'files_deleted')::int >= 2, 'cleanup deletes files');
select results_eq($$select file_id from public.message_bus_files
                    where owner_id in (current_setting('test.alice')::uuid, current_setting('test.bob')::uuid) order by 1$$,
  $$select unnest(array[current_setting('test.f1')::uuid, current_setting('test.bin')::uuid]) order by 1$$,
  'the unused expired file and the stalled upload went; the files the live message uses stay');
select is((select provider_file_id from bus.provider_file_deletions where provider_file_id = 'prov-bob'), 'prov-bob',
  'the deleted file''s provider copy is queued for deletion at the provider');
do $$ begin
  update public.message_bus set expires_at = now() - interval '1 second' where transaction_id = current_setting('test.m1')::uuid;
end $$;
do $$ begin
  perform bus.cleanup_files(100, 1000, '1 hour');
end $$;
select is((select count(*)::int from public.message_bus_files where owner_id = current_setting('test.alice')::uuid), 0,
  'once the message expired, they go too');

-- ---------------------------------------------------------------------------------------------------------------
-- Provider ids, deletes
-- ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform set_config('test.f3', bus.begin_file(current_setting('test.alice')::uuid, 'd.txt', 'text/plain', 3600)::text, true);
  perform bus.seal_file(current_setting('test.f3')::uuid, repeat('d', 64), 1, 1, 'none', 'sha256:' || repeat('d', 64), 1, '\x64', true);
end $$;
select is(bus.remember_provider_file(current_setting('test.f3')::uuid, 'kimi', 'http://p/v1', 'first'), 'first',
  'the first upload to a provider is remembered');
select is(bus.remember_provider_file(current_setting('test.f3')::uuid, 'kimi', 'http://p/v1', 'second'), 'first',
  'a concurrent second upload keeps the first id');
select is((select count(*)::int from bus.provider_file_deletions where provider_file_id = 'second'), 1,
  '... and queues the second for deletion at the provider');
select is(bus.delete_file(current_setting('test.f3')::uuid, current_setting('test.bob')::uuid), false,
  'another owner cannot delete the file');
select is(bus.delete_file(current_setting('test.f3')::uuid, current_setting('test.alice')::uuid), true, 'its owner can');
select is((select count(*)::int from bus.provider_file_deletions where provider_file_id = 'first'), 1,
  'deleting a file queues its provider copy');
reset role;

select * from finish();
rollback;
