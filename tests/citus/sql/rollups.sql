-- Rollups on Citus: not built yet. A rollup of a distributed table would count nothing (its
-- triggers and registry are not on the shards), so create_rollup refuses one, and says what
-- works meanwhile: the sketch aggregates, which Citus pushes down (suite sketches).
\set SHOW_CONTEXT never
SET citus.shard_count = 4;
CREATE TABLE clicks (at timestamptz, page text, user_id bigint);
SELECT create_distributed_table('clicks', 'page');
SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{page}', '{"users": "distinct(user_id)"}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE countries (at timestamptz, code text);
SELECT create_reference_table('countries');
SELECT collect.create_rollup('countries_1m', 'countries', 'at', '{code}');
\echo :LAST_ERROR_SQLSTATE
-- A local table on the coordinator rolls up as on one node.
CREATE TABLE local_clicks (at timestamptz, page text, user_id bigint);
SELECT collect.create_rollup('local_clicks_1m', 'local_clicks', 'at', '{page}', '{"users": "distinct(user_id)"}');
INSERT INTO local_clicks SELECT '2026-11-01'::timestamptz + g * interval '1 second', 'p' || g % 3, g % 40 FROM generate_series(1, 600) g;
SELECT page, sum(event_count) AS events, collect.distinct_count(collect.merge(users)) AS users FROM local_clicks_1m GROUP BY page ORDER BY page;
SELECT collect.drop_rollup('local_clicks_1m');
DROP TABLE clicks, countries, local_clicks;
