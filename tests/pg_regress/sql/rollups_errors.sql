-- Rollups: errors name the culprit. Uses the tables of the rollups suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Errors name the culprit.
SELECT collect.create_rollup('bad', 'interactions', 'no_such_column');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'app');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', '{no_such_dimension}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', metrics => '{"x": "median(duration_ms)"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', metrics => '{"x": "sum(app)"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', metrics => '{"x": "sum(nope)"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', granularity => '1 month');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', granularity => '40000 days');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('interactions_1m', 'interactions', 'started');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.add_tier('interactions_1m', 'bad_tier', '90 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('interactions_1m', '{"not": "an array"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('no_such_rollup', '[]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.refresh_rollup('interactions_1m', since => '2026-11-02');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.set_retention('interactions_1m', '-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.set_retention('interactions_1m', '40000 days');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.add_tier('interactions_1m', 'bad_tier', '40000 days');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.set_retention('interactions', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.add_tier('interactions_1m', 'Bad Tier', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('bad') IS NULL AS nothing_created;
SELECT collect.create_rollup('bad', 'interactions', 'started', metrics => '{"x": "distinct(user_id, 30)"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'interactions', 'started', metrics => '{"x": "sum(duration_ms, 3)"}');
\echo :LAST_ERROR_SQLSTATE
