-- Lumps on Citus: a distributed table with a collect.lump column.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
CREATE TABLE lumps (id bigint PRIMARY KEY, c collect.lump);
SELECT create_distributed_table('lumps', 'id');
INSERT INTO lumps
SELECT g, (SELECT collect.lump_agg(jsonb_build_object('n', g, 'i', i, 'big', 123456789012345678901234567890) ORDER BY i)
             FROM generate_series(1, g % 7) i)
  FROM generate_series(1, 40) g;
-- The same rows in a local table, to compare with.
CREATE TABLE lumps_local AS SELECT * FROM lumps;
SELECT count(*) AS rows, sum(collect.entry_count(c)) AS entries FROM lumps;
SELECT bool_and(d.c::text = l.c::text) AS same_as_local FROM lumps d JOIN lumps_local l USING (id);
-- entries() runs on the workers, one row per entry.
SELECT id, e FROM lumps, collect.entries(c) e WHERE id IN (3, 10) ORDER BY id, (e->>'i')::int;
SELECT count(*) AS entries_over_all_shards FROM lumps, collect.entries(c);
-- Appending to a stored lump, on the shard that holds it.
UPDATE lumps SET c = c OPERATOR(collect.||) '{"appended": true}' WHERE id = 10;
SELECT collect.entry_count(c), collect.to_jsonb(c) -> -1 AS last FROM lumps WHERE id = 10;
-- COPY in text and binary form, through the coordinator.
COPY (SELECT id + 100, c FROM lumps_local) TO '/tmp/pg_collect_citus_lumps.txt';
COPY lumps FROM '/tmp/pg_collect_citus_lumps.txt';
COPY (SELECT id + 200, c FROM lumps_local) TO '/tmp/pg_collect_citus_lumps.bin' (FORMAT binary);
COPY lumps FROM '/tmp/pg_collect_citus_lumps.bin' (FORMAT binary);
SELECT count(*) AS rows_after_copy FROM lumps;
SELECT (SELECT string_agg(c::text, ',' ORDER BY id) FROM lumps WHERE id BETWEEN 101 AND 140)
     = (SELECT string_agg(c::text, ',' ORDER BY id) FROM lumps_local) AS text_copy_equal,
       (SELECT string_agg(c::text, ',' ORDER BY id) FROM lumps WHERE id BETWEEN 201 AND 240)
     = (SELECT string_agg(c::text, ',' ORDER BY id) FROM lumps_local) AS binary_copy_equal;
-- Bad input is refused on the way in, as on one machine.
INSERT INTO lumps VALUES (999, '[{"a": 1}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE lumps, lumps_local;
