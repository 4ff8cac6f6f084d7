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
-- A batch of newline-delimited JSON as a client's gzip writes it (three events, a blank line):
-- parsed and rolled up, no raw rows kept. Uncompressed NDJSON works the same way.
SELECT collect.ingest('clicks_1m', '\x1f8b0800000000000203ab564a2c51b2525032323032d33534d43530093130b03230b432308e52d251502a484c4f05c917188278a5c5a945f199294001f35aae6a9c5a2df16ab5a8e5c2add7c40055af1186b500d5132c6bb2000000'::bytea);
SELECT collect.ingest('clicks_1m', convert_to(E'{"at": "2026-11-04T00:01:50Z", "page": "p2", "user_id": 9}\n', 'UTF8'));
SELECT page, event_count, collect.distinct_count(users) AS users FROM clicks_1m WHERE bucket = '2026-11-04 00:01' ORDER BY page;
-- A line that is not JSON is named; a damaged gzip batch and a line that is not UTF-8 are refused.
SELECT collect.ingest('clicks_1m', convert_to(E'{"at": "2026-11-04T00:01:50Z", "page": "p2"}\n{"at": oops}\n', 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', '\x1f8b08000000000002030000'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', '\x7b7d0aff0a'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('clicks_1m', NULL::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT sum(event_count) AS events_after_refused_batches FROM clicks_1m WHERE bucket = '2026-11-04 00:01';
-- A batch into a rollup that keeps no raw rows is rolled up without making rows: parsed for
-- the columns the rollup reads and aggregated in one pass. Every row it writes equals what the
-- same events make as rows: here against a rollup of a table, fed the same batches, through a
-- tier, late events, NULLs, every metric kind and integers, floats and text. (Every line has
-- the same keys: inserted as rows, a batch is one INSERT per set of keys, and sums of floats
-- depend on how rows are split between statements.)
CREATE VIEW calls AS SELECT NULL::timestamptz AS at, NULL::text AS route, NULL::integer AS status, NULL::bigint AS caller,
                            NULL::integer AS ms, NULL::real AS kb, NULL::float8 AS cost, NULL::integer AS unused WHERE false;
CREATE TABLE calls_kept (at timestamptz, route text, status integer, caller bigint, ms integer, kb real, cost float8, unused integer);
CREATE FUNCTION call_batch(n integer, seed integer) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(string_agg(jsonb_build_object(
               'at', to_char(timestamptz '2026-11-04' + ((g * 7919 + seed) % 7200) * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               'route', CASE WHEN g % 11 = 0 THEN NULL ELSE '/r' || g % 5 END, 'status', 200 + (g % 3) * 100,
               'caller', (g * 31 + seed) % 400, 'ms', CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 17) % 900 END,
               'kb', round(((g % 97) / 7.0)::numeric, 3), 'cost', (g % 89) * 0.1, 'ignored', jsonb_build_array(g))::text, E'\n'), 'UTF8')
      FROM generate_series(1, n) g
$$;
SELECT collect.create_rollup('calls_1m', 'calls', 'at', '{route, status}',
    '{"users": "distinct(caller)", "p": "quantiles(ms)", "top": "top(route, 3)", "total": "sum(ms)", "slowest": "max(ms)",
      "kb": "sum(kb)", "cost": "sum(cost)", "cheapest": "min(cost)", "callers": "top(caller, 2)", "big": "sum(caller)"}', keep_raw => false);
SELECT collect.create_rollup('kept_1m', 'calls_kept', 'at', '{route, status}',
    '{"users": "distinct(caller)", "p": "quantiles(ms)", "top": "top(route, 3)", "total": "sum(ms)", "slowest": "max(ms)",
      "kb": "sum(kb)", "cost": "sum(cost)", "cheapest": "min(cost)", "callers": "top(caller, 2)", "big": "sum(caller)"}');
SELECT collect.add_tier('calls_1m', 'calls_1h', '1 hour'), collect.add_tier('kept_1m', 'kept_1h', '1 hour');
SELECT collect.ingest('calls_1m', call_batch(3000, 1)) AS rolled, collect.ingest('kept_1m', call_batch(3000, 1)) AS inserted;
SELECT collect.ingest('calls_1m', call_batch(500, 2)) AS rolled, collect.ingest('kept_1m', call_batch(500, 2)) AS inserted;
CREATE FUNCTION rollup_rows(t regclass) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT row(bucket, route, status, event_count, late_events, users, p, top, total, slowest, kb, cost, cheapest, callers, big)::text FROM %s', t);
END $$;
SELECT (SELECT count(*) FROM rollup_rows('calls_1m')) AS minute_rows,
       (SELECT count(*) FROM (SELECT * FROM rollup_rows('calls_1m') EXCEPT ALL SELECT * FROM rollup_rows('kept_1m')) d)
     + (SELECT count(*) FROM (SELECT * FROM rollup_rows('kept_1m') EXCEPT ALL SELECT * FROM rollup_rows('calls_1m')) d) AS minute_rows_differing,
       (SELECT count(*) FROM (SELECT * FROM rollup_rows('calls_1h') EXCEPT ALL SELECT * FROM rollup_rows('kept_1h')) d)
     + (SELECT count(*) FROM (SELECT * FROM rollup_rows('kept_1h') EXCEPT ALL SELECT * FROM rollup_rows('calls_1h')) d) AS hour_rows_differing;
-- A negative zero is a zero, as jsonb's numeric reads it on the row path: both paths agree to
-- the bit.
SELECT collect.ingest('calls_1m', convert_to(E'{"at": "2026-11-05T00:00:00Z", "route": "/z", "status": 200, "kb": -0, "cost": -0.0}\n', 'UTF8')) AS rolled,
       collect.ingest('kept_1m', convert_to(E'{"at": "2026-11-05T00:00:00Z", "route": "/z", "status": 200, "kb": -0, "cost": -0.0}\n', 'UTF8')) AS inserted;
SELECT a.kb::text AS batch_kb, b.kb::text AS row_kb, a.cost::text AS batch_cost, b.cost::text AS row_cost
  FROM calls_1m a JOIN kept_1m b USING (bucket, route, status) WHERE route = '/z';
-- Columns the rollup does not read are not read: a value the view's column type would refuse
-- there does not stop the batch (inserted as rows, it would).
SELECT collect.ingest('calls_1m', convert_to('{"at": "2026-11-04T00:00:00Z", "route": "/r1", "status": 200, "unused": "not a number"}', 'UTF8'));
-- Values whose meaning Postgres' own input functions decide (a number as a string, a time
-- without a zone, an exponent) send the whole batch the way of rows, with the same result.
SELECT collect.ingest('calls_1m', convert_to(E'{"at": "2026-11-04 00:00:01", "route": "/r1", "status": "200", "ms": 5e0, "kb": "1.5"}\n', 'UTF8'));
SELECT event_count, total FROM calls_1m WHERE bucket = '2026-11-04 00:00' AND route = '/r1' AND status = 200;
-- A missing time is named, as for rows.
SELECT collect.ingest('calls_1m', convert_to(E'{"route": "/r1"}\n', 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
-- A line jsonb refuses, even in a key the rollup does not read, refuses the batch as rows would.
SELECT collect.ingest('calls_1m', convert_to(E'{"at": "2026-11-04T00:00:00Z", "route": "/r1", "status": 200, "note": "\\u0000"}\n', 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('calls_1m', convert_to(E'{"at": "2026-11-04T00:00:00Z", "route": "/r1", "status": 200, "note": "\\ud800"}\n', 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
-- Many batches in one statement plan the rollup once; what changes between two batches is seen
-- by the next: here a tier added in the same transaction, then a role that may not insert.
BEGIN;
SELECT sum(collect.ingest('calls_1m', call_batch(50, s))) AS rolled FROM generate_series(3, 5) s;
SELECT collect.add_tier('calls_1m', 'calls_1d', '1 day');
SELECT collect.ingest('calls_1m', call_batch(50, 6)) AS rolled;
SELECT (SELECT sum(event_count) FROM calls_1m) AS minute_events, (SELECT sum(event_count) FROM calls_1d) AS day_events;
CREATE ROLE collect_batch_other;
SET LOCAL ROLE collect_batch_other;
SELECT collect.ingest('calls_1m', call_batch(50, 7));
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT collect.drop_rollup('calls_1m'), collect.drop_rollup('kept_1m');
DROP VIEW calls;
DROP TABLE calls_kept;
DROP FUNCTION call_batch, rollup_rows;

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
-- A view whose BEFORE trigger is gone (dropped by hand) refuses its rows (39P01) instead of losing them.
BEGIN;
DROP TRIGGER clicks_1m_begin ON clicks;
INSERT INTO clicks VALUES ('2026-11-04 00:00', 'p0', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
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
