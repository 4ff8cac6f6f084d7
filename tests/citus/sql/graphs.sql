-- Graphs on Citus: forward edges distributed by source, backward edges by destination,
-- counts and compact lists by node, co-located (FlockDB's partitioning). Every single-node read and write goes
-- to one shard; set operations over nodes on different shards stay exact.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET citus.shard_count = 4;
SELECT collect.create_graph('follows');
SELECT logicalrelid::text, column_to_column_name(logicalrelid, partkey) AS distributed_by,
       colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'follows_out'::regclass) AS colocated
  FROM pg_dist_partition WHERE logicalrelid::text LIKE 'follows_%' ORDER BY 1;
-- Nodes 1..40 follow every node whose number they divide; node 1 follows everyone.
SELECT sum(collect.edge_add_many('follows', n, ARRAY(SELECT m FROM generate_series(1, 400) m WHERE m % n = 0 AND m <> n),
                                 at => '2026-11-01')) AS added
  FROM generate_series(1, 40) n;
SELECT collect.edge_remove('follows', 1, 12, at => '2026-11-02');
SELECT collect.edge_count('follows', 1), collect.edge_count('follows', 1, state => 'removed'), collect.edge_count('follows', 12, 'in');
SELECT * FROM collect.edges('follows', 24, 'in', page_size => 3);
SELECT * FROM collect.edges('follows', 24, 'in', page_size => 3, cursor => 6);
-- Set operations across shards equal SQL's over the distributed tables.
CREATE FUNCTION sql_sets(a bigint, b bigint, op text) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    result bigint[];
BEGIN
    EXECUTE format('SELECT ARRAY(SELECT destination FROM follows_out WHERE source = %s AND state = 0
                                 %s SELECT destination FROM follows_out WHERE source = %s AND state = 0 ORDER BY 1)', a, op, b)
        INTO result;
    RETURN result;
END $$;
SELECT a, b,
       ARRAY(SELECT collect.edge_intersect('follows', ARRAY[a, b]) ORDER BY 1) = sql_sets(a, b, 'INTERSECT') AS intersect_ok,
       ARRAY(SELECT collect.edge_union('follows', ARRAY[a, b]) ORDER BY 1) = sql_sets(a, b, 'UNION') AS union_ok,
       ARRAY(SELECT collect.edge_difference('follows', a, b) ORDER BY 1) = sql_sets(a, b, 'EXCEPT') AS difference_ok,
       cardinality(sql_sets(a, b, 'INTERSECT')) AS in_both
  FROM (VALUES (2, 3), (1, 37), (6, 4), (5, 7)) AS p(a, b);
SELECT collect.edge_intersect_count('follows', '{2, 3, 5}');
SELECT collect.edge_intersect('follows', '{60, 120}', 'in') AS followed_by_both ORDER BY 1;
DROP FUNCTION sql_sets(bigint, bigint, text);
-- Archiving a node reaches its edges on every shard.
SELECT collect.edge_archive('follows', 6, at => '2026-11-03');
SELECT collect.edge_count('follows', 6, state => 'archived') AS out_archived, collect.edge_count('follows', 6, 'in', 'archived') AS in_archived;
SELECT collect.edge_unarchive('follows', 6, at => '2026-11-04');
SELECT (SELECT array_agg(collect.edge_count('follows', n) ORDER BY n) FROM generate_series(1, 40) n)
     = (SELECT array_agg(c ORDER BY n) FROM (SELECT source AS n, count(*) AS c FROM follows_out WHERE state = 0 GROUP BY source) s) AS counts_exact;
SELECT name, edges, nodes FROM collect.graphs;
SELECT collect.drop_graph('follows');
