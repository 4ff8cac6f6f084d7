-- Sketches against the hll and tdigest extensions on the same 1M values: building them,
-- merging 1,440 per-minute sketches, their error and size.
\set runs 5
CREATE EXTENSION IF NOT EXISTS hll;
CREATE EXTENSION IF NOT EXISTS tdigest;

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
       collect.hll_agg(user_id, 11) AS h11,
       tdigest(ms, 100) AS t_ext, collect.quantiles_agg(ms) AS q
FROM sketch_values GROUP BY minute;
CALL bench.compare('merge 1,440 per-minute distinct-count sketches', 1440, :runs, ARRAY[
    ['hll extension: hll_union_agg', 'SELECT hll_cardinality(hll_union_agg(h_ext)) FROM minute_sketches'],
    ['collect.merge(hll)', 'SELECT collect.distinct_count(collect.merge(h)) FROM minute_sketches'],
    ['collect.merge(hll) at precision 11 (the hll extension''s standard error)', 'SELECT collect.distinct_count(collect.merge(h11)) FROM minute_sketches']]);
CALL bench.compare('merge 1,440 per-minute quantile sketches', 1440, :runs, ARRAY[
    ['tdigest extension: tdigest_percentile(tdigest, q)', 'SELECT tdigest_percentile(t_ext, 0.5) FROM minute_sketches'],
    ['collect.merge(quantiles)', 'SELECT collect.quantile(collect.merge(q), 0.5) FROM minute_sketches']]);
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'distinct count of 1M values (300,000 distinct): relative error', 'hll extension',
    abs((SELECT hll_cardinality(hll_union_agg(h_ext)) FROM minute_sketches) - e) / e * 100, '% error',
    'distinct count of 1M values (300,000 distinct): relative error', 'collect.hll',
    abs((SELECT collect.distinct_count(collect.merge(h)) FROM minute_sketches) - e) / e * 100, '% error')
FROM (SELECT count(DISTINCT user_id)::float8 AS e FROM sketch_values) x \gexec
SELECT format('CALL bench.record(%L, %L, false, %s, %L);',
    'distinct count of 1M values (300,000 distinct): relative error', 'collect.hll at precision 11',
    abs((SELECT collect.distinct_count(collect.merge(h11)) FROM minute_sketches) - e) / e * 100, '% error')
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
SELECT format('CALL bench.record(%L, %L, false, %s, %L);',
    'sketch size, 1M values', 'collect.hll at precision 11', pg_column_size((SELECT collect.merge(h11) FROM minute_sketches)), 'bytes') \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'sketch size, one minute (~700 values)', 'hll extension', (SELECT avg(pg_column_size(h_ext)) FROM minute_sketches), 'bytes',
    'sketch size, one minute (~700 values)', 'collect.hll', (SELECT avg(pg_column_size(h)) FROM minute_sketches), 'bytes') \gexec
SELECT format('CALL bench.record(%L, %L, false, %s, %L);',
    'sketch size, one minute (~700 values)', 'collect.hll at precision 11', (SELECT avg(pg_column_size(h11)) FROM minute_sketches), 'bytes') \gexec
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'quantile sketch size, 1M values', 'tdigest extension', pg_column_size((SELECT tdigest(t_ext) FROM minute_sketches)), 'bytes',
    'quantile sketch size, 1M values', 'collect.quantiles', pg_column_size((SELECT collect.merge(q) FROM minute_sketches)), 'bytes') \gexec

-- The Plumbr question, "daily distinct users and p99 latency per operation", over 2M events in
-- 7 days and 4 operations (40,320 minute rows), from a hand-built minute table of hll and
-- tdigest sketches against a collect rollup of the same events.
RESET max_parallel_workers_per_gather;
CREATE TABLE plumbr_events (at timestamptz NOT NULL, operation text NOT NULL, user_id bigint NOT NULL, duration_ms float8 NOT NULL);
SELECT collect.create_rollup('plumbr_1m', 'plumbr_events', 'at', '{operation}',
    '{"users": "distinct(user_id)", "users11": "distinct(user_id, 11)", "latency": "quantiles(duration_ms)"}');
INSERT INTO plumbr_events
SELECT timestamptz '2026-11-01' + (g % 604800) * interval '1 second', 'op' || (g * 13 % 4), (g * 7919) % 50000,
       ((g * 104729) % 100000) / 10.0
  FROM generate_series(1, 2000000::bigint) g;
CREATE TABLE plumbr_peer_1m AS
SELECT date_bin('1 minute', at, timestamptz '2000-01-01') AS bucket, operation, count(*) AS events,
       hll_add_agg(hll_hash_bigint(user_id)) AS users, tdigest(duration_ms, 100) AS latency
  FROM plumbr_events GROUP BY 1, 2;
VACUUM ANALYZE plumbr_1m, plumbr_peer_1m;
CALL bench.compare('Plumbr: daily distinct users and p99 latency per operation (40,320 minute rows)', 40320, :runs, ARRAY[
    ['hand-built minute table: hll_union_agg + tdigest_percentile', $q$
        SELECT date_trunc('day', bucket), operation, hll_cardinality(hll_union_agg(users)), tdigest_percentile(latency, 0.99)
          FROM plumbr_peer_1m GROUP BY 1, 2 $q$],
    ['collect rollup: merge(users) + quantile(merge(latency))', $q$
        SELECT date_trunc('day', bucket), operation, collect.distinct_count(collect.merge(users)),
               collect.quantile(collect.merge(latency), 0.99)
          FROM plumbr_1m GROUP BY 1, 2 $q$],
    ['collect rollup, distinct at precision 11 (the hll extension''s error)', $q$
        SELECT date_trunc('day', bucket), operation, collect.distinct_count(collect.merge(users11)),
               collect.quantile(collect.merge(latency), 0.99)
          FROM plumbr_1m GROUP BY 1, 2 $q$]]);
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
    'Plumbr minute table size', 'hand-built: hll + tdigest', pg_total_relation_size('plumbr_peer_1m'), 'bytes',
    'Plumbr minute table size', 'collect rollup (users at 14 and 11, latency)', pg_total_relation_size('plumbr_1m'), 'bytes') \gexec
