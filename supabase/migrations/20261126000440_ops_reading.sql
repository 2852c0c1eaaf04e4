-- Operations, part 5: what the `ops` function reads (CONTRACT.md §12). Rollups and small tables only: never
-- public.message_bus beyond its pending rows (a partial index), so a scrape costs the same at 10,000 messages and at
-- 1,000,000 (bench/RESULTS.md, "Operations").

-- Every series of GET /ops/metrics in one round trip; only rollups and small tables are read. Histogram buckets
-- come as (metric, labels, bucket, count) rows with their sums as separate metrics; ops/prometheus.ts formats.
create function bus.ops_metric_rows()
returns table (metric text, labels jsonb, bucket smallint, value float8)
language sql stable security definer set search_path = '' as $$
  select 'requests', jsonb_build_object('provider', t.provider, 'model', t.model, 'status', t.status, 'stream', t.stream::text),
         null::smallint, t.requests::float8 from bus.ops_requests_total t
  union all
  select 'request_bytes', jsonb_build_object('provider', t.provider, 'model', t.model, 'status', t.status, 'stream', t.stream::text),
         null, t.request_bytes::float8 from bus.ops_requests_total t
  union all
  select s.m || '_sum', jsonb_build_object('provider', t.provider, 'model', t.model, 'status', t.status, 'stream', t.stream::text),
         null, case s.m when 'provider_ms' then t.provider_ms_sum when 'overhead_ms' then t.overhead_ms_sum
                        when 'ttft_ms' then t.ttft_ms_sum else t.payload_bytes::float8 end
    from bus.ops_requests_total t
   cross join (values ('provider_ms'), ('overhead_ms'), ('ttft_ms'), ('payload_bytes')) s(m)
  union all
  select b.metric, jsonb_build_object('provider', b.provider, 'model', b.model, 'status', b.status, 'stream', b.stream::text),
         b.bucket, b.count::float8 from bus.ops_buckets_total b
  union all
  select e.metric, e.labels, null, e.value::float8 from bus.ops_event_totals e where e.metric <> 'messages'
  union all
  select 'messages', jsonb_build_object('status', s.status), null,
         coalesce((select e.value from bus.ops_event_totals e
                    where e.metric = 'messages' and e.labels = jsonb_build_object('status', s.status)), 0)::float8
    from (values ('completed'), ('failed'), ('expired')) s(status)
  union all
  select 'messages', '{"status": "pending"}'::jsonb, null,
         (select count(*) from public.message_bus m where m.status = 'pending')::float8
  union all
  select 'circuit_state', jsonb_build_object('provider', r.provider, 'model', r.model), null,
         case r.state when 'closed' then 0 when 'open' then 1 else 2 end::float8 from bus.routes r
  union all
  select 'circuit_consecutive_failures', jsonb_build_object('provider', r.provider, 'model', r.model), null,
         r.consecutive_failures::float8 from bus.routes r
  union all
  select 'in_flight', jsonb_build_object('provider', l.provider), null, count(*)::float8
    from bus.provider_leases l where l.expires_at > now() group by l.provider
  union all
  select 'pg_net_queue_depth', '{}'::jsonb, null,
         (select count(*) from (select 1 from net.http_request_queue limit 1000000) q)::float8
  union all
  select 'cleanup_runs', jsonb_build_object('result', r.result), null, count(*)::float8
    from (select case when l.error is not null then 'failed' when l.complete then 'complete' else 'incomplete' end as result
            from bus.maintenance_log l where l.job = 'cleanup') r group by r.result
  union all
  select 'cleanup_last_run', '{}'::jsonb, null, extract(epoch from max(l.finished_at))::float8
    from bus.maintenance_log l where l.job = 'cleanup' having count(*) > 0
  union all
  select 'cleanup_last_success', '{}'::jsonb, null, extract(epoch from max(l.finished_at))::float8
    from bus.maintenance_log l where l.job = 'cleanup' and l.error is null having count(*) > 0
  union all
  select 'error_groups', jsonb_build_object('status', s.status), null,
         (select count(*) from bus.error_groups g where g.status = s.status)::float8
    from (values ('open'), ('resolved')) s(status)
  union all
  select 'alerts_firing', jsonb_build_object('alert', a.rule), null, count(*)::float8
    from bus.alert_state a where a.status = 'firing' group by a.rule
  union all
  select 'fold_last_run', '{}'::jsonb, null, extract(epoch from f.folded_at)::float8 from bus.ops_fold_state f
  union all
  select 'fold_through', '{}'::jsonb, null, extract(epoch from f.messages_through)::float8
    from bus.ops_fold_state f where f.messages_through > '-infinity'
$$;
comment on function bus.ops_metric_rows() is
  'Every Prometheus series as (metric, labels, bucket, value): rollup totals, live gauges from small tables (routes, leases, pg_net queue, maintenance log, error groups) and the fold''s watermarks.';

-- Per-route figures of the last p_minutes (whole minutes of creation time) for GET /ops/providers.
create function bus.ops_route_window(p_minutes integer)
returns table (provider text, model text, status text, requests bigint, provider_buckets jsonb)
language sql stable security definer set search_path = '' as $$
  with r as (
    select t.provider, t.model, t.status, sum(t.requests)::bigint as requests
      from bus.ops_requests t where t.minute >= date_trunc('minute', now()) - make_interval(mins => p_minutes - 1)
     group by 1, 2, 3
  ), b as (
    select t.provider, t.model, t.status, jsonb_object_agg(t.bucket, t.n) as buckets from (
      select x.provider, x.model, x.status, x.bucket, sum(x.count)::bigint as n
        from bus.ops_buckets x
       where x.minute >= date_trunc('minute', now()) - make_interval(mins => p_minutes - 1) and x.metric = 'provider_ms'
       group by 1, 2, 3, 4) t
     group by 1, 2, 3
  )
  select r.provider, r.model, r.status, r.requests, coalesce(b.buckets, '{}')
    from r left join b using (provider, model, status)
$$;
comment on function bus.ops_route_window(integer) is
  'Finished messages per route and final status over the last p_minutes minute buckets, with their provider-time buckets ({bucket: count}).';

-- Per-minute series for the operator dashboard's charts.
create function bus.ops_series(p_minutes integer)
returns table (minute timestamptz, requests bigint, failed bigint, payload_bytes bigint, buckets jsonb)
language sql stable security definer set search_path = '' as $$
  with r as (
    select t.minute, sum(t.requests)::bigint as requests,
           sum(t.requests) filter (where t.status = 'failed')::bigint as failed,
           sum(t.payload_bytes)::bigint as payload_bytes
      from bus.ops_requests t where t.minute >= date_trunc('minute', now()) - make_interval(mins => p_minutes - 1)
     group by 1
  ), b as (
    select x.minute, jsonb_object_agg(x.metric, x.buckets) as buckets from (
      select y.minute, y.metric, jsonb_object_agg(y.bucket, y.n) as buckets from (
        select z.minute, z.metric, z.bucket, sum(z.count)::bigint as n from bus.ops_buckets z
         where z.minute >= date_trunc('minute', now()) - make_interval(mins => p_minutes - 1)
           and z.status = 'completed'
         group by 1, 2, 3) y
       group by 1, 2) x
     group by 1
  )
  select r.minute, r.requests, coalesce(r.failed, 0), r.payload_bytes, coalesce(b.buckets, '{}')
    from r left join b using (minute) order by r.minute
$$;
comment on function bus.ops_series(integer) is
  'Per creation minute of the last p_minutes: finished messages, failures, payload bytes, and histogram buckets by metric ({metric: {bucket: count}}) of completed messages: provider time, overhead, TTFT, sizes. (A failure''s overhead includes the wait until it was reaped: it would hide the success path''s.)';

revoke execute on function bus.ops_metric_rows(), bus.ops_route_window(integer), bus.ops_series(integer)
  from public, anon, authenticated;
grant execute on function bus.ops_metric_rows(), bus.ops_route_window(integer), bus.ops_series(integer)
  to service_role;
