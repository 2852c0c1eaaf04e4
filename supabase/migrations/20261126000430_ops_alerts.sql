-- Operations, part 4: alerts (CONTRACT.md §12) and the private Realtime topic `ops`.
--
-- Rules live in bus.alert_rules (defaults below; operators tune them with SQL). pg_cron calls the `ops` function
-- every minute (POST /ops/alerts/evaluate through pg_net, the documented pattern for scheduled work,
-- supabase-platform.md §2.5); the function folds the rollups and calls bus.evaluate_alerts with its
-- ALERT_WEBHOOK_URL. bus.evaluate_alerts compares the conditions that hold now with bus.alert_state and, for each
-- firing and each resolution, in the same transaction: records it (bus.alert_events), queues the webhook POST
-- through pg_net (sent only if the transaction commits, §2.3) and broadcasts event `alert` on topic `ops` (sent
-- at commit, §3.1). Evaluations are serialised by an advisory lock, so a transition is sent once, never twice.
-- Latency: a condition that starts at t is seen by the first evaluation after t + 10 s (the fold's settle time),
-- at most 70 s later, and sent within a second or two: under the 90 s target. The same holds for its end.

create table bus.alert_rules (
  name text primary key,
  enabled boolean not null default true,
  threshold numeric,
  min_count integer,
  window_minutes integer check (window_minutes between 1 and 1440),
  description text not null
);
comment on table bus.alert_rules is
  'Alert rules evaluated every minute (bus.evaluate_alerts); the logic of each is fixed by its name, its numbers are here.';
insert into bus.alert_rules (name, threshold, min_count, window_minutes, description) values
  ('circuit_open', null, null, null, 'A route''s circuit breaker is open (bus.routes).'),
  ('provider_error_rate', 0.2, 20, 5,
   'A provider''s failed messages exceed threshold (a fraction) of its finished messages over window_minutes, with at least min_count finished.'),
  ('watcher_errors', 10, null, 5, 'At least threshold watcher observations of verdict error over window_minutes.'),
  ('pending_stale', 0, null, 15,
   'More than threshold messages pending for longer than window_minutes (the reap window, MESSAGE_BUS_REAP_PENDING_MINUTES).'),
  ('cleanup_failing', null, null, null, 'The latest cleanup run failed (bus.maintenance_log).');

create table bus.alert_state (
  rule text not null references bus.alert_rules (name) on delete cascade,
  labels jsonb not null,
  status text not null check (status in ('firing', 'resolved')),
  summary text not null,
  started_at timestamptz not null,
  resolved_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (rule, labels)
);
comment on table bus.alert_state is 'Each alert''s last state (one row per rule and labels); firing rows are the alerts firing now.';

create table bus.alert_events (
  id bigint generated always as identity primary key,
  rule text not null,
  labels jsonb not null,
  status text not null check (status in ('firing', 'resolved')),
  payload jsonb not null,
  webhook_request_id bigint,
  created_at timestamptz not null default clock_timestamp()
);
comment on table bus.alert_events is
  'Every firing and resolution as sent: the JSON payload, and the pg_net request id of its webhook POST (null without ALERT_WEBHOOK_URL).';
create index alert_events_created_at on bus.alert_events (created_at);

revoke all on bus.alert_rules, bus.alert_state, bus.alert_events from public, anon, authenticated;
grant select, update on bus.alert_rules to service_role;
grant select on bus.alert_state, bus.alert_events to service_role;

-- What holds now: one row per (rule, labels) with a summary. Reads rollups and small tables only.
create function bus.alert_conditions()
returns table (rule text, labels jsonb, summary text)
language sql stable security definer set search_path = '' as $$
  with rules as (select * from bus.alert_rules where enabled)
  select 'circuit_open', jsonb_build_object('provider', r.provider, 'model', r.model),
         format('Circuit open for %s/%s after %s failures in a row', r.provider, r.model, r.consecutive_failures)
    from bus.routes r where r.state = 'open' and exists (select 1 from rules where name = 'circuit_open')
  union all
  select 'provider_error_rate', jsonb_build_object('provider', e.provider),
         format('%s: %s of %s messages failed (%s %%) in the last %s minutes', e.provider, e.failed, e.total,
                round(100.0 * e.failed / e.total, 1), e.window_minutes)
    from (select t.provider, ru.window_minutes, ru.threshold, ru.min_count, sum(t.requests) as total,
                 coalesce(sum(t.requests) filter (where t.status = 'failed'), 0) as failed
            from bus.ops_requests t
            join rules ru on ru.name = 'provider_error_rate'
           where t.minute >= date_trunc('minute', now()) - make_interval(mins => ru.window_minutes - 1)
           group by t.provider, ru.window_minutes, ru.threshold, ru.min_count) e
   where e.total >= coalesce(e.min_count, 1) and e.failed > e.threshold * e.total
  union all
  select 'watcher_errors', '{}'::jsonb,
         format('%s watcher observations of verdict error in the last %s minutes', w.n, w.window_minutes)
    from (select ru.window_minutes, ru.threshold, coalesce(sum(e.value), 0) as n
            from rules ru
            left join bus.ops_events e
              on e.metric = 'observations' and e.labels = '{"verdict": "error"}'::jsonb
             and e.minute >= date_trunc('minute', now()) - make_interval(mins => ru.window_minutes - 1)
           where ru.name = 'watcher_errors'
           group by ru.window_minutes, ru.threshold) w
   where w.n >= w.threshold
  union all
  select 'pending_stale', '{}'::jsonb,
         format('%s messages pending for more than %s minutes', p.n, p.window_minutes)
    from (select ru.window_minutes, ru.threshold,
                 (select count(*) from public.message_bus m
                   where m.status = 'pending'
                     and m.created_at < now() - make_interval(mins => ru.window_minutes)) as n
            from rules ru where ru.name = 'pending_stale') p
   where p.n > p.threshold
  union all
  select 'cleanup_failing', jsonb_build_object('job', l.job),
         format('The last %s run (%s) failed: %s', l.job, to_char(l.started_at at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS"Z"'),
                left(l.error, 300))
    from (select distinct on (x.job) x.job, x.started_at, x.error from bus.maintenance_log x
           order by x.job, x.started_at desc) l
   where l.error is not null and exists (select 1 from rules where name = 'cleanup_failing')
$$;
comment on function bus.alert_conditions() is 'The alert conditions that hold now: (rule, labels, summary).';

-- The notification: the contract's JSON plus `text`, which Slack-compatible incoming webhooks display.
create function bus.alert_payload(p_rule text, p_status text, p_summary text, p_labels jsonb, p_started_at timestamptz,
                                  p_resolved_at timestamptz default null)
returns jsonb language sql immutable set search_path = '' as $$
  select jsonb_build_object(
    'alert', p_rule, 'status', p_status, 'summary', p_summary, 'labels', p_labels,
    'started_at', to_char(p_started_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'resolved_at', to_char(p_resolved_at at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'text', format('[%s] %s: %s', upper(p_status), p_rule, p_summary))
$$;
comment on function bus.alert_payload(text, text, text, jsonb, timestamptz, timestamptz) is
  'The JSON of an alert notification: {alert, status, summary, labels, started_at, resolved_at, text}.';

create function bus.evaluate_alerts(p_webhook_url text default null)
returns table (rule text, labels jsonb, status text, summary text, started_at timestamptz, webhook_request_id bigint)
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  v_now timestamptz := clock_timestamp();
  v record;
  v_payload jsonb;
  v_request bigint;
begin
  -- Serialised: a second evaluation waits for the first and then sees its state, so no transition is sent twice.
  perform pg_advisory_xact_lock(hashtext('bus.evaluate_alerts'));
  for v in
    with now_true as (select * from bus.alert_conditions())
    select n.rule, n.labels, n.summary, 'firing'::text as status, v_now as started_at, null::timestamptz as resolved_at
      from now_true n
      left join bus.alert_state s on s.rule = n.rule and s.labels = n.labels
     where s.status is distinct from 'firing'
    union all
    select s.rule, s.labels, s.summary, 'resolved', s.started_at, v_now
      from bus.alert_state s
     where s.status = 'firing'
       and not exists (select 1 from now_true n where n.rule = s.rule and n.labels = s.labels)
  loop
    insert into bus.alert_state as a (rule, labels, status, summary, started_at, resolved_at, updated_at)
    values (v.rule, v.labels, v.status, v.summary, v.started_at, v.resolved_at, v_now)
    on conflict on constraint alert_state_pkey do update set status = excluded.status, summary = excluded.summary,
      started_at = excluded.started_at, resolved_at = excluded.resolved_at, updated_at = v_now;
    v_payload := bus.alert_payload(v.rule, v.status, v.summary, v.labels, v.started_at, v.resolved_at);
    v_request := null;
    if nullif(p_webhook_url, '') is not null then
      begin
        v_request := net.http_post(url := p_webhook_url, body := v_payload,
                                   headers := '{"Content-Type": "application/json"}'::jsonb,
                                   timeout_milliseconds := 10000);
      exception when others then
        -- A bad URL must not stop the alert: it is still recorded and broadcast.
        raise warning 'bus.evaluate_alerts: webhook POST not queued: % (SQLSTATE %)', sqlerrm, sqlstate;
      end;
    end if;
    insert into bus.alert_events (rule, labels, status, payload, webhook_request_id)
    values (v.rule, v.labels, v.status, v_payload, v_request);
    perform realtime.send(v_payload, 'alert', 'ops', true);
    rule := v.rule; labels := v.labels; status := v.status; summary := v.summary; started_at := v.started_at;
    webhook_request_id := v_request;
    return next;
  end loop;
  -- A condition that still holds keeps its summary up to date (figures change while it fires).
  update bus.alert_state s set summary = n.summary, updated_at = v_now
    from bus.alert_conditions() n
   where s.rule = n.rule and s.labels = n.labels and s.status = 'firing' and s.summary is distinct from n.summary;
end $$;
comment on function bus.evaluate_alerts(text) is
  'Compares the alert conditions with the last state; each new firing and each resolution is recorded, POSTed to p_webhook_url through pg_net (when given) and broadcast as event alert on topic ops, in this transaction. Returns the transitions.';

revoke execute on function bus.alert_conditions(), bus.alert_payload(text, text, text, jsonb, timestamptz, timestamptz),
  bus.evaluate_alerts(text) from public, anon, authenticated;
grant execute on function bus.alert_conditions(), bus.alert_payload(text, text, text, jsonb, timestamptz, timestamptz),
  bus.evaluate_alerts(text) to service_role;

-- Every minute: the `ops` function folds, evaluates with its ALERT_WEBHOOK_URL and investigates new error groups.
-- bus.call_function takes the URL and key from Vault and never raises (migration 20261121000300).
select bus.schedule_job('message-bus-ops-alerts', '* * * * *',
                        $cmd$select bus.call_function('ops/alerts/evaluate', '{"async": true}'::jsonb)$cmd$);

-- ---------------------------------------------------------------------------------------------------------------
-- Realtime: topic `ops` is for the service role only
-- ---------------------------------------------------------------------------------------------------------------

-- supabase-platform.md §3.2: joining a private channel is allowed when the joiner can read probe rows of its topic.
-- No permissive policy grants `ops` to anyone (the service role bypasses RLS); this restrictive one keeps it so even
-- if the project later adds a broad select policy. Nobody may broadcast on it from a client either.
create policy "only the service role receives ops" on realtime.messages
  as restrictive
  for select to anon, authenticated
  using (topic <> 'ops' and (select realtime.topic()) is distinct from 'ops');
comment on policy "only the service role receives ops" on realtime.messages is
  'The private topic ops (alerts, rollups, error groups) is readable by the service role only (CONTRACT.md §12).';

create policy "nobody sends on ops" on realtime.messages
  as restrictive
  for insert to anon, authenticated
  with check (topic <> 'ops');
comment on policy "nobody sends on ops" on realtime.messages is 'Events on topic ops come from the database alone.';
