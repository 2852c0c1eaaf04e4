-- Operations, part 1: the per-user limit write of PUT /ops/limits/<user_id> and the time-to-first-token column the
-- TTFT histogram reads (CONTRACT.md §10, §12). The routing state the `ops` function reads (bus.routes,
-- bus.provider_leases, bus.user_limits) is created by 20261126000200_routing.sql.

-- Time to first token of a streamed answer, filled by the streaming work; the TTFT histogram reads it.
alter table public.message_bus add column if not exists ttft_ms integer check (ttft_ms >= 0);
comment on column public.message_bus.ttft_ms is
  'Streamed answers: milliseconds from the provider request to its first content event; null otherwise.';

-- set_user_limit: the one write of PUT /ops/limits/<user_id>.
create function bus.set_user_limit(p_user_id uuid, p_requests_per_minute integer)
returns bus.user_limits language plpgsql security definer set search_path = '' as $$
declare
  v_row bus.user_limits;
begin
  if p_requests_per_minute is null or p_requests_per_minute < 0 then
    raise exception 'requests_per_minute must be >= 0, got %', p_requests_per_minute using errcode = '22023';
  end if;
  insert into bus.user_limits as l (user_id, requests_per_minute, updated_at)
  values (p_user_id, p_requests_per_minute, now())
  on conflict (user_id) do update set requests_per_minute = excluded.requests_per_minute, updated_at = now()
  returning * into v_row;
  return v_row;
end $$;
comment on function bus.set_user_limit(uuid, integer) is
  'Sets (or replaces) one user''s requests-per-minute limit; 0 means unlimited. Returns the stored row.';
revoke execute on function bus.set_user_limit(uuid, integer) from public, anon, authenticated;
grant execute on function bus.set_user_limit(uuid, integer) to service_role;
