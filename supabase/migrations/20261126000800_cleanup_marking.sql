-- Cleanup keeps up (issue #17, item 4): 1,000,000 expired messages used to take ~9 minutes of paced runs to mark,
-- about 2,000 rows a second. Where a marked row's time went (bench/cleanup_bench.ts breakdown and a perf profile of
-- the marking backend, 100,000 rows, ~54 µs of CPU a row):
-- - ~10 µs in the row trigger message_bus_ops_expiry (migration 20261126000420): a PL/pgSQL call and a one-row
--   insert into bus.ops_status_moves for every expired row, 1,000,000 rows for 1,000,000 messages;
-- - ~10 µs in the CHECK constraints of message_bus, which Postgres evaluates on every update whatever it changes:
--   checksum ~ '^sha256:[0-9a-f]{64}$' runs a regular expression whose bounded repetition Postgres's regex engine
--   executes slowly (a third of the profile was pg_regexec). The same check written as a length and an unbounded
--   class, octet_length(x) = 71 and x ~ '^sha256:[0-9a-f]+$', costs ~1.5 µs and accepts exactly the same strings
--   (a string the class matches is ASCII, so its octet length is its length). The invoke path's updates of a row
--   evaluate the same constraints and gain as much;
-- - the rest (~25 µs and ~1.5 KB of WAL) is the row update itself: the new version of a ~430-byte row goes to another
--   page (a lock record on the old one) and into four indexes (primary key, (owner_id, idempotency_key),
--   (owner_id, updated_at) and the purge index), where the B-tree's bottom-up deletion first tries, in vain, to make
--   room by removing the row's old entries (still visible to this transaction). That is what a status change of a
--   stored row costs; it cannot be a HOT update (status and payload_deleted_at are in partial-index predicates,
--   updated_at is indexed, and a bulk of rows leaves no room on their pages);
-- - and the pacing, more than the work, set the rate: one batch of 1,000 rows per round, then a 450 ms pause.
-- The broadcast and watcher triggers already cost nothing here (their WHEN clauses are false for 'expired',
-- migration 20261126000100); the foreign keys pointing at message_bus check only key changes.
--
-- So:
-- 1. expire_messages marks a batch in one statement and counts the moves for the ops rollups itself, one row per
--    batch and former status; the row trigger stays for any other statement that marks a row expired, but its WHEN
--    clause is false while expire_messages runs (a transaction-local setting), so it costs a comparison per row.
-- 2. Each batch starts where the previous one ended (by expires_at), so a run does not walk, again and again, the
--    index entries of the rows it has marked (they stay in the partial index until vacuum).
-- 3. run_cleanup marks for the rest of its round's budget instead of one batch, in the round that deletes the last
--    expired payloads too; the cleanup function paces the rounds (CLEANUP_ROUND_MS of work, CLEANUP_PAUSE_MS of
--    pause: supabase/functions/cleanup/run_cleanup.ts).
-- 4. The checksum constraints are written without the bounded repetition (same names, same accepted values).
-- 5. run_cleanup's checks for work left read the first entry of their index whatever the statistics say (after
--    1,000,000 chunks were deleted, exists() was planned as a sequential scan of the 1.2 GB chunk table, in
--    every round until autovacuum analysed it: the first two minutes of a 1,000,000-message cleanup marked
--    ~3,000 rows/s, the rest ~10,000 rows/s).

-- ---------------------------------------------------------------------------------------------------------------
-- Checksum constraints that cost ~1.5 µs instead of ~10 µs per evaluation
-- ---------------------------------------------------------------------------------------------------------------
alter table public.message_bus
  drop constraint message_bus_checksum_check,
  add constraint message_bus_checksum_check
    check (octet_length(checksum) = 71 and checksum ~ '^sha256:[0-9a-f]+$'),
  drop constraint message_bus_stored_checksum_check,
  add constraint message_bus_stored_checksum_check
    check (octet_length(stored_checksum) = 71 and stored_checksum ~ '^sha256:[0-9a-f]+$'),
  drop constraint message_bus_request_checksum_check,
  add constraint message_bus_request_checksum_check
    check (octet_length(request_checksum) = 71 and request_checksum ~ '^sha256:[0-9a-f]+$');
comment on constraint message_bus_checksum_check on public.message_bus is
  'sha256:<64 lowercase hex digits>, written as a length and an unbounded class: a {64} repetition costs ~7x more on every update of the row.';

-- ---------------------------------------------------------------------------------------------------------------
-- The expiry count for bus_messages{status}: by expire_messages, per batch
-- ---------------------------------------------------------------------------------------------------------------
drop trigger message_bus_ops_expiry on public.message_bus;
create trigger message_bus_ops_expiry
  after update of status on public.message_bus
  for each row when (new.status = 'expired' and old.status in ('completed', 'failed')
                     and current_setting('bus.expiry_counted', true) is distinct from 'on')
  execute function bus.ops_note_expiry();
comment on trigger message_bus_ops_expiry on public.message_bus is
  'Counts expiries for bus_messages{status} made outside bus.expire_messages (which counts its own per batch, setting bus.expiry_counted); its WHEN clause is false for every change the invoke path makes.';

-- ---------------------------------------------------------------------------------------------------------------
-- Marking
-- ---------------------------------------------------------------------------------------------------------------
create or replace function bus.expire_messages(p_batch integer default 5000, p_budget_ms integer default 2000)
returns bigint language plpgsql security definer set search_path = '' as $$
declare
  v_deadline timestamptz := clock_timestamp() + make_interval(secs => greatest(p_budget_ms, 0) / 1000.0);
  v_from timestamptz := '-infinity';
  v_ids uuid[];
  v_completed bigint;
  v_failed bigint;
  v_total bigint := 0;
begin
  perform set_config('bus.expiry_counted', 'on', true);
  loop
    -- Rows a writer holds are skipped, never waited for (NO KEY UPDATE: what the update itself takes, so a row
    -- merely referenced by a concurrent insert, FOR KEY SHARE, is not skipped). Locked, their status cannot change
    -- before the update below, so the moves counted here are the ones it makes.
    select array_agg(s.transaction_id), max(s.expires_at),
           count(*) filter (where s.status = 'completed'), count(*) filter (where s.status = 'failed')
      into v_ids, v_from, v_completed, v_failed
      from (select m.transaction_id, m.status, m.expires_at from public.message_bus m
             where m.payload_deleted_at is null and m.expires_at <= now() and m.expires_at >= v_from
               and m.status <> 'pending'
             order by m.expires_at
             limit p_batch
             for no key update skip locked) s;
    exit when v_ids is null;
    -- By transaction ID through the primary keys (a join would let the planner scan whole tables): the chunks of a
    -- message whose expiry was moved after they were stored; the others went in phase 1.
    delete from public.message_bus_chunks where transaction_id = any (v_ids);
    update public.message_bus
       set status = 'expired', payload_deleted_at = clock_timestamp(), updated_at = clock_timestamp()
     where transaction_id = any (v_ids);
    insert into bus.ops_status_moves (from_status, to_status, n)
    select v.s, 'expired', v.n from (values ('completed', v_completed), ('failed', v_failed)) v(s, n) where v.n > 0;
    v_total := v_total + cardinality(v_ids);
    exit when cardinality(v_ids) < p_batch or clock_timestamp() >= v_deadline;
  end loop;
  perform set_config('bus.expiry_counted', 'off', true);
  return v_total;
end $$;
comment on function bus.expire_messages(integer, integer) is
  'Marks messages past expires_at expired (status, payload_deleted_at, updated_at; the row stays) and deletes any payload chunk left, p_batch rows a statement until none are left or p_budget_ms has passed (at least one batch); counts the moves for the ops rollups; returns how many.';

-- One round: reap, payloads, then marking for the rest of the round's budget, purge and trims.
create or replace function bus.run_cleanup(
  p_retention interval default '30 days',
  p_reap_after interval default '15 minutes',
  p_batch integer default 5000,
  p_budget_ms integer default 2000,
  p_http_keep interval default '1 hour',
  p_cron_keep interval default '7 days',
  p_mark_batch integer default 1000,
  p_max_attempts integer default 3
) returns jsonb language plpgsql security definer set search_path = '' as $$
declare
  v_started timestamptz := clock_timestamp();
  v_left integer;
  v_reaped bigint;
  v_chunks bigint;
  v_expired bigint;
  v_purged bigint;
  v_http bigint;
  v_cron bigint;
  v_other bigint := 0;
  v_count bigint;
  v_payloads_left boolean;
  v_more boolean;
begin
  v_reaped := bus.reap_pending(p_reap_after, p_batch, p_max_attempts);
  v_chunks := bus.delete_expired_payloads(p_batch, p_budget_ms);
  -- Each check reads the first entry of its index (a scalar subquery ordered by the index: exists() drops the order
  -- and the limit): after a bulk delete the planner's statistics still say most rows match, and exists() became a
  -- sequential scan of the whole chunk table, ~1 s for 1,000,000 chunks, in every round until autovacuum analysed
  -- the table again.
  v_payloads_left := (select c.expires_at from public.message_bus_chunks c where c.expires_at <= now()
                       order by c.expires_at limit 1) is not null;
  v_left := p_budget_ms - (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
  -- Marking follows once every payload expired by now() is deleted, in the same round: migration 400 waited for a
  -- round that deleted none, which a bus whose messages expire every second never has (marking starved).
  v_expired := case when v_payloads_left then 0 else bus.expire_messages(p_mark_batch, greatest(v_left, 0)) end;
  v_left := p_budget_ms - (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
  v_purged := case when v_left > 0 then bus.purge_messages(p_retention, p_batch, v_left) else 0 end;
  v_http := bus.trim_http_responses(p_http_keep, p_batch);
  v_cron := bus.trim_cron_history(p_cron_keep, p_batch);
  -- The bus's own bookkeeping: review budgets of past hours, maintenance log rows older than 90 days.
  delete from bus.review_budget where hour < now() - interval '2 days';
  get diagnostics v_count = row_count;
  v_other := v_other + v_count;
  delete from bus.maintenance_log where started_at < now() - interval '90 days';
  get diagnostics v_count = row_count;
  v_other := v_other + v_count;
  delete from bus.rate_windows where window_start < now() - interval '2 minutes';
  get diagnostics v_count = row_count;
  v_other := v_other + v_count;

  v_more := v_payloads_left or v_reaped >= p_batch or v_http >= p_batch or v_cron >= p_batch
    or (select m.expires_at from public.message_bus m
         where m.payload_deleted_at is null and m.expires_at <= now() and m.status <> 'pending'
         order by m.expires_at limit 1) is not null
    or (select m.expires_at from public.message_bus m
         where m.payload_deleted_at is not null and m.expires_at <= now() - p_retention
         order by m.expires_at limit 1) is not null;
  return jsonb_build_object(
    'reaped', v_reaped, 'payload_chunks_deleted', v_chunks, 'expired', v_expired, 'purged', v_purged,
    'http_responses_deleted', v_http, 'cron_runs_deleted', v_cron, 'bookkeeping_deleted', v_other,
    'payloads_left', v_payloads_left, 'more', v_more
  );
end $$;
comment on function bus.run_cleanup(interval, interval, integer, integer, interval, interval, integer, integer) is
  'One cleanup round within p_budget_ms: reap (async messages with fewer than p_max_attempts runs are left to the dispatcher), delete expired payloads, then mark expired rows p_mark_batch at a time for the rest of the budget (at least one batch), purge, trim pg_net and pg_cron history and the bus''s bookkeeping; returns the counts, payloads_left and whether more work is left.';
