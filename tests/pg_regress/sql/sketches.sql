-- Mergeable sketches: collect.hll (distinct counts), collect.quantiles (DDSketch),
-- collect.topk (heavy hitters). Build them with *_agg, re-aggregate stored sketches with
-- collect.merge(...), read them with accessors.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE requests AS
SELECT g AS id,
       '2026-11-01'::timestamptz + (g % 1440) * interval '1 minute' AS at,
       (g * 7919) % 20000 AS user_id,
       (((g * 104729) % 100000) / 100.0)::float8 AS latency_ms,
       'cause-' || ((g * g) % 97) % 13 AS root_cause
FROM generate_series(1, 100000::bigint) g;

-- Distinct counts: exact while small, about 0.8% standard error beyond.
SELECT collect.distinct_count(collect.hll_agg(user_id)) AS sketch, count(DISTINCT user_id) AS exact
FROM requests WHERE id <= 1000;
SELECT abs(collect.distinct_count(collect.hll_agg(user_id)) - 20000) < 20000 * 0.025 AS within_error
FROM requests;
-- Any type can be counted; NULLs are skipped.
SELECT collect.distinct_count(collect.hll_agg(x)) FROM (VALUES ('a'::text), ('b'), ('a'), (NULL)) v(x);
SELECT collect.distinct_count(collect.hll_agg(d)) FROM (VALUES (date '2026-01-01'), ('2026-01-02')) v(d);

-- Quantiles within 1% of a true value of that rank.
SELECT q, abs(s - e) <= 0.01 * e AS within_one_percent
FROM (SELECT unnest(collect.quantiles(collect.quantiles_agg(latency_ms), '{0.5, 0.9, 0.99}')) AS s,
             unnest(percentile_disc('{0.5, 0.9, 0.99}'::float8[]) WITHIN GROUP (ORDER BY latency_ms)) AS e,
             unnest('{0.5, 0.9, 0.99}'::float8[]) AS q
      FROM requests) t;
SELECT collect.quantile(collect.quantiles_agg(latency_ms), 0) AS min, collect.quantile(collect.quantiles_agg(latency_ms), 1) AS max,
       collect.value_count(collect.quantiles_agg(latency_ms)) AS n
FROM requests;

-- Heavy hitters: counts with error bounds (the true count is in [count - error, count]).
SELECT t.value, t.count, t.error, e.exact, e.exact BETWEEN t.count - t.error AND t.count AS bounded
FROM collect.top((SELECT collect.topk_agg(root_cause, 3) FROM requests), 3) t
JOIN (SELECT root_cause, count(*) AS exact FROM requests GROUP BY 1) e ON e.root_cause = t.value
ORDER BY t.count DESC;

-- Store per-minute sketches, re-aggregate to hours and to the day: merging equals building.
CREATE TABLE per_minute AS
SELECT date_trunc('minute', at) AS minute, count(*) AS n,
       collect.hll_agg(user_id) AS users, collect.quantiles_agg(latency_ms) AS latency,
       collect.topk_agg(root_cause, 3) AS causes
FROM requests GROUP BY 1;
SELECT hour, collect.distinct_count(collect.merge(users)) AS users,
       round(collect.quantile(collect.merge(latency), 0.5)::numeric, 1) AS median_ms
FROM (SELECT date_trunc('hour', minute) AS hour, users, latency FROM per_minute) m
GROUP BY hour ORDER BY hour LIMIT 3;
SELECT (SELECT collect.merge(users) FROM per_minute) OPERATOR(collect.=) (SELECT collect.hll_agg(user_id) FROM requests) AS hll_merge_is_exact,
       (SELECT collect.merge(latency) FROM per_minute) OPERATOR(collect.=) (SELECT collect.quantiles_agg(latency_ms) FROM requests) AS quantiles_merge_is_exact;
SELECT value, count >= 7000 AS heavy FROM collect.top((SELECT collect.merge(causes) FROM per_minute), 2);
-- Dense sketches (over 2,048 distinct values each) merge into the aggregate's state in place:
-- the same bytes as building the union, also as a window aggregate (running totals).
CREATE TABLE dense_parts AS
SELECT g % 10 AS part, collect.hll_agg(g) AS h FROM generate_series(1, 100000) g GROUP BY 1;
SELECT (SELECT collect.merge(h ORDER BY part) FROM dense_parts)
       OPERATOR(collect.=) (SELECT collect.hll_agg(g) FROM generate_series(1, 100000) g) AS dense_merge_is_exact;
SELECT bool_and(running OPERATOR(collect.=) (SELECT collect.hll_agg(g) FROM generate_series(1, 100000) g WHERE g % 10 <= part))
       AS running_merges_are_exact
FROM (SELECT part, collect.merge(h) OVER (ORDER BY part) AS running FROM dense_parts) w;
-- A sketch of another precision cannot be merged in, in place or not.
SELECT collect.merge(h) FROM (SELECT h FROM dense_parts WHERE part = 0 UNION ALL SELECT '\x010c0000'::collect.hll) s;
\echo :LAST_ERROR_SQLSTATE

-- Parallel plans give the same answers as serial ones.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT collect.hll_agg(user_id), collect.quantiles_agg(latency_ms), collect.topk_agg(root_cause, 3) FROM requests;
EXPLAIN (COSTS OFF) SELECT collect.merge(users), collect.merge(latency) FROM per_minute;
CREATE TABLE parallel_answers AS
SELECT collect.hll_agg(user_id) AS h, collect.quantiles_agg(latency_ms) AS q FROM requests;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT p.h OPERATOR(collect.=) s.h AS same_hll, p.q OPERATOR(collect.=) s.q AS same_quantiles
FROM parallel_answers p,
     (SELECT collect.hll_agg(user_id) AS h, collect.quantiles_agg(latency_ms) AS q FROM requests) s;
RESET max_parallel_workers_per_gather;

-- Aggregate states are the sketch types, changed in place: a running (window) aggregate
-- keeps every row's own answer, hash and sorted grouping agree, and the transition functions
-- called as plain functions leave their arguments alone.
SELECT bool_and(collect.distinct_count(h) = n) AS running_counts_are_exact,
       bool_and(collect.value_count(q) = n) AS running_quantiles_are_whole
FROM (SELECT g AS n, collect.hll_agg(g) OVER w AS h, collect.quantiles_agg(g) OVER w AS q
        FROM generate_series(1, 300) g WINDOW w AS (ORDER BY g)) s;
CREATE TABLE grouped_answers AS
SELECT g % 3000 AS k, collect.hll_agg(g) AS h, collect.quantiles_agg(g) AS q, collect.topk_agg((g % 7)::text, 3) AS t
  FROM generate_series(1, 60000) g GROUP BY 1;
SET enable_hashagg = off;
SELECT count(*) AS groups, bool_and(a.h OPERATOR(collect.=) s.h AND a.q OPERATOR(collect.=) s.q AND a.t OPERATOR(collect.=) s.t) AS same
FROM grouped_answers a JOIN (
    SELECT g % 3000 AS k, collect.hll_agg(g) AS h, collect.quantiles_agg(g) AS q, collect.topk_agg((g % 7)::text, 3) AS t
      FROM generate_series(1, 60000) g GROUP BY 1) s USING (k);
RESET enable_hashagg;
SELECT collect._hll_merge_trans(a.h, b.h) OPERATOR(collect.=) collect.merge(a.h, b.h) AS same_as_union,
       a.h OPERATOR(collect.=) (SELECT h FROM grouped_answers WHERE k = 1) AS argument_unchanged
FROM grouped_answers a, grouped_answers b WHERE a.k = 1 AND b.k = 2;

-- A precision of your choosing: 2^p registers of 5 bits, standard error 1.04/sqrt(2^p).
SELECT p, pg_column_size(collect.hll_agg(g, p)) AS bytes,
       abs(collect.distinct_count(collect.hll_agg(g, p)) - 200000) / 200000.0 < 3 * 1.04 / sqrt(2 ^ p) AS within_three_errors
  FROM generate_series(1, 200000) g, (VALUES (11), (14), (16)) v(p) GROUP BY p ORDER BY p;
SELECT collect.hll_agg(g, 3) FROM generate_series(1, 10) g;
\echo :LAST_ERROR_SQLSTATE
SELECT collect.hll_agg(g, CASE WHEN g < 5 THEN 11 ELSE 12 END) FROM generate_series(1, 10) g;
\echo :LAST_ERROR_SQLSTATE

-- Text form round-trips (pg_dump relies on it).
SELECT collect.hll_agg(x)::text::collect.hll OPERATOR(collect.=) collect.hll_agg(x) AS round_trips
FROM generate_series(1, 3000) x;

-- Errors.
SELECT collect.quantile(collect.quantiles_agg(latency_ms), 1.5) FROM requests;
\echo :LAST_ERROR_SQLSTATE
SELECT collect.quantiles_agg(x) FROM (VALUES (1.0::float8), ('NaN')) v(x);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.topk_agg(root_cause, 0) FROM requests;
\echo :LAST_ERROR_SQLSTATE
SELECT 'not a sketch'::collect.hll;
\echo :LAST_ERROR_SQLSTATE
SELECT '\x01'::collect.quantiles;
\echo :LAST_ERROR_SQLSTATE
-- Top-k sketches of any k merge (into the larger k and counters); the counts add.
SELECT value, count FROM collect.top((SELECT collect.merge(t) FROM (SELECT collect.topk_agg(root_cause, 2) t FROM requests
                                                                   UNION ALL SELECT collect.topk_agg(root_cause, 3) FROM requests) s), 1);
SELECT root_cause, 2 * count(*) AS twice FROM requests GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1;

-- Counts over no rows are 0, as count(DISTINCT …) and count(*) are; the sketches themselves are NULL.
SELECT collect.distinct_count(collect.hll_agg(user_id)) AS distinct_users, count(DISTINCT user_id) AS exact,
       collect.value_count(collect.quantiles_agg(latency_ms)) AS values, collect.hll_agg(user_id) IS NULL AS no_sketch
  FROM requests WHERE false;

-- top(col, k) keeps 64 counters per k asked for, at least 1,024: on a long tail (4,000
-- aircraft, ~120,000 flights, three of them flying 270 times each) the top 3 are the true
-- ones, and `error` (how much `count` may overstate the truth) stays within n / 1,024.
CREATE TABLE flights AS
SELECT 'heavy' || p AS plane, i AS flight FROM generate_series(0, 2) p, generate_series(1, 270) i
UNION ALL SELECT 'N' || p, i FROM generate_series(0, 3996) p, generate_series(1, 20 + p % 19) i;
SELECT value, count, error, error <= (SELECT count(*) FROM flights) / 1024 AS within_bound
  FROM collect.top((SELECT collect.topk_agg(plane, 3 ORDER BY md5(plane || flight)) FROM flights), 3) ORDER BY value;
DROP TABLE flights;
