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

-- The same, against a hand-written statement that also keeps each new follower's counts row, as
-- the 8-client transaction below does for both ends of an edge and as collect.edge_add_many does.
CALL bench.compare('add 10,000 edges of one node in one call, both ends counted', 10000, :runs, ARRAY[
    ['INSERT ... ON CONFLICT into the hand-written schema, both ends counted', $q$
        WITH base AS (SELECT nextval('bulk_base') * 100000 AS b),
             e AS (SELECT 10 AS source, b + g AS destination FROM base, generate_series(1, 10000) g),
             o AS (INSERT INTO flock_out SELECT source, destination, 0, destination FROM e
                   ON CONFLICT (source, destination) DO UPDATE SET state = 0 RETURNING source),
             i AS (INSERT INTO flock_in SELECT destination, source, 0, destination FROM e
                   ON CONFLICT (destination, source) DO UPDATE SET state = 0 RETURNING destination, source)
        INSERT INTO flock_counts
        SELECT 10, 'o', 0, (SELECT count(*) FROM o)
         UNION ALL
        SELECT destination, 'i', 0, 1 FROM i
        ON CONFLICT (node, direction, state) DO UPDATE SET n = flock_counts.n + excluded.n $q$],
    ['collect.edge_add_many', $q$
        SELECT collect.edge_add_many('follows', 10, ARRAY(SELECT nextval('bulk_base') * 100000 + g FROM generate_series(1, 10000) g)) $q$],
    ['collect.edge_add_many without compact lists', $q$
        SELECT collect.edge_add_many('plain', 10, ARRAY(SELECT nextval('bulk_base') * 100000 + g FROM generate_series(1, 10000) g)) $q$]]);

-- Single edge_add calls as a new graph grows: one node gains 5,000 edges, one call each,
-- against the hand-written transaction's four upserts into new tables of FlockDB's shape (both
-- never analyzed, as in a graph's first minutes). Each stage of 1,000 calls is a benchmark of
-- its own, so a cost that grows with the graph shows as a ratio that grows.
CREATE PROCEDURE bench_grow(run int) LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
BEGIN
    PERFORM collect.drop_graph(name) FROM collect.graphs WHERE name = 'growing' AND schema = current_schema();
    DROP TABLE IF EXISTS grow_out, grow_in, grow_counts;
    PERFORM collect.create_graph('growing');
    CREATE TABLE grow_out (LIKE flock_out INCLUDING INDEXES);
    CREATE TABLE grow_in (LIKE flock_in INCLUDING INDEXES);
    CREATE TABLE grow_counts (LIKE flock_counts INCLUDING INDEXES);
    COMMIT;
    FOR stage IN 0 .. 4 LOOP
        started := clock_timestamp();
        FOR i IN stage * 1000 + 1 .. stage * 1000 + 1000 LOOP
            INSERT INTO grow_out VALUES (1, i * 7919, 0, i) ON CONFLICT (source, destination) DO UPDATE SET state = 0;
            INSERT INTO grow_in VALUES (i * 7919, 1, 0, i) ON CONFLICT (destination, source) DO UPDATE SET state = 0;
            INSERT INTO grow_counts VALUES (1, 'o', 0, 1) ON CONFLICT (node, direction, state) DO UPDATE SET n = grow_counts.n + 1;
            INSERT INTO grow_counts VALUES (i * 7919, 'i', 0, 1) ON CONFLICT (node, direction, state) DO UPDATE SET n = grow_counts.n + 1;
        END LOOP;
        INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
        VALUES (format('single edge_add calls on a new graph, edges %s to %s of one node', stage * 1000 + 1, stage * 1000 + 1000),
                'hand-written upserts into new tables', true, run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 1000);
        started := clock_timestamp();
        FOR i IN stage * 1000 + 1 .. stage * 1000 + 1000 LOOP
            PERFORM collect.edge_add('growing', 1, i * 7919);
        END LOOP;
        INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
        VALUES (format('single edge_add calls on a new graph, edges %s to %s of one node', stage * 1000 + 1, stage * 1000 + 1000),
                'collect.edge_add', false, run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 1000);
        COMMIT;
    END LOOP;
END $$;
CALL bench_grow(1);
CALL bench_grow(2);
CALL bench_grow(3);
