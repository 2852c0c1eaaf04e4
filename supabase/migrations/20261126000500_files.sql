-- Files (issue #16, CONTRACT.md §13): a file is uploaded once, stored once (chunked, checksummed, gzip when it
-- helps, like payloads), deduplicated per owner by its SHA-256, and forwarded to each provider the way that provider
-- understands (the `files` function and _shared/files/ in the functions).
--
-- - public.message_bus_files: one row per file (status 'uploading' while its chunks stream in, then 'ready');
--   unique (owner_id, sha256), so a second upload of the same bytes by the same owner finds the first one. The hash
--   is known only once the last byte has arrived, so an upload is stored under a new id and bus.seal_file either
--   makes it ready or, when the owner already has those bytes, drops the new chunks and answers the existing file
--   (race-safe: the unique constraint makes a concurrent second seal wait for the first).
-- - public.message_bus_file_chunks: the stored bytes, about 1 MiB a row. Owners read both through RLS.
-- - bus.message_files: which message used which file. A file past its expiry is kept while a message that used it
--   has not expired (an async run, a retry or a replay still needs its bytes), then deleted by cleanup.
-- - bus.provider_files: the provider's id for a file uploaded to it (`<NAME>_FILES=extract`), so each file goes to
--   each provider once; bus.provider_file_deletions queues the provider's copies of files that are gone, for the
--   cleanup function to delete at the provider (Moonshot keeps at most 1,000 files per account,
--   gateways-streaming-mcp.md §4).
-- - public.message_bus.files: the files a message used, `[{file_id, sha256, filename}]`, shown in meta (last column
--   of public.message_bus_meta).

create table public.message_bus_files (
  file_id uuid primary key default bus.uuid_v7(),
  owner_id uuid not null,
  status text not null default 'uploading' check (status in ('uploading', 'ready')),
  filename text not null check (length(filename) between 1 and 255),
  content_type text not null default 'application/octet-stream' check (length(content_type) between 1 and 255),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint check (size_bytes >= 0),
  stored_size_bytes bigint check (stored_size_bytes >= 0),
  compression text check (compression in ('none', 'gzip')),
  stored_checksum text check (stored_checksum ~ '^sha256:[0-9a-f]{64}$'),
  chunk_count integer check (chunk_count >= 0),
  is_text boolean,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint message_bus_files_owner_sha256 unique (owner_id, sha256),
  constraint message_bus_files_ready_is_complete check (
    status <> 'ready'
    or (sha256 is not null and size_bytes is not null and stored_size_bytes is not null and compression is not null
        and stored_checksum is not null and chunk_count is not null and is_text is not null)
  )
);
comment on table public.message_bus_files is
  'Uploaded files (CONTRACT.md §13), one row each; the bytes are in message_bus_file_chunks. Unique per owner by SHA-256: the same bytes uploaded again answer the same file.';
comment on column public.message_bus_files.status is 'uploading while the chunks stream in (invisible to the owner), ready once sealed by bus.seal_file.';
comment on column public.message_bus_files.sha256 is 'Hex SHA-256 of the file''s bytes as uploaded (before compression).';
comment on column public.message_bus_files.stored_checksum is 'sha256:<hex> of the stored bytes (the chunks in order, after compression).';
comment on column public.message_bus_files.is_text is 'True when the bytes are UTF-8 without NUL: only such files can be sent inline (<NAME>_FILES=inline).';
comment on column public.message_bus_files.expires_at is
  'When the file expires; it is kept past this while a message that used it has not expired (bus.file_live_until).';
create index message_bus_files_owner_created on public.message_bus_files (owner_id, created_at, file_id);
create index message_bus_files_expires_at on public.message_bus_files (expires_at);
create index message_bus_files_uploading on public.message_bus_files (created_at) where status = 'uploading';

create table public.message_bus_file_chunks (
  file_id uuid not null references public.message_bus_files (file_id) on delete cascade,
  seq integer not null check (seq >= 0),
  owner_id uuid not null,
  data bytea not null,
  primary key (file_id, seq)
);
alter table public.message_bus_file_chunks alter column data set storage external; -- already compressed or raw: skip TOAST compression
comment on table public.message_bus_file_chunks is
  'Stored file bytes in order (seq 0..chunk_count-1), about 1 MiB a row; gzip when message_bus_files.compression = gzip. Deleted with their file.';

alter table public.message_bus_files enable row level security;
alter table public.message_bus_file_chunks enable row level security;
revoke all on public.message_bus_files, public.message_bus_file_chunks from anon, authenticated;
grant select on public.message_bus_files, public.message_bus_file_chunks to authenticated;
grant all on public.message_bus_files, public.message_bus_file_chunks to service_role;
create policy "owners read their files" on public.message_bus_files
  for select to authenticated using (owner_id = (select auth.uid()) and status = 'ready');
create policy "owners read their file bytes" on public.message_bus_file_chunks
  for select to authenticated using (owner_id = (select auth.uid()));

create table bus.message_files (
  transaction_id uuid not null references public.message_bus (transaction_id) on delete cascade,
  file_id uuid not null references public.message_bus_files (file_id) on delete cascade,
  primary key (transaction_id, file_id)
);
create index message_files_file_id on bus.message_files (file_id);
comment on table bus.message_files is
  'Which message used which file: a file is kept past its own expiry until every message that used it has expired.';

create table bus.provider_files (
  file_id uuid not null references public.message_bus_files (file_id) on delete cascade,
  provider text not null check (length(provider) between 1 and 100),
  base_url text not null,
  provider_file_id text not null check (length(provider_file_id) between 1 and 500),
  created_at timestamptz not null default now(),
  primary key (file_id, provider)
);
comment on table bus.provider_files is
  'The provider''s id of a file uploaded to it for extraction (<NAME>_FILES=extract), so that each file is uploaded to each provider once; base_url is where it was uploaded.';

create table bus.provider_file_deletions (
  id bigint generated always as identity primary key,
  provider text not null,
  base_url text not null,
  provider_file_id text not null,
  queued_at timestamptz not null default now(),
  attempts integer not null default 0 check (attempts >= 0),
  last_error text
);
comment on table bus.provider_file_deletions is
  'Provider copies of files that are gone (deleted, expired, or a duplicate upload that lost a race), for the cleanup function to delete at the provider.';

revoke all on bus.message_files, bus.provider_files, bus.provider_file_deletions from public, anon, authenticated;
grant all on bus.message_files, bus.provider_files, bus.provider_file_deletions to service_role;

alter table public.message_bus add column files jsonb check (files is null or jsonb_typeof(files) = 'array');
comment on column public.message_bus.files is 'The files the message used (chat input.files): [{file_id, sha256, filename}]; null when none.';

-- The meta view: the same columns in the same order, then `files`.
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
         m.stored_checksum, m.metadata ->> 'content_type' as content_type,
         m.mode, m.stream, m.attempts, m.replay_of, m.request_checksum, m.request_size_bytes, m.metadata,
         m.files
  from public.message_bus m;

-- ---------------------------------------------------------------------------------------------------------------
-- Uploading
-- ---------------------------------------------------------------------------------------------------------------

-- begin_file: a new upload, invisible to its owner until sealed.
create function bus.begin_file(p_owner uuid, p_filename text, p_content_type text, p_ttl_seconds integer)
returns uuid language plpgsql security definer set search_path = '' as $$
declare
  v_id uuid;
begin
  if p_ttl_seconds is null or p_ttl_seconds <= 0 then
    raise exception 'ttl must be positive, got %', p_ttl_seconds using errcode = '22023';
  end if;
  insert into public.message_bus_files (owner_id, filename, content_type, expires_at)
  values (p_owner, p_filename, coalesce(p_content_type, 'application/octet-stream'),
          now() + make_interval(secs => p_ttl_seconds))
  returning file_id into v_id;
  return v_id;
end $$;
comment on function bus.begin_file(uuid, text, text, integer) is
  'Starts an upload: a file row in status uploading (invisible to its owner), expiring p_ttl_seconds from now; returns its id.';

-- Chunks are written by binary COPY straight into the table (bytes as they are: 50 MiB took 800 ms as bytea
-- parameters, which travel as hex text, and 360 ms by COPY; _shared/copy_chunk.ts). This trigger keeps the rule a
-- bus function would: a chunk belongs to a file being uploaded, and gets that file's owner (which RLS reads by).
create function bus.file_chunk_guard() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  select f.owner_id into new.owner_id from public.message_bus_files f
   where f.file_id = new.file_id and f.status = 'uploading';
  if new.owner_id is null then
    raise exception 'file % is not being uploaded', new.file_id using errcode = '55000';
  end if;
  return new;
end $$;
comment on function bus.file_chunk_guard() is
  'Before a file chunk is stored: the file must be uploading; the chunk takes the file''s owner.';
create trigger message_bus_file_chunks_guard before insert on public.message_bus_file_chunks
  for each row execute function bus.file_chunk_guard();

-- seal_file: the upload is complete. When the owner already has these bytes, the new row and its chunks go and the
-- existing file answers (deduplicated), its expiry renewed to the later of the two; otherwise the last chunk is
-- stored, the chunks are checked to add up, and the file becomes ready. Two uploads of the same bytes sealing at
-- once: the second waits on the unique index for the first, then finds its file.
create function bus.seal_file(
  p_file_id uuid, p_sha256 text, p_size bigint, p_stored_size bigint, p_compression text, p_stored_checksum text,
  p_chunk_count integer, p_last_chunk bytea, p_is_text boolean
) returns table (file_id uuid, filename text, content_type text, sha256 text, size_bytes bigint,
                 created_at timestamptz, expires_at timestamptz, deduplicated boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_new public.message_bus_files;
  v_old public.message_bus_files;
  v_chunks integer;
  v_bytes bigint;
begin
  select * into v_new from public.message_bus_files f where f.file_id = p_file_id and f.status = 'uploading' for update;
  if v_new.file_id is null then
    raise exception 'file % is not being uploaded', p_file_id using errcode = '55000';
  end if;
  for attempt in 1..2 loop
    update public.message_bus_files f set expires_at = greatest(f.expires_at, v_new.expires_at)
     where f.owner_id = v_new.owner_id and f.sha256 = p_sha256 and f.status = 'ready'
    returning f.* into v_old;
    if v_old.file_id is not null then
      delete from public.message_bus_files f where f.file_id = p_file_id;
      return query select v_old.file_id, v_old.filename, v_old.content_type, v_old.sha256, v_old.size_bytes,
                          v_old.created_at, v_old.expires_at, true;
      return;
    end if;
    if attempt = 2 then
      raise exception 'file % lost its duplicate while sealing', p_file_id using errcode = '40001';
    end if;
    begin
      if p_last_chunk is not null then
        insert into public.message_bus_file_chunks (file_id, seq, data)
        values (p_file_id, p_chunk_count - 1, p_last_chunk);
      end if;
      select count(*), coalesce(sum(length(c.data)), 0) into v_chunks, v_bytes
        from public.message_bus_file_chunks c where c.file_id = p_file_id;
      if v_chunks <> p_chunk_count or v_bytes <> p_stored_size then
        raise exception 'file % has % chunks / % bytes stored, the writer reported % / %',
          p_file_id, v_chunks, v_bytes, p_chunk_count, p_stored_size using errcode = '22000';
      end if;
      update public.message_bus_files f set status = 'ready', sha256 = p_sha256, size_bytes = p_size,
             stored_size_bytes = p_stored_size, compression = p_compression, stored_checksum = p_stored_checksum,
             chunk_count = p_chunk_count, is_text = p_is_text
       where f.file_id = p_file_id
      returning f.* into v_new;
      return query select v_new.file_id, v_new.filename, v_new.content_type, v_new.sha256, v_new.size_bytes,
                          v_new.created_at, v_new.expires_at, false;
      return;
    exception when unique_violation then
      -- A concurrent upload of the same bytes sealed first (its commit ended the wait): answer that one.
      null;
    end;
  end loop;
end $$;
comment on function bus.seal_file(uuid, text, bigint, bigint, text, text, integer, bytea, boolean) is
  'Completes an upload: answers the owner''s existing file with the same SHA-256 (deduplicated, the new chunks dropped, expiry renewed), or stores the last chunk, checks that the chunks add up and makes the file ready.';

create function bus.abort_file(p_file_id uuid)
returns void language sql security definer set search_path = '' as $$
  delete from public.message_bus_files where file_id = p_file_id and status = 'uploading';
$$;
comment on function bus.abort_file(uuid) is 'Drops an upload that failed, with its chunks.';

-- ---------------------------------------------------------------------------------------------------------------
-- Reading and deleting
-- ---------------------------------------------------------------------------------------------------------------

-- file_live_until: a file lives until its own expiry or, if later, the expiry of the last message that used it.
-- Callable by owners (the files function reads as the caller): only the caller's own messages count.
create function bus.file_live_until(p_file_id uuid, p_expires_at timestamptz)
returns timestamptz language sql stable security definer set search_path = '' as $$
  select greatest(p_expires_at, (
    select max(m.expires_at) from bus.message_files r join public.message_bus m on m.transaction_id = r.transaction_id
     where r.file_id = p_file_id
       and (m.owner_id = (select auth.uid()) or (select auth.role()) = 'service_role')));
$$;
comment on function bus.file_live_until(uuid, timestamptz) is
  'The time until which a file is kept: the later of its own expiry and that of the last message (of the caller) that used it.';

-- delete_file: the owner's explicit delete. The bytes go at once (a message that used the file keeps its own stored
-- request and payload); the provider's copies are queued for deletion at the provider.
create function bus.delete_file(p_file_id uuid, p_owner uuid)
returns boolean language plpgsql security definer set search_path = '' as $$
declare
  v_count integer;
begin
  insert into bus.provider_file_deletions (provider, base_url, provider_file_id)
    select p.provider, p.base_url, p.provider_file_id from bus.provider_files p
      join public.message_bus_files f on f.file_id = p.file_id
     where p.file_id = p_file_id and (p_owner is null or f.owner_id = p_owner) and f.status = 'ready';
  delete from public.message_bus_files f
   where f.file_id = p_file_id and (p_owner is null or f.owner_id = p_owner) and f.status = 'ready';
  get diagnostics v_count = row_count;
  return v_count > 0;
end $$;
comment on function bus.delete_file(uuid, uuid) is
  'Deletes a ready file of p_owner (any owner when null: the service role) with its chunks, queueing its provider copies for deletion; false when there was none.';

-- ---------------------------------------------------------------------------------------------------------------
-- Files in messages
-- ---------------------------------------------------------------------------------------------------------------

-- use_files: a message uses these files. Each must be the message owner's, ready and live; the message records
-- them (files, in the order given) and each gets a reference that keeps it while the message lives. Returns what
-- the run needs to read them.
create function bus.use_files(p_transaction_id uuid, p_file_ids uuid[])
returns table (file_id uuid, filename text, content_type text, sha256 text, size_bytes bigint, compression text,
               stored_checksum text, chunk_count integer, is_text boolean)
language plpgsql security definer set search_path = '' as $$
declare
  v_owner uuid;
  v_missing uuid[];
begin
  select m.owner_id into v_owner from public.message_bus m where m.transaction_id = p_transaction_id;
  if v_owner is null then
    raise exception 'message % does not exist', p_transaction_id using errcode = 'P0002';
  end if;
  -- Key-share locks on the files (through the references' foreign key) keep cleanup from deleting them meanwhile.
  insert into bus.message_files (transaction_id, file_id)
    select p_transaction_id, f.file_id from public.message_bus_files f
     where f.file_id = any (p_file_ids) and f.owner_id = v_owner and f.status = 'ready'
       and greatest(f.expires_at, (select max(m.expires_at) from bus.message_files r
                                     join public.message_bus m on m.transaction_id = r.transaction_id
                                    where r.file_id = f.file_id)) > now()
  on conflict do nothing;
  select array_agg(i) into v_missing from unnest(p_file_ids) as i
   where not exists (select 1 from bus.message_files r where r.transaction_id = p_transaction_id and r.file_id = i);
  if v_missing is not null then
    raise exception 'files not found: %', array_to_string(v_missing, ', ') using errcode = 'P0002',
      detail = array_to_string(v_missing, ',');
  end if;
  update public.message_bus m set files = (
    select jsonb_agg(jsonb_build_object('file_id', f.file_id, 'sha256', f.sha256, 'filename', f.filename)
                     order by u.ord)
      from unnest(p_file_ids) with ordinality as u(id, ord) join public.message_bus_files f on f.file_id = u.id)
   where m.transaction_id = p_transaction_id;
  return query select f.file_id, f.filename, f.content_type, f.sha256, f.size_bytes, f.compression, f.stored_checksum,
                      f.chunk_count, f.is_text
    from unnest(p_file_ids) with ordinality as u(id, ord) join public.message_bus_files f on f.file_id = u.id
   order by u.ord;
end $$;
comment on function bus.use_files(uuid, uuid[]) is
  'Records that a message uses these files (message_bus.files, and references that keep them while it lives); each must be the message owner''s, ready and live (SQLSTATE P0002 naming the others). Returns the files in the order given.';

-- remember_provider_file: the provider's id of a file just uploaded to it. When a concurrent upload remembered one
-- first, that one stays and this one is queued for deletion at the provider. Returns the id to use.
create function bus.remember_provider_file(p_file_id uuid, p_provider text, p_base_url text, p_provider_file_id text)
returns text language plpgsql security definer set search_path = '' as $$
declare
  v_kept text;
begin
  insert into bus.provider_files as p (file_id, provider, base_url, provider_file_id)
  values (p_file_id, p_provider, p_base_url, p_provider_file_id)
  on conflict (file_id, provider) do update
    set base_url = excluded.base_url, provider_file_id = excluded.provider_file_id, created_at = now()
    where p.base_url <> excluded.base_url
  returning p.provider_file_id into v_kept;
  if v_kept is null then
    select p.provider_file_id into v_kept from bus.provider_files p where p.file_id = p_file_id and p.provider = p_provider;
    insert into bus.provider_file_deletions (provider, base_url, provider_file_id)
    values (p_provider, p_base_url, p_provider_file_id);
  end if;
  return v_kept;
end $$;
comment on function bus.remember_provider_file(uuid, text, text, text) is
  'Remembers the provider''s id of a file (replacing one remembered for another base URL); if another upload was remembered first, keeps that one, queues this one for deletion at the provider and returns the kept id.';

-- forget_provider_file: the provider no longer knows the remembered id (it answered 404): upload again next time.
create function bus.forget_provider_file(p_file_id uuid, p_provider text, p_provider_file_id text)
returns void language sql security definer set search_path = '' as $$
  delete from bus.provider_files
   where file_id = p_file_id and provider = p_provider and provider_file_id = p_provider_file_id;
$$;
comment on function bus.forget_provider_file(uuid, text, text) is
  'Forgets a remembered provider file id that the provider no longer knows (nothing to delete there).';

-- ---------------------------------------------------------------------------------------------------------------
-- Cleanup
-- ---------------------------------------------------------------------------------------------------------------

-- cleanup_files: deletes files past their expiry that no unexpired message uses, and uploads that stopped (status
-- uploading for longer than p_stale_upload: their worker died), p_batch at a time within p_budget_ms. Their chunks,
-- references and provider ids go with them (cascade); the provider copies are queued for deletion.
create function bus.cleanup_files(
  p_batch integer default 1000, p_budget_ms integer default 2000, p_stale_upload interval default '1 hour'
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(p_budget_ms, 0) / 1000.0);
  v_ids uuid[];
  v_files bigint := 0;
  v_chunks bigint := 0;
  v_count bigint;
  v_more boolean := false;
begin
  loop
    select array_agg(s.file_id) into v_ids from (
      select f.file_id from public.message_bus_files f
       where (f.expires_at <= now()
              and not exists (select 1 from bus.message_files r
                                join public.message_bus m on m.transaction_id = r.transaction_id
                               where r.file_id = f.file_id and m.expires_at > now()))
          or (f.status = 'uploading' and f.created_at < now() - p_stale_upload)
       order by f.expires_at
       limit p_batch
       for update skip locked) s;
    exit when v_ids is null;
    insert into bus.provider_file_deletions (provider, base_url, provider_file_id)
      select p.provider, p.base_url, p.provider_file_id from bus.provider_files p where p.file_id = any (v_ids);
    delete from public.message_bus_file_chunks c where c.file_id = any (v_ids);
    get diagnostics v_count = row_count;
    v_chunks := v_chunks + v_count;
    delete from public.message_bus_files f where f.file_id = any (v_ids);
    get diagnostics v_count = row_count;
    v_files := v_files + v_count;
    if cardinality(v_ids) < p_batch then
      exit;
    end if;
    if clock_timestamp() >= v_deadline then
      v_more := true;
      exit;
    end if;
  end loop;
  return jsonb_build_object('files_deleted', v_files, 'file_chunks_deleted', v_chunks, 'more', v_more);
end $$;
comment on function bus.cleanup_files(integer, integer, interval) is
  'Deletes expired files that no unexpired message uses, and uploads stalled for longer than p_stale_upload, with their chunks; queues their provider copies for deletion. Returns {files_deleted, file_chunks_deleted, more}.';

-- take_provider_file_deletions: the next provider copies to delete (skipping rows another cleanup run holds).
create function bus.take_provider_file_deletions(p_limit integer default 100, p_max_attempts integer default 5)
returns table (id bigint, provider text, base_url text, provider_file_id text)
language sql security definer set search_path = '' as $$
  update bus.provider_file_deletions d set attempts = d.attempts + 1
   where d.id in (select x.id from bus.provider_file_deletions x where x.attempts < p_max_attempts
                   order by x.id limit p_limit for update skip locked)
  returning d.id, d.provider, d.base_url, d.provider_file_id;
$$;
comment on function bus.take_provider_file_deletions(integer, integer) is
  'Claims up to p_limit queued provider file deletions (each counts an attempt; rows past p_max_attempts are left for an operator).';

create function bus.finish_provider_file_deletion(p_id bigint, p_done boolean, p_error text default null)
returns void language plpgsql security definer set search_path = '' as $$
begin
  if p_done then
    delete from bus.provider_file_deletions where id = p_id;
  else
    update bus.provider_file_deletions set last_error = left(p_error, 500) where id = p_id;
  end if;
end $$;
comment on function bus.finish_provider_file_deletion(bigint, boolean, text) is
  'Records the outcome of deleting a provider copy: done (the row goes) or the error (kept for another attempt).';

-- ---------------------------------------------------------------------------------------------------------------
-- Privileges (functions in bus are executable by nobody until granted, migration 20261126000100)
-- ---------------------------------------------------------------------------------------------------------------
revoke execute on function
  bus.begin_file(uuid, text, text, integer), bus.file_chunk_guard(),
  bus.seal_file(uuid, text, bigint, bigint, text, text, integer, bytea, boolean), bus.abort_file(uuid),
  bus.file_live_until(uuid, timestamptz), bus.delete_file(uuid, uuid), bus.use_files(uuid, uuid[]),
  bus.remember_provider_file(uuid, text, text, text), bus.forget_provider_file(uuid, text, text),
  bus.cleanup_files(integer, integer, interval), bus.take_provider_file_deletions(integer, integer),
  bus.finish_provider_file_deletion(bigint, boolean, text)
  from public, anon, authenticated;
grant execute on function
  bus.begin_file(uuid, text, text, integer),
  bus.seal_file(uuid, text, bigint, bigint, text, text, integer, bytea, boolean), bus.abort_file(uuid),
  bus.file_live_until(uuid, timestamptz), bus.delete_file(uuid, uuid), bus.use_files(uuid, uuid[]),
  bus.remember_provider_file(uuid, text, text, text), bus.forget_provider_file(uuid, text, text),
  bus.cleanup_files(integer, integer, interval), bus.take_provider_file_deletions(integer, integer),
  bus.finish_provider_file_deletion(bigint, boolean, text)
  to service_role;
grant execute on function bus.file_live_until(uuid, timestamptz) to authenticated;
