-- Concurrency slots without a lock (issue 17).
--
-- bus.acquire_provider_slot took a transaction-scoped advisory lock per provider, deleted expired leases, counted
-- the provider's leases and inserted one; complete_message deleted it. Under load that cost more than the rest of
-- the invoke's SQL together: every begin_message of the provider waited for the lock (4.7 ms mean under 20 clients,
-- pg_stat_statements), and every count walked the index entries of all leases deleted since the last vacuum (a third
-- of begin_message's CPU with one client, perf; bench/RESULTS.md "Invoke path").
--
-- Now a provider has <NAME>_MAX_CONCURRENCY rows in bus.provider_slots, made once, and a call takes a free one
-- with `for update skip locked` (pgmq's claim): no two transactions wait for each other, and taking and freeing a
-- slot updates a row in place (HOT, no index entry) instead of inserting and deleting one. (Only the very first
-- calls of a provider, which make its rows, wait for each other's inserts to commit.) At most p_max slots of a
-- provider (slots 0 .. p_max-1) can be held, so the limit stays exact while the setting stands; when it is lowered,
-- calls holding slots at or past the new limit finish without being counted against it.
--
-- bus.provider_leases stays, as a view of the held slots with the same columns: what reads it (ops, in-flight
-- counts) and what frees or renews leases through it (complete_message, fail_message, renew_lease, claim_orphans,
-- reap_pending) keep working unchanged; a delete through it frees the slot and an insert holds a free one
-- (INSTEAD OF triggers), an update of expires_at renews it.

create table bus.provider_slots (
  provider text not null,
  slot integer not null check (slot >= 0),
  transaction_id uuid,
  expires_at timestamptz,
  primary key (provider, slot),
  constraint provider_slots_held check ((transaction_id is null) = (expires_at is null))
) with (fillfactor = 50); -- room on each page for the in-place (HOT) updates of taking and freeing
comment on table bus.provider_slots is
  'The concurrency slots of providers with <NAME>_MAX_CONCURRENCY (slots 0 .. max-1, made on first use): held by transaction_id until expires_at (a slot past it belongs to a dead worker and is free).';
revoke all on bus.provider_slots from public, anon, authenticated;
grant all on bus.provider_slots to service_role;

-- The leases in flight keep their slots.
insert into bus.provider_slots (provider, slot, transaction_id, expires_at)
select provider, (row_number() over (partition by provider order by expires_at) - 1)::integer, transaction_id, expires_at
  from bus.provider_leases;
drop table bus.provider_leases;

create view bus.provider_leases as
  select s.provider, s.transaction_id, s.expires_at from bus.provider_slots s
   where s.transaction_id is not null and s.expires_at > now();
comment on view bus.provider_leases is
  'The concurrency slots held now: one row per provider call in flight under <NAME>_MAX_CONCURRENCY (a slot past its expires_at belongs to a dead worker and is free). Deleting a row frees its slot, inserting one holds a free slot, updating expires_at renews it.';
revoke all on bus.provider_leases from public, anon, authenticated;
grant all on bus.provider_leases to service_role;

create function bus.free_provider_slot() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update bus.provider_slots set transaction_id = null, expires_at = null
   where provider = old.provider and transaction_id = old.transaction_id;
  return old;
end $$;
comment on function bus.free_provider_slot() is
  'INSTEAD OF DELETE on bus.provider_leases: frees the slot instead of deleting its row.';
revoke execute on function bus.free_provider_slot() from public, anon, authenticated, service_role;
create trigger provider_leases_free instead of delete on bus.provider_leases
  for each row execute function bus.free_provider_slot();

-- A lease recorded directly (operators, tests): the provider's first free slot, or a new one after the last.
create function bus.hold_provider_slot() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update bus.provider_slots s set transaction_id = new.transaction_id, expires_at = new.expires_at
   where s.provider = new.provider and s.slot = (
     select f.slot from bus.provider_slots f
      where f.provider = new.provider and (f.transaction_id is null or f.expires_at <= now())
      order by f.slot limit 1
      for update skip locked);
  if not found then
    insert into bus.provider_slots (provider, slot, transaction_id, expires_at)
    select new.provider, coalesce(max(x.slot) + 1, 0), new.transaction_id, new.expires_at
      from bus.provider_slots x where x.provider = new.provider;
  end if;
  return new;
end $$;
comment on function bus.hold_provider_slot() is
  'INSTEAD OF INSERT on bus.provider_leases: holds the provider''s first free slot (or a new one) for the lease.';
revoke execute on function bus.hold_provider_slot() from public, anon, authenticated, service_role;
create trigger provider_leases_hold instead of insert on bus.provider_leases
  for each row execute function bus.hold_provider_slot();

-- Takes a free slot (or renews the one the message holds). Never waits: a slot another transaction is taking is
-- skipped.
create or replace function bus.acquire_provider_slot(p_provider text, p_transaction_id uuid, p_max integer, p_lease_seconds integer)
returns boolean language plpgsql security definer set search_path = '' as $$
begin
  for attempt in 1 .. 2 loop
    update bus.provider_slots s
       set transaction_id = p_transaction_id, expires_at = now() + make_interval(secs => p_lease_seconds)
     where s.provider = p_provider and s.slot = (
       select f.slot from bus.provider_slots f
        where f.provider = p_provider and f.slot < p_max
          and (f.transaction_id is null or f.expires_at <= now() or f.transaction_id = p_transaction_id)
        order by f.transaction_id is distinct from p_transaction_id, f.slot -- the message's own slot first
        limit 1
        for update skip locked);
    if found then
      return true;
    end if;
    -- None free: all p_max exist and are held (at capacity, the usual case here), or some are missing (first use,
    -- or a raised limit: make them and look again). Counted first: an insert meeting a slot another transaction is
    -- taking would wait for it.
    exit when attempt = 2
      or (select count(*) from bus.provider_slots x where x.provider = p_provider and x.slot < p_max) >= p_max;
    insert into bus.provider_slots (provider, slot)
    select p_provider, g from generate_series(0, p_max - 1) g
    on conflict do nothing;
  end loop;
  return false;
end $$;
comment on function bus.acquire_provider_slot(text, uuid, integer, integer) is
  'Takes a concurrency slot of p_provider (at most p_max in flight across all instances) for p_lease_seconds, or renews the one the message holds; false when all are held by live leases. Never waits on another transaction (skip locked).';

-- One statement per release, as before (the view's trigger would run once per freed slot).
create or replace function bus.release_provider_slot(p_provider text, p_transaction_id uuid)
returns void language sql security definer set search_path = '' as $$
  update bus.provider_slots set transaction_id = null, expires_at = null
   where provider = p_provider and transaction_id = p_transaction_id;
$$;
comment on function bus.release_provider_slot(text, uuid) is 'Frees the concurrency slot a message holds of a provider.';
