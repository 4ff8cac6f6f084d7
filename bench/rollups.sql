-- Minute rollups at ingest against plain COPY, a per-row trigger and raw queries; sketches
-- against the hll and tdigest extensions.
\set runs 3
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;

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

CREATE PROCEDURE bench_copy(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    target text := CASE variant WHEN 'plain' THEN 'plain_events' WHEN 'rollup' THEN 'rolled_events'
                                WHEN 'rawless' THEN 'rawless_events' ELSE 'trigger_events' END;
    started timestamptz;
BEGIN
    IF variant <> 'rawless' THEN EXECUTE format('TRUNCATE %I', target); END IF;
    IF variant = 'rawless' THEN TRUNCATE rawless_1m; END IF;
    IF variant = 'rollup' THEN TRUNCATE rolled_1m, rolled_1m_stale; END IF;
    IF variant = 'trigger' THEN TRUNCATE trigger_1m; END IF;
    COMMIT;
    started := clock_timestamp();
    EXECUTE format('COPY %I FROM %L (FORMAT csv)', target, '/tmp/pg_collect_bench_events.csv');
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('COPY 1M events', CASE variant WHEN 'plain' THEN 'plain COPY, no rollup'
                                          WHEN 'rollup' THEN 'COPY + collect minute rollup (3 dims; count, sum, distinct, quantiles)'
                                          WHEN 'rawless' THEN 'COPY into a keep_raw => false rollup (same metrics, no raw rows)'
                                          ELSE 'COPY + per-row PL/pgSQL upsert trigger (count and sum only)' END,
            variant = 'plain', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 1000000);
    COMMIT;
END $$;
CALL bench_copy('plain', 0);
CALL bench_copy('rollup', 0);
DELETE FROM bench.results WHERE run = 0;
CALL bench_copy('plain', 1);
CALL bench_copy('rollup', 1);
CALL bench_copy('trigger', 1);
CALL bench_copy('rawless', 1);
CALL bench_copy('plain', 2);
CALL bench_copy('rollup', 2);
CALL bench_copy('trigger', 2);
CALL bench_copy('rawless', 2);
CALL bench_copy('plain', 3);
CALL bench_copy('rollup', 3);
CALL bench_copy('trigger', 3);
CALL bench_copy('rawless', 3);
SELECT (SELECT sum(event_count) FROM rolled_1m) = 1000000 AND (SELECT sum(event_count) FROM trigger_1m) = 1000000
   AND (SELECT sum(event_count) FROM rawless_1m) = 1000000 AS all_counted \gset
\if :all_counted
\else
  \echo 'a rollup lost events'
  \quit
\endif

-- Plumbr's three questions on 10M events over 14 days, from the rollup and from raw rows.
CREATE TABLE interactions (LIKE plain_events);
SELECT collect.create_rollup('interactions_1m', 'interactions', 'at', '{app, operation, outcome}',
    '{"users": "distinct(user_id)", "latency": "quantiles(duration_ms)", "causes": "top(root_cause, 10)"}');
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
CALL bench.compare('Plumbr 3: latency p50/p95/p99 of an operation, week against week', 10000000, :runs, ARRAY[
    ['raw: percentile_cont per week', 'SELECT at >= ''2026-11-08'', percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms) FROM interactions WHERE operation = ''op1'' GROUP BY 1'],
    ['rollup: quantiles(merge(latency)) per week', 'SELECT bucket >= ''2026-11-08'', collect.quantiles(collect.merge(latency), ''{0.5, 0.95, 0.99}'') FROM interactions_1m WHERE operation = ''op1'' GROUP BY 1']]);

-- Sketches against the hll and tdigest extensions, on the same 1M values.
CREATE TABLE sketch_values AS SELECT (g * 7919) % 300000 AS user_id, ((g * 104729) % 100000) / 10.0 AS ms, g % 1440 AS minute
FROM generate_series(1, 1000000::bigint) g;
ANALYZE sketch_values;
SET max_parallel_workers_per_gather = 0;
CALL bench.compare('build a distinct-count sketch of 1M values', 1000000, :runs, ARRAY[
    ['hll extension: hll_add_agg(hll_hash_bigint(x))', 'SELECT hll_cardinality(hll_add_agg(hll_hash_bigint(user_id))) FROM sketch_values'],
    ['collect.hll_agg', 'SELECT collect.distinct_count(collect.hll_agg(user_id)) FROM sketch_values']]);
CALL bench.compare('build a quantile sketch of 1M values', 1000000, :runs, ARRAY[
    ['tdigest extension: tdigest_percentile(x, 100, q)', 'SELECT tdigest_percentile(ms, 100, 0.5) FROM sketch_values'],
    ['collect.quantiles_agg', 'SELECT collect.quantile(collect.quantiles_agg(ms), 0.5) FROM sketch_values']]);
CREATE TABLE minute_sketches AS
SELECT minute, hll_add_agg(hll_hash_bigint(user_id)) AS h_ext, collect.hll_agg(user_id) AS h,
       tdigest(ms, 100) AS t_ext, collect.quantiles_agg(ms) AS q
FROM sketch_values GROUP BY minute;
CALL bench.compare('merge 1,440 per-minute distinct-count sketches', 1440, :runs, ARRAY[
    ['hll extension: hll_union_agg', 'SELECT hll_cardinality(hll_union_agg(h_ext)) FROM minute_sketches'],
    ['collect.merge(hll)', 'SELECT collect.distinct_count(collect.merge(h)) FROM minute_sketches']]);
CALL bench.compare('merge 1,440 per-minute quantile sketches', 1440, :runs, ARRAY[
    ['tdigest extension: tdigest_percentile(tdigest, q)', 'SELECT tdigest_percentile(t_ext, 0.5) FROM minute_sketches'],
    ['collect.merge(quantiles)', 'SELECT collect.quantile(collect.merge(q), 0.5) FROM minute_sketches']]);
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'distinct count of 1M values (300,000 distinct): relative error', 'hll extension',
    abs((SELECT hll_cardinality(hll_union_agg(h_ext)) FROM minute_sketches) - e) / e * 100, '% error',
    'distinct count of 1M values (300,000 distinct): relative error', 'collect.hll',
    abs((SELECT collect.distinct_count(collect.merge(h)) FROM minute_sketches) - e) / e * 100, '% error')
FROM (SELECT count(DISTINCT user_id)::float8 AS e FROM sketch_values) x \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'p' || (frac * 100)::int || ' of 1M values: relative error', 'tdigest extension',
    abs((SELECT tdigest_percentile(m.t_ext, frac) FROM minute_sketches m) - e) / e * 100, '% error',
    'p' || (frac * 100)::int || ' of 1M values: relative error', 'collect.quantiles',
    abs(collect.quantile((SELECT collect.merge(m.q) FROM minute_sketches m), frac) - e) / e * 100, '% error')
FROM (SELECT frac, percentile_disc(frac) WITHIN GROUP (ORDER BY ms) AS e
        FROM sketch_values, unnest('{0.5, 0.99}'::float8[]) frac GROUP BY frac) x \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'sketch size, 1M values', 'hll extension', pg_column_size((SELECT hll_union_agg(h_ext) FROM minute_sketches)), 'bytes',
    'sketch size, 1M values', 'collect.hll', pg_column_size((SELECT collect.merge(h) FROM minute_sketches)), 'bytes') \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'sketch size, one minute (~700 values)', 'hll extension', (SELECT avg(pg_column_size(h_ext)) FROM minute_sketches), 'bytes',
    'sketch size, one minute (~700 values)', 'collect.hll', (SELECT avg(pg_column_size(h)) FROM minute_sketches), 'bytes') \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'quantile sketch size, 1M values', 'tdigest extension', pg_column_size((SELECT tdigest(t_ext) FROM minute_sketches)), 'bytes',
    'quantile sketch size, 1M values', 'collect.quantiles', pg_column_size((SELECT collect.merge(q) FROM minute_sketches)), 'bytes') \gexec
