-- Platform bootstrap, part 1: what hosted Supabase provides before any project migration runs.
-- Facts copied: ../shared/reference/supabase-platform.md §7 (roles, auth.uid/role/jwt reading request.jwt.claims).
-- Idempotent: applied on every start of the local stack.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end $$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to service_role;
alter default privileges in schema public grant all on functions to service_role;
alter default privileges in schema public grant all on sequences to service_role;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

-- supabase/auth migrations 20220224000811 and 20220531120530 (§7).
create or replace function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
comment on function auth.uid() is 'Stand-in for Supabase Auth: the sub claim of the request JWT (supabase-platform.md §7).';

create or replace function auth.role() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
comment on function auth.role() is 'Stand-in for Supabase Auth: the role claim of the request JWT (supabase-platform.md §7).';

create or replace function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;
comment on function auth.jwt() is 'Stand-in for Supabase Auth: the request JWT claims (supabase-platform.md §7).';

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- The Supabase CLI records applied migrations here (supabase/cli pkg/migration/history.go).
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
);
