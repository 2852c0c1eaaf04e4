-- Streaming (CONTRACT.md §10): a streamed answer is stored as it is relayed, and its message finishes in one of two
-- ways, both recording the stored payload's facts (sizes, checksum, chunks):
-- - completed, as before, now also with the time to first token (ttft_ms, read by the ops TTFT histogram);
-- - failed with the stored bytes kept (a stream the provider cut, stalled or broke off with an error event, or
--   one the worker's wall clock ended): what arrived, plus the bus's closing error event, stays readable and
--   verifiable for diagnosis (message-fetch ?partial=1), while the message answers as failed everywhere else.
-- One function does both (p_error set: the second), so the partial is checked against the chunks exactly like a
-- completion is.

drop function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer,
  jsonb, text, bytea, integer, jsonb, text, boolean);

create function bus.complete_message(
  p_transaction_id uuid, p_payload_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_finish_reason text, p_usage jsonb, p_model text, p_provider_ms integer, p_write_ms integer,
  p_metadata jsonb default '{}'::jsonb, p_stored_checksum text default null, p_last_chunk bytea default null,
  p_run integer default null, p_attempts jsonb default null, p_provider text default null, p_stream boolean default null,
  p_ttft_ms integer default null, p_error jsonb default null
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
  v_last jsonb := p_attempts -> -1;
begin
  if p_last_chunk is not null then
    perform bus.append_chunk(p_transaction_id, p_chunk_count - 1, p_last_chunk);
  end if;
  select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
    from public.message_bus_chunks where transaction_id = p_transaction_id;
  if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
    raise exception 'message % has % chunks / % bytes stored, the writer reported % / %',
      p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
  end if;
  update public.message_bus set
    status = case when p_error is null then 'completed' else 'failed' end, error = p_error,
    payload_size_bytes = p_payload_size, stored_size_bytes = p_stored_size,
    compression = p_compression, checksum = p_checksum, stored_checksum = p_stored_checksum,
    chunk_count = p_chunk_count, finish_reason = p_finish_reason, usage = p_usage, model = coalesce(p_model, model),
    provider = coalesce(p_provider, provider), stream = coalesce(p_stream, stream), ttft_ms = p_ttft_ms,
    attempts = coalesce(p_attempts, attempts), provider_ms = p_provider_ms, write_ms = p_write_ms,
    completed_at = clock_timestamp(), updated_at = clock_timestamp(), lease_expires_at = null,
    metadata = metadata || coalesce(p_metadata, '{}'::jsonb)
  where transaction_id = p_transaction_id and status = 'pending' and (p_run is null or run_count = p_run)
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending for run %', p_transaction_id, p_run using errcode = '55000';
  end if;
  -- The route that answered (the last attempt) is healthy when it answered completely; a cut stream is counted
  -- against it by the caller (bus.record_route_failure), like any other failed attempt.
  if v_last is not null and p_error is null then
    perform bus.record_route_success(v_last ->> 'provider', v_last ->> 'model');
  end if;
  delete from bus.provider_leases where transaction_id = p_transaction_id;
  return v_row;
end $$;
comment on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer,
  jsonb, text, bytea, integer, jsonb, text, boolean, integer, jsonb) is
  'Records the stored payload of run p_run (after checking the chunk count and stored size against the writer''s) and completes the message, freeing its concurrency slots and closing the answering route; with p_error the message fails instead, keeping the payload as its partial (a cut stream, CONTRACT.md §10).';
revoke execute on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer,
  integer, jsonb, text, bytea, integer, jsonb, text, boolean, integer, jsonb) from public, anon, authenticated;
grant execute on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer,
  integer, jsonb, text, bytea, integer, jsonb, text, boolean, integer, jsonb) to service_role;
