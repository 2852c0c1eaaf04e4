-- Push delivery: whenever a message's status changes, its owner's agents get the transaction ID (and the metadata
-- needed to decide whether to fetch) on the private Realtime channel `bus:<owner uuid>`, event `message`
-- (CONTRACT.md §6). Realtime is a hint, the table is the truth: clients that were disconnected catch up through
-- `GET /message-fetch?since=` (CONTRACT.md §5). The payload itself never goes over Realtime.
-- Uses only what hosted Supabase provides in schema `realtime` (realtime.send, realtime.topic(), RLS on
-- realtime.messages: ../shared/reference/supabase-platform.md §3.1, §3.2); locally devstack/sql/30_realtime.sql
-- installs the same objects.

-- §3.1: realtime.send(payload, event, topic, private) inserts into realtime.messages; hosted Realtime broadcasts the
-- committed row (commit order), so an event is never sent for a rolled-back change. It adds an "id" key to the
-- payload and turns its own errors into a WARNING, so a Realtime problem never fails the status change itself.
-- security definer: the insert into realtime.messages runs as the function's owner, whatever role changed the
-- row (service_role through the bus.* functions, or a maintenance job), so user-facing RLS on
-- realtime.messages does not apply to it.
create or replace function bus.broadcast_status_change() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'transaction_id', new.transaction_id,
      'status', new.status,
      'tool', new.tool,
      'provider', new.provider,
      'payload_size_bytes', new.payload_size_bytes,
      'checksum', new.checksum,
      'finish_reason', new.finish_reason,
      'updated_at', new.updated_at
    ),
    'message',
    'bus:' || new.owner_id::text,
    true
  );
  return null;
end $$;
comment on function bus.broadcast_status_change() is
  'Trigger: broadcasts a message''s new status (never its payload) as event "message" on the private Realtime topic bus:<owner_id>.';

create trigger message_bus_broadcast_insert
  after insert on public.message_bus
  for each row execute function bus.broadcast_status_change();
comment on trigger message_bus_broadcast_insert on public.message_bus is
  'A new message (status pending) is announced to its owner on bus:<owner_id>.';

create trigger message_bus_broadcast_status
  after update of status on public.message_bus
  for each row when (old.status is distinct from new.status)
  execute function bus.broadcast_status_change();
comment on trigger message_bus_broadcast_status on public.message_bus is
  'Every status change (completed, failed, expired) is announced to the owner on bus:<owner_id>.';

-- §3.2: joining a private channel inserts probe rows (topic = the channel's sub-topic) and reads them back as the
-- user with realtime.topic() set to that sub-topic; a row seen means "may receive". Only the owner may read
-- bus:<own uuid>; anon has no policy at all. The row's own topic is checked too, so that setting realtime.topic
-- by hand does not open other topics' rows.
create policy "bus owners receive their events" on realtime.messages
  for select to authenticated
  using (
    extension = 'broadcast'
    and topic = (select realtime.topic())
    and topic = 'bus:' || (select auth.uid())::text
  );
comment on policy "bus owners receive their events" on realtime.messages is
  'Only the owner may join the private channel bus:<uid> and receive its broadcasts (supabase-platform.md §3.2).';

-- §3.2: a client broadcast on a private channel is allowed only if an INSERT into realtime.messages passes RLS.
-- Nobody may send on bus:* topics: the events come from the database alone. There is no permissive insert policy
-- for them, and this restrictive one keeps it so even if the project later adds a broad insert policy.
create policy "nobody sends on bus topics" on realtime.messages
  as restrictive
  for insert to anon, authenticated
  with check (left(topic, 4) <> 'bus:');
comment on policy "nobody sends on bus topics" on realtime.messages is
  'bus:* topics carry database events only: users may never broadcast on them (supabase-platform.md §3.2).';
