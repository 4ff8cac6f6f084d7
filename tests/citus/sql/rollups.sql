-- Rollups on Citus. A rollup of a source distributed on one of its dimensions is distributed
-- on that column, co-located with the source; each shard's statement trigger rolls its rows
-- up into the co-located shards of the rollup and its tiers on its own worker. Every figure
-- here is compared with the same rollup of a local table holding the same rows.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
CREATE TABLE clicks (at timestamptz NOT NULL, tenant int, page text, user_id bigint, ms int);
SELECT create_distributed_table('clicks', 'tenant');
CREATE TABLE local_clicks (LIKE clicks);

-- The distribution column must be a dimension: a rollup row then holds rows of one shard.
SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{page}', '{"users": "distinct(user_id)"}');
\echo :LAST_ERROR_SQLSTATE
-- A reference table's rows are on every node; rolling them up is refused.
CREATE TABLE countries (at timestamptz, code text);
SELECT create_reference_table('countries');
SELECT collect.create_rollup('countries_1m', 'countries', 'at', '{code}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE countries;

SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{tenant,page}',
       '{"users": "distinct(user_id)", "total_ms": "sum(ms)", "slowest": "max(ms)", "latency": "quantiles(ms)", "pages": "top(page, 3)"}');
SELECT collect.create_rollup('local_1m', 'local_clicks', 'at', '{tenant,page}',
       '{"users": "distinct(user_id)", "total_ms": "sum(ms)", "slowest": "max(ms)", "latency": "quantiles(ms)", "pages": "top(page, 3)"}');
-- The rollup table and its stale buckets are distributed on tenant, co-located with clicks.
SELECT logicalrelid::text AS table_name, column_to_column_name(logicalrelid, partkey) AS distribution_column,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clicks'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid::text IN ('clicks_1m', 'clicks_1m_stale') ORDER BY 1;
-- Every shard of clicks carries the rollup's triggers.
SELECT DISTINCT result AS triggers_per_shard FROM run_command_on_shards('clicks',
       $$SELECT string_agg(regexp_replace(tgname, '_[0-9]+$', ''), ', ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$);

-- Rows arrive by multi-row INSERT, INSERT ... SELECT and COPY, over every shard.
CREATE FUNCTION load(n integer, seed integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE batch ON COMMIT DROP AS
    SELECT '2026-11-01'::timestamptz + ((g * 7919 + seed) % 7200) * interval '1 second' AS at, (g + seed) % 6 AS tenant,
           'page' || (g % 4) AS page, (g * 31 + seed) % 500 AS user_id, (g * 13 + seed) % 1000 AS ms
      FROM generate_series(1, n) g;
    INSERT INTO clicks SELECT * FROM batch;
    INSERT INTO local_clicks SELECT * FROM batch;
END $$;
SELECT load(3000, 1);
INSERT INTO clicks VALUES ('2026-11-01 00:00:01', 1, 'page1', 7, 5), ('2026-11-01 00:00:02', 2, 'page2', 8, 6);
INSERT INTO local_clicks VALUES ('2026-11-01 00:00:01', 1, 'page1', 7, 5), ('2026-11-01 00:00:02', 2, 'page2', 8, 6);
COPY clicks FROM STDIN WITH (FORMAT csv);
2026-11-01 01:00:00+00,3,page3,9,700
2026-11-01 01:00:30+00,4,page0,10,800
2026-11-01 01:59:59+00,5,page1,11,900
\.
COPY local_clicks FROM STDIN WITH (FORMAT csv);
2026-11-01 01:00:00+00,3,page3,9,700
2026-11-01 01:00:30+00,4,page0,10,800
2026-11-01 01:59:59+00,5,page1,11,900
\.

-- Each rollup row, as comparable values.
CREATE FUNCTION rows_of(t regclass) RETURNS TABLE (bucket timestamptz, tenant int, page text, event_count bigint, total_ms bigint,
                                                 slowest int, users bigint, p90 double precision, pages text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT bucket, tenant, page, event_count, total_ms, slowest, collect.distinct_count(users),
                                        collect.quantile(latency, 0.9),
                                        (SELECT string_agg(value || '':'' || count, '','' ORDER BY value) FROM collect.top(pages, 3)) FROM %s', t);
END $$;
CREATE FUNCTION same(a regclass, b regclass) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s rows, %s differ', (SELECT count(*) FROM rows_of(a)),
                  (SELECT count(*) FROM ((SELECT * FROM rows_of(a) EXCEPT ALL SELECT * FROM rows_of(b))
                                         UNION ALL (SELECT * FROM rows_of(b) EXCEPT ALL SELECT * FROM rows_of(a))) d))
$$;
SELECT same('clicks_1m', 'local_1m');
SELECT r.events, s.source_rows FROM (SELECT sum(event_count) AS events FROM clicks_1m) r, (SELECT count(*) AS source_rows FROM clicks) s;

-- A tier, distributed and co-located too, filled from the rollup and fed by later statements.
SELECT collect.add_tier('clicks_1m', 'clicks_1h', '1 hour');
SELECT collect.add_tier('local_1m', 'local_1h', '1 hour');
SELECT colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clicks'::regclass) AS tier_colocated
  FROM pg_dist_partition WHERE logicalrelid = 'clicks_1h'::regclass;
SELECT load(2000, 2);
SELECT same('clicks_1m', 'local_1m') AS minutes, same('clicks_1h', 'local_1h') AS hours;

-- The Plumbr question from the tier: distinct users and p99 per page over all tenants.
SELECT page, collect.distinct_count(collect.merge(users)) AS users, round(collect.quantile(collect.merge(latency), 0.99)) AS p99
  FROM clicks_1h GROUP BY page ORDER BY page;
SELECT (SELECT array_agg(collect.distinct_count(u) ORDER BY p) FROM (SELECT page, collect.merge(users) FROM clicks_1h GROUP BY 1) x(p, u))
     = (SELECT array_agg(collect.distinct_count(u) ORDER BY p) FROM (SELECT page, collect.merge(users) FROM local_1h GROUP BY 1) x(p, u))
       AS same_as_local;

-- Corrections mark buckets stale on the shards; refresh_rollup recomputes them.
UPDATE clicks SET ms = 0 WHERE user_id % 50 = 3;
UPDATE local_clicks SET ms = 0 WHERE user_id % 50 = 3;
DELETE FROM clicks WHERE user_id % 50 = 4;
DELETE FROM local_clicks WHERE user_id % 50 = 4;
SELECT name, rows_in, rollup_rows, stale_buckets FROM collect.rollups ORDER BY name;
SELECT collect.refresh_rollup('clicks_1m') = collect.refresh_rollup('local_1m') AS same_buckets_refreshed;
SELECT same('clicks_1m', 'local_1m') AS minutes, same('clicks_1h', 'local_1h') AS hours;
SELECT name, rows_in, stale_buckets FROM collect.rollups ORDER BY name;
-- A refresh of a time range.
SELECT collect.refresh_rollup('clicks_1m', '2026-11-01 00:30', '2026-11-01 01:00');
SELECT same('clicks_1m', 'local_1m') AS minutes, same('clicks_1h', 'local_1h') AS hours;

-- A trigger planted on another role's table cannot make a shard write into the rollup, even
-- when the table is co-located with the source and the one inserting owns the rollup: on the
-- workers the rollup's tables must have the owner of the shard the trigger fired on.
CREATE ROLE citus_mallory LOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO citus_mallory;
SET ROLE citus_mallory;
CREATE TABLE planted (at timestamptz NOT NULL, tenant int, page text, user_id bigint, ms int);
SELECT create_distributed_table('planted', 'tenant');
GRANT INSERT ON planted TO PUBLIC;
RESET ROLE;
SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'planted'::regclass)
     = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clicks'::regclass) AS planted_colocated;
SELECT format('CREATE TRIGGER steal AFTER INSERT ON planted REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
               EXECUTE FUNCTION collect._rollup_ingest(%L, %L, %L, %L)', 'public', 'clicks_1m', '3',
              jsonb_set(collect._rollup_spec(d), '{source}', '{"schema": "public", "name": "planted"}')) AS command
  FROM collect.rollup_defs d WHERE d.name = 'clicks_1m' \gset
SET ROLE citus_mallory;
SET citus.enable_unsafe_triggers = on;
:command;
RESET citus.enable_unsafe_triggers;
RESET ROLE;
INSERT INTO planted VALUES ('2026-11-01 00:00:00', 1, 'page1', 1, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS planted_rows FROM planted;
DROP TABLE planted;
DROP OWNED BY citus_mallory;
DROP ROLE citus_mallory;

-- On Citus, the owner of the source makes its rollups.
CREATE ROLE citus_reader LOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO citus_reader;
GRANT SELECT, TRIGGER ON clicks TO citus_reader;
SET ROLE citus_reader;
SELECT collect.create_rollup('readers_1m', 'clicks', 'at', '{tenant}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE ALL ON clicks FROM citus_reader;
DROP OWNED BY citus_reader;
DROP ROLE citus_reader;

-- TRUNCATE marks every bucket stale; dropping the rollup removes its tables and the triggers
-- on every shard.
TRUNCATE clicks;
SELECT stale_buckets, stale_buckets = (SELECT count(DISTINCT bucket) FROM clicks_1m) AS every_bucket_stale FROM collect.rollups WHERE name = 'clicks_1m';
-- Retention: buckets older than a table's retention are deleted from that table only.
SELECT collect.set_retention('clicks_1h', '100 years') AS deleted;
-- One that would delete every row (retention counts back from now()) is refused.
SELECT collect.set_retention('clicks_1h', '1 day');
SELECT collect.set_retention('clicks_1h', now() - '2026-11-01 01:00'::timestamptz)
       = (SELECT count(*) FROM local_1h WHERE bucket < '2026-11-01 01:00') AS deleted_the_first_hour;
SELECT (SELECT count(*) FROM clicks_1h) = (SELECT count(*) FROM local_1h WHERE bucket >= '2026-11-01 01:00') AS later_hours_left,
       (SELECT count(*) > 0 FROM clicks_1m) AS minutes_kept;
SELECT collect.drop_rollup('clicks_1m');
SELECT DISTINCT result AS triggers_per_shard FROM run_command_on_shards('clicks',
       $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$);
SELECT count(*) AS rollup_tables_left FROM pg_dist_partition WHERE logicalrelid::text LIKE 'clicks_1%';
SELECT collect.drop_rollup('local_1m');
DROP TABLE clicks, local_clicks;
DROP FUNCTION load, rows_of, same;
