-- The claim-check core: one metadata row per message in public.message_bus, the payload's stored bytes in
-- public.message_bus_chunks (about 1 MiB a row, so that neither writing nor reading holds a whole payload in
-- memory more than once). State changes go through the SQL functions of schema `bus`, which only the service
-- role may execute; users read their own rows through row-level security.

create schema if not exists bus;
comment on schema bus is 'The message bus''s SQL API: verb-named functions for every state change.';
grant usage on schema bus to service_role, authenticated;
alter default privileges in schema bus revoke execute on functions from public;

-- Time-ordered UUIDs (RFC 9562 version 7): a millisecond timestamp followed by random bits, so ids sort by
-- creation time and index inserts stay at the right edge of the B-tree. Postgres 15 has no uuidv7().
create or replace function bus.uuid_v7() returns uuid
language sql volatile parallel safe as $$
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
              from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;
comment on function bus.uuid_v7() is 'A version-7 UUID: 48-bit Unix milliseconds, then random bits (RFC 9562).';

create table public.message_bus (
  transaction_id uuid primary key default bus.uuid_v7(),
  owner_id uuid not null,
  session_id text check (length(session_id) <= 200),
  tool text not null check (length(tool) between 1 and 100),
  provider text,
  model text,
  idempotency_key text check (length(idempotency_key) between 1 and 255),
  status text not null default 'pending' check (status in ('pending', 'completed', 'failed', 'expired')),
  message_type text not null default 'tool_response',
  payload_size_bytes bigint check (payload_size_bytes >= 0),
  stored_size_bytes bigint check (stored_size_bytes >= 0),
  compression text check (compression in ('none', 'gzip')),
  checksum text check (checksum ~ '^sha256:[0-9a-f]{64}$'),
  chunk_count integer check (chunk_count >= 0),
  finish_reason text,
  usage jsonb,
  error jsonb,
  provider_ms integer,
  write_ms integer,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  expires_at timestamptz not null,
  payload_deleted_at timestamptz,
  retrieved_at timestamptz,
  retrieved_count integer not null default 0,
  metadata jsonb not null default '{}'::jsonb,
  constraint message_bus_owner_idempotency_key unique (owner_id, idempotency_key),
  constraint message_bus_completed_has_payload check (
    status <> 'completed'
    or (checksum is not null and payload_size_bytes is not null and stored_size_bytes is not null
        and compression is not null and chunk_count is not null)
  )
);
comment on table public.message_bus is
  'Claim-check index: one row per tool response. The payload bytes live in message_bus_chunks; the row is the audit trail and outlives the payload until purged.';
comment on column public.message_bus.checksum is 'sha256:<hex> of the payload exactly as received from the provider (before compression).';
comment on column public.message_bus.payload_size_bytes is 'Size of the payload as received (raw).';
comment on column public.message_bus.stored_size_bytes is 'Size of the stored bytes (after compression when compression = gzip).';
comment on column public.message_bus.updated_at is
  'Last status change (clock_timestamp(), i.e. when the change was made, not when its transaction began: a 100 MB store takes seconds); the catch-up list orders by it.';

create index message_bus_owner_updated on public.message_bus (owner_id, updated_at, transaction_id);
create index message_bus_expires_at on public.message_bus (expires_at) where payload_deleted_at is null;
create index message_bus_pending on public.message_bus (created_at) where status = 'pending';

create table public.message_bus_chunks (
  transaction_id uuid not null references public.message_bus (transaction_id) on delete cascade,
  seq integer not null check (seq >= 0),
  owner_id uuid not null,
  data bytea not null,
  expires_at timestamptz,
  primary key (transaction_id, seq)
);
alter table public.message_bus_chunks alter column data set storage external; -- already compressed or raw: skip TOAST compression
comment on table public.message_bus_chunks is
  'Stored payload bytes in order (seq 0..chunk_count-1), about 1 MiB a row; gzip when message_bus.compression = gzip.';

-- Row-level security: a user sees only their own rows; nobody but the service role writes.
alter table public.message_bus enable row level security;
alter table public.message_bus_chunks enable row level security;
revoke all on public.message_bus, public.message_bus_chunks from anon, authenticated;
grant select on public.message_bus, public.message_bus_chunks to authenticated;
grant all on public.message_bus, public.message_bus_chunks to service_role;

comment on column public.message_bus_chunks.expires_at is
  'Copy of message_bus.expires_at taken when the chunk was stored, so that cleanup can delete expired payloads without touching the metadata rows.';
create index message_bus_chunks_expires_at on public.message_bus_chunks (expires_at);

create policy "owners read their messages" on public.message_bus
  for select to authenticated using (owner_id = (select auth.uid()));
create policy "owners read their payloads" on public.message_bus_chunks
  for select to authenticated using (owner_id = (select auth.uid()));

-- What callers see of a message: status 'expired' as soon as expires_at has passed, whether or not cleanup has
-- run (CONTRACT.md §5). security_invoker, so the caller's RLS applies.
create view public.message_bus_meta with (security_invoker = true) as
  select m.transaction_id, m.owner_id,
         case when m.status <> 'expired' and m.expires_at <= now() then 'expired' else m.status end as status,
         m.tool, m.provider, m.model, m.session_id, m.checksum, m.payload_size_bytes, m.stored_size_bytes,
         m.compression, m.chunk_count, m.finish_reason, m.usage, m.error, m.created_at, m.updated_at,
         m.completed_at, m.expires_at, m.retrieved_at, m.retrieved_count, m.provider_ms, m.write_ms,
         null::jsonb as watcher
  from public.message_bus m;
comment on view public.message_bus_meta is 'Message metadata as message-fetch answers it; expired by time, RLS of the caller.';
grant select on public.message_bus_meta to authenticated, service_role;

-- begin_message: record a request before the provider is called. Race-safe idempotency: the unique constraint
-- (owner_id, idempotency_key) makes a concurrent second insert wait for the first and then return its row.
create or replace function bus.begin_message(
  p_owner uuid, p_tool text, p_provider text, p_model text, p_session_id text, p_idempotency_key text,
  p_ttl_seconds integer, p_metadata jsonb default '{}'::jsonb, p_message_type text default 'tool_response'
) returns table (transaction_id uuid, status text, created boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_id uuid;
begin
  if p_ttl_seconds is null or p_ttl_seconds <= 0 then
    raise exception 'ttl must be positive, got %', p_ttl_seconds using errcode = '22023';
  end if;
  insert into public.message_bus as m (owner_id, tool, provider, model, session_id, idempotency_key, expires_at,
                                       metadata, message_type)
  values (p_owner, p_tool, p_provider, p_model, p_session_id, p_idempotency_key,
          now() + make_interval(secs => p_ttl_seconds), coalesce(p_metadata, '{}'::jsonb), p_message_type)
  on conflict on constraint message_bus_owner_idempotency_key do nothing
  returning m.transaction_id into v_id;
  if v_id is not null then
    return query select v_id, 'pending'::text, true;
    return;
  end if;
  return query select m.transaction_id, m.status, false from public.message_bus m
    where m.owner_id = p_owner and m.idempotency_key = p_idempotency_key;
end $$;
comment on function bus.begin_message(uuid, text, text, text, text, text, integer, jsonb, text) is
  'Records a pending message (before the provider is called). With an idempotency key already used by the owner, returns the existing message with created = false.';

-- append_chunk: store one piece of the payload of a pending message.
create or replace function bus.append_chunk(p_transaction_id uuid, p_seq integer, p_data bytea)
returns void language plpgsql security definer set search_path = '' as $$
declare
  v_owner uuid;
  v_expires timestamptz;
begin
  select owner_id, expires_at into v_owner, v_expires from public.message_bus
    where transaction_id = p_transaction_id and status = 'pending' for share;
  if v_owner is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  insert into public.message_bus_chunks (transaction_id, seq, owner_id, data, expires_at)
  values (p_transaction_id, p_seq, v_owner, p_data, v_expires);
end $$;
comment on function bus.append_chunk(uuid, integer, bytea) is
  'Stores chunk p_seq of a pending message''s payload (with the message''s expires_at, for cleanup).';

-- complete_message: the pointer becomes valid only if the chunks add up to what the writer says it wrote.
create or replace function bus.complete_message(
  p_transaction_id uuid, p_payload_size bigint, p_stored_size bigint, p_compression text, p_checksum text,
  p_chunk_count integer, p_finish_reason text, p_usage jsonb, p_model text, p_provider_ms integer, p_write_ms integer,
  p_metadata jsonb default '{}'::jsonb
) returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_chunks integer;
  v_bytes bigint;
  v_row public.message_bus;
begin
  select count(*), coalesce(sum(length(data)), 0) into v_chunks, v_bytes
    from public.message_bus_chunks where transaction_id = p_transaction_id;
  if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
    raise exception 'message % has % chunks / % bytes stored, the writer reported % / %',
      p_transaction_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
  end if;
  update public.message_bus set
    status = 'completed', payload_size_bytes = p_payload_size, stored_size_bytes = p_stored_size,
    compression = p_compression, checksum = p_checksum, chunk_count = p_chunk_count,
    finish_reason = p_finish_reason, usage = p_usage, model = coalesce(p_model, model),
    provider_ms = p_provider_ms, write_ms = p_write_ms, completed_at = clock_timestamp(), updated_at = clock_timestamp(),
    metadata = metadata || coalesce(p_metadata, '{}'::jsonb)
  where transaction_id = p_transaction_id and status = 'pending'
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  return v_row;
end $$;
comment on function bus.complete_message(uuid, bigint, bigint, text, text, integer, text, jsonb, text, integer, integer, jsonb) is
  'Marks a pending message completed after checking that its stored chunks match the reported count and size.';

-- fail_message: a provider failure (or a failed write) is recorded, never lost. Partial chunks are removed.
create or replace function bus.fail_message(p_transaction_id uuid, p_error jsonb, p_provider_ms integer default null)
returns public.message_bus
language plpgsql security definer set search_path = '' as $$
declare
  v_row public.message_bus;
begin
  delete from public.message_bus_chunks where transaction_id = p_transaction_id;
  update public.message_bus set status = 'failed', error = p_error, provider_ms = coalesce(p_provider_ms, provider_ms),
         completed_at = clock_timestamp(), updated_at = clock_timestamp()
  where transaction_id = p_transaction_id and status = 'pending'
  returning * into v_row;
  if v_row.transaction_id is null then
    raise exception 'message % is not pending', p_transaction_id using errcode = '55000';
  end if;
  return v_row;
end $$;
comment on function bus.fail_message(uuid, jsonb, integer) is 'Marks a pending message failed with a JSON error; drops any partial payload.';

-- mark_retrieved: counts a fetch by the owner (called with the caller's claims).
create or replace function bus.mark_retrieved(p_transaction_id uuid)
returns void language sql security definer set search_path = '' as $$
  update public.message_bus set retrieved_count = retrieved_count + 1, retrieved_at = now()
  where transaction_id = p_transaction_id
    and (owner_id = auth.uid() or auth.role() = 'service_role');
$$;
comment on function bus.mark_retrieved(uuid) is 'Counts one retrieval of a message by its owner (or the service role).';

revoke execute on all functions in schema bus from public, anon, authenticated;
grant execute on all functions in schema bus to service_role;
grant execute on function bus.mark_retrieved(uuid) to authenticated;
