-- Sketches on Citus: per-minute sketch columns in a distributed table, merged across shards.
-- The merge aggregates keep the sketch type as their state, so Citus computes partial merges
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
DROP FUNCTION plan_of(text);
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
