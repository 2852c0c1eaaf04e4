-- pgTAP tests of message_bus's single-column rules in one check (20261126000930_message_rules.sql): each rule still
-- refuses what its own constraint refused, with SQLSTATE 23514 and the former constraint's name; null passes, as it
-- passes a check. Rolled back.

begin;
set local search_path = public, extensions;
select plan(25);

do $$ begin
  perform set_config('test.m', (select transaction_id from bus.begin_message(
    'a11ce000-0000-4000-8000-0000000000a1'::uuid, 'chat', 'kimi', 'm', null, null, 3600))::text, true);
end $$;

create function pg_temp.refused(p_set text, p_rule text) returns text language sql as $$
  select throws_ok(
    format('update public.message_bus set %s where transaction_id = %L::uuid', p_set, current_setting('test.m')),
    '23514', format('new row for relation "message_bus" violates check constraint "%s"', p_rule),
    format('%s is refused (%s)', p_set, p_rule))
$$;

select pg_temp.refused($$status = 'done'$$, 'message_bus_status_check');
select pg_temp.refused($$tool = ''$$, 'message_bus_tool_check');
select pg_temp.refused($$tool = repeat('t', 101)$$, 'message_bus_tool_check');
select pg_temp.refused($$session_id = repeat('s', 201)$$, 'message_bus_session_id_check');
select pg_temp.refused($$idempotency_key = ''$$, 'message_bus_idempotency_key_check');
select pg_temp.refused($$mode = 'later'$$, 'message_bus_mode_check');
select pg_temp.refused($$compression = 'zstd'$$, 'message_bus_compression_check');
select pg_temp.refused($$request_compression = 'br'$$, 'message_bus_request_compression_check');
select pg_temp.refused($$checksum = 'sha256:' || repeat('A', 64)$$, 'message_bus_checksum_check');
select pg_temp.refused($$stored_checksum = 'md5:00'$$, 'message_bus_stored_checksum_check');
select pg_temp.refused($$request_checksum = 'sha256:' || repeat('a', 63)$$, 'message_bus_request_checksum_check');
select pg_temp.refused($$payload_size_bytes = -1$$, 'message_bus_payload_size_bytes_check');
select pg_temp.refused($$stored_size_bytes = -1$$, 'message_bus_stored_size_bytes_check');
select pg_temp.refused($$chunk_count = -1$$, 'message_bus_chunk_count_check');
select pg_temp.refused($$request_size_bytes = -1$$, 'message_bus_request_size_bytes_check');
select pg_temp.refused($$request_stored_size_bytes = -1$$, 'message_bus_request_stored_size_bytes_check');
select pg_temp.refused($$request_chunk_count = -1$$, 'message_bus_request_chunk_count_check');
select pg_temp.refused($$run_count = -1$$, 'message_bus_run_count_check');
select pg_temp.refused($$ttft_ms = -1$$, 'message_bus_ttft_ms_check');
select pg_temp.refused($$attempts = '{}'::jsonb$$, 'message_bus_attempts_check');
select pg_temp.refused($$files = '"f"'::jsonb$$, 'message_bus_files_check');

select lives_ok(
  format($$update public.message_bus set session_id = null, idempotency_key = null, checksum = null, ttft_ms = null,
           files = null, request_checksum = null where transaction_id = %L::uuid$$, current_setting('test.m')),
  'null passes every rule, as it passes a check');
select lives_ok(
  format($$update public.message_bus set tool = repeat('t', 100), session_id = repeat('s', 200), mode = 'async',
           compression = 'gzip', checksum = 'sha256:' || repeat('0', 64), ttft_ms = 0, files = '[]'::jsonb
           where transaction_id = %L::uuid$$, current_setting('test.m')),
  'values at the rules'' bounds pass');
select is((select count(*)::int from pg_constraint where conrelid = 'public.message_bus'::regclass and contype = 'c'), 2,
  'two checks: message_bus_rules and message_bus_completed_has_payload');
select ok(not has_function_privilege('authenticated', 'bus.message_bus_row_ok(text,text,text,text,text,text,text,text,text,text,bigint,bigint,integer,bigint,bigint,integer,integer,integer,jsonb,jsonb)', 'execute'),
  'users cannot call the rules function');

select * from finish();
rollback;
