-- Scheduled maintenance: each capability lists its periodic work in collect.jobs;
-- collect.schedule says how often a job runs; CALL collect.maintain() runs what is due, a
-- committed batch at a time, each job as its object's owner.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET client_min_messages = warning;
CREATE TABLE maint_readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, value numeric);
INSERT INTO maint_readings SELECT i, now() - i * interval '1 hour', i FROM generate_series(1, 500) i;
SELECT collect.create_archive('cold_readings', 'maint_readings', 'id', 'at', lump_rows => 100, archive_after => '7 days');
SELECT collect.create_collection('maint_feed', 'bigint', normalization => '{"daily": [{"limit": 10}]}');
SELECT collect.append('maint_feed', '1', '{"a": 1}');
SELECT kind, object, job, call, usual_every FROM collect.jobs ORDER BY kind, object, job;

-- Schedules: by the object's name as the caller sees it; the usual interval unless given.
SELECT collect.schedule('cold_readings', 'archive') <= now() AS due_now;
SELECT collect.schedule('public.maint_feed', 'normalize daily', '1 day', start_at => now() + interval '1 hour') > now() AS later;
SELECT object, job, kind, every, owner = current_user AS mine, last_started, failures, running FROM collect.jobs WHERE scheduled ORDER BY object;

-- maintain() runs only what is due: the archive, in batches of one lump, committed one by one.
CALL collect.maintain();
SELECT count(*) AS rows_left, min(at) > now() - interval '7 days' AS only_recent FROM maint_readings;
SELECT count(*) AS lumps FROM cold_readings_lumps;
SELECT object, last_result, failures, next_run > now() AS next_run_later,
       next_run - last_started BETWEEN interval '59 minutes' AND interval '1 hour 1 minute' AS on_schedule
  FROM collect.jobs WHERE scheduled ORDER BY object;
SELECT object, job, batches, result FROM collect.job_runs ORDER BY object;
-- Nothing is due now: a second call does nothing.
CALL collect.maintain();
SELECT count(*) AS runs FROM collect.job_runs;

-- Schedules do not drift: the next run is the next slot of the schedule, not the end of the
-- last run plus the interval.
SELECT collect._next_slot('2026-01-01 00:00', '1 hour', clock_timestamp()) = date_trunc('hour', clock_timestamp()) + interval '1 hour' AS next_whole_hour;
-- Slots follow PostgreSQL's calendar (issue #27), in the session's time zone: no month or year
-- is skipped because a month is not 30 days, a monthly job started on the 31st runs on
-- February's last day, and a daily one keeps its local time across a DST change (the next
-- slot is never one already past).
SET TimeZone = 'UTC';
SELECT collect._next_slot('2024-01-01 00:00', '1 month', '2024-12-28 00:00') AS no_month_skipped,
       collect._next_slot('2024-01-31 00:00', '1 month', '2024-02-15 00:00') AS month_end,
       collect._next_slot('2023-03-01 00:00', '1 year', '2024-02-29 12:00') AS over_a_leap_day;
SET TimeZone = 'America/New_York';
SELECT collect._next_slot('2026-03-01 09:00', '1 day', '2026-03-10 09:30') AS after_dst_starts;
RESET TimeZone;
-- An interval with a negative part is refused; one that does not move forward from its slot
-- (written into the registry directly) stops its job instead of failing everyone's.
SELECT collect.schedule('cold_readings', 'archive', '1 month -20 days');
\echo :LAST_ERROR_SQLSTATE
SELECT collect._next_slot('2024-01-31 00:00', '1 mon -30 days', '2024-03-01') IS NULL AS no_next_slot;

-- A failing job is recorded, retried later with backoff, and does not stop the others.
CREATE FUNCTION maint_explode() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'cannot archive this'; END $$;
CREATE TRIGGER maint_explode BEFORE DELETE ON maint_readings FOR EACH ROW EXECUTE FUNCTION maint_explode();
INSERT INTO maint_readings SELECT i, now() - interval '30 days' - i * interval '1 hour', i FROM generate_series(1001, 1010) i;
UPDATE collect.job_schedules SET next_run = now() - interval '1 second';
CALL collect.maintain();
SELECT object, last_result, failures, next_run - last_finished BETWEEN interval '50 seconds' AND interval '61 seconds' AS retry_in_a_minute
  FROM collect.jobs WHERE scheduled AND failures > 0;
SELECT count(*) AS feed_normalized FROM maint_feed_base;
-- The failed batch left nothing half done.
SELECT count(*) AS old_rows_still_in_source FROM maint_readings WHERE id > 1000;
DROP TRIGGER maint_explode ON maint_readings;
UPDATE collect.job_schedules SET next_run = now() - interval '1 second' WHERE object = 'public.cold_readings';
CALL collect.maintain();
SELECT object, last_result, failures FROM collect.jobs WHERE scheduled ORDER BY object;
SELECT count(*) AS old_rows_left FROM maint_readings WHERE id > 1000;

-- The run history keeps the last collect._job_history() runs, no more.
DO $$ BEGIN
    FOR i IN 1..15 LOOP
        UPDATE collect.job_schedules SET next_run = now() - interval '1 second' WHERE object = 'public.maint_feed';
        PERFORM pg_advisory_lock(collect._job_lock_class(), s.lock_key) FROM collect.job_schedules s
          WHERE (s.object, s.job) = ('public.maint_feed', 'normalize daily');
        PERFORM collect._finish_job('public.maint_feed', 'normalize daily', now(), 'done', 1);
    END LOOP;
END $$;
SELECT count(*) AS runs_kept FROM collect.job_runs WHERE object = 'public.maint_feed';

-- Unscheduling (by the name as the caller sees it).
SELECT collect.unschedule('maint_feed', 'normalize daily'), collect.unschedule('maint_feed', 'normalize daily') AS again;
SELECT collect.unschedule('cold_readings', 'archive');
SELECT count(*) AS schedules_left FROM collect.job_schedules;

-- Errors.
SELECT collect.schedule('cold_readings', 'no such job');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.schedule('nowhere', 'archive');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.schedule('cold_readings', 'archive', '10 milliseconds');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.schedule(NULL, 'archive');
\echo :LAST_ERROR_SQLSTATE
-- A job with no usual interval (a normalization level of your own naming, a backfill)
-- scheduled without one runs once, to its end; then it is done (next_run is NULL).
SELECT collect.create_collection('maint_tidy', 'bigint', normalization => '{"tidy": [{"limit": 1}]}');
SELECT collect.schedule('maint_tidy', 'normalize tidy') <= now() AS due_once;
CALL collect.maintain();
SELECT every, next_run, last_result FROM collect.jobs WHERE scheduled AND object = 'public.maint_tidy';
CALL collect.maintain();
SELECT count(*) AS runs_of_tidy FROM collect.job_runs WHERE object = 'public.maint_tidy';
SELECT collect.schedule('maint_tidy', 'normalize tidy', '6 hours') IS NOT NULL AS scheduled_with_an_interval;
CALL collect.maintain(0);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.schedule('maint_tidy', 'normalize tidy', '170000000 years');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.schedule('maint_tidy', 'normalize tidy', '1 hour', start_at => '-infinity');
\echo :LAST_ERROR_SQLSTATE
-- A schedule's owner writes its row (row level security), but only with values the scheduler
-- itself would write: a row that would make maintain() fail for every role is refused (23514).
\set VERBOSITY terse
UPDATE collect.job_schedules SET next_run = '-infinity' WHERE object = 'public.maint_tidy';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.job_schedules SET failures = 2147483647 WHERE object = 'public.maint_tidy';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.job_schedules SET every = '170000000 years' WHERE object = 'public.maint_tidy';
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
