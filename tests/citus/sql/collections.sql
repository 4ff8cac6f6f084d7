-- Collections on Citus: a collection's two tables distributed on their key and co-located,
-- so every append, read and fold of a key stays on the worker that holds it.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
SELECT collect.create_collection('segment_sets', 'bigint', '[{"latest_by": "segment"}, {"limit": 1000}]');
SELECT create_distributed_table('segment_sets_pending', 'key');
SELECT create_distributed_table('segment_sets_base', 'key', colocate_with => 'segment_sets_pending');
SELECT collect.append('segment_sets', 1, '{"segment": "sports", "score": 0.2}') > 0 AS appended;
SELECT collect.append_many('segment_sets', 1, '[{"segment": "news", "score": 0.5}, {"segment": "sports", "score": 0.9}]');
SELECT sum(collect.append_many('segment_sets', g, jsonb_build_array(jsonb_build_object('segment', 's' || g % 3, 'n', 123456789012345678901234567890)))) AS appended
  FROM generate_series(2, 20) g;
-- Both tables are distributed and co-located: a key's rows live on one worker.
SELECT logicalrelid::text, partmethod, colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'segment_sets_pending'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'segment_sets_%' ORDER BY 1;
SELECT collect.read('segment_sets', 1);
SELECT collect.read('segment_sets', 7);
SELECT key, jsonb_array_length(entries) FROM collect.read_many('segment_sets', ARRAY[1, 2, 99]);
SELECT count(*) AS keys, sum(pending_entries) AS pending FROM collect.collections WHERE name = 'segment_sets';
