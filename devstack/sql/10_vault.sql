-- Platform bootstrap, part 2: a local stand-in for Supabase Vault.
-- Facts copied: ../shared/reference/supabase-platform.md §2.5 (supabase/vault 0.3.0: vault.secrets with a unique
-- name, the vault.decrypted_secrets view, vault.create_secret / vault.update_secret signatures).
-- The real Vault encrypts with pgsodium; this stand-in stores the secret as given (decrypted_secret = secret),
-- which is what §2.5 prescribes for a machine without the C extension.

create schema if not exists vault;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;
comment on table vault.secrets is 'Local stand-in for supabase_vault secrets (stored unencrypted on the local stack only).';

create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;

create or replace function vault.create_secret(
  new_secret text, new_name text = null, new_description text = '', new_key_id uuid = null
) returns uuid language plpgsql security definer set search_path = '' as $$
declare
  rec record;
begin
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning * into rec;
  return rec.id;
end $$;

create or replace function vault.update_secret(
  secret_id uuid, new_secret text = null, new_name text = null, new_description text = null, new_key_id uuid = null
) returns void language plpgsql security definer set search_path = '' as $$
begin
  update vault.secrets set
    secret = coalesce(new_secret, secret),
    name = coalesce(new_name, name),
    description = coalesce(new_description, description),
    key_id = coalesce(new_key_id, key_id),
    updated_at = now()
  where id = secret_id;
end $$;

revoke all on schema vault from public;
revoke all on all tables in schema vault from public;
revoke execute on all functions in schema vault from public;
grant usage on schema vault to service_role;
grant select on vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid) to service_role;
