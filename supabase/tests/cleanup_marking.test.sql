-- pgTAP tests of migration 20261126000800 (cleanup marking, issue #17): the checksum constraints accept exactly what
-- the regular expression they replace accepted, the ops expiry trigger stands aside while expire_messages runs, and
-- a round that deletes the last expired payloads marks their rows too (a bus whose messages expire every second
-- would otherwise never get to marking).
-- (Marking itself: watcher_cleanup.test.sql; the ops counts of expiries: ops.test.sql.) One transaction, rolled back.

begin;
set local search_path = public, extensions;
select plan(7);

-- A failed message whose checksum columns the probes below set, one savepoint each.
do $$
declare v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(gen_random_uuid(), 'chat', 'kimi', 'pgtap-marking', null, null, 3600);
  perform bus.fail_message(v_id, '{"code": "pgtap", "message": "x"}');
  perform set_config('test.id', v_id::text, true);
end $$;

create temp table probes (v text, column_name text, old_accepts boolean, accepted boolean) on commit drop;
do $$
declare
  v text;
  c text;
  v_ok boolean;
begin
  foreach v in array array[
    'sha256:' || repeat('0123456789abcdef', 4), 'sha256:' || repeat('a', 63), 'sha256:' || repeat('a', 65),
    'sha256:' || repeat('A', 64), 'sha256:' || repeat('a', 63) || E'\n', 'sha256:' || repeat('a', 62) || 'é',
    'sha256:' || repeat('a', 63) || 'g', 'Sha256:' || repeat('a', 64), 'sha256' || repeat('a', 65), '']
  loop
    foreach c in array array['checksum', 'stored_checksum', 'request_checksum'] loop
      begin
        execute format('update public.message_bus set %I = $1 where transaction_id = $2', c)
          using v, current_setting('test.id')::uuid;
        raise exception 'undo' using errcode = 'P0001'; -- accepted: undo the update, keep the outcome
      exception
        when check_violation then v_ok := false;
        when raise_exception then v_ok := true;
      end;
      insert into probes values (v, c, v ~ '^sha256:[0-9a-f]{64}$', v_ok);
    end loop;
  end loop;
end $$;

select is((select count(*)::int from probes where accepted is distinct from old_accepts), 0,
  'the checksum constraints accept exactly the strings ^sha256:[0-9a-f]{64}$ matches');
select is((select count(*)::int from probes where accepted), 3, 'one probe of the ten is a checksum, in each column');
select is((select count(*)::int from pg_constraint where conrelid = 'public.message_bus'::regclass
            and pg_get_constraintdef(oid) like '%{64}%'), 0,
  'no constraint of message_bus runs a bounded repetition (slow in Postgres''s regex engine, on every update)');
select ok((select pg_get_triggerdef(oid) from pg_trigger where tgname = 'message_bus_ops_expiry') like '%bus.expiry_counted%',
  'the ops expiry trigger stands aside while expire_messages counts its own batches');

-- One round: the payloads, then the rows, in the same call.
create function pg_temp.completed() returns uuid language plpgsql as $$
declare
  v_id uuid;
begin
  select transaction_id into v_id from bus.begin_message(gen_random_uuid(), 'chat', 'kimi', 'pgtap-marking', null, null, 3600);
  perform bus.append_chunk(v_id, 0, '\x7b7d'::bytea);
  perform bus.complete_message(v_id, 2, 2, 'none', 'sha256:' || repeat('a', 64), 1, 'stop', null, 'm', 1, 1);
  return v_id;
end $$;
do $$ begin
  perform bus.delete_expired_payloads(100000, 600000);
  perform bus.expire_messages(100000, 600000);
  perform set_config('test.r1', pg_temp.completed()::text, true);
  perform set_config('test.r2', pg_temp.completed()::text, true);
end $$;
update public.message_bus set expires_at = now() - interval '1 minute'
  where transaction_id in (current_setting('test.r1')::uuid, current_setting('test.r2')::uuid);
update public.message_bus_chunks set expires_at = now() - interval '1 minute'
  where transaction_id in (current_setting('test.r1')::uuid, current_setting('test.r2')::uuid);
create temp table round on commit drop as
  select bus.run_cleanup('30 days', '15 minutes', 100, 5000) as r;
select is((select (r ->> 'payload_chunks_deleted')::int from round), 2, 'a round deletes the expired payloads');
select is((select (r ->> 'expired')::int from round), 2, 'and marks their rows in the same round');
select is((select count(*)::int from public.message_bus
            where transaction_id in (current_setting('test.r1')::uuid, current_setting('test.r2')::uuid)
              and status = 'expired' and payload_deleted_at is not null), 2, 'both rows are marked expired');

select * from finish();
rollback;
