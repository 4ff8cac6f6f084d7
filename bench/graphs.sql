-- Edge lists against FlockDB's schema written by hand in plain SQL: an edges table keyed by
-- (source, destination) with an index on (source, state, position), a backward table, and a
-- counts table updated in the same transaction. Writes under load are in graphs_concurrency.sh.
\set runs 5
SET max_parallel_workers_per_gather = 0;

-- The hand-written schema.
CREATE TABLE flock_out (source bigint, destination bigint, state smallint NOT NULL, position bigint NOT NULL,
                        PRIMARY KEY (source, destination));
CREATE INDEX ON flock_out (source, state, position);
CREATE TABLE flock_in (destination bigint, source bigint, state smallint NOT NULL, position bigint NOT NULL,
                       PRIMARY KEY (destination, source));
CREATE INDEX ON flock_in (destination, state, position);
CREATE TABLE flock_counts (node bigint, direction "char", state smallint, n bigint NOT NULL, PRIMARY KEY (node, direction, state));

-- Two nodes following 1M nodes each (half of them in common) and one following 1,000.
CREATE TEMP TABLE lists AS
SELECT 1::bigint AS source, g::bigint AS destination FROM generate_series(1, 1000000) g
UNION ALL SELECT 2, g FROM generate_series(500001, 1500000) g
UNION ALL SELECT 3, g * 997 FROM generate_series(1, 1000) g;
INSERT INTO flock_out SELECT source, destination, 0, destination FROM lists;
INSERT INTO flock_in SELECT destination, source, 0, destination FROM lists;
INSERT INTO flock_counts SELECT source, 'o', 0, count(*) FROM lists GROUP BY 1;
SELECT collect.create_graph('follows');
SELECT collect.edge_add_pairs('follows', ARRAY(SELECT source FROM lists WHERE source = 1), ARRAY(SELECT destination FROM lists WHERE source = 1),
                              ARRAY(SELECT destination FROM lists WHERE source = 1)) AS loaded_1;
SELECT collect.edge_add_pairs('follows', ARRAY(SELECT source FROM lists WHERE source = 2), ARRAY(SELECT destination FROM lists WHERE source = 2),
                              ARRAY(SELECT destination FROM lists WHERE source = 2)) AS loaded_2;
SELECT collect.edge_add_pairs('follows', ARRAY(SELECT source FROM lists WHERE source = 3), ARRAY(SELECT destination FROM lists WHERE source = 3),
                              ARRAY(SELECT destination FROM lists WHERE source = 3)) AS loaded_3;
-- The same graph without compact lists (cheaper writes; set operations read the edge tables).
SELECT collect.create_graph('plain', compact_lists => false);
SELECT collect.edge_add_pairs('plain', ARRAY(SELECT source FROM lists), ARRAY(SELECT destination FROM lists),
                              ARRAY(SELECT destination FROM lists)) AS loaded_plain;
VACUUM ANALYZE flock_out, flock_in, flock_counts, follows_out, follows_in, follows_counts, follows_lists,
               plain_out, plain_in, plain_counts;

-- Intersections, as users ask them: the common nodes, counted.
CALL bench.compare('intersect two 1M-edge lists (500k in common)', 500000, :runs, ARRAY[
    ['SQL join on the hand-written schema', $q$
        SELECT count(*) FROM flock_out a JOIN flock_out b ON b.source = 2 AND b.destination = a.destination AND b.state = 0
         WHERE a.source = 1 AND a.state = 0 $q$],
    ['collect.edge_intersect', $q$ SELECT count(*) FROM collect.edge_intersect('follows', '{1, 2}') $q$],
    ['collect.edge_intersect_count', $q$ SELECT collect.edge_intersect_count('follows', '{1, 2}') $q$],
    ['collect.edge_intersect_count without compact lists', $q$ SELECT collect.edge_intersect_count('plain', '{1, 2}') $q$]]);
CALL bench.compare('intersect a 1M-edge list with a 1k-edge list', 1000, :runs, ARRAY[
    ['SQL join on the hand-written schema', $q$
        SELECT count(*) FROM flock_out a JOIN flock_out b ON b.source = 3 AND b.destination = a.destination AND b.state = 0
         WHERE a.source = 1 AND a.state = 0 $q$],
    ['collect.edge_intersect', $q$ SELECT count(*) FROM collect.edge_intersect('follows', '{1, 3}') $q$]]);

-- Paging 10,000 rows deep: a cursor costs what the first page costs; OFFSET reads all before.
SELECT cursor AS deep_cursor FROM collect.edges('follows', 1, page_size => 10000) ORDER BY edge_position LIMIT 1 \gset
CALL bench.compare('a page of 100, 10,000 deep', 100, :runs, ARRAY[
    ['OFFSET 10000 on the hand-written schema', $q$
        SELECT sum(destination) FROM (SELECT destination FROM flock_out WHERE source = 1 AND state = 0
                                      ORDER BY position DESC OFFSET 10000 LIMIT 100) p $q$],
    ['collect.edges, first page', $q$ SELECT sum(node) FROM collect.edges('follows', 1) $q$],
    ['collect.edges, cursor 10,000 deep', format($q$ SELECT sum(node) FROM collect.edges('follows', 1, cursor => %s) $q$, :deep_cursor)]]);

-- The size of a 1M-edge list.
CALL bench.compare('count the edges of a node with 1M edges', 1, :runs, ARRAY[
    ['count(*) on the hand-written schema', $q$ SELECT count(*) FROM flock_out WHERE source = 1 AND state = 0 $q$],
    ['the hand-written counts row', $q$ SELECT n FROM flock_counts WHERE node = 1 AND direction = 'o' AND state = 0 $q$],
    ['collect.edge_count', $q$ SELECT collect.edge_count('follows', 1) $q$]]);

-- Bulk: 10,000 new followers of one node in one call.
CREATE SEQUENCE bulk_base;
CALL bench.compare('add 10,000 edges of one node in one call', 10000, :runs, ARRAY[
    ['INSERT ... ON CONFLICT into the hand-written schema', $q$
        WITH base AS (SELECT nextval('bulk_base') * 100000 AS b),
             e AS (SELECT 10 AS source, b + g AS destination FROM base, generate_series(1, 10000) g),
             o AS (INSERT INTO flock_out SELECT source, destination, 0, destination FROM e
                   ON CONFLICT (source, destination) DO UPDATE SET state = 0 RETURNING source),
             i AS (INSERT INTO flock_in SELECT destination, source, 0, destination FROM e
                   ON CONFLICT (destination, source) DO UPDATE SET state = 0 RETURNING destination)
        INSERT INTO flock_counts SELECT 10, 'o', 0, (SELECT count(*) FROM o) + 0 * (SELECT count(*) FROM i)
        ON CONFLICT (node, direction, state) DO UPDATE SET n = flock_counts.n + excluded.n $q$],
    ['collect.edge_add_many', $q$
        SELECT collect.edge_add_many('follows', 10, ARRAY(SELECT nextval('bulk_base') * 100000 + g FROM generate_series(1, 10000) g)) $q$],
    ['collect.edge_add_many without compact lists', $q$
        SELECT collect.edge_add_many('plain', 10, ARRAY(SELECT nextval('bulk_base') * 100000 + g FROM generate_series(1, 10000) g)) $q$]]);
