-- Archives on Citus: the lumps of a distributed source are distributed the same way and
-- co-located with it, every lump holds rows of one shard and is stored with them, archiving
-- runs shard by shard, and a read or erasure of one key goes to the one shard that holds it.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
CREATE TABLE cold_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, account integer, body jsonb,
                          doubled bigint GENERATED ALWAYS AS (id * 2) STORED);
SELECT create_distributed_table('cold_events', 'id');
INSERT INTO cold_events (id, at, account, body)
SELECT g, timestamptz '2026-01-01' + g * interval '1 minute', g % 7,
       jsonb_build_object('n', g, 'exact', 1e400::numeric + g, 'deep', repeat('[', 100) || repeat(']', 100))
  FROM generate_series(1, 2000) g;
-- What the rows were, to compare against.
CREATE TABLE cold_originals AS SELECT id, at, to_jsonb(e) AS record FROM cold_events e;

SELECT collect.create_archive('cold', 'cold_events', 'id', 'at', lump_rows => 100, archive_after => '1 day');
-- The lumps table is distributed by its shard key and co-located with the source.
SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey) AS distributed_by,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'cold_events'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid IN ('cold_events'::regclass, 'cold_lumps'::regclass) ORDER BY 1;

-- Moving rows: each shard's rows go into lumps of that shard.
SELECT collect.archive('cold', '1 day');
SELECT count(*) AS left_in_source FROM cold_events;
SELECT count(*) AS lumps, sum(records) AS records, max(records) AS largest FROM cold_lumps;
-- Every key of a lump hashes to the shard its shard_key names: a lump never spans shards.
SELECT count(*) AS keys_outside_their_lump_shard
  FROM cold_lumps l, unnest(l.keys) k
 WHERE get_shard_id_for_distribution_column('cold_events', k) <> get_shard_id_for_distribution_column('cold_events', l.shard_key);
SELECT count(DISTINCT get_shard_id_for_distribution_column('cold_events', shard_key)) AS shards_with_lumps FROM cold_lumps;

-- Reading back: every record equals to_jsonb of its original row.
SELECT count(*) AS records_differing
  FROM cold_originals o WHERE collect.archived('cold', o.id) IS DISTINCT FROM o.record;
SELECT collect.archived('cold', 1999::bigint)->'body'->>'exact' = (1e400::numeric + 1999)::text AS exact_numbers;
SELECT collect.archived('cold', 123456::bigint) AS missing;
-- A range equals the same range of the original rows, in time order.
SELECT (SELECT array_agg(r) FROM collect.archived_range('cold', '2026-01-01 03:00', '2026-01-01 09:30') r)
     = (SELECT array_agg(record ORDER BY at) FROM cold_originals WHERE at >= '2026-01-01 03:00' AND at < '2026-01-01 09:30')
       AS range_equal;

-- A point read and an erasure go to one shard (EXPLAIN of the statements the functions run).
CREATE FUNCTION cold_tasks(statement text, key bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    tasks text := '';
BEGIN
    EXECUTE format('PREPARE cold_statement(bigint, text) AS %s', statement);
    FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) EXECUTE cold_statement(%s, %L)', key,
                               collect._archive_key_shard(collect._archive_def('public', 'cold'),
                                                          collect._archive_spec(collect._archive_def('public', 'cold')), key::text)) LOOP
        IF line ~ 'Task Count|Delete on|INSERT/SELECT method' THEN
            tasks := tasks || regexp_replace(trim(line), '_\d+', '_N', 'g') || '; ';
        END IF;
    END LOOP;
    DEALLOCATE cold_statement;
    RETURN tasks;
END $$;
SELECT s->>'point_read' AS point_read, s->>'delete' AS erasure FROM collect._archive_statements(collect._archive_spec(collect._archive_def('public', 'cold'))) s \gset
SELECT cold_tasks(:'point_read', 42) AS point_read_tasks;
-- Erasure deletes the lump in its shard, and writes the lump rewritten without the record back
-- through the coordinator to that shard.
SELECT cold_tasks(:'erasure', 42) AS erasure_tasks;

-- Erasure rewrites only the lump that held the record.
SELECT lump_id AS held_42 FROM cold_lumps WHERE 42 = ANY (keys) \gset
SELECT collect.archive_delete('cold', 42::bigint);
SELECT collect.archived('cold', 42::bigint) AS erased, collect.archive_delete('cold', 42::bigint) AS again;
SELECT count(*) AS lumps, sum(records) AS records, bool_and(lump_id <> :held_42) AS old_lump_gone FROM cold_lumps;
SELECT count(*) AS others_differing FROM cold_originals o WHERE o.id <> 42 AND collect.archived('cold', o.id) IS DISTINCT FROM o.record;

-- Unarchive restores rows equal to the originals (generated columns computed again).
SELECT collect.unarchive('cold', '2026-01-01 10:00', '2026-01-01 20:00');
SELECT count(*) AS restored, count(*) FILTER (WHERE to_jsonb(e) IS DISTINCT FROM o.record) AS differing
  FROM cold_events e JOIN cold_originals o USING (id);
SELECT count(*) AS lumps, sum(records) AS records FROM cold_lumps;
SELECT count(*) AS archived_in_restored_range
  FROM collect.archived_range('cold', '2026-01-01 10:00', '2026-01-01 20:00');

-- Archiving in batches that commit, and the view.
SET client_min_messages = warning;
CALL collect.archive_in_batches('cold', '1 day');
RESET client_min_messages;
SELECT count(*) AS left_in_source FROM cold_events;
SELECT name, source, lumps, records, stored_bytes > 0 AS stored, heap_bytes_estimate > 0 AS estimated FROM collect.archives WHERE name = 'cold';

-- Scheduled: the archive job runs per shard like a call.
INSERT INTO cold_events (id, at, account, body)
SELECT g, timestamptz '2026-02-01' + g * interval '1 second', 0, '{}' FROM generate_series(3001, 3450) g;
SELECT collect.schedule('cold', 'archive', '1 hour') <= now() AS due;
CALL collect.maintain();
SELECT object, job, last_result FROM collect.jobs WHERE scheduled AND object = 'public.cold';
SELECT count(*) AS left_in_source FROM cold_events;
SELECT sum(records) AS records FROM cold_lumps;

-- Text and uuid keys: shard key values of those types.
CREATE TABLE cold_sessions (token text PRIMARY KEY, at timestamptz NOT NULL);
SELECT create_distributed_table('cold_sessions', 'token');
INSERT INTO cold_sessions SELECT 'token-' || g, timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, 300) g;
SELECT collect.create_archive('cold_sessions_archive', 'cold_sessions', 'token', 'at', lump_rows => 50);
SELECT collect.archive('cold_sessions_archive', '1 day');
SELECT collect.archived('cold_sessions_archive', 'token-77'::text);
SELECT count(*) AS keys_outside_their_lump_shard
  FROM cold_sessions_archive_lumps l, unnest(l.keys) k
 WHERE get_shard_id_for_distribution_column('cold_sessions', k) <> get_shard_id_for_distribution_column('cold_sessions', l.shard_key);
CREATE TABLE cold_devices (id uuid PRIMARY KEY, at timestamptz NOT NULL);
SELECT create_distributed_table('cold_devices', 'id');
INSERT INTO cold_devices SELECT md5(g::text)::uuid, timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, 300) g;
SELECT collect.create_archive('cold_devices_archive', 'cold_devices', 'id', 'at', lump_rows => 50);
SELECT collect.archive('cold_devices_archive', '1 day');
SELECT collect.archived('cold_devices_archive', md5('7')::uuid);
SELECT collect.archive_delete('cold_devices_archive', md5('7')::uuid) AS erased;
SELECT count(*) AS records FROM collect.archived_range('cold_devices_archive', '2026-01-01', '2026-01-02');

-- A reference table's archive is a reference table too.
CREATE TABLE cold_countries (code text PRIMARY KEY, at timestamptz NOT NULL);
SELECT create_reference_table('cold_countries');
INSERT INTO cold_countries SELECT 'c' || g, timestamptz '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 30) g;
SELECT collect.create_archive('cold_countries_archive', 'cold_countries', 'code', 'at', lump_rows => 10);
SELECT partmethod, repmodel FROM pg_dist_partition WHERE logicalrelid = 'cold_countries_archive_lumps'::regclass;
SELECT collect.archive('cold_countries_archive', '1 day'), collect.archived('cold_countries_archive', 'c3'::text);

-- A distributed source must be archived by its distribution column.
CREATE TABLE cold_orders (id bigint, account integer, at timestamptz NOT NULL, PRIMARY KEY (account, id));
SELECT create_distributed_table('cold_orders', 'account');
SELECT collect.create_archive('cold_orders_archive', 'cold_orders', 'id', 'at');
\echo :LAST_ERROR_SQLSTATE
-- ... of a type whose shard key values archives can name.
CREATE TABLE cold_days (day date PRIMARY KEY, at timestamptz NOT NULL);
SELECT create_distributed_table('cold_days', 'day');
SELECT collect.create_archive('cold_days_archive', 'cold_days', 'day', 'at');
\echo :LAST_ERROR_SQLSTATE

SELECT collect.unschedule('cold', 'archive');
SELECT collect.drop_archive(name) FROM (VALUES ('cold'), ('cold_sessions_archive'), ('cold_devices_archive'), ('cold_countries_archive')) a(name);
DROP TABLE cold_events, cold_originals, cold_sessions, cold_devices, cold_countries, cold_orders, cold_days;
DROP FUNCTION cold_tasks(text, bigint);
