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
-- Normalization folds each key on the worker holding it; reads are the same before and after.
CREATE TEMP TABLE before_fold AS SELECT key, entries FROM collect.read_many('segment_sets', ARRAY(SELECT generate_series(1, 20)::bigint));
SELECT (collect.normalize('segment_sets', all_keys => true))->>'keys_visited' AS keys_folded;
SELECT count(*) AS keys_read_differently FROM (
    SELECT key, entries::text FROM before_fold
    EXCEPT SELECT key, entries::text FROM collect.read_many('segment_sets', ARRAY(SELECT generate_series(1, 20)::bigint))) d;
SELECT pending_entries FROM collect.collections WHERE name = 'segment_sets';

-- One call distributes a collection's tables, co-located on their key; values of every size
-- survive appends, folds and reads there as on one node.
SELECT collect.create_collection('events_by_user', 'text', '[{"limit": 5}]');
SELECT collect.create_collection('local_events_by_user', 'text', '[{"limit": 5}]');
SELECT collect.distribute_collection('events_by_user', shard_count => 6);
SELECT collect.distribute_collection('events_by_user');
SELECT logicalrelid::text, shardcount.n AS shards,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'events_by_user_pending'::regclass) AS colocated
  FROM pg_dist_partition, LATERAL (SELECT count(*) AS n FROM pg_dist_shard s WHERE s.logicalrelid = pg_dist_partition.logicalrelid) shardcount
 WHERE logicalrelid::text LIKE 'events_by_user_%' ORDER BY 1;
CREATE FUNCTION append_both(n integer) RETURNS bigint LANGUAGE sql AS $$
    SELECT sum(collect.append('events_by_user', 'u' || g % 7, e) + collect.append('local_events_by_user', 'u' || g % 7, e))
      FROM generate_series(1, n) g,
           LATERAL (SELECT jsonb_build_object('i', g, 'big', 1e400::text::jsonb, 'deep', repeat('[', 50) || repeat(']', 50)) AS e) x
$$;
SELECT append_both(40) > 0 AS appended;
SELECT collect.normalize('events_by_user', all_keys => true) IS NOT NULL AS folded;
SELECT append_both(10) > 0 AS appended_more;
SELECT count(*) AS keys, count(*) FILTER (WHERE d.entries::text = l.entries::text) AS equal_to_one_node
  FROM collect.read_many('events_by_user', ARRAY(SELECT 'u' || g FROM generate_series(0, 6) g)) d
  JOIN collect.read_many('local_events_by_user', ARRAY(SELECT 'u' || g FROM generate_series(0, 6) g)) l USING (key);
SELECT collect.read('events_by_user', 'u3')->0->'big' AS big_number;

-- Citus rebuilding the tables (more shards; back to local tables) leaves the collection
-- working: the registry names tables, it does not hold their OIDs.
SELECT alter_distributed_table('events_by_user_pending', shard_count => 8, cascade_to_colocated => true);
SELECT (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'events_by_user_base'::regclass) AS base_shards_after_alter;
SELECT collect.append('events_by_user', 'u1', '{"after": "alter"}') > 0 AS appended;
SELECT collect.read('events_by_user', 'u1')->-1 AS last_entry;
SELECT collect.normalize('events_by_user', all_keys => true) IS NOT NULL AS folded;
SELECT undistribute_table('events_by_user_pending', cascade_via_foreign_keys => false);
SELECT undistribute_table('events_by_user_base');
SELECT count(*) AS citus_tables_left FROM pg_dist_partition WHERE logicalrelid::text LIKE 'events_by_user_%';
SELECT collect.append('events_by_user', 'u1', '{"after": "undistribute"}') > 0 AS appended;
SELECT collect.read('events_by_user', 'u1')->-1 AS last_entry;
SELECT collect.drop_collection('events_by_user'), collect.drop_collection('local_events_by_user');
DROP FUNCTION append_both;
