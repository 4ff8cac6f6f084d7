-- Edge lists (Twitter's FlockDB): adjacency lists of 64-bit ids with a state and a position
-- per edge, kept forward and backward, with exact per-node counts; writes are ordered by
-- their time, not their arrival.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SELECT collect.create_graph('follows');
\d follows_out

-- Alice (1) follows 2, 3 and 4; 5 follows 2.
SELECT collect.edge_add('follows', 1, 2, at => '2026-11-01 10:00:01');
SELECT collect.edge_add('follows', 1, 3, at => '2026-11-01 10:00:02');
SELECT collect.edge_add_many('follows', 1, '{4}', at => '2026-11-01 10:00:03');
SELECT collect.edge_add_pairs('follows', '{5}', '{2}', at => '2026-11-01 10:00:04');
-- Newest first; the position defaults to the first write's time in microseconds.
SELECT * FROM collect.edges('follows', 1);
SELECT * FROM collect.edges('follows', 2, 'in');
SELECT collect.edge_count('follows', 1), collect.edge_count('follows', 2, 'in');

-- Writes apply only if newer: an old removal arriving late changes nothing; a newer one does.
SELECT collect.edge_remove('follows', 1, 3, at => '2026-11-01 09:00:00') AS late_remove_changed;
SELECT collect.edge_state('follows', 1, 3);
SELECT collect.edge_remove('follows', 1, 3, at => '2026-11-01 11:00:00') AS remove_changed;
SELECT collect.edge_state('follows', 1, 3), collect.edge_exists('follows', 1, 3), collect.edge_state('follows', 3, 1) AS never;
-- A repeated write changes nothing; at the same instant removed beats normal.
SELECT collect.edge_remove('follows', 1, 3, at => '2026-11-01 11:00:00') AS repeated;
SELECT collect.edge_add('follows', 1, 3, at => '2026-11-01 11:00:00') AS tie_add;
SELECT collect.edge_state('follows', 1, 3);
-- Re-added later: it keeps its position.
SELECT collect.edge_add('follows', 1, 3, at => '2026-11-01 12:00:00');
SELECT * FROM collect.edges('follows', 1);
SELECT * FROM collect.edges('follows', 1, state => 'removed');
SELECT collect.edge_negate('follows', 5, 2, at => '2026-11-01 12:00:00');
SELECT collect.edge_count('follows', 2, 'in'), collect.edge_count('follows', 2, 'in', 'negative');

-- Archiving a node (a suspended account): every normal edge of it, both directions; unarchive
-- restores exactly those, with their positions.
SELECT collect.edge_add('follows', 6, 1, at => '2026-11-01 12:00:00');
SELECT collect.edge_archive('follows', 1, at => '2026-11-01 13:00:00') AS archived;
SELECT collect.edge_count('follows', 1), collect.edge_count('follows', 1, state => 'archived'),
       collect.edge_count('follows', 1, 'in', 'archived'), collect.edge_state('follows', 6, 1);
SELECT collect.edge_unarchive('follows', 1, at => '2026-11-01 14:00:00') AS restored;
SELECT * FROM collect.edges('follows', 1);
SELECT collect.edge_state('follows', 6, 1), collect.edge_count('follows', 1, state => 'archived') AS still_archived;

-- Cursor paging: each row's cursor continues after it; backward goes to the page before.
SELECT collect.edge_add_many('follows', 100, ARRAY(SELECT g FROM generate_series(1, 10) g),
                             ARRAY(SELECT g * 10 FROM generate_series(1, 10) g), at => '2026-11-02');
SELECT * FROM collect.edges('follows', 100, page_size => 4);
SELECT * FROM collect.edges('follows', 100, page_size => 4, cursor => 7);
SELECT * FROM collect.edges('follows', 100, page_size => 4, cursor => 3);
SELECT * FROM collect.edges('follows', 100, page_size => 4, cursor => 6, backward => true);

-- Set operations: who do 1 and 5 both follow, either follows, 100 but not 1.
SELECT collect.edge_add_many('follows', 5, '{3, 4, 7}', at => '2026-11-03');
SELECT collect.edge_intersect('follows', '{1, 5}') ORDER BY 1;
SELECT collect.edge_union('follows', '{1, 5}') ORDER BY 1;
SELECT collect.edge_difference('follows', 100, 1) ORDER BY 1;
SELECT collect.edge_intersect_count('follows', '{1, 5}'), collect.edge_union_count('follows', '{1, 5}'),
       collect.edge_difference_count('follows', 100, 1);
SELECT collect.edge_intersect('follows', '{2}', 'in');

-- Random graphs: set operations equal SQL's INTERSECT / UNION / EXCEPT, for both strategies
-- (merging similar lists, probing a short list into a long one).
SELECT collect.create_graph('random_graph');
SELECT setseed(0.25);
SELECT collect.edge_add_pairs('random_graph', ARRAY(SELECT 1 + (random() * 5)::int FROM generate_series(1, 3000)),
                             ARRAY(SELECT (random() * 2000)::int FROM generate_series(1, 3000)), at => '2026-11-01');
SELECT collect.edge_add_many('random_graph', 99, ARRAY(SELECT (random() * 2000)::int FROM generate_series(1, 5)), at => '2026-11-01');
SELECT collect.edge_remove_pairs('random_graph', ARRAY(SELECT 1 + (random() * 5)::int FROM generate_series(1, 500)),
                                ARRAY(SELECT (random() * 2000)::int FROM generate_series(1, 500)), at => '2026-11-02');
CREATE FUNCTION random_list(n bigint) RETURNS SETOF bigint LANGUAGE sql AS
    $$ SELECT destination FROM random_graph_out WHERE source = n AND state = 0 $$;
SELECT a, b,
       ARRAY(SELECT collect.edge_intersect('random_graph', ARRAY[a, b]) ORDER BY 1)
         = ARRAY(SELECT random_list(a) INTERSECT SELECT random_list(b) ORDER BY 1) AS intersect_ok,
       ARRAY(SELECT collect.edge_union('random_graph', ARRAY[a, b]) ORDER BY 1)
         = ARRAY(SELECT random_list(a) UNION SELECT random_list(b) ORDER BY 1) AS union_ok,
       ARRAY(SELECT collect.edge_difference('random_graph', a, b) ORDER BY 1)
         = ARRAY(SELECT random_list(a) EXCEPT SELECT random_list(b) ORDER BY 1) AS difference_ok
  FROM (VALUES (1, 2), (3, 99), (99, 4), (5, 6), (2, 2)) AS p(a, b);
SELECT ARRAY(SELECT collect.edge_intersect('random_graph', '{1, 2, 3}') ORDER BY 1)
         = ARRAY(SELECT random_list(1) INTERSECT SELECT random_list(2) INTERSECT SELECT random_list(3) ORDER BY 1) AS three_way_ok;
-- Counts equal the edges in each state.
SELECT bool_and(collect.edge_count('random_graph', s, 'out', st) = (SELECT count(*) FROM random_graph_out o
                 WHERE o.source = s AND o.state = collect._edge_state_code(st))) AS out_counts_exact,
       bool_and(collect.edge_count('random_graph', d, 'in', st) = (SELECT count(*) FROM random_graph_in i
                 WHERE i.destination = d AND i.state = collect._edge_state_code(st))) AS in_counts_exact
  FROM generate_series(1, 6) s, generate_series(0, 2000, 97) d, unnest('{normal, removed}'::text[]) st;
-- Forward and backward edges, counts, compact lists and their blocks all agree.
SELECT * FROM collect.check_graph('random_graph');

-- Long lists of sparse 64-bit ids: blocks split as they fill, empty blocks go, and set
-- operations read them exactly. Then every edge of the list leaves and comes back.
SELECT collect.create_graph('wide');
SELECT setseed(0.5);
CREATE TABLE wide_ids AS SELECT DISTINCT (random() * 9e18)::bigint AS id FROM generate_series(1, 40000);
SELECT collect.edge_add_many('wide', 1, ARRAY(SELECT id FROM wide_ids), at => '2026-11-01') = (SELECT count(*) FROM wide_ids) AS added;
SELECT collect.edge_add_many('wide', 2, ARRAY(SELECT id FROM wide_ids WHERE id % 3 = 0), at => '2026-11-01') > 0 AS added;
SELECT count(*) > 64 AS blocks_split, max(length(ids)) <= 1800 AS blocks_inline FROM wide_lists WHERE node = 1;
SELECT collect.edge_intersect_count('wide', '{1, 2}') = (SELECT count(*) FROM wide_ids WHERE id % 3 = 0) AS intersect_ok,
       collect.edge_difference_count('wide', 1, 2) = (SELECT count(*) FROM wide_ids WHERE id % 3 <> 0) AS difference_ok,
       ARRAY(SELECT collect.edge_intersect('wide', '{2, 1}') ORDER BY 1) = ARRAY(SELECT id FROM wide_ids WHERE id % 3 = 0 ORDER BY 1) AS rows_ok;
-- Single writes into full blocks, removals that empty blocks, archiving a node.
SELECT sum(collect.edge_remove('wide', 1, id, at => '2026-11-02')) AS removed FROM (SELECT id FROM wide_ids ORDER BY id LIMIT 3000) r;
SELECT sum(collect.edge_add('wide', 1, id + 1, at => '2026-11-02')) AS added FROM (SELECT id FROM wide_ids ORDER BY id DESC LIMIT 500) r;
SELECT collect.edge_archive('wide', 2, at => '2026-11-03') > 0 AS archived;
SELECT collect.edge_intersect_count('wide', '{1, 2}') AS intersect_archived;
SELECT * FROM collect.check_graph('wide');
SELECT collect.edge_remove_pairs('wide', array_fill(1::bigint, ARRAY[(SELECT count(*)::int FROM wide_ids)]), ARRAY(SELECT id FROM wide_ids),
                                 at => '2026-11-04') > 0 AS removed_all;
SELECT count(*) FILTER (WHERE length(ids) = 0 AND lo > -9223372036854775808) AS empty_blocks_kept,
       count(*) FILTER (WHERE length(ids) = 0) <= 64 AS only_first_blocks_empty FROM wide_lists WHERE node = 1;
SELECT collect.edge_unarchive('wide', 2, at => '2026-11-05') > 0 AS unarchived;
SELECT collect.edge_intersect_count('wide', '{1, 2}') AS intersect_after, collect.edge_count('wide', 1) AS left_of_1;
SELECT * FROM collect.check_graph('wide');
-- check_graph finds a block lost or damaged behind the graph's back (XX001 for a damaged one).
DELETE FROM wide_lists WHERE (node, direction, stripe, lo) = (SELECT node, direction, stripe, max(lo) FROM wide_lists
                                                              WHERE node = 1 AND direction = 'o' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 1);
SELECT part, mismatches > 0 AS found FROM collect.check_graph('wide') WHERE part = 'lists';
SELECT collect._graph_block_ids('\xff'::bytea);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_graph('wide');
DROP TABLE wide_ids;

-- A graph without compact lists: cheaper writes, set operations read the edge tables, and
-- the answers are the same.
SELECT collect.create_graph('plain', compact_lists => false);
SELECT collect.edge_add_pairs('plain', ARRAY(SELECT source FROM random_graph_out WHERE state = 0),
                              ARRAY(SELECT destination FROM random_graph_out WHERE state = 0), at => '2026-11-01') > 0 AS copied;
SELECT count(*) AS blocks FROM plain_lists;
SELECT a, b, ARRAY(SELECT collect.edge_intersect('plain', ARRAY[a, b]) ORDER BY 1)
               = ARRAY(SELECT collect.edge_intersect('random_graph', ARRAY[a, b]) ORDER BY 1) AS same_intersection,
             collect.edge_union_count('plain', ARRAY[a, b]) = collect.edge_union_count('random_graph', ARRAY[a, b]) AS same_union
  FROM (VALUES (1, 2), (3, 99), (5, 6)) AS p(a, b);
SELECT * FROM collect.check_graph('plain');
SELECT name, compact_lists FROM collect.graphs WHERE name IN ('plain', 'random_graph') ORDER BY name;
SELECT collect.create_graph('plain_null', compact_lists => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_graph('plain');
SELECT name, edges, nodes FROM collect.graphs ORDER BY name;

-- A writer is inlined into the statement that calls it, down to the one write function: no
-- SQL or PL/pgSQL function runs between the caller and the write.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT collect.edge_add('follows', 1, 2, 7, '2025-01-01 00:00:00+00');

-- Errors name the culprit.
SELECT collect.edge_add('no_such_graph', 1, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, 'sideways');
\echo :LAST_ERROR_SQLSTATE
-- Every read takes its direction from one parser: the same error, with its hint, for each.
SELECT collect.edge_count('follows', 1, 'sideways');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_intersect('follows', '{1, 2}', 'Out');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_union_count('follows', '{1, 2}', NULL);
\echo :LAST_ERROR_SQLSTATE
-- The generator behind the reads checks its own arguments too.
SELECT collect._graph_reads(NULL, 'follows', 'out');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, state => 'deleted');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, page_size => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_add('follows', NULL, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_add('follows', 1, 2, at => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_remove_pairs('follows', NULL, '{2}');
\echo :LAST_ERROR_SQLSTATE
-- A NULL is refused before the graph is looked up.
SELECT collect.edge_negate('no_such_graph', 1, 2, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, cursor => 424242);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect.edges('follows', 1, backward => true);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_add_pairs('follows', '{1, 2}', '{3}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.edge_intersect('follows', '{1, NULL}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_graph('follows');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_graph('Bad Name');
\echo :LAST_ERROR_SQLSTATE

SELECT collect.drop_graph('random_graph');
DROP FUNCTION random_list(bigint);
SELECT collect.drop_graph('follows');
SELECT count(*) AS graphs_left FROM collect.graphs;
