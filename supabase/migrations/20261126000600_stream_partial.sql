-- Streams that broke off, and what the watcher reads of a streamed message (issue #13, CONTRACT.md §5, §7, §10).
--
-- 1. A provider stream that is cut or stalls fails its message with error code stream_incomplete and keeps what was
--    relayed and stored, for diagnosis (`message-fetch/<id>?partial=1`). bus.fail_message(p_keep_partial) kept the
--    chunks appended so far but recorded nothing about them: not the last chunk (storePayload leaves it to the
--    statement that finishes the message), not their size, compression or checksum, so they could be neither read
--    in order nor verified. fail_message now takes the same description of the stored bytes that complete_message
--    takes, checks that the chunks add up, and records it in the same columns: a failed message's checksum,
--    payload_size_bytes, compression and chunk_count then describe its partial payload, and message-fetch serves
--    and verifies it as it serves a completed one. Without that description (p_checksum null) a failure keeps or
--    drops the chunks as before.
-- 2. bus.watch_target also returns `stream`: the watcher assembles a streamed payload (server-sent events) into one
--    completion before the content checks, instead of parsing the event stream as one JSON body.
--
-- The watcher trigger (bus.watch_on_finish, migration 20261121000300) already queues every message that completes or
-- fails, stream_incomplete ones included; it is unchanged.

drop function bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean);

-- fail_message: a provider failure (or a failed write) is recorded, never lost. Partial payload chunks are removed
-- unless p_keep_partial; with p_checksum (and the other p_* of the stored bytes, as storePayload returns them) the
-- kept chunks are checked to add up and recorded, p_last_chunk stored first. The stored request stays (replay, audit).
create function bus.fail_message(
  p_transaction_id uuid, p_error jsonb, p_provider_ms integer default null, p_run integer default null,
  p_attempts jsonb default null, p_keep_partial boolean default false, p_payload_size bigint default null,
  p_stored_size bigint default null, p_compression text default null, p_checksum text default null,
  p_chunk_count integer default null, p_stored_checksum text default null, p_last_chunk bytea default null
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_keep boolean := coalesce(p_keep_partial, false);
  v_record boolean := coalesce(p_keep_partial, false) and p_checksum is not null;
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
begin
  if p_checksum is not null and not v_keep then
    raise exception 'a partial payload is recorded only with p_keep_partial' using errcode = '22023';
  end if;
  if v_record then
    if p_payload_size is null or p_stored_size is null or p_compression is null or p_chunk_count is null then
      raise exception 'a partial payload needs its size, stored size, compression and chunk count'
        using errcode = '22023';
    end if;
    if p_last_chunk is not null then
      perform bus.append_chunk(p_transaction_id, p_chunk_count - 1, p_last_chunk);
    end if;
    select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
      from public.message_bus_chunks where transaction_id = p_transaction_id;
    if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
      raise exception 'message % has % chunks / % bytes stored, the writer reported % / % (partial payload)',
        p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
    end if;
  end if;
  update public.message_bus set status = 'failed', error = p_error, provider_ms = coalesce(p_provider_ms, provider_ms),
         attempts = coalesce(p_attempts, attempts), completed_at = clock_timestamp(), updated_at = clock_timestamp(),
         lease_expires_at = null,
         payload_size_bytes = case when v_record then p_payload_size else payload_size_bytes end,
         stored_size_bytes = case when v_record then p_stored_size else stored_size_bytes end,
         compression = case when v_record then p_compression else compression end,
         checksum = case when v_record then p_checksum else checksum end,
         stored_checksum = case when v_record then p_stored_checksum else stored_checksum end,
         chunk_count = case when v_record then p_chunk_count else chunk_count end
  where transaction_id = p_transaction_id and status = 'pending' and (p_run is null or run_count = p_run)
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending for run %', p_transaction_id, p_run using errcode = '55000';
  end if;
  if not v_keep then
    delete from public.message_bus_chunks where transaction_id = p_transaction_id;
  end if;
  delete from bus.provider_leases where transaction_id = p_transaction_id;
  return v_row;
end $$;
comment on function bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean, bigint, bigint, text, text, integer, text, bytea) is
  'Marks a pending message failed (for run p_run) with a JSON error; drops any partial payload unless p_keep_partial. With p_keep_partial and p_checksum, stores p_last_chunk, checks that the kept chunks match p_chunk_count / p_stored_size and records them (checksum, sizes, compression, chunk_count) so that they can be read and verified. The stored request stays.';

revoke execute on function
  bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean, bigint, bigint, text, text, integer, text, bytea)
  from public, anon, authenticated;
grant execute on function
  bus.fail_message(uuid, jsonb, integer, integer, jsonb, boolean, bigint, bigint, text, text, integer, text, bytea)
  to service_role;

-- watch_target: as in migration 20261121000600, plus `stream`.
drop function bus.watch_target(uuid, text);
create function bus.watch_target(p_transaction_id uuid, p_watcher_version text)
returns table (
  transaction_id uuid, status text, checksum text, stored_checksum text, chunk_count integer, compression text,
  payload_size_bytes bigint, finish_reason text, usage jsonb, error jsonb, metadata jsonb, expired boolean,
  observation jsonb, only_chunk bytea, stream boolean
)
language plpgsql stable security definer set search_path = '' as $$
begin
  return query
    select m.transaction_id, m.status, m.checksum, m.stored_checksum, m.chunk_count, m.compression,
           m.payload_size_bytes, m.finish_reason, m.usage, m.error, m.metadata,
           (m.payload_deleted_at is not null or m.expires_at <= now()),
           (select to_jsonb(o) from (
              select o.id as observation_id, o.watcher_version, o.verdict, o.findings, o.partial, o.analysed_bytes,
                     o.review
              from public.message_bus_observations o
              where o.transaction_id = m.transaction_id and o.watcher_version = p_watcher_version) o),
           (select c.data from public.message_bus_chunks c
             where c.transaction_id = m.transaction_id and c.seq = 0 and m.chunk_count = 1),
           m.stream
    from public.message_bus m where m.transaction_id = p_transaction_id;
end $$;
comment on function bus.watch_target(uuid, text) is
  'The watcher''s view of one message: its row (stream included), whether its payload has expired, its observation by p_watcher_version (if any) and, for a payload of one chunk (a failed stream''s partial one too), the stored bytes. No row when there is no such message.';
revoke execute on function bus.watch_target(uuid, text) from public, anon, authenticated;
grant execute on function bus.watch_target(uuid, text) to service_role;
