-- Operations, part 2: error groups an operator can work through (CONTRACT.md §12, seed 004 §2.5).
--
-- Every failed message and every watcher finding of severity `error` (in an observation of verdict `error`) is one
-- occurrence; occurrences with the same fingerprint (code, provider and the message with ids, timestamps and numbers
-- removed, SHA-256) make one group, with a count, first and last seen, the latest sample transaction ids and a
-- status an operator sets to `resolved`; a later occurrence reopens it.
--
-- The failure path and the observation path only append an occurrence row (a trigger, one insert: no row that
-- concurrent failures would all update, so an outage that fails a thousand calls a second does not queue them on
-- one group's row lock). bus.fold_error_groups moves the occurrences into their groups, exactly once (`delete ...
-- returning` sees committed rows only), under an advisory lock; it runs with every metrics fold (pg_cron) and before
-- every read of the groups, so a read is never staler than the last commit.
-- A watcher finding `message_failed` is the failure itself, already grouped by its own code: it is not counted twice.

create table bus.error_groups (
  fingerprint text primary key check (fingerprint ~ '^[0-9a-f]{64}$'),
  source text not null check (source in ('failure', 'watcher')),
  code text not null,
  provider text not null,
  message text not null,
  example text,
  count bigint not null check (count >= 0),
  first_seen timestamptz not null,
  last_seen timestamptz not null,
  status text not null default 'open' check (status in ('open', 'resolved')),
  resolved_at timestamptz,
  reopened_count integer not null default 0,
  sample_transaction_ids uuid[] not null default '{}',
  investigation jsonb,
  investigated_at timestamptz
);
comment on table bus.error_groups is
  'Failures and watcher error findings grouped by fingerprint (code, provider, normalised message); open until an operator resolves them, reopened by a new occurrence.';
comment on column bus.error_groups.message is 'The normalised message the fingerprint covers (ids, timestamps and numbers replaced by <id>, <time>, <hex>, <n>).';
comment on column bus.error_groups.example is 'One message as it was first seen (at most 1000 characters).';
comment on column bus.error_groups.sample_transaction_ids is 'The five latest transactions of the group, newest first.';
comment on column bus.error_groups.investigation is
  'The optional model-written summary and suggested fix ({status, provider, model, summary, suggested_fix, usage}); null until investigated.';
create index error_groups_last_seen on bus.error_groups (last_seen desc);
revoke all on bus.error_groups from public, anon, authenticated;
grant select, update on bus.error_groups to service_role;

create table bus.error_occurrences (
  id bigint generated always as identity primary key,
  fingerprint text not null,
  source text not null,
  code text not null,
  provider text not null,
  message text not null,
  example text,
  transaction_id uuid,
  at timestamptz not null default clock_timestamp()
);
comment on table bus.error_occurrences is
  'Occurrences not yet folded into bus.error_groups (appended by triggers, emptied by bus.fold_error_groups).';
revoke all on bus.error_occurrences from public, anon, authenticated;
grant select on bus.error_occurrences to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Fingerprints
-- ---------------------------------------------------------------------------------------------------------------

-- Order matters: UUIDs and timestamps go before the hex and number rules would cut them into pieces.
create function bus.normalise_error_message(p_message text)
returns text language sql immutable parallel safe set search_path = '' as $$
  select left(btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    coalesce(p_message, ''),
    '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
    '\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?', '<time>', 'g'),
    '(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}', '<hex>', 'g'),
    '\d+(\.\d+)?', '<n>', 'g'),
    '\s+', ' ', 'g')), 500)
$$;
comment on function bus.normalise_error_message(text) is
  'An error message with what differs between occurrences removed: UUIDs (<id>), ISO timestamps (<time>), hex ids of 8+ characters (<hex>), numbers (<n>); whitespace collapsed, at most 500 characters.';

create function bus.error_fingerprint(p_code text, p_provider text, p_normalised_message text)
returns text language sql immutable parallel safe set search_path = '' as $$
  select encode(sha256(convert_to(
    coalesce(p_code, '') || chr(31) || coalesce(p_provider, '') || chr(31) || coalesce(p_normalised_message, ''),
    'UTF8')), 'hex')
$$;
comment on function bus.error_fingerprint(text, text, text) is
  'SHA-256 (hex) of code, provider and normalised message, separated by U+001F: the key of an error group.';

-- ---------------------------------------------------------------------------------------------------------------
-- Occurrences
-- ---------------------------------------------------------------------------------------------------------------

create function bus.add_error_occurrence(
  p_source text, p_code text, p_provider text, p_message text, p_transaction_id uuid
) returns void language plpgsql security definer set search_path = '' as $$
declare
  v_code text := left(coalesce(nullif(p_code, ''), 'unknown'), 200);
  v_provider text := left(coalesce(p_provider, ''), 200);
  v_message text := bus.normalise_error_message(p_message);
begin
  insert into bus.error_occurrences (fingerprint, source, code, provider, message, example, transaction_id)
  values (bus.error_fingerprint(v_code, v_provider, v_message), p_source, v_code, v_provider, v_message,
          left(p_message, 1000), p_transaction_id);
end $$;
comment on function bus.add_error_occurrence(text, text, text, text, uuid) is
  'Appends one occurrence (a failure or a watcher error finding) with its fingerprint, for bus.fold_error_groups.';

create function bus.group_failure() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform bus.add_error_occurrence('failure', new.error ->> 'code', coalesce(new.error ->> 'provider', new.provider),
                                   new.error ->> 'message', new.transaction_id);
  return null;
end $$;
comment on function bus.group_failure() is 'Trigger: a message that failed is an occurrence of its error group.';

create trigger message_bus_error_group
  after update of status on public.message_bus
  for each row when (new.status = 'failed' and old.status is distinct from 'failed')
  execute function bus.group_failure();
comment on trigger message_bus_error_group on public.message_bus is
  'Every failure belongs to an error group (CONTRACT.md §12); the success path never runs it.';

create function bus.group_error_observation() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_provider text;
begin
  select provider into v_provider from public.message_bus where transaction_id = new.transaction_id;
  perform bus.add_error_occurrence('watcher', f.value ->> 'code', v_provider, f.value ->> 'message', new.transaction_id)
     from jsonb_array_elements(new.findings) as f
    where coalesce(f.value ->> 'severity', 'error') = 'error' and f.value ->> 'code' is distinct from 'message_failed';
  return null;
end $$;
comment on function bus.group_error_observation() is
  'Trigger: each error-severity finding of an observation of verdict error is an occurrence of its group (message_failed excepted: the failure is grouped already).';

create trigger message_bus_observations_error_group
  after insert on public.message_bus_observations
  for each row when (new.verdict = 'error')
  execute function bus.group_error_observation();
comment on trigger message_bus_observations_error_group on public.message_bus_observations is
  'Every watcher finding of verdict error belongs to an error group (CONTRACT.md §12).';

-- ---------------------------------------------------------------------------------------------------------------
-- Folding and resolving
-- ---------------------------------------------------------------------------------------------------------------

-- Returns {occurrences, created, reopened}. New and reopened groups are announced as event `error_group` on the
-- private topic `ops` (service role only; migration 20261126000430).
create function bus.fold_error_groups() returns jsonb
language plpgsql security definer set search_path = '' as $$
declare
  v_changed jsonb;
  v_occurrences bigint;
  v_group jsonb;
begin
  perform pg_advisory_xact_lock(hashtext('bus.fold_error_groups'));
  with occ as (
    delete from bus.error_occurrences returning *
  ), g as (
    select o.fingerprint, (array_agg(o.source order by o.id))[1] as source, (array_agg(o.code order by o.id))[1] as code,
           (array_agg(o.provider order by o.id))[1] as provider, (array_agg(o.message order by o.id))[1] as message,
           (array_agg(o.example order by o.id))[1] as example, count(*) as n, min(o.at) as first_at, max(o.at) as last_at,
           (array_agg(o.transaction_id order by o.id desc) filter (where o.transaction_id is not null))[1:5] as samples
      from occ o group by o.fingerprint
  ), before as (
    select g.fingerprint, e.fingerprint is null as creating,
           coalesce(e.status = 'resolved' and g.last_at > e.resolved_at, false) as reopening
      from g left join bus.error_groups e on e.fingerprint = g.fingerprint
  ), up as (
    insert into bus.error_groups as e (fingerprint, source, code, provider, message, example, count, first_seen,
                                       last_seen, sample_transaction_ids)
    select g.fingerprint, g.source, g.code, g.provider, g.message, g.example, g.n, g.first_at, g.last_at,
           coalesce(g.samples, '{}') from g
    on conflict (fingerprint) do update set
      count = e.count + excluded.count,
      last_seen = greatest(e.last_seen, excluded.last_seen),
      sample_transaction_ids = (excluded.sample_transaction_ids || e.sample_transaction_ids)[1:5],
      reopened_count = e.reopened_count
        + case when e.status = 'resolved' and excluded.last_seen > e.resolved_at then 1 else 0 end,
      resolved_at = case when e.status = 'resolved' and excluded.last_seen > e.resolved_at then null else e.resolved_at end,
      status = case when e.status = 'resolved' and excluded.last_seen > e.resolved_at then 'open' else e.status end
    returning e.*
  )
  select (select coalesce(sum(n), 0) from g),
         coalesce(jsonb_agg(jsonb_build_object(
           'event', case when b.creating then 'new' else 'reopened' end, 'fingerprint', up.fingerprint,
           'code', up.code, 'provider', up.provider, 'message', up.message, 'count', up.count, 'status', up.status,
           'first_seen', up.first_seen, 'last_seen', up.last_seen)) filter (where b.creating or b.reopening), '[]')
    into v_occurrences, v_changed
    from up join before b on b.fingerprint = up.fingerprint;
  for v_group in select value from jsonb_array_elements(v_changed) loop
    perform realtime.send(v_group, 'error_group', 'ops', true);
  end loop;
  return jsonb_build_object('occurrences', coalesce(v_occurrences, 0), 'changed', jsonb_array_length(v_changed),
                            'groups', v_changed);
end $$;
comment on function bus.fold_error_groups() is
  'Moves the pending occurrences into their groups (count, last seen, samples; a resolved group with a newer occurrence reopens) and announces new and reopened groups on the ops topic; returns {occurrences, changed, groups}.';

create function bus.resolve_error_group(p_fingerprint text)
returns setof bus.error_groups language plpgsql security definer set search_path = '' as $$
begin
  -- Occurrences committed before the resolve are folded first, so they cannot reopen the group afterwards.
  perform bus.fold_error_groups();
  return query
    update bus.error_groups set status = 'resolved', resolved_at = clock_timestamp()
     where fingerprint = p_fingerprint
    returning *;
end $$;
comment on function bus.resolve_error_group(text) is
  'Marks one error group resolved (after folding the occurrences committed so far); no row when there is no such group.';

create function bus.record_error_investigation(p_fingerprint text, p_investigation jsonb)
returns boolean language sql security definer set search_path = '' as $$
  with done as (
    update bus.error_groups set investigation = p_investigation, investigated_at = clock_timestamp()
     where fingerprint = p_fingerprint and investigation is null
    returning 1)
  select exists (select 1 from done);
$$;
comment on function bus.record_error_investigation(text, jsonb) is
  'Stores the one model-written investigation of a group (only the first; later calls return false).';

revoke execute on function bus.normalise_error_message(text), bus.error_fingerprint(text, text, text),
  bus.add_error_occurrence(text, text, text, text, uuid), bus.group_failure(), bus.group_error_observation(),
  bus.fold_error_groups(), bus.resolve_error_group(text), bus.record_error_investigation(text, jsonb)
  from public, anon, authenticated;
grant execute on function bus.normalise_error_message(text), bus.error_fingerprint(text, text, text),
  bus.fold_error_groups(), bus.resolve_error_group(text), bus.record_error_investigation(text, jsonb)
  to service_role;
