-- bus_messages_purged_total{status}: finished messages deleted by cleanup (purged after their retention), by the
-- status they had. The bus_messages gauge drops by them at the next fold; without this counter nothing said where
-- they went (and a test comparing the gauge before and after its own invokes could not tell a purge meanwhile from a
-- message missing). Counted by the statement trigger that already records the purge for the gauge: cleanup's path,
-- never the invoke's.
create or replace function bus.ops_note_purge() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bus.ops_status_moves (from_status, to_status, n)
  select g.status, null, count(*) from gone g where g.status <> 'pending' group by g.status;
  insert into bus.ops_event_totals as t (metric, labels, value)
  select 'messages_purged', jsonb_build_object('status', g.status), count(*)
    from gone g where g.status <> 'pending' group by g.status
  on conflict (metric, labels) do update set value = t.value + excluded.value;
  return null;
end $$;
comment on function bus.ops_note_purge() is
  'Statement trigger: finished messages were deleted (purged): a move for the bus_messages gauge (applied at the next fold) and bus_messages_purged_total at once.';
revoke execute on function bus.ops_note_purge() from public, anon, authenticated;
