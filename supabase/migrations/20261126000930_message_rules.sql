-- The row rules of public.message_bus in one check (issue 17).
--
-- The table had 21 check constraints (each column's own rule). Postgres 15 keeps a check constraint as the text of
-- its expression tree and, for every INSERT and UPDATE statement, parses that text again and compiles each
-- expression (ExecRelCheck: stringToNode, ExecPrepareExpr): 13 KB of node text per statement here, twice per invoke
-- (begin_message inserts the row, complete_message updates it). perf put 19 % of the invoke's own SQL time in
-- ExecConstraints; with the rules below, Postgres's CPU for begin_message + complete_message without triggers went
-- from 633-767 to 447-553 µs (3 alternating runs of 1,500 each, bench/RESULTS.md "Invoke path").
--
-- The 20 single-column rules are now one constraint, message_bus_rules, calling an immutable PL/pgSQL function
-- (compiled once per session, not per statement) that checks the same expressions in the same way (a rule passes
-- when its expression is true or null, as a check does) and raises what Postgres raised: SQLSTATE 23514
-- check_violation, the same message, and the old constraint's name as the error's constraint. The multi-column rule
-- message_bus_completed_has_payload stays as it was. The function has no SET clause (it only uses pg_catalog
-- functions and operators, which resolve first whatever the search_path): a SET clause would cost a configuration
-- switch on every row.

create function bus.message_bus_row_ok(
  p_status text, p_tool text, p_session_id text, p_idempotency_key text, p_mode text, p_compression text,
  p_request_compression text, p_checksum text, p_stored_checksum text, p_request_checksum text,
  p_payload_size_bytes bigint, p_stored_size_bytes bigint, p_chunk_count integer, p_request_size_bytes bigint,
  p_request_stored_size_bytes bigint, p_request_chunk_count integer, p_run_count integer, p_ttft_ms integer,
  p_attempts jsonb, p_files jsonb
) returns boolean
language plpgsql immutable as $$
declare
  v_failed text;
begin
  -- Each rule as its own check constraint had it (a CHECK passes when its expression is true or null).
  v_failed := case
    when not (p_status in ('pending', 'completed', 'failed', 'expired')) then 'message_bus_status_check'
    when not (length(p_tool) between 1 and 100) then 'message_bus_tool_check'
    when not (length(p_session_id) <= 200) then 'message_bus_session_id_check'
    when not (length(p_idempotency_key) between 1 and 255) then 'message_bus_idempotency_key_check'
    when not (p_mode in ('sync', 'async')) then 'message_bus_mode_check'
    when not (p_compression in ('none', 'gzip')) then 'message_bus_compression_check'
    when not (p_request_compression in ('none', 'gzip')) then 'message_bus_request_compression_check'
    when not (p_checksum ~ '^sha256:[0-9a-f]{64}$') then 'message_bus_checksum_check'
    when not (p_stored_checksum ~ '^sha256:[0-9a-f]{64}$') then 'message_bus_stored_checksum_check'
    when not (p_request_checksum ~ '^sha256:[0-9a-f]{64}$') then 'message_bus_request_checksum_check'
    when not (p_payload_size_bytes >= 0) then 'message_bus_payload_size_bytes_check'
    when not (p_stored_size_bytes >= 0) then 'message_bus_stored_size_bytes_check'
    when not (p_chunk_count >= 0) then 'message_bus_chunk_count_check'
    when not (p_request_size_bytes >= 0) then 'message_bus_request_size_bytes_check'
    when not (p_request_stored_size_bytes >= 0) then 'message_bus_request_stored_size_bytes_check'
    when not (p_request_chunk_count >= 0) then 'message_bus_request_chunk_count_check'
    when not (p_run_count >= 0) then 'message_bus_run_count_check'
    when not (p_ttft_ms >= 0) then 'message_bus_ttft_ms_check'
    when not (jsonb_typeof(p_attempts) = 'array') then 'message_bus_attempts_check'
    when not (p_files is null or jsonb_typeof(p_files) = 'array') then 'message_bus_files_check'
  end;
  if v_failed is not null then
    raise exception 'new row for relation "message_bus" violates check constraint "%"', v_failed
      using errcode = 'check_violation', table = 'message_bus', schema = 'public', constraint = v_failed;
  end if;
  return true;
end $$;

comment on function bus.message_bus_row_ok(text, text, text, text, text, text, text, text, text, text, bigint, bigint,
  integer, bigint, bigint, integer, integer, integer, jsonb, jsonb) is
  'The single-column rules of public.message_bus (check message_bus_rules): true, or check_violation naming the rule that failed (its former constraint name).';
revoke execute on function bus.message_bus_row_ok(text, text, text, text, text, text, text, text, text, text, bigint,
  bigint, integer, bigint, bigint, integer, integer, integer, jsonb, jsonb) from public, anon, authenticated;
-- Whoever may write the table may evaluate its check (the bus's functions run as the owner; the service role writes
-- it directly too).
grant execute on function bus.message_bus_row_ok(text, text, text, text, text, text, text, text, text, text, bigint,
  bigint, integer, bigint, bigint, integer, integer, integer, jsonb, jsonb) to service_role;

alter table public.message_bus
  drop constraint message_bus_status_check,
  drop constraint message_bus_tool_check,
  drop constraint message_bus_session_id_check,
  drop constraint message_bus_idempotency_key_check,
  drop constraint message_bus_mode_check,
  drop constraint message_bus_compression_check,
  drop constraint message_bus_request_compression_check,
  drop constraint message_bus_checksum_check,
  drop constraint message_bus_stored_checksum_check,
  drop constraint message_bus_request_checksum_check,
  drop constraint message_bus_payload_size_bytes_check,
  drop constraint message_bus_stored_size_bytes_check,
  drop constraint message_bus_chunk_count_check,
  drop constraint message_bus_request_size_bytes_check,
  drop constraint message_bus_request_stored_size_bytes_check,
  drop constraint message_bus_request_chunk_count_check,
  drop constraint message_bus_run_count_check,
  drop constraint message_bus_ttft_ms_check,
  drop constraint message_bus_attempts_check,
  drop constraint message_bus_files_check,
  add constraint message_bus_rules check (bus.message_bus_row_ok(
    status, tool, session_id, idempotency_key, mode, compression, request_compression, checksum, stored_checksum,
    request_checksum, payload_size_bytes, stored_size_bytes, chunk_count, request_size_bytes, request_stored_size_bytes,
    request_chunk_count, run_count, ttft_ms, attempts, files));
comment on constraint message_bus_rules on public.message_bus is
  'The single-column rules (status, tool, session_id, idempotency_key, mode, compressions, checksums, sizes, counts, ttft_ms, attempts, files) in one check: bus.message_bus_row_ok.';
