-- Collections and roles: sql steps run as the owner; only the owner drops. Runs after the
-- collections suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Custom reducers run with the privileges of the collection's owner, like a view: a reader
-- who may not call the function still reads through it.
SET client_min_messages = warning;
DROP ROLE IF EXISTS collect_regress_owner;
DROP ROLE IF EXISTS collect_regress_reader;
RESET client_min_messages;
CREATE ROLE collect_regress_owner;
CREATE ROLE collect_regress_reader;
GRANT CREATE ON SCHEMA public TO collect_regress_owner;
CREATE FUNCTION private_reducer(entries jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT entries $$;
REVOKE EXECUTE ON FUNCTION private_reducer(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION private_reducer(jsonb) TO collect_regress_owner;
SET ROLE collect_regress_owner;
SELECT collect.create_collection('owned', read => '[{"sql": "public.private_reducer"}]');
SELECT collect.append('owned', 'k', '{"x": 1}');
SELECT collect.read('owned', 'k');
SELECT tableowner FROM pg_tables WHERE tablename IN ('owned_pending', 'owned_base');
GRANT SELECT ON owned_pending, owned_base TO collect_regress_reader;
SET ROLE collect_regress_reader;
SELECT has_function_privilege('private_reducer(jsonb)', 'EXECUTE') AS reader_may_call_it;
SELECT collect.read('owned', 'k');
-- A role that only appends (an ingest service) needs INSERT on name_pending, the sequence
-- number of its appends (SELECT on column seq) and the sequence: nothing that reads entries.
RESET ROLE;
CREATE ROLE collect_regress_writer;
SET ROLE collect_regress_owner;
GRANT INSERT, SELECT (seq) ON owned_pending TO collect_regress_writer;
GRANT USAGE ON SEQUENCE owned_pending_seq_seq TO collect_regress_writer;
SET ROLE collect_regress_writer;
SELECT collect.append('owned', 'k', '{"x": 2}') > 0 AS writer_appended;
SELECT collect.read('owned', 'k');
\echo :LAST_ERROR_SQLSTATE
-- A row written straight into name_pending with a transaction number from the future does
-- not win every read, and is folded like any other.
SET ROLE collect_regress_owner;
INSERT INTO owned_pending (key, txn, entry) VALUES ('k', '9223372036854775807', '{"x": "forged"}');
SELECT collect.read('owned', 'k');
SELECT (collect.normalize('owned', all_keys => true))->>'entries_in' AS folded;
SELECT count(*) AS left_pending FROM owned_pending;
SELECT collect.read('owned', 'k');
SET ROLE collect_regress_reader;
-- Only the owner may drop it.
SELECT collect.drop_collection('owned');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE collect_regress_owner;
SELECT collect.drop_collection('owned');
RESET ROLE;
DROP FUNCTION private_reducer(jsonb);
REVOKE CREATE ON SCHEMA public FROM collect_regress_owner;
DROP ROLE collect_regress_owner;
DROP ROLE collect_regress_reader;
DROP ROLE collect_regress_writer;

-- Dropping a collection removes its tables and its definition.
SELECT collect.drop_collection('best');
SELECT to_regclass('best_pending') IS NULL AS tables_gone,
       NOT EXISTS (SELECT FROM collect.collection_defs WHERE name = 'best') AS definition_gone;
