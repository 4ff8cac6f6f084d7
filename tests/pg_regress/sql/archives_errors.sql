-- Archive errors: each names the offending value, with the SQLSTATE a client can act on.
\set SHOW_CONTEXT never
\set VERBOSITY default
SET timezone = 'UTC';
CREATE TABLE arch_logs (id integer PRIMARY KEY, at timestamptz NOT NULL, n integer, label text, body jsonb);
CREATE UNIQUE INDEX ON arch_logs (label) WHERE label IS NOT NULL;
\set ON_ERROR_STOP 0
-- Unknown archive: 42704.
SELECT collect.archive('nope', '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archived('nope', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archived_range('nope', now(), now());
\echo :LAST_ERROR_SQLSTATE
-- Non-positive lump_rows: 22023.
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at', lump_rows => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at', lump_rows => -5);
\echo :LAST_ERROR_SQLSTATE
-- A key column that is not unique (or only partly): 22023.
SELECT collect.create_archive('cold_logs', 'arch_logs', 'n', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'arch_logs', 'label', 'at');
\echo :LAST_ERROR_SQLSTATE
-- Columns that are not there, or not a time; a key type archives cannot compare.
SELECT collect.create_archive('cold_logs', 'arch_logs', 'missing', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'n');
\echo :LAST_ERROR_SQLSTATE
CREATE TYPE arch_pair AS (a integer, b integer);
CREATE TABLE arch_boxes (b arch_pair PRIMARY KEY, at timestamptz);
SELECT collect.create_archive('cold_boxes', 'arch_boxes', 'b', 'at');
\echo :LAST_ERROR_SQLSTATE
-- Names.
SELECT collect.create_archive('"BadName"', 'arch_logs', 'id', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'pg_class', 'oid', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at', archive_after => '-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at', archive_after => '40000 days');
\echo :LAST_ERROR_SQLSTATE
-- Not a table: 42809. Somebody else's table: 42501, and nothing is created.
CREATE VIEW arch_logs_view AS SELECT * FROM arch_logs;
SELECT collect.create_archive('cold_view', 'arch_logs_view', 'id', 'at');
\echo :LAST_ERROR_SQLSTATE
SET client_min_messages = warning;
DROP ROLE IF EXISTS collect_regress_archivist;
RESET client_min_messages;
CREATE ROLE collect_regress_archivist;
GRANT CREATE ON SCHEMA public TO collect_regress_archivist;
GRANT SELECT, DELETE ON arch_logs TO collect_regress_archivist;
SET ROLE collect_regress_archivist;
SELECT collect.create_archive('cold_theirs', 'arch_logs', 'id', 'at');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT to_regclass('cold_theirs_lumps') IS NULL AS nothing_created;
REVOKE ALL ON arch_logs FROM collect_regress_archivist;
REVOKE CREATE ON SCHEMA public FROM collect_regress_archivist;
DROP ROLE collect_regress_archivist;
\set VERBOSITY default
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at');
SELECT collect.create_archive('cold_logs', 'arch_logs', 'id', 'at');
-- A key of another type: 42804.
SELECT collect.archived('cold_logs', 'one'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archive_delete('cold_logs', now());
\echo :LAST_ERROR_SQLSTATE
-- NULLs and negative intervals.
SELECT collect.archive('cold_logs', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archive('cold_logs', '-1 hour');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archived_range('cold_logs', NULL, now());
\echo :LAST_ERROR_SQLSTATE
-- A name is found through its lumps table: with that table renamed, both reads say so (42704).
ALTER TABLE cold_logs_lumps RENAME TO cold_logs_lumps_moved;
SELECT collect.archived_range('cold_logs', now() - interval '1 day', now());
\echo :LAST_ERROR_SQLSTATE
SELECT collect.archived('cold_logs', 1);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE cold_logs_lumps_moved RENAME TO cold_logs_lumps;
SELECT collect.unarchive('cold_logs', now(), NULL);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- Nothing was written by any of these.
SELECT count(*) AS lumps FROM cold_logs_lumps;
SELECT name FROM collect.archives;
-- A damaged lump is reported, not trusted.
INSERT INTO arch_logs VALUES (1, '2020-01-01', 1, NULL, '{"a": 1}');
SELECT collect.archive('cold_logs', '1 day');
UPDATE cold_logs_lumps SET lump = collect.lump('[{"id": 1}]');
SELECT collect.archived('cold_logs', 1) AS from_a_lump_without_directory;
-- Places outside the lump are NULL, not a crash.
SELECT collect._archive_record(lump, 1) AS past_the_end, collect._archive_record(lump, -1) AS negative FROM cold_logs_lumps;
-- A cutoff is a time.
SELECT collect.archive_before('cold_events', NULL);
\echo :LAST_ERROR_SQLSTATE
