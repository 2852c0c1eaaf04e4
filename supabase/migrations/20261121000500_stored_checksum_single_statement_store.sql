-- Two changes to the payload path, each measured by `npm run bench -- claim-check` (bench/RESULTS.md):
--
-- 1. stored_checksum: the SHA-256 of the bytes as stored (after compression; equal to checksum when compression =
--    none). message-fetch passes stored gzip through to clients that accept it and verifies those bytes against
--    this digest instead of decompressing them on the way out; the watcher checks once per message that the
--    stored bytes decode to `checksum`. Messages completed before this migration have none and are verified by
--    decompressing, as before.
-- 2. complete_message takes the last chunk: a payload of one chunk (most tool responses) is stored and its
--    message completed by one statement, one round trip and one commit, instead of a transaction of four.

alter table public.message_bus add column stored_checksum text check (stored_checksum ~ '^sha256:[0-9a-f]{64}$');
comment on column public.message_bus.stored_checksum is
  'sha256:<hex> of the stored bytes (the chunks in order, after compression); null for messages stored before it was kept.';

drop function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb);

-- complete_message: the pointer becomes valid only if the chunks add up to what the writer says it wrote.
create function bus.complete_message(
  p_transaction_id uuid, p_payload_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_finish_reason text, p_usage jsonb, p_model text, p_provider_ms integer, p_write_ms integer,
  p_metadata jsonb default '{}'::jsonb, p_stored_checksum text default null, p_last_chunk bytea default null
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
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
    status = 'completed', payload_size_bytes = p_payload_size, stored_size_bytes = p_stored_size,
    compression = p_compression, checksum = p_checksum, stored_checksum = p_stored_checksum,
    chunk_count = p_chunk_count, finish_reason = p_finish_reason, usage = p_usage, model = coalesce(p_model, model),
    provider_ms = p_provider_ms, write_ms = p_write_ms, completed_at = clock_timestamp(), updated_at = clock_timestamp(),
    metadata = metadata || coalesce(p_metadata, '{}'::jsonb)
  where transaction_id = p_transaction_id and status = 'pending'
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  return v_row;
end $$;
comment on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea) is
  'Marks a pending message completed after checking that its stored chunks match the reported count and size. With p_last_chunk, first stores it as chunk p_chunk_count - 1 (a one-chunk payload: one statement).';
revoke execute on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea)
  from public, anon, authenticated;
grant execute on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb, text, bytea)
  to service_role;

-- message_bus_meta: the same columns in the same order, plus what message-fetch needs to serve the bytes.
create or replace view public.message_bus_meta with (security_invoker = true) as
  select m.transaction_id, m.owner_id,
         case when m.status <> 'expired' and m.expires_at <= now() then 'expired' else m.status end as status,
         m.tool, m.provider, m.model, m.session_id, m.checksum, m.payload_size_bytes, m.stored_size_bytes,
         m.compression, m.chunk_count, m.finish_reason, m.usage, m.error, m.created_at, m.updated_at,
         m.completed_at, m.expires_at, m.retrieved_at, m.retrieved_count, m.provider_ms, m.write_ms,
         (select jsonb_build_object('verdict', o.verdict, 'findings', (
                   select coalesce(jsonb_agg(jsonb_build_object('code', f.value ->> 'code', 'message', f.value ->> 'message')
                                             order by f.ordinality), '[]'::jsonb)
                   from jsonb_array_elements(o.findings) with ordinality as f))
            from public.message_bus_observations o
           where o.transaction_id = m.transaction_id
           order by o.created_at desc, o.id desc
           limit 1) as watcher,
         m.stored_checksum, m.metadata ->> 'content_type' as content_type
  from public.message_bus m;
