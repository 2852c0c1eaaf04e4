-- Operations, part 1: the routing state the `ops` function reads and the per-user limits it writes (CONTRACT.md
-- §9, §10, §12). The routing work (retries, circuit breakers, fallbacks, concurrency leases, rate limits) fills these
-- tables; operations only reads the first two, so they are created here with `if not exists` in the shape agreed
-- with it, and whichever migration runs first defines them. Empty tables are fine: the metrics then show nothing.

create table if not exists bus.routes (
  provider text not null,
  model text not null,
  state text not null default 'closed' check (state in ('closed', 'open', 'half_open')),
  consecutive_failures integer not null default 0,
  open_until timestamptz,
  updated_at timestamptz not null default now(),
  primary key (provider, model)
);
comment on table bus.routes is
  'Circuit breaker state per route (a provider and a model), shared by every function instance (CONTRACT.md §9).';
revoke all on bus.routes from public, anon, authenticated;
grant all on bus.routes to service_role;

create table if not exists bus.provider_leases (
  provider text not null,
  transaction_id uuid not null,
  expires_at timestamptz not null
);
comment on table bus.provider_leases is
  'Provider calls in flight (one row per call holding a concurrency slot until expires_at; CONTRACT.md §9).';
create index if not exists provider_leases_provider_expires on bus.provider_leases (provider, expires_at);
revoke all on bus.provider_leases from public, anon, authenticated;
grant all on bus.provider_leases to service_role;

create table if not exists bus.user_limits (
  user_id uuid primary key,
  requests_per_minute integer not null check (requests_per_minute >= 0),
  updated_at timestamptz not null default now()
);
comment on table bus.user_limits is
  'Per-user request limit overriding MESSAGE_BUS_USER_RPM (0 = unlimited), set through PUT /ops/limits/<user_id> (CONTRACT.md §10, §12).';
revoke all on bus.user_limits from public, anon, authenticated;
grant all on bus.user_limits to service_role;

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
