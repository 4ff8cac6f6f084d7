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

-- Dropping a collection removes its tables and its definition.
SELECT collect.drop_collection('best');
SELECT to_regclass('best_pending') IS NULL AS tables_gone,
       NOT EXISTS (SELECT FROM collect.collection_defs WHERE name = 'best') AS definition_gone;
