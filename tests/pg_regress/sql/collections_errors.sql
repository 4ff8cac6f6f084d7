-- Collections: errors name the culprit, with the SQLSTATE shown after each. Uses the
-- collections of the collections suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Errors name the culprit, with the SQLSTATE shown after each.
SELECT collect.create_collection('bad', read => '[{"limit": 0}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', read => '[{"latest_by": "a"}, {"teleport": true}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', read => '[{"expire": "fortnight-ish"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', read => '[{"order_by": "a"}, {"limit": 5}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', normalization => '{"daily": [{"sum_by": "k"}]}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', read => '[{"sql": "public.no_such_function"}]');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('Bad Name');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('bad', 'numeric');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_collection('segment_sets');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('no_such_collection', 'k', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.read('no_such_collection', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('segment_sets', 'not a number', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('segment_sets', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append_many('segment_sets', 1, '{"not": "an array"}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.normalize('segment_sets', max_keys => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.normalize('segment_sets', NULL);
\echo :LAST_ERROR_SQLSTATE
CALL collect.normalize_in_batches('segment_sets', batch_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_collection('no_such_collection');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS nothing_was_created FROM collect.collection_defs WHERE name = 'bad';
-- Distributing a collection needs Citus (make test-citus, suite collections, does it there).
SELECT collect.distribute_collection('segment_sets');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.distribute_collection('no_such_collection');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.distribute_collection('segment_sets', shard_count => 0);
\echo :LAST_ERROR_SQLSTATE
-- A base table whose entries column was dropped by hand is named, not folded into (42703).
SELECT collect.create_collection('broken_feed', 'bigint', normalization => '{"daily": []}') IS NOT NULL AS created;
SELECT collect.append('broken_feed', 1, '{"a": 1}') > 0 AS appended;
ALTER TABLE broken_feed_base DROP COLUMN entries;
SELECT collect.normalize('broken_feed', 'daily');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_collection('broken_feed');
-- Appends of one entry (C functions from 0.5.0) raise what the SQL functions before them did.
SELECT collect.append(NULL, 'k', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('segment_sets', NULL::bigint, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('segment_sets', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('a.b.c', 'k', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.append('no_such_schema.segment_sets', 1, '{}');
\echo :LAST_ERROR_SQLSTATE
-- A table named like a collection's is not one: nothing is written to it.
CREATE TABLE lookalike_pending (key text, entry jsonb, seq bigserial);
SELECT collect.append('lookalike', 'k', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.read('lookalike', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS nothing_written FROM lookalike_pending;
DROP TABLE lookalike_pending;
SELECT collect.read(NULL, 'k') IS NULL AS strict, collect.read('segment_sets', NULL::bigint) IS NULL AS strict_key;
