-- complete_message without nested calls (issue 17).
--
-- The completion is on every invoke's path, and it called two functions of its own: bus.append_chunk (PL/pgSQL,
-- security definer: a search_path switch, a `for share` read of the row this function updates a moment later, the
-- insert) and bus.record_route_success (LANGUAGE sql, security definer: not inlinable, so parsed and planned on
-- every call), then freed concurrency slots through bus.provider_leases. Now the row is updated first (which checks
-- that the message is pending for this run and gives its owner and expiry), the last chunk is inserted with them,
-- the stored chunks are checked against the writer's count and size as before (a mismatch raises, and the whole
-- statement rolls back), and the route and the slots are written directly. Same signature, same answers, same
-- errors (55000 not pending, 22000 mismatch).

create or replace function bus.complete_message(
  p_transaction_id uuid, p_payload_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_finish_reason text, p_usage jsonb, p_model text, p_provider_ms integer, p_write_ms integer,
  p_metadata jsonb default '{}'::jsonb, p_stored_checksum text default null, p_last_chunk bytea default null,
  p_run integer default null, p_attempts jsonb default null, p_provider text default null, p_stream boolean default null,
  p_ttft_ms integer default null
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
  v_last jsonb := p_attempts -> -1;
begin
  update public.message_bus set
    status = 'completed', payload_size_bytes = p_payload_size, stored_size_bytes = p_stored_size,
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
  if p_last_chunk is not null then
    insert into public.message_bus_chunks (transaction_id, seq, owner_id, data, expires_at)
    values (p_transaction_id, p_chunk_count - 1, v_row.owner_id, p_last_chunk, v_row.expires_at);
  end if;
  select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
    from public.message_bus_chunks where transaction_id = p_transaction_id;
  if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
    raise exception 'message % has % chunks / % bytes stored, the writer reported % / %',
      p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
  end if;
  -- The route that answered (the last attempt) is healthy (a write only when it had failures); the message's
  -- concurrency slots are free.
  if v_last is not null then
    update bus.routes set state = 'closed', consecutive_failures = 0, open_until = null, trial_until = null,
                          updated_at = now()
     where provider = v_last ->> 'provider' and model = v_last ->> 'model'
       and (state <> 'closed' or consecutive_failures > 0);
  end if;
  update bus.provider_slots set transaction_id = null, expires_at = null where transaction_id = p_transaction_id;
  return v_row;
end $$;
comment on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer,
  jsonb, text, bytea, integer, jsonb, text, boolean, integer) is
  'Records the stored payload of run p_run (after checking the chunk count and stored size against the writer''s) and completes the message with its time to first token (streams), freeing its concurrency slots and closing the answering route.';
