-- Sketches on Citus: per-minute sketch columns in a distributed table, merged across shards.
-- Every sketch aggregate keeps the sketch type as its state, so Citus computes partial aggregates
-- on the workers and combines them on the coordinator; results equal a local table's.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
CREATE TABLE minutes (page text, minute timestamptz, users collect.hll, latency collect.quantiles, causes collect.topk);
SELECT create_distributed_table('minutes', 'page');
INSERT INTO minutes
SELECT 'page' || p, '2026-11-01'::timestamptz + m * interval '1 minute',
       (SELECT collect.hll_agg(u) FROM generate_series(p * 100 + m, p * 100 + m + 50) u),
       (SELECT collect.quantiles_agg(x) FROM generate_series(1, 20 + m) x),
       (SELECT collect.topk_agg('cause' || (x % (1 + p)), 5) FROM generate_series(1, 30) x)
  FROM generate_series(1, 8) p, generate_series(0, 59) m;
CREATE TABLE minutes_local AS SELECT * FROM minutes;
-- Grouped by something other than the distribution column: partial aggregates on the workers.
SET citus.explain_all_tasks = off;
CREATE FUNCTION plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    -- Shard numbers and worker ports vary from run to run.
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        RETURN NEXT regexp_replace(regexp_replace(line, '_[0-9]+ ', '_N ', 'g'), 'port=[0-9]+', 'port=N', 'g');
    END LOOP;
END $$;
SELECT plan_of('SELECT date_trunc(''hour'', minute) AS hour, collect.merge(users) FROM minutes GROUP BY 1');
-- The build aggregates too: their state is the sketch type, so raw rows stay on the workers.
CREATE TABLE requests (page text, at timestamptz, user_id bigint, latency_ms float8, cause text);
SELECT create_distributed_table('requests', 'page');
INSERT INTO requests
SELECT 'page' || (g % 8), '2026-11-01'::timestamptz + (g % 180) * interval '1 minute', g % 5000, (g % 997) * 1.5, 'cause' || (g % 11)
  FROM generate_series(1, 30000) g;
CREATE TABLE requests_local AS SELECT * FROM requests;
SELECT plan_of('SELECT date_trunc(''hour'', at), collect.hll_agg(user_id), collect.quantiles_agg(latency_ms), collect.topk_agg(cause, 3) FROM requests GROUP BY 1');
SELECT plan_of('SELECT collect.hll_agg(user_id) FROM requests');
DROP FUNCTION plan_of(text);
WITH d AS (SELECT date_trunc('hour', at) AS hour, collect.hll_agg(user_id) AS h, collect.quantiles_agg(latency_ms) AS q,
                  collect.topk_agg(cause, 3) AS t FROM requests GROUP BY 1),
     l AS (SELECT date_trunc('hour', at) AS hour, collect.hll_agg(user_id) AS h, collect.quantiles_agg(latency_ms) AS q,
                  collect.topk_agg(cause, 3) AS t FROM requests_local GROUP BY 1)
SELECT count(*) AS hours, bool_and(d.h OPERATOR(collect.=) l.h AND d.q OPERATOR(collect.=) l.q) AS same_sketches,
       bool_and((SELECT array_agg(value ORDER BY count DESC, value) FROM collect.top(d.t, 3))
              = (SELECT array_agg(value ORDER BY count DESC, value) FROM collect.top(l.t, 3))) AS same_top
  FROM d JOIN l USING (hour);
-- Without GROUP BY as well, for every type hll_agg takes as such.
SELECT (SELECT collect.distinct_count(collect.hll_agg(user_id)) FROM requests) AS distributed,
       (SELECT collect.distinct_count(collect.hll_agg(user_id)) FROM requests_local) AS local,
       (SELECT collect.distinct_count(collect.hll_agg(user_id::integer)) FROM requests) AS integers,
       (SELECT collect.distinct_count(collect.hll_agg(cause)) FROM requests) AS texts,
       (SELECT collect.distinct_count(collect.hll_agg(at)) FROM requests) AS times;
DROP TABLE requests, requests_local;
SELECT (SELECT collect.distinct_count(collect.merge(users)) FROM minutes) AS distributed,
       (SELECT collect.distinct_count(collect.merge(users)) FROM minutes_local) AS local;
SELECT d.hour, d.q = l.q AS same_quantiles
  FROM (SELECT date_trunc('hour', minute) AS hour, collect.quantiles(collect.merge(latency), '{0.5, 0.99}') AS q FROM minutes GROUP BY 1) d
  JOIN (SELECT date_trunc('hour', minute) AS hour, collect.quantiles(collect.merge(latency), '{0.5, 0.99}') AS q FROM minutes_local GROUP BY 1) l USING (hour);
SELECT (SELECT array_agg(value ORDER BY count DESC, value) FROM collect.top((SELECT collect.merge(causes) FROM minutes), 3)) AS distributed,
       (SELECT array_agg(value ORDER BY count DESC, value) FROM collect.top((SELECT collect.merge(causes) FROM minutes_local), 3)) AS local;
-- Per distribution value: the whole merge runs on one worker.
SELECT page, collect.distinct_count(collect.merge(users)) FROM minutes WHERE page = 'page3' GROUP BY page;
DROP TABLE minutes, minutes_local;
