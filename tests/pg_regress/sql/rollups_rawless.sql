-- Rollups that keep no raw rows, and dropping rollups. Runs after the rollups suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Keeping no raw rows (Druid's mode): the source is a view that holds none; INSERT and COPY
-- into it are only rolled up.
CREATE VIEW clicks AS SELECT NULL::timestamptz AS at, NULL::text AS page, NULL::bigint AS user_id WHERE false;
SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{page}', '{"users": "distinct(user_id)"}', keep_raw => false);
INSERT INTO clicks SELECT '2026-11-04'::timestamptz + g * interval '10 seconds', 'p' || g % 3, g % 7 FROM generate_series(1, 100) g;
COPY clicks FROM stdin;
2026-11-04 00:00:01+00	p0	42
2026-11-04 00:00:02+00	p0	43
\.
SELECT count(*) AS raw_rows_kept FROM clicks;
SELECT sum(event_count) AS events, count(*) AS rollup_rows FROM clicks_1m;
SELECT collect.ingest('clicks_1m', '[{"at": "2026-11-04T00:00:03Z", "page": "p0", "user_id": 99}]');
SELECT event_count, collect.distinct_count(users) AS users FROM clicks_1m WHERE bucket = '2026-11-04 00:00' AND page = 'p0';
-- A lump of newline-delimited JSON as a client's gzip writes it (three events, a blank line):
-- parsed and rolled up, no raw rows kept. Uncompressed NDJSON works the same way.
SELECT collect.ingest('clicks_1m', '\x1f8b0800000000000203ab564a2c51b2525032323032d33534d43530093130b03230b432308e52d251502a484c4f05c917188278a5c5a945f199294001f35aae6a9c5a2df16ab5a8e5c2add7c40055af1186b500d5132c6bb2000000'::bytea);
SELECT collect.ingest('clicks_1m', convert_to(E'{"at": "2026-11-04T00:01:50Z", "page": "p2", "user_id": 9}\n', 'UTF8'));
SELECT page, event_count, collect.distinct_count(users) AS users FROM clicks_1m WHERE bucket = '2026-11-04 00:01' ORDER BY page;
-- A line that is not JSON is named; a damaged gzip lump and a line that is not UTF-8 are refused.
SELECT collect.ingest('clicks_1m', convert_to(E'{"at": "2026-11-04T00:01:50Z", "page": "p2"}\n{"at": oops}\n', 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', '\x1f8b08000000000002030000'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', '\x7b7d0aff0a'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', NULL::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT sum(event_count) AS events_after_refused_lumps FROM clicks_1m WHERE bucket = '2026-11-04 00:01';
-- A failed statement or a rolled-back transaction rolls up nothing.
INSERT INTO clicks VALUES ('2026-11-04 00:00:04', 'p0', 1), (NULL, 'p0', 2);
BEGIN;
INSERT INTO clicks VALUES ('2026-11-04 00:00:05', 'p0', 3);
ROLLBACK;
SELECT event_count FROM clicks_1m WHERE bucket = '2026-11-04 00:00' AND page = 'p0';
SELECT name, keep_raw, rows_in FROM collect.rollups WHERE name = 'clicks_1m';
SELECT collect.refresh_rollup('clicks_1m');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', keep_raw => false);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'clicks', 'at');
\echo :LAST_ERROR_SQLSTATE
-- Only a rollup's owner may drop it.
SET client_min_messages = warning;
DROP ROLE IF EXISTS collect_rollup_other;
RESET client_min_messages;
CREATE ROLE collect_rollup_other;
SET ROLE collect_rollup_other;
SELECT collect.drop_rollup('clicks_1m');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE collect_rollup_other;
SELECT collect.drop_rollup('clicks_1m');

SELECT collect.drop_rollup('interactions_1m');
SELECT to_regclass('interactions_1h') IS NULL AS tier_dropped, count(*) AS rollups_left FROM collect.rollups;
