-- pg_collect in a database shared by roles that do not trust each other: what a login role
-- with no privileges (and the pre-15 writable public schema) can and cannot do to others.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS collect_alice;
DROP ROLE IF EXISTS collect_mallory;
RESET client_min_messages;
CREATE ROLE collect_alice LOGIN;
CREATE ROLE collect_mallory LOGIN;
GRANT CREATE ON SCHEMA public TO collect_alice, collect_mallory;
CREATE SCHEMA alice AUTHORIZATION collect_alice;
CREATE SCHEMA mallory AUTHORIZATION collect_mallory;

-- 1. C entry points check how they are called: no crash, an ERROR.
SET ROLE collect_mallory;
CREATE TEMP TABLE t (x int);
CREATE TRIGGER z AFTER INSERT ON t FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_buffer_row();
INSERT INTO t VALUES (1);
\echo :LAST_ERROR_SQLSTATE
CREATE TRIGGER y AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION collect._rollup_flush('alice', 'r', '1');
INSERT INTO t VALUES (1);
\echo :LAST_ERROR_SQLSTATE
SELECT collect._rollup_begin();
\echo :LAST_ERROR_SQLSTATE
DROP TABLE t;
-- Functions of internal arguments are for Postgres to call, not for SQL.
SELECT count(*) AS internal_functions,
       count(*) FILTER (WHERE has_function_privilege(p.oid, 'EXECUTE')) AS executable_by_mallory
  FROM pg_proc p WHERE p.pronamespace = 'collect'::regnamespace AND 'internal'::regtype = ANY (p.proargtypes::oid[]);
RESET ROLE;

-- No function is SECURITY DEFINER; every function pins search_path but those that must read
-- the caller's (the name-resolving wrappers), commit (procedures) or be inlined into the
-- statements that call them (the verify functions and _edge_instant, qualified throughout): all
-- listed here.
SELECT count(*) FILTER (WHERE p.prosecdef) AS security_definer
  FROM pg_proc p WHERE p.pronamespace = 'collect'::regnamespace;
SELECT p.proname, p.prokind, l.lanname
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'collect'::regnamespace AND p.prokind IN ('f', 'p')
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
   AND l.lanname NOT IN ('c', 'internal')
 GROUP BY 1, 2, 3 ORDER BY 1;

-- Alice's objects.
SET ROLE collect_alice;
SET search_path = alice, public;
CREATE TABLE events (at timestamptz, page text, n int);
SELECT collect.create_rollup('r', 'events', 'at', '{page}', '{"total": "sum(n)"}');
SELECT collect.add_tier('r', 'r_1h', '1 hour');
SELECT collect.create_collection('feed', 'text', '[{"latest_by": "k"}]');
INSERT INTO events VALUES ('2026-11-01 10:00', 'home', 1);
SELECT collect.append('feed', 'a', '{"k": 1}');
CREATE TABLE files (id bigint PRIMARY KEY);
CREATE TABLE versions (id bigint PRIMARY KEY, file_id bigint, created_at timestamptz, size bigint);
SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size}');
RESET search_path;

-- 2. Registries cannot be planted: rows naming somebody else's tables, carrying another
-- owner, or squatting a name in another schema are refused by row level security.
SET ROLE collect_mallory;
INSERT INTO collect.rollup_defs (schema, name, source_schema, source_name, time_column, dimensions, metrics, granularity, tiers)
VALUES ('alice', 'r2', 'alice', 'events', 'at', '{}', '[]', '1 minute', '[{"name": "r", "granularity": "1 hour"}]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO collect.collection_defs (schema, name, key_type, read, owner) VALUES ('alice', 'feed2', 'text', '[]', 'collect_alice');
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET tiers = '[{"name": "r", "granularity": "1 day", "keep": "1 second"}]' WHERE schema = 'alice';
SELECT tiers->0->>'name' AS alice_tier_unchanged FROM collect.rollup_defs WHERE schema = 'alice';
DELETE FROM collect.collection_defs WHERE schema = 'alice';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS alice_collection_still_there FROM collect.collection_defs WHERE schema = 'alice';
-- Nor can anybody lock a registry against everybody else: no table-level UPDATE or DELETE
-- (42501), so no mode beyond what an INSERT takes.
BEGIN;
LOCK TABLE collect.collection_defs IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE collect.job_schedules IN SHARE MODE;
ROLLBACK;
-- Deleting goes through pg_collect, and only for rows the caller owns.
SELECT collect._delete_registry_rows('collect.collection_defs', '{"schema": "alice", "name": "feed"}') AS deleted_of_alices;
SELECT collect._delete_registry_rows('pg_catalog.pg_class', '{"relname": "pg_class"}');
SELECT collect._delete_registry_rows('collect.collection_defs', '{"owner = owner OR true --": "x"}');
-- No registry holds SQL text for anyone to run.
SELECT count(*) AS sql_text_columns FROM information_schema.columns
 WHERE table_schema = 'collect' AND table_name LIKE '%_defs' AND column_name IN ('statements', 'check_sql');
-- A trigger of mallory's own that names alice's rollup does not run it.
CREATE TABLE mallory.events (at timestamptz, page text, n int);
CREATE TRIGGER steal AFTER INSERT ON mallory.events REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('alice', 'r', '2', '{}');
INSERT INTO mallory.events VALUES ('2026-11-01 10:00', 'home', 100);
\echo :LAST_ERROR_SQLSTATE
-- Names live in schemas: mallory's own collection "feed" is not alice's.
SET search_path = mallory, public;
SELECT collect.create_collection('feed');
SELECT collect.append('feed', 'a', '{"k": "mallory"}');
SELECT collect.read('alice.feed', 'a');
\echo :LAST_ERROR_SQLSTATE
RESET search_path;

-- 3. The views work for everybody: others' figures are NULL unless one may read their tables.
SELECT schema, name, pending_table, keys, pending_entries FROM collect.collections WHERE schema IN ('alice', 'mallory') ORDER BY 1, 2;
SELECT schema, name, rollup_table, source, rows_in, rollup_rows FROM collect.rollups WHERE schema IN ('alice', 'mallory') ORDER BY 1, 2;

-- 5. search_path is pinned: a function planted in public is never called by pg_collect.
CREATE FUNCTION public.format(text, regclass, regtype) RETURNS text LANGUAGE sql AS $$ SELECT 'planted' $$;
CREATE FUNCTION public.cardinality(bigint[]) RETURNS int LANGUAGE sql AS $$ SELECT 0 $$;
RESET ROLE;
SET ROLE collect_alice;
SET search_path = public, alice;
SELECT collect.append('alice.feed', 'b', '{"k": 2}') > 0 AS appended;
INSERT INTO alice.files VALUES (1);
INSERT INTO alice.versions VALUES (1, 1, '2026-11-01', 42);
SELECT latest_size FROM alice.files;
RESET search_path;

-- 4. sql steps run as the collection's owner, never as the reader or the normalizer.
CREATE FUNCTION alice.whoami(entries jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_array(current_user::text) $$;
SELECT collect.create_collection('alice.who', 'text', '[{"sql": "alice.whoami"}]');
SELECT collect.create_collection('who2', 'text', '[{"sql": "whoami"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('alice.who', 'k', '{}') > 0 AS appended;
GRANT USAGE ON SCHEMA alice TO collect_mallory;
GRANT SELECT ON alice.who_pending, alice.who_base TO collect_mallory;
SET ROLE collect_mallory;
SELECT collect.read('alice.who', 'k') AS mallory_reads_as;
RESET ROLE;
SELECT collect.read('alice.who', 'k') AS superuser_reads_as;

-- 6. Generated SQL is qualified; a rollup is found in its own schema.
SET ROLE collect_alice;
SET search_path = mallory, public;
INSERT INTO alice.events VALUES ('2026-11-01 10:01', 'home', 2);
SELECT sum(total) AS alice_total FROM alice.r;
SELECT sum(total) AS alice_hour_total FROM alice.r_1h;
RESET search_path;

-- 7. Numbers are exact and any jsonb survives collections.
SELECT collect.create_collection('alice.nums', 'text', '[{"sum_by": "k", "value": "v"}]');
SELECT collect.append_many('alice.nums', 'a', '[{"k": 1, "v": 123456789012345678901234567890}, {"k": 1, "v": 0.1000000000000000000001},
                                                {"k": 2, "v": 1e400}, {"k": 2, "v": 1}]');
SELECT collect.read('alice.nums', 'a') -> 0 -> 'v' AS exact_sum,
       collect.read('alice.nums', 'a') -> 1 -> 'v' = (10::numeric ^ 400 + 1)::text::jsonb AS huge_sum_exact;
SELECT collect.normalize('alice.nums') ->> 'entries_out' AS folded;
SELECT collect.read('alice.nums', 'a') -> 0 -> 'v' AS exact_after_normalize;
SELECT collect.create_collection('alice.deep', 'text', '[{"latest_by": "k"}]');
SELECT collect.append('alice.deep', 'a', jsonb_build_object('k', 1, 'v', (repeat('[', 500) || '1' || repeat(']', 500))::jsonb)) > 0 AS appended;
SELECT collect.normalize('alice.deep') ->> 'entries_out' AS folded;
SELECT collect.read('alice.deep', 'a') -> 0 -> 'v' = (repeat('[', 500) || '1' || repeat(']', 500))::jsonb AS deep_value_intact;

-- 8. Rollups without raw rows count every row once.
CREATE VIEW alice.clicks AS SELECT NULL::timestamptz AS at, NULL::text AS page WHERE false;
SELECT collect.create_rollup('c1', 'alice.clicks', 'at', '{page}', keep_raw => false);
SELECT collect.create_rollup('c2', 'alice.clicks', 'at', '{page}', keep_raw => false);
CREATE TABLE alice.side (g int);
CREATE FUNCTION alice.noisy(g int) RETURNS text LANGUAGE plpgsql AS $$ BEGIN INSERT INTO alice.side VALUES (g); RETURN 'p'; END $$;
INSERT INTO alice.clicks SELECT '2026-11-01 10:00', alice.noisy(g) FROM generate_series(1, 10) g;
SELECT (SELECT sum(event_count) FROM alice.c1) AS c1_events, (SELECT sum(event_count) FROM alice.c2) AS c2_events;

-- Graphs: the C functions behind the SQL ones check the definition themselves.
SELECT collect.create_graph('alice.g');
SELECT collect.edge_add('alice.g', 1, 2) AS added;
RESET ROLE;
SET ROLE collect_mallory;
SELECT collect._graph_write('alice', 'nope', '{1}', '{2}', 0::smallint, NULL, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT collect._graph_write('alice', 'g', '{1}', '{3}', 0::smallint, NULL, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect._graph_sets('alice', 'g', 'union', '{1}', 'out', 0::smallint);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE collect_alice;

-- Work that changes a definition is its owner's: a role granted the tables still may not
-- normalize another role's collection (it would change its definition's state).
GRANT SELECT, INSERT, DELETE, UPDATE ON alice.feed_pending, alice.feed_base TO collect_mallory;
SET ROLE collect_mallory;
SELECT collect.normalize('alice.feed');
\echo :LAST_ERROR_SQLSTATE
SET ROLE collect_alice;
-- A sql step's function must be one its owner-to-be may call.
CREATE FUNCTION alice.secret(entries jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT entries $$;
REVOKE EXECUTE ON FUNCTION alice.secret(jsonb) FROM PUBLIC;
SET ROLE collect_mallory;
SELECT collect.create_collection('mallory.steal', 'text', '[{"sql": "alice.secret"}]');
\echo :LAST_ERROR_SQLSTATE
SET ROLE collect_alice;
-- A rollup lives in its source's schema; events are JSON objects.
SELECT collect.create_rollup('mallory.r', 'alice.events', 'at');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.ingest('alice.r', '[{"at": "2026-11-01T10:00:00Z"}, 42]');
\echo :LAST_ERROR_SQLSTATE

-- 12. Smaller defects.
SELECT collect.create_collection('alice.huge', 'text', '[{"limit": 1e400}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('alice.huge', 'text', '[{"where": {"v": {"gt": 1e400}}}, {"expire": "1 hour", "at": "v"}]');
SELECT collect.append_many('alice.huge', 'k', '[{"v": 1e401}, {"v": 1e399}, {"v": 1}]');
SELECT collect.read('alice.huge', 'k') = '[{"v": 1e401}]'::jsonb AS only_the_larger_number;
CALL collect.normalize_in_batches('alice.huge', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.set_retention('alice.r_1h', '36500 days') >= 0 AS tier_retention_set;
SELECT collect.create_collection('alice.bad', 'text', '[{"expire": "-178956970 years 1 second"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_rollup('bad', 'alice.events', 'at', metrics => '{"": "sum(n)"}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE alice.with_ids (id bigserial PRIMARY KEY, at timestamptz, page text, n int DEFAULT 7);
SELECT collect.create_rollup('ids', 'alice.with_ids', 'at', '{page}', '{"total": "sum(n)"}');
SELECT collect.ingest('alice.ids', '[{"at": "2026-11-01T10:00:00Z", "page": "x"}, {"at": "2026-11-01T10:00:00Z", "page": "x", "n": 1}]');
SELECT event_count, total FROM alice.ids;
-- topk counts near 2^64 (which its decoder accepts) cannot be summed: an error, not a value
-- that wraps around and cannot be read back.
SELECT collect.merge('\x0104feffffffffffffffff01010178feffffffffffffffff0100'::collect.topk,
                          '\x0104feffffffffffffffff01010178feffffffffffffffff0100'::collect.topk);
\echo :LAST_ERROR_SQLSTATE
SELECT collect._latest_statements('{}');
\echo :LAST_ERROR_SQLSTATE

-- 11. A filter cannot escape its parentheses; generated names do not collide with users'.
CREATE TABLE alice.p (id bigint PRIMARY KEY, keys int);
CREATE TABLE alice.k (id bigint PRIMARY KEY, key bigint, at int, deleted boolean);
SELECT collect.create_latest('alice.p', 'alice.k', 'key', 'at', '{at}', filter => 'NOT deleted) OR (true');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('alice.p', 'alice.k', 'key', 'at', '{at}', filter => 'NOT deleted');
INSERT INTO alice.p VALUES (1, 0);
INSERT INTO alice.k VALUES (1, 1, 5, false), (2, 1, 9, true);
SELECT id, latest_at FROM alice.p;
SELECT * FROM collect.check_latest('alice.p');

-- 12. A latest copy's filter is read with pg_catalog only, whatever search_path the writer has:
-- an operator planted ahead of pg_catalog's is not the filter's.
RESET ROLE;
SET ROLE collect_mallory;
CREATE FUNCTION public.planted_gt(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR public.> (LEFTARG = int, RIGHTARG = int, FUNCTION = public.planted_gt);
RESET ROLE;
SET ROLE collect_alice;
CREATE TABLE alice.p2 (id bigint PRIMARY KEY);
CREATE TABLE alice.k2 (id bigint PRIMARY KEY, key bigint, at int);
SELECT collect.create_latest('alice.p2', 'alice.k2', 'key', 'at', '{at}', filter => 'at > 0');
INSERT INTO alice.p2 VALUES (1), (2);
SET search_path = public, pg_catalog;
SELECT 1 > 0 AS planted_operator_answers;
INSERT INTO alice.k2 VALUES (1, 1, 5), (2, 1, 7);
INSERT INTO alice.k2 VALUES (3, 2, 4);
RESET search_path;
SELECT id, latest_at FROM alice.p2 ORDER BY id;
RESET ROLE;
DROP OPERATOR public.> (int, int);
DROP FUNCTION public.planted_gt(int, int);
SET ROLE collect_alice;

-- A row written by a superuser (row level security does not apply to it) that names another
-- role's tables is refused at every use, never followed.
RESET ROLE;
INSERT INTO collect.collection_defs (schema, name, key_type, read, owner)
VALUES ('alice', 'feed', 'text', '[]', 'collect_mallory')
ON CONFLICT (schema, name) DO UPDATE SET owner = excluded.owner;
SET ROLE collect_mallory;
SELECT collect.append('alice.feed', 'x', '{}');
\echo :LAST_ERROR_SQLSTATE

-- A role writes its own registry rows, but only with values pg_collect itself would write:
-- a malformed row would make the lists of jobs and definitions fail for every role (23514).
RESET ROLE;
SET ROLE collect_mallory;
CREATE TABLE mallory.ev (at timestamptz, page text);
SELECT collect.create_rollup('mallory.ev_r', 'mallory.ev', 'at', '{page}') IS NOT NULL AS made;
\set VERBOSITY terse
UPDATE collect.collection_defs SET normalization = '"daily"' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.collection_defs SET normalization = '{"daily": 1}' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.collection_defs SET read = '{}' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET granularity = '170000000 years' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET granularity = '1000000 days' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET granularity = '1 mon' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET tiers = '{"name": "x"}' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET tiers = '[{"name": "ev_r_stale", "granularity": "soon"}]' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
UPDATE collect.rollup_defs SET tiers = '[{"name": "ev_r_stale", "granularity": "1 day", "keep": "-1 day"}]' WHERE schema = 'mallory';
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT count(*) > 0 AS every_role_still_lists_jobs FROM collect.jobs;
SELECT count(*) > 0 AS every_role_still_lists_rollups FROM collect.rollups;

-- Clean up.
RESET ROLE;
DROP SCHEMA alice CASCADE;
DROP SCHEMA mallory CASCADE;
DROP FUNCTION public.format(text, regclass, regtype);
DROP FUNCTION public.cardinality(bigint[]);
DELETE FROM collect.collection_defs WHERE schema IN ('alice', 'mallory');
DELETE FROM collect.rollup_defs WHERE schema IN ('alice', 'mallory');
DELETE FROM collect.graph_defs WHERE schema IN ('alice', 'mallory');
DELETE FROM collect.latest_defs WHERE schema IN ('alice', 'mallory');
REVOKE CREATE ON SCHEMA public FROM collect_alice, collect_mallory;
DROP ROLE collect_alice;
DROP ROLE collect_mallory;
