-- Platform bootstrap, part 3: the database side of Supabase Realtime Broadcast.
-- Facts copied: ../shared/reference/supabase-platform.md §3.1 (realtime.messages, realtime.send, realtime.send_binary,
-- realtime.broadcast_changes, realtime.topic), §3.2 (RLS on realtime.messages), §3.3 (the supabase_realtime
-- publication) and §8.3 (stand-in delivery: an AFTER INSERT trigger that notifies the new row id).
-- Hosted Realtime streams inserts from the WAL; locally devstack/realtime/tap.ts LISTENs on the channel below.
-- NOTIFY is delivered at commit, in commit order, and dropped on rollback, which gives the same guarantees (§8.3).
-- Idempotent: applied on every start of the local stack.

create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;
comment on schema realtime is 'Supabase Realtime tenant schema (local stand-in, supabase-platform.md §3.1).';

-- §3.1 tables/messages.sql. Hosted Realtime creates daily partitions; a default partition is enough locally (§8.3).
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  id uuid not null default gen_random_uuid(),
  binary_payload bytea,
  constraint messages_payload_exclusive check ((payload is null) or (binary_payload is null)),
  constraint messages_pkey primary key (id, inserted_at)
) partition by range (inserted_at);
create table if not exists realtime.messages_default partition of realtime.messages default;
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;
alter table realtime.messages enable row level security;
grant insert, select, update on realtime.messages to anon, authenticated, service_role;
comment on table realtime.messages is
  'Broadcast messages and the RLS target of private-channel authorization (supabase-platform.md §3.1, §3.2). '
  'Local stand-in: one default partition instead of daily ones.';
comment on table realtime.messages_default is
  'Default partition of realtime.messages (local stand-in for the daily partitions of supabase-platform.md §3.1).';

-- §3.1 topic.sql.
create or replace function realtime.topic() returns text language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;
comment on function realtime.topic() is
  'The channel topic being authorized, for RLS policies on realtime.messages (supabase-platform.md §3.1, §3.2).';

-- §3.1 send.sql: private defaults to true; payload gets "id" unless it has one; errors become a WARNING.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void language plpgsql as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', SQLERRM;
  end;
end;
$$;
comment on function realtime.send(jsonb, text, text, boolean) is
  'Broadcast a JSON payload to topic once the transaction commits (supabase-platform.md §3.1 send.sql).';

-- §3.1 send_binary.sql: the same with the payload in binary_payload.
create or replace function realtime.send_binary(payload bytea, event text, topic text, private boolean default true)
returns void language plpgsql as $$
declare
  generated_id uuid;
begin
  begin
    generated_id := gen_random_uuid();
    execute format('set local realtime.topic to %L', topic);
    insert into realtime.messages (id, binary_payload, event, topic, private, extension)
    values (generated_id, payload, event, topic, private, 'broadcast');
  exception when others then
    raise warning 'WarnSendingBroadcastMessage: %', SQLERRM;
  end;
end;
$$;
comment on function realtime.send_binary(bytea, text, text, boolean) is
  'Broadcast a binary payload to topic once the transaction commits (supabase-platform.md §3.1 send_binary.sql).';

-- §3.1 broadcast_changes: a row-level trigger helper; private by default through realtime.send.
create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void language plpgsql as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
    row_data := jsonb_build_object(
      'old_record', old, 'record', new, 'operation', operation, 'table', table_name, 'schema', table_schema
    );
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
exception when others then
  raise exception 'Failed to process the row: %', SQLERRM;
end;
$$;
comment on function realtime.broadcast_changes(text, text, text, text, text, record, record, text) is
  'Broadcast a row change {old_record, record, operation, table, schema} from a trigger '
  '(supabase-platform.md §3.1).';

-- §8.3 stand-in delivery path. The notification carries the inserted row, as the WAL record hosted Realtime reads
-- does; a row too large for a pg_notify payload (limit 8000 bytes) is sent as id and inserted_at only, and the
-- server reads the committed row by primary key. Authorization probe rows are rolled back, so never notified.
create or replace function realtime.stand_in_notify_message() returns trigger language plpgsql as $$
declare
  v_row text := json_build_object(
    'id', new.id, 'inserted_at', new.inserted_at, 'topic', new.topic, 'event', new.event, 'private', new.private,
    'payload_json', new.payload::text, 'binary_payload_hex', encode(new.binary_payload, 'hex')
  )::text;
begin
  perform pg_notify(
    'realtime_stand_in_messages',
    case when octet_length(v_row) <= 7999 then v_row
         else json_build_object('id', new.id, 'inserted_at', new.inserted_at)::text end
  );
  return null;
end;
$$;
comment on function realtime.stand_in_notify_message() is
  'Local stand-in only: notify devstack/realtime of a new realtime.messages row at commit (supabase-platform.md §8.3).';

create or replace trigger stand_in_notify_message after insert on realtime.messages
  for each row execute function realtime.stand_in_notify_message();
comment on trigger stand_in_notify_message on realtime.messages is
  'Local stand-in only: commit-ordered delivery of broadcasts through NOTIFY (supabase-platform.md §8.3).';

-- §3.3: Postgres Changes reads this publication; tables opt in with "alter publication ... add table".
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    -- The local cluster runs with wal_level=replica; silence the "insufficient to publish" warning.
    perform set_config('client_min_messages', 'error', true);
    create publication supabase_realtime;
  end if;
end $$;
comment on publication supabase_realtime is
  'Tables opted in to Realtime Postgres Changes (supabase-platform.md §3.3). The local stand-in serves Broadcast only.';
