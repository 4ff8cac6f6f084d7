-- Rollups on Citus against the same rollup on one node (a local table on the coordinator, in
-- the same run): ingest by COPY, and the Plumbr question re-aggregated from the rollup, with
-- the bytes the workers send the coordinator for it.
\set runs 5
SET timezone = 'UTC';
SET citus.shard_count = 4;

-- 1M events over 7 days, 4 tenants (the distribution column), 4 operations.
COPY (
    SELECT '2026-11-01'::timestamptz + (g * 604800000 / 1000000) * interval '1 millisecond' AS at,
           g % 4 AS tenant, 'op' || (g * 7 % 4) AS operation,
           (g * 7919) % 200000 AS user_id, ((g * 104729) % 5000)::integer AS duration_ms
      FROM generate_series(1, 1000000::bigint) g
) TO '/tmp/pg_collect_citus_bench_events.csv' (FORMAT csv);

CREATE TABLE events (at timestamptz NOT NULL, tenant int, operation text, user_id bigint, duration_ms integer);
SELECT create_distributed_table('events', 'tenant');
CREATE TABLE local_events (LIKE events);
CREATE TABLE plain_events (LIKE events);
SELECT create_distributed_table('plain_events', 'tenant');
CREATE TABLE local_plain_events (LIKE events);
SELECT collect.create_rollup('events_1m', 'events', 'at', '{tenant, operation}',
    '{"users": "distinct(user_id)", "latency": "quantiles(duration_ms)"}');
SELECT collect.create_rollup('local_events_1m', 'local_events', 'at', '{tenant, operation}',
    '{"users": "distinct(user_id)", "latency": "quantiles(duration_ms)"}');

CREATE PROCEDURE bench_copy(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
BEGIN
    CASE variant
        WHEN 'one node' THEN TRUNCATE local_plain_events;
        WHEN 'citus' THEN TRUNCATE plain_events;
        WHEN 'one node, rollup' THEN TRUNCATE local_events, local_events_1m, local_events_1m_stale;
        ELSE TRUNCATE events, events_1m, events_1m_stale;
    END CASE;
    COMMIT;
    started := clock_timestamp();
    EXECUTE format('COPY %s FROM %L (FORMAT csv)',
                   CASE variant WHEN 'one node' THEN 'local_plain_events' WHEN 'citus' THEN 'plain_events'
                                WHEN 'one node, rollup' THEN 'local_events' ELSE 'events' END,
                   '/tmp/pg_collect_citus_bench_events.csv');
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('Citus: COPY 1M events', CASE variant
                WHEN 'one node' THEN 'one node, no rollup'
                WHEN 'citus' THEN 'Citus (2 workers, 4 shards), no rollup'
                WHEN 'one node, rollup' THEN 'one node, minute rollup (2 dims; distinct, quantiles)'
                ELSE 'Citus, minute rollup kept by the shards'' triggers' END,
            variant = 'one node', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 1000000);
    COMMIT;
END $$;
CALL bench_copy('one node', 0);
DELETE FROM bench.results WHERE run = 0;
DO $$ BEGIN
    FOR r IN 1 .. 3 LOOP
        CALL bench_copy('one node', r);
        CALL bench_copy('citus', r);
        CALL bench_copy('one node, rollup', r);
        CALL bench_copy('citus, rollup', r);
    END LOOP;
END $$;
SELECT (SELECT sum(event_count) FROM events_1m) = 1000000 AND (SELECT sum(event_count) FROM local_events_1m) = 1000000
   AND (SELECT count(*) FROM events_1m) = (SELECT count(*) FROM local_events_1m) AS all_counted \gset
\if :all_counted
\else
  \echo 'a rollup lost events'
  \quit
\endif
ANALYZE local_events_1m;

-- The Plumbr question: daily distinct users and p99 latency per operation, over all tenants.
\set question 'SELECT date_trunc(''day'', bucket) AS day, operation, collect.distinct_count(collect.merge(users)) AS users, collect.quantile(collect.merge(latency), 0.99) AS p99 FROM %s GROUP BY 1, 2 ORDER BY 1, 2'
SELECT format(:'question', 'local_events_1m') AS one_node, format(:'question', 'events_1m') AS citus \gset
CALL bench.compare('Citus: Plumbr question from the minute rollup (1M events, 7 days, all tenants)', 1000000, :runs, ARRAY[
    ['one node', :'one_node'],
    ['Citus: partial merges on the workers, combined on the coordinator', :'citus']]);

-- What the coordinator receives for it. A plan that could not push the merges down would
-- receive every rollup row. Pushed down, each shard returns one partial sketch per group,
-- which Citus's worker_partial_agg sends as the sketch type's text (Citus's EXPLAIN ANALYZE,
-- which would count the bytes, cannot run such plans: "column has pseudo-type cstring"), so
-- the bytes are counted here from what each shard returns.
CREATE FUNCTION shipped_bytes(source text, partial text) RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(result::bigint) FROM run_command_on_shards(source,
        format('SELECT coalesce(sum(octet_length(p::text)), 0) FROM (%s) p', partial))
$$;
SELECT (SELECT sum(octet_length(r::text)) FROM local_events_1m r) AS rows_bytes,
       shipped_bytes('events_1m', 'SELECT date_trunc(''day'', bucket), operation, collect.merge(users), collect.merge(latency) FROM %s GROUP BY 1, 2') AS rollup_bytes,
       shipped_bytes('events', 'SELECT date_trunc(''day'', at), operation, collect.hll_agg(user_id), collect.quantiles_agg(duration_ms) FROM %s GROUP BY 1, 2') AS raw_bytes \gset
CALL bench.record('Citus: bytes the coordinator receives for the Plumbr question', 'every minute row of the rollup, as text (no pushdown)', true, :rows_bytes, 'bytes');
CALL bench.record('Citus: bytes the coordinator receives for the Plumbr question', 'from the rollup: one partial merge per shard and group', false, :rollup_bytes, 'bytes');
CALL bench.record('Citus: bytes the coordinator receives for the Plumbr question', 'from raw events: one partial hll_agg / quantiles_agg per shard and group', false, :raw_bytes, 'bytes');
CALL bench.compare('Citus: Plumbr question from raw events (1M events, all tenants)', 1000000, :runs, ARRAY[
    ['one node', 'SELECT date_trunc(''day'', at), operation, collect.distinct_count(collect.hll_agg(user_id)), collect.quantile(collect.quantiles_agg(duration_ms), 0.99) FROM local_events GROUP BY 1, 2 ORDER BY 1, 2'],
    ['Citus: partial aggregates on the workers', 'SELECT date_trunc(''day'', at), operation, collect.distinct_count(collect.hll_agg(user_id)), collect.quantile(collect.quantiles_agg(duration_ms), 0.99) FROM events GROUP BY 1, 2 ORDER BY 1, 2']]);
