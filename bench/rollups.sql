-- Minute rollups at ingest against plain COPY, a per-row trigger and raw queries (the
-- sketches themselves against the hll and tdigest extensions: sketches.sql).
\set runs 3
SET timezone = 'UTC';

-- 1M events in a file, copied into each variant's table.
COPY (
    SELECT '2026-11-01'::timestamptz + (g * 601 % 86400000) * interval '1 millisecond' AS at,
           (ARRAY['shop', 'blog', 'admin'])[1 + g % 3] AS app,
           'op' || (g * 7 % 12) AS operation,
           (ARRAY['ok', 'ok', 'ok', 'slow', 'failed'])[1 + g * 13 % 5] AS outcome,
           (g * 7919) % 200000 AS user_id,
           ((g * 104729) % 5000)::integer AS duration_ms,
           'cause-' || g % 23 AS root_cause
    FROM generate_series(1, 1000000::bigint) g
) TO '/tmp/pg_collect_bench_events.csv' (FORMAT csv);

CREATE TABLE plain_events (at timestamptz, app text, operation text, outcome text, user_id bigint, duration_ms integer, root_cause text);
CREATE TABLE rolled_events (LIKE plain_events);
CREATE TABLE trigger_events (LIKE plain_events);
CREATE VIEW rawless_events AS SELECT * FROM plain_events WHERE false;
SELECT collect.create_rollup('rawless_1m', 'rawless_events', 'at', '{app, operation, outcome}',
    '{"total_ms": "sum(duration_ms)", "users": "distinct(user_id)", "latency": "quantiles(duration_ms)"}', keep_raw => false);
SELECT collect.create_rollup('rolled_1m', 'rolled_events', 'at', '{app, operation, outcome}',
    '{"total_ms": "sum(duration_ms)", "users": "distinct(user_id)", "latency": "quantiles(duration_ms)"}');
-- The hand-written alternative: a row trigger upserting count and sum only.
CREATE TABLE trigger_1m (bucket timestamptz, app text, operation text, outcome text, event_count bigint, total_ms bigint,
                         PRIMARY KEY (bucket, app, operation, outcome));
CREATE FUNCTION trigger_1m_upsert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trigger_1m VALUES (date_trunc('minute', NEW.at), NEW.app, NEW.operation, NEW.outcome, 1, NEW.duration_ms)
    ON CONFLICT (bucket, app, operation, outcome) DO UPDATE
        SET event_count = trigger_1m.event_count + 1, total_ms = trigger_1m.total_ms + excluded.total_ms;
    RETURN NULL;
END $$;
CREATE TRIGGER upsert AFTER INSERT ON trigger_events FOR EACH ROW EXECUTE FUNCTION trigger_1m_upsert();
-- What a user writes today instead (pg_incremental, or a cron job): COPY into a plain table,
-- then roll the new rows up by the minute in one INSERT … SELECT, with the hll and tdigest
-- extensions for the sketches.
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;
CREATE TABLE batch_events (LIKE plain_events);
CREATE TABLE batch_1m (bucket timestamptz, app text, operation text, outcome text, event_count bigint, total_ms bigint,
                       users hll, latency tdigest, PRIMARY KEY (bucket, app, operation, outcome));

CREATE PROCEDURE bench_copy(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    target text := CASE variant WHEN 'plain' THEN 'plain_events' WHEN 'rollup' THEN 'rolled_events'
                                WHEN 'rawless' THEN 'rawless_events' WHEN 'batch' THEN 'batch_events' ELSE 'trigger_events' END;
    started timestamptz;
    took float8;
BEGIN
    IF variant NOT IN ('rawless', 'batches', 'ordered batches') THEN EXECUTE format('TRUNCATE %I', target); END IF;
    IF variant IN ('rawless', 'batches', 'ordered batches') THEN TRUNCATE rawless_1m; END IF;
    IF variant = 'rollup' THEN TRUNCATE rolled_1m, rolled_1m_stale; END IF;
    IF variant = 'trigger' THEN TRUNCATE trigger_1m; END IF;
    IF variant = 'batch' THEN TRUNCATE batch_1m; END IF;
    COMMIT;
    started := clock_timestamp();
    IF variant = 'batches' THEN
        PERFORM sum(collect.ingest('rawless_1m', l.batch)) FROM event_batches l;
    ELSIF variant = 'ordered batches' THEN
        PERFORM sum(collect.ingest('rawless_1m', l.batch)) FROM ordered_batches l;
    ELSE
        EXECUTE format('COPY %I FROM %L (FORMAT csv)', target, '/tmp/pg_collect_bench_events.csv');
    END IF;
    IF variant = 'batch' THEN
        INSERT INTO batch_1m
        SELECT date_trunc('minute', at), app, operation, outcome, count(*), sum(duration_ms),
               hll_add_agg(hll_hash_bigint(user_id)), tdigest(duration_ms, 100)
          FROM batch_events GROUP BY 1, 2, 3, 4;
    END IF;
    took := extract(epoch FROM clock_timestamp() - started) * 1000;
    -- The same time against the batch a user writes today, which does the rollup's work later.
    IF variant IN ('batch', 'rollup', 'rawless', 'ordered batches') THEN
        INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
        VALUES ('1M events, rolled up by the minute (3 dims; count, sum, distinct, quantiles)',
                CASE variant WHEN 'batch' THEN 'COPY into a plain table, then INSERT … SELECT … GROUP BY minute with hll_add_agg and tdigest'
                             WHEN 'rollup' THEN 'COPY into the source of a collect minute rollup'
                             WHEN 'rawless' THEN 'COPY into a keep_raw => false rollup (no raw rows)'
                             ELSE 'collect.ingest of gzipped NDJSON batches cut in time order (no raw rows)' END,
                variant = 'batch', run, took, 'ms', 1000000);
    END IF;
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('COPY 1M events', CASE variant WHEN 'plain' THEN 'plain COPY, no rollup'
                                          WHEN 'rollup' THEN 'COPY + collect minute rollup (3 dims; count, sum, distinct, quantiles)'
                                          WHEN 'rawless' THEN 'COPY into a keep_raw => false rollup (same metrics, no raw rows)'
                                          WHEN 'batches' THEN 'collect.ingest of gzipped NDJSON batches (10,000 events each, in file order: a batch spans 100 minutes) into the keep_raw => false rollup'
                                          WHEN 'ordered batches' THEN 'collect.ingest of the same events in batches cut in time order (a batch spans 14 minutes)'
                                          WHEN 'batch' THEN 'COPY, then the minute rollup in one INSERT … SELECT (hll, tdigest)'
                                          ELSE 'COPY + per-row PL/pgSQL upsert trigger (count and sum only)' END,
            variant = 'plain', run, took, 'ms', 1000000);
    COMMIT;
END $$;
CALL bench_copy('plain', 0);
-- The same events as a client would send them in batches: newline-delimited JSON, gzipped, 10,000 a batch.
COPY (SELECT to_jsonb(e) FROM plain_events e) TO PROGRAM 'rm -f /tmp/pgc_batch_*; split -l 10000 - /tmp/pgc_batch_ && gzip -f /tmp/pgc_batch_*';
CREATE TABLE event_batches AS
SELECT f AS name, pg_read_binary_file('/tmp/' || f) AS batch FROM pg_ls_dir('/tmp') f WHERE f LIKE 'pgc_batch_%.gz';
-- As a client sends events it collects as they happen: each batch a stretch of time.
COPY (SELECT to_jsonb(e) FROM plain_events e ORDER BY at) TO PROGRAM 'rm -f /tmp/pgc_obatch_*; split -l 10000 - /tmp/pgc_obatch_ && gzip -f /tmp/pgc_obatch_*';
CREATE TABLE ordered_batches AS
SELECT f AS name, pg_read_binary_file('/tmp/' || f) AS batch FROM pg_ls_dir('/tmp') f WHERE f LIKE 'pgc_obatch_%.gz';
CALL bench_copy('rollup', 0);
DELETE FROM bench.results WHERE run = 0;
CALL bench_copy('plain', 1);
CALL bench_copy('batch', 1);
CALL bench_copy('rollup', 1);
CALL bench_copy('trigger', 1);
CALL bench_copy('rawless', 1);
CALL bench_copy('batches', 1);
CALL bench_copy('ordered batches', 1);
CALL bench_copy('plain', 2);
CALL bench_copy('batch', 2);
CALL bench_copy('rollup', 2);
CALL bench_copy('trigger', 2);
CALL bench_copy('rawless', 2);
CALL bench_copy('batches', 2);
CALL bench_copy('ordered batches', 2);
CALL bench_copy('plain', 3);
CALL bench_copy('batch', 3);
CALL bench_copy('rollup', 3);
CALL bench_copy('trigger', 3);
CALL bench_copy('rawless', 3);
CALL bench_copy('batches', 3);
CALL bench_copy('ordered batches', 3);
SELECT (SELECT sum(event_count) FROM rolled_1m) = 1000000 AND (SELECT sum(event_count) FROM trigger_1m) = 1000000
   AND (SELECT sum(event_count) FROM rawless_1m) = 1000000 AND (SELECT sum(event_count) FROM batch_1m) = 1000000 AS all_counted \gset
\if :all_counted
\else
  \echo 'a rollup lost events'
  \quit
\endif

-- Plumbr's three questions on 10M events over 14 days, from the rollup and from raw rows.
CREATE TABLE interactions (LIKE plain_events);
SELECT collect.create_rollup('interactions_1m', 'interactions', 'at', '{app, operation, outcome}',
    '{"users": "distinct(user_id)", "latency": "quantiles(duration_ms)", "causes": "top(root_cause, 10)",
      "top_users": "top(user_id, 10)"}');
DO $$
BEGIN
    FOR chunk IN 0 .. 9 LOOP
        INSERT INTO interactions
        SELECT '2026-11-01'::timestamptz + (g * 1209600000 / 10000000) * interval '1 millisecond',
               (ARRAY['shop', 'blog'])[1 + g % 2], 'op' || (g * 7 % 5),
               (ARRAY['ok', 'ok', 'ok', 'slow', 'failed'])[1 + g * 13 % 5],
               (g * 7919) % 300000, ((g * 104729) % 5000)::integer, 'cause-' || (g * g) % 41 % 17
          FROM generate_series(chunk * 1000000 + 1, (chunk + 1) * 1000000::bigint) g;
        COMMIT;
    END LOOP;
END $$;
ANALYZE interactions;
ANALYZE interactions_1m;
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
              'rows stored for 10M events', 'raw rows', (SELECT count(*) FROM interactions), 'rows',
              'rows stored for 10M events', 'minute rollup rows', (SELECT count(*) FROM interactions_1m), 'rows') \gexec
CALL bench.compare('Plumbr 1: daily active users of an app, 14 days', 10000000, :runs, ARRAY[
    ['raw: count(DISTINCT user_id) per day', 'SELECT date_trunc(''day'', at), count(DISTINCT user_id) FROM interactions WHERE app = ''shop'' GROUP BY 1'],
    ['rollup: distinct_count(merge(users)) per day', 'SELECT date_trunc(''day'', bucket), collect.distinct_count(collect.merge(users)) FROM interactions_1m WHERE app = ''shop'' GROUP BY 1']]);
CALL bench.compare('Plumbr 2: top 3 root causes of failures, last 7 days', 10000000, :runs, ARRAY[
    ['raw: GROUP BY root_cause ORDER BY count', 'SELECT root_cause, count(*) FROM interactions WHERE outcome = ''failed'' AND at >= ''2026-11-08'' GROUP BY 1 ORDER BY 2 DESC LIMIT 3'],
    ['rollup: top(merge(causes), 3)', 'SELECT * FROM collect.top((SELECT collect.merge(causes) FROM interactions_1m WHERE outcome = ''failed'' AND bucket >= ''2026-11-08''), 3)']]);
-- The same question over a value with many distinct values (300,000 users, ~10 events a
-- minute row): every merge meets values the state has not seen, and the state stays full.
CALL bench.compare('top 10 users with failures, last 7 days (300,000 distinct users)', 10000000, :runs, ARRAY[
    ['raw: GROUP BY user_id ORDER BY count', 'SELECT user_id, count(*) FROM interactions WHERE outcome = ''failed'' AND at >= ''2026-11-08'' GROUP BY 1 ORDER BY 2 DESC LIMIT 10'],
    ['rollup: top(merge(top_users), 10)', 'SELECT * FROM collect.top((SELECT collect.merge(top_users) FROM interactions_1m WHERE outcome = ''failed'' AND bucket >= ''2026-11-08''), 10)']]);
CALL bench.compare('Plumbr 3: latency p50/p95/p99 of an operation, week against week', 10000000, :runs, ARRAY[
    ['raw: percentile_cont per week', 'SELECT at >= ''2026-11-08'', percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) FROM interactions WHERE operation = ''op1'' GROUP BY 1'],
    ['rollup: quantiles(merge(latency)) per week', 'SELECT bucket >= ''2026-11-08'', collect.quantiles(collect.merge(latency), ''{0.5, 0.95, 0.99}'') FROM interactions_1m WHERE operation = ''op1'' GROUP BY 1']]);
