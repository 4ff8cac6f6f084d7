-- Scheduled maintenance: one scheduler for every capability's periodic work (the jobs listed in
-- collect.jobs). A job's schedule says how often it runs; collect.maintain() runs the
-- jobs that are due, a bounded batch per transaction, each as its object's owner. pg_cron (or
-- the background worker of src/maintenance/) calls it; nothing else runs on its own.

-- The jobs' schedules: one row per (object, job). `runs` keeps the last runs, newest first, never
-- more than collect._job_history() of them.
CREATE TABLE collect.job_schedules (
    object text NOT NULL,
    job text NOT NULL,
    -- Rows are written by their owners (row level security): every column they can write
    -- holds only what collect.schedule and the scheduler would write, so that no row can make
    -- the scheduler fail for everybody (an overflowing failure count, a slot at -infinity).
    -- NULL: a job that runs once, to its end (a backfill), whose next_run is then NULL.
    every interval CHECK (every >= interval '1 second' AND every <= interval '100 years'),
    owner name NOT NULL,
    next_run timestamptz CHECK (next_run > '-infinity' AND next_run < 'infinity'),
    last_started timestamptz,
    last_finished timestamptz,
    last_result text,
    failures integer NOT NULL DEFAULT 0 CHECK (failures BETWEEN 0 AND 1000000),
    runs jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(runs) = 'array'),
    -- The job's advisory lock key: random, and readable only by the job's owner (row level
    -- security), so that no other role can take it and hold the job back.
    lock_key integer NOT NULL DEFAULT ('x' || substr(md5(gen_random_uuid()::text), 1, 8))::bit(32)::integer,
    PRIMARY KEY (object, job)
);
COMMENT ON TABLE collect.job_schedules IS 'Schedules of maintenance jobs, made by collect.schedule';

CREATE FUNCTION collect._job_history() RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT 10';

-- A schedule may be written only for a job whose object belongs to its owner.
CREATE FUNCTION collect._schedule_verify(s collect.job_schedules) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT FROM collect._maintenance() m WHERE m.object = s.object AND m.job = s.job AND m.owner = s.owner);
END $$;
SELECT collect._register_capability('schedule', 'collect.job_schedules', 'collect._schedule_verify', 'collect.jobs');
-- A failed run's message can carry the owner's values (an error of its own code): a role reads
-- only its own schedules' rows; collect.jobs and collect.job_runs list every job, with the
-- message of others' failures cut to its SQLSTATE.
ALTER POLICY readable ON collect.job_schedules USING (pg_catalog.pg_has_role(owner, 'USAGE'));

-- A run's result as the caller may see it: whole for the owner's members, else its SQLSTATE.
CREATE FUNCTION collect._job_result(owner name, result text) RETURNS text
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN result IS NULL OR pg_has_role(owner, 'USAGE') OR result NOT LIKE 'failed:%' THEN result
                ELSE substring(result FROM '^failed: [0-9A-Z]{5}') || ' (the message is for the job''s owner)' END
$$;

-- The job `job` of `object` (a qualified name, or one found along the caller's search_path).
CREATE FUNCTION collect._find_job(object text, job text) RETURNS collect.maintenance
    STABLE LANGUAGE plpgsql AS $$
DECLARE
    found collect.maintenance;
BEGIN
    IF object IS NULL OR job IS NULL THEN
        RAISE EXCEPTION 'a job is named by its object and its name, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT m.* INTO found
      FROM collect._maintenance() m
      LEFT JOIN pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS s(nsp, ord)
        ON m.object OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', s.nsp, _find_job.object)
     WHERE m.job OPERATOR(pg_catalog.=) _find_job.job
       AND (m.object OPERATOR(pg_catalog.=) _find_job.object OR s.nsp IS NOT NULL)
     ORDER BY m.object OPERATOR(pg_catalog.=) _find_job.object DESC, s.ord
     LIMIT 1;
    IF found.object IS NULL THEN
        RAISE EXCEPTION 'no job "%" for "%"', job, object
            USING ERRCODE = 'undefined_object', HINT = 'collect.jobs lists the jobs there are.';
    END IF;
    RETURN found;
END $$;

CREATE FUNCTION collect._schedule(found collect.maintenance, every interval, start_at timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    next_run timestamptz := coalesce(start_at, now());
BEGIN
    PERFORM collect._check_owner(found.owner, format('%s %s', found.kind, found.object));
    every := coalesce(every, found.every);
    -- A job with no usual interval (a backfill) and none given runs once, to its end.
    IF every < interval '1 second' OR every > interval '100 years' THEN
        RAISE EXCEPTION 'a job runs every second to every 100 years, not every %', every USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT (p->>'months')::integer < 0 OR (p->>'days')::integer < 0 OR (p->>'micros')::bigint < 0 FROM collect._interval_parts(every) p) THEN
        RAISE EXCEPTION 'a job runs every interval with no negative part, not every %', every USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(next_run) THEN
        RAISE EXCEPTION 'a schedule starts at a time, not at %', next_run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO collect.job_schedules AS s (object, job, every, owner, next_run)
    VALUES (found.object, found.job, every, found.owner, next_run)
    ON CONFLICT (object, job) DO UPDATE SET every = excluded.every, owner = excluded.owner, next_run = excluded.next_run, failures = 0;
    RETURN next_run;
END $$;

CREATE FUNCTION collect.schedule(object text, job text, every interval DEFAULT NULL, start_at timestamptz DEFAULT NULL)
    RETURNS timestamptz LANGUAGE sql AS $$ SELECT collect._schedule(collect._find_job(object, job), every, start_at) $$;
COMMENT ON FUNCTION collect.schedule(text, text, interval, timestamptz) IS
    'Runs a maintenance job every `every` (its usual interval if NULL; once, to its end, for a job with none) from start_at (now if NULL); returns its first run';

CREATE FUNCTION collect._unschedule(object text, job text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- From the view, which lists every role's jobs: another role's schedule is refused (42501),
    -- not taken for one that does not exist.
    owner name := (SELECT j.owner FROM collect.jobs j WHERE (j.object, j.job) = (_unschedule.object, _unschedule.job));
BEGIN
    IF owner IS NULL THEN
        RETURN false;
    END IF;
    PERFORM collect._check_owner(owner, format('the schedule of %s', object));
    PERFORM collect._delete_registry_rows('collect.job_schedules', jsonb_build_object('object', object, 'job', job));
    RETURN true;
END $$;

CREATE FUNCTION collect.unschedule(object text, job text) RETURNS boolean
    LANGUAGE sql AS $$
    -- ($1, $2: in a SQL function, a bare name is a column before it is a parameter.)
    SELECT collect._unschedule(COALESCE((SELECT s.object FROM collect.job_schedules s
                                           LEFT JOIN pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p(nsp, ord)
                                             ON s.object OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', p.nsp, $1)
                                          WHERE s.job OPERATOR(pg_catalog.=) $2 AND (s.object OPERATOR(pg_catalog.=) $1 OR p.nsp IS NOT NULL)
                                          ORDER BY s.object OPERATOR(pg_catalog.=) $1 DESC, p.ord LIMIT 1), $1), $2)
$$;
COMMENT ON FUNCTION collect.unschedule(text, text) IS 'Stops running a maintenance job; false if it was not scheduled';

-- ---- running ----

-- A job runs under a session advisory lock of its own (held across the commits of its
-- batches, let go at the end or when the session ends): a second caller skips the job. The
-- keys are this class and the schedule's random lock_key; a collision only makes one job wait
-- for the next call.
CREATE FUNCTION collect._job_lock_class() RETURNS integer
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT hashtext('pg_collect maintenance') $$;

-- Locks this session holds on jobs it no longer runs (left by an error or a cancel mid-job).
CREATE FUNCTION collect._release_job_locks() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    held record;
BEGIN
    FOR held IN SELECT l.classid, l.objid FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid = 2 AND l.granted
                   AND l.classid = collect._job_lock_class()::oid LOOP
        WHILE pg_advisory_unlock(held.classid::integer, held.objid::integer) LOOP END LOOP;
    END LOOP;
END $$;

-- Claims the next due job the caller may run as its owner (not one of `skip`, the jobs this
-- call already ran), under its lock; NULL when none is due. Owners take turns: the next job
-- is one of the owner whose jobs this call has run fewest of, so no role's many or slow jobs
-- hold the others' back.
CREATE FUNCTION collect._claim_job(skip text[], OUT object text, OUT job text, OUT started timestamptz)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    candidate record;
BEGIN
    FOR candidate IN SELECT s.object, s.job, s.lock_key FROM collect.job_schedules s
                      WHERE s.next_run <= clock_timestamp() AND pg_has_role(s.owner, 'USAGE')
                        AND NOT (s.object || ' ' || s.job) = ANY (coalesce(skip, '{}'))
                      ORDER BY (SELECT count(*) FROM collect.job_schedules r
                                 WHERE r.owner = s.owner AND (r.object || ' ' || r.job) = ANY (coalesce(skip, '{}'))),
                               s.next_run LOOP
        CONTINUE WHEN NOT pg_try_advisory_lock(collect._job_lock_class(), candidate.lock_key);
        -- Another caller may have run it between the query above and the lock: a new
        -- statement sees its commit.
        UPDATE collect.job_schedules s SET last_started = clock_timestamp()
         WHERE (s.object, s.job) = (candidate.object, candidate.job) AND s.next_run <= clock_timestamp()
        RETURNING s.object, s.job, s.last_started INTO object, job, started;
        IF object IS NOT NULL THEN
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(collect._job_lock_class(), candidate.lock_key);
    END LOOP;
END $$;

-- One batch of a claimed job, as its owner: 'done', 'more', or 'failed: SQLSTATE message'. An
-- error is caught (and the batch's work undone), so one failing job stops nothing else.
CREATE FUNCTION collect._run_job_batch(object text, job text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found collect.maintenance := (SELECT m FROM collect._maintenance() m WHERE (m.object, m.job) = (_run_job_batch.object, _run_job_batch.job));
    done boolean;
    state text;
    message text;
BEGIN
    IF found.batch IS NULL THEN
        RETURN 'failed: 42704 the job no longer exists (its object was dropped?)';
    END IF;
    BEGIN
        -- The job's code runs as its owner, never as the caller (a superuser, for pg_cron or
        -- the background worker), in a restricted operation whose settings are unwound.
        done := collect._as_owner(found.owner, found.batch, as_job => true)::boolean;
        RETURN CASE WHEN done IS FALSE THEN 'more' ELSE 'done' END;
    EXCEPTION
        WHEN query_canceled THEN
            -- The batch ran past collect.job_timeout: a failure of this job. Any other cancel
            -- is the caller's, and ends the call.
            IF NOT collect._past_job_deadline() THEN
                RAISE;
            END IF;
            RETURN format('failed: 57014 the batch ran past collect.job_timeout (%s)', current_setting('collect.job_timeout'));
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
            RETURN format('failed: %s %s', state, message);
    END;
END $$;

-- Records a run and lets go of the job. The next run keeps to the schedule (the first slot
-- after now, counted from the schedule's start, however long the run took); a failure is
-- retried after 1, 2, 4, … minutes, never later than the next slot.
CREATE FUNCTION collect._finish_job(object text, job text, started timestamptz, result text, batches integer) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lock_key integer := (SELECT s.lock_key FROM collect.job_schedules s WHERE (s.object, s.job) = (_finish_job.object, _finish_job.job));
    failed boolean := result LIKE 'failed:%';
BEGIN
    UPDATE collect.job_schedules s
       SET last_finished = clock_timestamp(),
           last_result = CASE WHEN result = 'more' THEN format('ok, %s batches, more left', batches)
                              WHEN failed THEN result ELSE format('ok, %s batches', batches) END,
           failures = CASE WHEN failed THEN least(s.failures + 1, 1000000) ELSE 0 END,
           -- A job that runs once (every NULL) is done when it ends without failing or work left.
           next_run = CASE WHEN failed THEN least(clock_timestamp() + interval '1 minute' * 2 ^ least(s.failures, 20),
                                                  collect._next_slot(s.next_run, s.every, clock_timestamp()))
                           WHEN s.every IS NULL AND result = 'more' THEN clock_timestamp()
                           ELSE collect._next_slot(s.next_run, s.every, clock_timestamp()) END,
           runs = (SELECT coalesce(jsonb_agg(r ORDER BY n), '[]') FROM jsonb_array_elements(
                      jsonb_build_array(jsonb_build_object('started', started, 'finished', clock_timestamp(), 'batches', batches,
                                                           'result', CASE WHEN failed THEN result ELSE 'ok' END))
                      || s.runs) WITH ORDINALITY AS x(r, n)
                   WHERE n <= collect._job_history())
     WHERE (s.object, s.job) = (_finish_job.object, _finish_job.job);
    PERFORM pg_advisory_unlock(collect._job_lock_class(), lock_key);
END $$;

-- The first time after `after` on the grid slot + k * every, by PostgreSQL's interval
-- arithmetic in the session's time zone: a monthly job started on the 31st runs on each
-- month's last day, a daily one keeps its wall-clock time across DST. The count k is first
-- estimated from average lengths (a month is 30 days there), then stepped to the exact slot.
CREATE FUNCTION collect._next_slot(slot timestamptz, every interval, after timestamptz) RETURNS timestamptz
    STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bigint;
BEGIN
    -- An interval that does not move forward from this slot ("1 month -30 days" from January
    -- 31st; collect.schedule refuses negative parts, a row written directly may have them) has
    -- no next slot: the job stops (next_run NULL, as collect.jobs shows) instead of failing
    -- the call that runs everyone's jobs.
    IF slot + every <= slot THEN
        RETURN NULL;
    END IF;
    k := floor(greatest(extract(epoch FROM after - slot), 0) / extract(epoch FROM every)) + 1;
    WHILE k > 1 AND slot + every * (k - 1) > after LOOP
        k := k - 1;
    END LOOP;
    WHILE slot + every * k <= after LOOP
        k := k + 1;
    END LOOP;
    RETURN slot + every * k;
END $$;

-- Runs every due job the caller may run, each to its end in batches of one transaction each
-- (at most max_batches per job per call), as its owner, and logs each run. pg_cron:
-- SELECT cron.schedule('pg_collect', '* * * * *', 'CALL collect.maintain()'). The background
-- worker calls this very procedure (src/maintenance/mod.rs).
CREATE PROCEDURE collect.maintain(max_batches integer DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
    claimed record;
    ran text[] := '{}';
    result text;
    batches integer;
BEGIN
    IF max_batches IS NULL OR max_batches OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'max_batches must be positive, not %', COALESCE(max_batches::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM collect._release_job_locks();
    LOOP
        claimed := collect._claim_job(ran);
        EXIT WHEN claimed.object IS NULL;
        COMMIT;
        ran := ran OPERATOR(pg_catalog.||) (claimed.object OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) claimed.job);
        batches := 0;
        LOOP
            result := collect._run_job_batch(claimed.object, claimed.job);
            batches := batches OPERATOR(pg_catalog.+) 1;
            COMMIT;
            EXIT WHEN result OPERATOR(pg_catalog.<>) 'more' OR batches OPERATOR(pg_catalog.>=) max_batches;
        END LOOP;
        PERFORM collect._finish_job(claimed.object, claimed.job, claimed.started, result, batches);
        COMMIT;
        RAISE LOG 'pg_collect maintenance: database %: % of %: % (% batches)',
            pg_catalog.current_database(), claimed.job, claimed.object, result, batches;
    END LOOP;
END $$;
COMMENT ON PROCEDURE collect.maintain(integer) IS
    'Runs the maintenance jobs that are due, each as its object''s owner, committing after every batch';

-- Every job there is, scheduled or not, and a schedule whose job is gone (kind NULL).
CREATE VIEW collect.jobs AS
SELECT coalesce(m.object, s.object) AS object, coalesce(m.job, s.job) AS job, m.kind, coalesce(s.owner, m.owner) AS owner,
       m.call, m.every AS usual_every, s.object IS NOT NULL AS scheduled, s.every, s.next_run, s.last_started, s.last_finished,
       collect._job_result(s.owner, s.last_result) AS last_result, s.failures,
       EXISTS (SELECT FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid = collect._job_lock_class()::oid AND l.objid = s.lock_key::oid AND l.objsubid = 2 AND l.granted) AS running
  FROM collect._maintenance() m FULL JOIN collect.job_schedules s ON m.object = s.object AND m.job = s.job;
GRANT SELECT ON collect.jobs TO PUBLIC;
COMMENT ON VIEW collect.jobs IS 'Every maintenance job: what it calls and its usual interval; if scheduled, when it runs next, how the last run went, whether one runs now';

CREATE VIEW collect.job_runs AS
SELECT s.object, s.job, (r->>'started')::timestamptz AS started, (r->>'finished')::timestamptz AS finished,
       (r->>'batches')::integer AS batches, collect._job_result(s.owner, r->>'result') AS result
  FROM collect.job_schedules s, jsonb_array_elements(s.runs) r;
GRANT SELECT ON collect.job_runs TO PUBLIC;
COMMENT ON VIEW collect.job_runs IS 'The last runs of each scheduled job (collect._job_history() of them), newest first';
