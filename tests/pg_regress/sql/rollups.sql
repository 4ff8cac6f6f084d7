-- Minute rollups at ingest (Druid, as Plumbr used it): events are rolled up as they arrive
-- into one row per minute and dimension combination, with mergeable metrics.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE interactions (
    started timestamptz, app text, operation text, outcome text,
    user_id bigint, duration_ms integer, root_cause text
);
SELECT collect.create_rollup('interactions_1m', 'interactions', 'started',
    dimensions => '{app, operation, outcome}',
    metrics => '{"total_ms": "sum(duration_ms)", "min_ms": "min(duration_ms)", "max_ms": "max(duration_ms)",
                 "users": "distinct(user_id)", "latency": "quantiles(duration_ms)", "causes": "top(root_cause, 3)"}');
\d interactions_1m

-- The seed's example: five events between 12:20 and 12:21 roll up into two rows.
INSERT INTO interactions (started, app, operation, outcome, user_id, duration_ms) VALUES
    ('2026-11-01 12:20:02', 'shop', 'login()', 'ok', 1, 2000),
    ('2026-11-01 12:20:05', 'shop', 'pay()',   'ok', 1, 5000),
    ('2026-11-01 12:20:03', 'shop', 'login()', 'ok', 2, 17000),
    ('2026-11-01 12:20:42', 'shop', 'login()', 'ok', 3, 2000),
    ('2026-11-01 12:20:45', 'shop', 'pay()',   'ok', 2, 1000);
SELECT bucket, operation, event_count, total_ms, min_ms, max_ms, collect.distinct_count(users) AS users
FROM interactions_1m ORDER BY operation;
TRUNCATE interactions;
SELECT collect.refresh_rollup('interactions_1m') AS buckets_refreshed;
SELECT count(*) AS rows_after_truncate_and_refresh FROM interactions_1m;

-- A day of events, in several statements (COPY works the same way).
INSERT INTO interactions
SELECT '2026-11-02'::timestamptz + (g % 86400) * interval '1 second',
       (ARRAY['shop', 'blog'])[1 + g % 2], (ARRAY['login()', 'pay()', 'search()'])[1 + g % 3],
       CASE WHEN g % 17 = 0 THEN 'failed' WHEN g % 5 = 0 THEN 'slow' ELSE 'ok' END,
       (g * 7919) % 3000, (g * 104729) % 5000, CASE WHEN g % 17 = 0 THEN 'cause-' || g % 4 END
FROM generate_series(1, 60000::bigint) g;
INSERT INTO interactions
SELECT '2026-11-02'::timestamptz + (g % 86400) * interval '1 second', 'shop', 'pay()', 'ok', g % 100, g % 300, NULL
FROM generate_series(1, 20000) g;
SELECT name, rows_in, rollup_rows, rollup_ratio, stale_buckets FROM collect.rollups;

-- Rollup answers equal raw answers: counts, sums, min and max exactly; sketches are the
-- very sketches the raw rows give.
CREATE VIEW raw_per_minute AS
SELECT date_bin('1 minute', started, '2000-01-03') AS bucket, app, operation, outcome, count(*) AS n,
       sum(duration_ms) AS total_ms, min(duration_ms) AS min_ms, max(duration_ms) AS max_ms,
       collect.hll_agg(user_id) AS users, collect.quantiles_agg(duration_ms) AS latency
FROM interactions GROUP BY 1, 2, 3, 4;
SELECT count(*) AS rows_compared,
       bool_and(r.event_count = w.n AND r.total_ms = w.total_ms AND r.min_ms = w.min_ms AND r.max_ms = w.max_ms) AS exact,
       bool_and(r.users OPERATOR(collect.=) w.users AND r.latency OPERATOR(collect.=) w.latency) AS same_sketches
FROM interactions_1m r FULL JOIN raw_per_minute w USING (bucket, app, operation, outcome);

-- Re-aggregated to hours and days at query time: Plumbr's three questions.
-- 1. Daily active users of an application.
SELECT date_trunc('day', bucket) AS day, collect.distinct_count(collect.merge(users)) AS active_users,
       (SELECT count(DISTINCT user_id) FROM interactions WHERE app = 'shop') AS exact
FROM interactions_1m WHERE app = 'shop' GROUP BY 1;
-- 2. Top root causes over the period.
SELECT value AS root_cause, count, error FROM collect.top((SELECT collect.merge(causes) FROM interactions_1m WHERE outcome = 'failed'), 3);
SELECT root_cause, count(*) FROM interactions WHERE outcome = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;
-- 3. Latency distribution of an operation, morning against afternoon.
SELECT bucket < '2026-11-02 12:00' AS morning,
       collect.quantiles(collect.merge(latency), '{0.5, 0.95}') AS p50_p95
FROM interactions_1m WHERE operation = 'pay()' GROUP BY 1 ORDER BY 1 DESC;

-- Tiers: an hour table kept by the same ingest, filled from the minutes when added.
SELECT collect.add_tier('interactions_1m', 'interactions_1h', '1 hour');
INSERT INTO interactions VALUES ('2026-11-02 05:30:00', 'shop', 'login()', 'ok', 424242, 10, NULL);
SELECT (SELECT sum(event_count) FROM interactions_1h) = (SELECT count(*) FROM interactions) AS hours_complete,
       (SELECT count(*) FROM interactions_1h) AS hour_rows;
-- Late events merge into their old buckets.
SELECT event_count FROM interactions_1h WHERE bucket = '2026-11-02 05:00' AND app = 'shop' AND operation = 'login()' AND outcome = 'ok';

-- Corrections: updates and deletes cannot be subtracted from sketches, so they mark buckets
-- stale; refresh recomputes them (and the tiers above them) from raw rows.
UPDATE interactions SET duration_ms = 99999 WHERE user_id = 424242;
DELETE FROM interactions WHERE started < '2026-11-02 00:05';
SELECT stale_buckets FROM collect.rollups;
SELECT collect.refresh_rollup('interactions_1m') AS buckets_refreshed;
SELECT count(*) AS rows_compared,
       bool_and(r.event_count = w.n AND r.max_ms = w.max_ms AND r.users OPERATOR(collect.=) w.users) AS exact_again
FROM interactions_1m r FULL JOIN raw_per_minute w USING (bucket, app, operation, outcome);
SELECT max(max_ms) AS hour_tier_max FROM interactions_1h;

-- Events as a JSON array, in one call.
SELECT collect.ingest('interactions_1m', '[
    {"started": "2026-11-03T00:00:10Z", "app": "shop", "operation": "pay()", "outcome": "ok", "user_id": 1, "duration_ms": 10},
    {"started": "2026-11-03T00:00:20Z", "app": "shop", "operation": "pay()", "outcome": "ok", "user_id": 2, "duration_ms": 30}]');
SELECT event_count, total_ms FROM interactions_1m WHERE bucket = '2026-11-03 00:00';

-- Retention per table: minutes expire, hours keep the history. Retention counts back from
-- now(): one that would delete every row of a table (these events are weeks old) is refused
-- and changes nothing.
SELECT collect.set_retention('interactions_1m', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT keep FROM collect.rollups WHERE name = 'interactions_1m';
SELECT collect.set_retention('interactions_1m', now() - '2026-11-02 12:00:30'::timestamptz) > 0 AS dropped_old_minutes;
SELECT (SELECT min(bucket) >= '2026-11-02 11:59' AND count(*) > 0 FROM interactions_1m) AS afternoon_minutes_kept,
       (SELECT min(bucket) = '2026-11-02 00:00' FROM interactions_1h) AS hours_kept;
-- TRUNCATE of the source marks every bucket of every table stale, the hours whose minutes
-- retention dropped included: a refresh then leaves nothing counting rows that are gone.
CREATE TABLE interactions_kept AS SELECT * FROM interactions;
TRUNCATE interactions;
SELECT collect.refresh_rollup('interactions_1m') > 0 AS refreshed;
SELECT (SELECT count(*) FROM interactions_1m) AS minute_rows, (SELECT count(*) FROM interactions_1h) AS hour_rows;
INSERT INTO interactions SELECT * FROM interactions_kept;
DROP TABLE interactions_kept;

-- A distinct count of a precision you choose: distinct(col, 11) keeps sketches of 2^11
-- registers (2.3% standard error, 1.3 kB at most) instead of the default 14 (0.81%, 10 kB).
CREATE TABLE visits (at timestamptz, site text, visitor bigint);
SELECT collect.create_rollup('visits_1h', 'visits', 'at', '{site}',
    '{"visitors": "distinct(visitor, 11)", "precise": "distinct(visitor)"}', '1 hour');
INSERT INTO visits SELECT '2026-11-01'::timestamptz + (g % 3600) * interval '1 second', 'site' || g % 2, g % 50000
  FROM generate_series(1, 200000) g;
SELECT site, pg_column_size(visitors) AS bytes, pg_column_size(precise) AS precise_bytes,
       abs(collect.distinct_count(visitors) - 25000) < 3 * 0.023 * 25000 AS within_three_errors
  FROM visits_1h ORDER BY site;
SELECT collect.drop_rollup('visits_1h');
DROP TABLE visits;

-- A timestamp (without time zone) column is binned in its own terms: the session's time zone
-- moves no bucket boundary, even for a zone half an hour off UTC.
CREATE TABLE readings (at timestamp, sensor text, value int);
SELECT collect.create_rollup('readings_1h', 'readings', 'at', '{sensor}', '{"total": "sum(value)"}', '1 hour');
SET timezone = 'Asia/Kolkata';
INSERT INTO readings VALUES ('2026-11-01 10:10', 's', 1), ('2026-11-01 10:50', 's', 2);
SET timezone = 'America/New_York';
INSERT INTO readings VALUES ('2026-11-01 10:59:59', 's', 4), ('2026-11-01 11:00', 's', 8);
SET timezone = 'UTC';
SELECT bucket, event_count, total FROM readings_1h ORDER BY bucket;
SELECT collect.drop_rollup('readings_1h');
DROP TABLE readings;

-- A session keeps the plan of each rollup's upsert. Privileges are still checked at every
-- statement: a role that may insert into the source but not into the rollup is refused.
-- A rollup dropped and made again under the same name gets a plan of the new table.
CREATE TABLE taps (at timestamptz, pad text);
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}') IS NOT NULL AS created;
INSERT INTO taps VALUES ('2026-11-01 10:00', 'a'), ('2026-11-01 10:00:30', 'a');
DROP ROLE IF EXISTS collect_tap_writer;
CREATE ROLE collect_tap_writer;
GRANT INSERT ON taps TO collect_tap_writer;
SET ROLE collect_tap_writer;
INSERT INTO taps VALUES ('2026-11-01 10:01', 'b');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT collect.drop_rollup('taps_1m');
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}') IS NOT NULL AS created_again;
INSERT INTO taps VALUES ('2026-11-01 10:02', 'c');
SELECT bucket, pad, event_count FROM taps_1m ORDER BY bucket;
SELECT collect.drop_rollup('taps_1m');
DROP TABLE taps;
DROP ROLE collect_tap_writer;

-- The extension made again in the same session: its sketch types get new oids, and a kept
-- plan of the same statement text must not be used with the old ones.
CREATE TABLE taps (at timestamptz, pad text, who bigint);
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}', '{"who": "distinct(who)"}') IS NOT NULL AS created;
INSERT INTO taps VALUES ('2026-11-01 10:00', 'a', 1);
BEGIN;
SET LOCAL client_min_messages = warning;
DROP EXTENSION pg_collect CASCADE;
DROP TABLE taps_1m, taps_1m_stale;
CREATE EXTENSION pg_collect;
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}', '{"who": "distinct(who)"}') IS NOT NULL AS created_again;
INSERT INTO taps VALUES ('2026-11-01 10:00', 'a', 1), ('2026-11-01 10:00', 'a', 2);
SELECT pad, event_count, collect.distinct_count(who) AS who FROM taps_1m;
ROLLBACK;
SELECT collect.drop_rollup('taps_1m');
DROP TABLE taps;

-- A rollup made over a table that has rows already rolls them up at once (under the lock its
-- triggers take, so a concurrent insert is counted once).
CREATE TABLE taps (at timestamptz, pad text);
INSERT INTO taps VALUES ('2026-11-01 10:00', 'a'), ('2026-11-01 10:00:30', 'a'), ('2026-11-01 10:01', 'b');
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}') IS NOT NULL AS created;
SELECT bucket, pad, event_count, late_events FROM taps_1m ORDER BY bucket;
SELECT collect.refresh_rollup('taps_1m', '2026-11-01', '2026-11-02') AS refreshed;
SELECT bucket, pad, event_count FROM taps_1m ORDER BY bucket;
-- Rows without a time are refused, as at ingest.
CREATE TABLE untimed (at timestamptz, pad text);
INSERT INTO untimed VALUES (NULL, 'a');
SELECT collect.create_rollup('untimed_1m', 'untimed', 'at');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE untimed;

-- A source dropped and made again under its name: the rollup says it no longer rolls anything
-- up (collect.rollups, and an error on use), and once dropped a rollup of the new table can
-- be made.
DROP TABLE taps;
SELECT name, source, problem FROM collect.rollups WHERE name = 'taps_1m';
CREATE TABLE taps (at timestamptz, pad text);
INSERT INTO taps VALUES ('2026-11-01 11:00', 'c');
SELECT name, source, problem FROM collect.rollups WHERE name = 'taps_1m';
SELECT collect.ingest('taps_1m', '[{"at": "2026-11-01T11:00:10Z", "pad": "c"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_rollup('taps_1m');
SELECT collect.create_rollup('taps_1m', 'taps', 'at', '{pad}') IS NOT NULL AS made_again;
SELECT bucket, pad, event_count FROM taps_1m ORDER BY bucket;
SELECT collect.drop_rollup('taps_1m');
DROP TABLE taps;
