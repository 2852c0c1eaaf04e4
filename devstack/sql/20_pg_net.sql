-- Platform bootstrap, part 3: a local stand-in for the pg_net extension (0.20.4) and Supabase Database Webhooks.
-- Facts copied: ../shared/reference/supabase-platform.md §2.1 (SQL API), §2.2 (unlogged tables), §2.3 (wake at
-- commit), §2.4 (supabase_functions.http_request) and §8.2 (the stand-in blueprint).
-- There is no pg_net package for Debian (§0.3), so the requests are performed by devstack/pg_net/worker.ts, which
-- LISTENs on 'pg_net_wake'. NOTIFY is delivered only at commit and dropped on rollback, like pg_net's wake (§2.3).
-- Idempotent: applied on every start of the local stack.

create schema if not exists net;
comment on schema net is 'Local stand-in for the pg_net 0.20.4 schema (supabase-platform.md §2).';

do $$
begin
  if to_regtype('net.http_method') is null then
    create domain net.http_method as text
      check (value ilike 'get' or value ilike 'post' or value ilike 'delete');
  end if;
  if to_regtype('net.request_status') is null then
    create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
  end if;
  if to_regtype('net.http_response') is null then
    create type net.http_response as (status_code integer, headers jsonb, body text);
  end if;
  if to_regtype('net.http_response_result') is null then
    create type net.http_response_result as (status net.request_status, message text, response net.http_response);
  end if;
end $$;
comment on domain net.http_method is 'Local stand-in for pg_net: the methods the worker performs (supabase-platform.md §2.1).';
comment on type net.request_status is 'Local stand-in for pg_net: lifecycle states of a request (supabase-platform.md §2.1).';
comment on type net.http_response is 'Local stand-in for pg_net: a response from an HTTP server (supabase-platform.md §2.1).';
comment on type net.http_response_result is 'Local stand-in for pg_net: state wrapper around responses (supabase-platform.md §2.1).';

-- §2.2: both tables are unlogged and have no primary key; queued requests and responses are lost after a crash.
create unlogged table if not exists net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds int not null
);
comment on table net.http_request_queue is
  'Local stand-in for pg_net: pending requests, consumed in id order by devstack/pg_net/worker.ts (supabase-platform.md §2.2, §2.3).';

create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);
comment on table net._http_response is
  'Local stand-in for pg_net: one row per performed request, deleted after the worker ttl (supabase-platform.md §2.2, §2.3).';
comment on index net._http_response_created_idx is
  'Local stand-in for pg_net: the index on created used to expire responses (supabase-platform.md §2.2).';

-- §2.1: net._urlencode_string is a C function (curl_easy_escape) in pg_net: every UTF-8 byte outside
-- A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex).
create or replace function net._urlencode_string(string varchar) returns text
language sql immutable as $$
  select case when string is null then null else coalesce((
    select string_agg(
      case when b between 48 and 57 or b between 65 and 90 or b between 97 and 122 or b in (45, 46, 95, 126)
        then chr(b) else '%' || upper(lpad(to_hex(b), 2, '0')) end, '' order by i)
    from (
      select i, get_byte(convert_to(string, 'UTF8'), i) as b
      from generate_series(0, octet_length(convert_to(string, 'UTF8')) - 1) as i
    ) as bytes
  ), '') end
$$;
comment on function net._urlencode_string(varchar) is
  'Local stand-in for pg_net: URL-encodes a string like curl_easy_escape (supabase-platform.md §2.1).';

-- §2.1: net._encode_url_with_params_array is a C function (curl_url with CURLU_APPENDQUERY) in pg_net. This port
-- keeps what callers observe: the same error texts for bad URLs, an empty path becomes '/', an empty query is dropped,
-- params are appended with '&' before any fragment. It does not remove dot segments from the path.
create or replace function net._encode_url_with_params_array(url text, params_array text[]) returns text
language plpgsql immutable as $$
declare
  parts text[];
  scheme text;
  rest text;
  authority text;
  path text;
  query text;
  fragment text;
  pos int;
  param text;
begin
  if url is null or params_array is null then
    return null;
  end if;
  parts := regexp_match(url, '^([A-Za-z][A-Za-z0-9+.-]*):(.*)$');
  if parts is null then
    raise exception 'invalid URL "%": Bad scheme', url;
  end if;
  scheme := lower(parts[1]);
  rest := parts[2];
  -- The protocols of the libcurl pg_net links against (curl --version on Debian 12).
  if scheme <> all (array['dict', 'file', 'ftp', 'ftps', 'gopher', 'gophers', 'http', 'https', 'imap', 'imaps',
      'ldap', 'ldaps', 'mqtt', 'pop3', 'pop3s', 'rtmp', 'rtsp', 'scp', 'sftp', 'smb', 'smbs', 'smtp', 'smtps',
      'telnet', 'tftp']) then
    raise exception 'invalid URL "%": Unsupported URL scheme', url;
  end if;
  if url ~ '[[:space:][:cntrl:]]' then
    raise exception 'invalid URL "%": Malformed input to a URL function', url;
  end if;
  if left(rest, 2) <> '//' then
    raise exception 'invalid URL "%": Unsupported number of slashes following scheme', url;
  end if;
  rest := substr(rest, 3);
  pos := strpos(rest, '#');
  if pos > 0 then
    fragment := substr(rest, pos + 1);
    rest := left(rest, pos - 1);
  end if;
  pos := strpos(rest, '?');
  if pos > 0 then
    query := substr(rest, pos + 1);
    rest := left(rest, pos - 1);
  end if;
  pos := strpos(rest, '/');
  authority := case when pos > 0 then left(rest, pos - 1) else rest end;
  path := case when pos > 0 then substr(rest, pos) else '/' end;
  if authority = '' and scheme <> 'file' then
    raise exception 'invalid URL "%": No host part in the URL', url;
  end if;
  foreach param in array params_array loop
    continue when param is null;
    query := case
      when coalesce(query, '') = '' then param
      when right(query, 1) = '&' then query || param
      else query || '&' || param
    end;
  end loop;
  return scheme || '://' || authority || path
    || case when coalesce(query, '') <> '' then '?' || query else '' end
    || case when coalesce(fragment, '') <> '' then '#' || fragment else '' end;
end
$$;
comment on function net._encode_url_with_params_array(text, text[]) is
  'Local stand-in for pg_net: appends url-encoded params to a URL like curl_url (supabase-platform.md §2.1).';

-- §2.3 / §8.2: pg_net wakes its worker only when the calling transaction commits. NOTIFY has the same semantics
-- (delivered at commit, dropped on rollback, duplicates in one transaction folded into one).
create or replace function net.wake() returns void
language sql as $$
  select pg_notify('pg_net_wake', '')
$$;
comment on function net.wake() is
  'Local stand-in for pg_net: wakes devstack/pg_net/worker.ts at commit via NOTIFY pg_net_wake (supabase-platform.md §2.3, §8.2).';

-- §2.1: the worker is devstack/pg_net/worker.ts, which connects with application_name 'pg_net 0.20.4'.
create or replace function net.check_worker_is_up() returns void
language plpgsql as $$
begin
  if not exists (select 1 from pg_stat_activity where application_name ilike 'pg_net%') then
    raise exception using
      message = 'the pg_net background worker is not up',
      detail = 'the pg_net background worker is down due to an internal error and cannot process requests',
      hint = 'start the local stack (devstack/pg_net/worker.ts performs the requests)';
  end if;
end
$$;
comment on function net.check_worker_is_up() is
  'Local stand-in for pg_net: raises unless a devstack/pg_net/worker.ts connection is present (supabase-platform.md §2.1).';

-- §2.1: the request functions, exact signatures and defaults of pg_net 0.20.4. Each one queues one row, wakes the
-- worker at commit and returns the request id. On Supabase http_get and http_post are SECURITY DEFINER with
-- search_path = net (see the grants at the end of this section).
create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql security definer set search_path = net as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
    values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
    returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_get(text, jsonb, jsonb, int) is
  'Local stand-in for pg_net: queues a GET performed by devstack/pg_net/worker.ts after commit (supabase-platform.md §2.1).';

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql security definer set search_path = net as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  -- §2.1: only JSON is sent. A missing content-type is merged in; any other value than exactly
  -- 'application/json' is an error.
  select h.value into content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as h
    where lower(h.key) = 'content-type'
    limit 1;
  if content_type is null then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('POST', net._encode_url_with_params_array(url, params_array), headers, convert_to(body::text, 'UTF8'),
      timeout_milliseconds)
    returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_post(text, jsonb, jsonb, jsonb, int) is
  'Local stand-in for pg_net: queues a JSON POST performed by devstack/pg_net/worker.ts after commit (supabase-platform.md §2.1).';

create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
) returns bigint
language plpgsql as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into params_array
    from jsonb_each_text(params);
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('DELETE', net._encode_url_with_params_array(url, params_array), headers, convert_to(body::text, 'UTF8'),
      timeout_milliseconds)
    returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_delete(text, jsonb, jsonb, int, jsonb) is
  'Local stand-in for pg_net: queues a DELETE performed by devstack/pg_net/worker.ts after commit (supabase-platform.md §2.1).';

-- §2.4: Supabase creates this role for Database Webhooks; locally it only owns objects and never logs in.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
    create role supabase_functions_admin nologin noinherit createrole;
  end if;
end $$;
grant supabase_functions_admin to postgres;

-- §2.1: the end of pg_net's install script, then Supabase's changes to http_get and http_post.
grant usage on schema net to public;
grant all on all tables in schema net to public;
grant all on all sequences in schema net to public;
revoke all on function net.http_get(text, jsonb, jsonb, int) from public;
revoke all on function net.http_post(text, jsonb, jsonb, jsonb, int) from public;
grant execute on function net.http_get(text, jsonb, jsonb, int)
  to supabase_functions_admin, postgres, anon, authenticated, service_role;
grant execute on function net.http_post(text, jsonb, jsonb, jsonb, int)
  to supabase_functions_admin, postgres, anon, authenticated, service_role;

-- §2.4: Database Webhooks.
create schema if not exists supabase_functions;
comment on schema supabase_functions is 'Local stand-in for Supabase Database Webhooks (supabase-platform.md §2.4).';
grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema supabase_functions grant all on sequences to postgres, anon, authenticated, service_role;

create table if not exists supabase_functions.hooks (
  id bigserial primary key,
  hook_table_id integer not null,
  hook_name text not null,
  created_at timestamptz not null default now(),
  request_id bigint
);
create index if not exists supabase_functions_hooks_request_id_idx on supabase_functions.hooks (request_id);
create index if not exists supabase_functions_hooks_h_table_id_h_name_idx
  on supabase_functions.hooks (hook_table_id, hook_name);
comment on table supabase_functions.hooks is
  'Local stand-in for Supabase Database Webhooks: audit trail for triggered hooks (supabase-platform.md §2.4).';
comment on index supabase_functions.supabase_functions_hooks_request_id_idx is
  'Local stand-in for Supabase Database Webhooks: hooks by pg_net request id (supabase-platform.md §2.4).';
comment on index supabase_functions.supabase_functions_hooks_h_table_id_h_name_idx is
  'Local stand-in for Supabase Database Webhooks: hooks by table and trigger name (supabase-platform.md §2.4).';

-- §2.4: arguments come from TG_ARGV: url, method ('GET' | 'POST'), headers json, params json, timeout ms (1000).
create or replace function supabase_functions.http_request() returns trigger
language plpgsql security definer set search_path = supabase_functions as $$
declare
  request_id bigint;
  url text := TG_ARGV[0]::text;
  method text := TG_ARGV[1]::text;
  headers jsonb := '{"Content-Type": "application/json"}'::jsonb;
  params jsonb := '{}'::jsonb;
  timeout_ms integer := 1000;
begin
  if url is null or url = 'null' then
    raise exception 'url argument is missing';
  end if;
  if method is null or method = 'null' then
    raise exception 'method argument is missing';
  end if;
  if TG_ARGV[2] is not null and TG_ARGV[2] <> 'null' then
    headers := TG_ARGV[2]::jsonb;
  end if;
  if TG_ARGV[3] is not null and TG_ARGV[3] <> 'null' then
    params := TG_ARGV[3]::jsonb;
  end if;
  if TG_ARGV[4] is not null and TG_ARGV[4] <> 'null' then
    timeout_ms := TG_ARGV[4]::integer;
  end if;
  if method = 'GET' then
    request_id := net.http_get(url, params, headers, timeout_ms);
  elsif method = 'POST' then
    request_id := net.http_post(
      url,
      jsonb_build_object('old_record', OLD, 'record', NEW, 'type', TG_OP, 'table', TG_TABLE_NAME,
        'schema', TG_TABLE_SCHEMA),
      params, headers, timeout_ms);
  else
    raise exception 'method argument % is invalid', method;
  end if;
  insert into supabase_functions.hooks (hook_table_id, hook_name, request_id) values (TG_RELID, TG_NAME, request_id);
  return NEW;
end
$$;
comment on function supabase_functions.http_request() is
  'Local stand-in for Supabase Database Webhooks: queues a pg_net request per row and logs it in hooks (supabase-platform.md §2.4).';

grant all privileges on schema supabase_functions to supabase_functions_admin;
grant all privileges on all tables in schema supabase_functions to supabase_functions_admin;
grant all privileges on all sequences in schema supabase_functions to supabase_functions_admin;
alter table supabase_functions.hooks owner to supabase_functions_admin;
alter function supabase_functions.http_request() owner to supabase_functions_admin;
grant all on supabase_functions.hooks to postgres, anon, authenticated, service_role;
grant all on sequence supabase_functions.hooks_id_seq to postgres, anon, authenticated, service_role;
revoke all on function supabase_functions.http_request() from public;
grant execute on function supabase_functions.http_request() to postgres, anon, authenticated, service_role;
