-- collect.lump: an immutable, ordered lump of JSON entries, stored gzip-compressed.
-- Every later capability keeps its folded data in this type.
\set SHOW_CONTEXT never

-- Its text form is a JSON array; entries keep their order and are stored in jsonb's
-- canonical form (keys sorted, duplicates resolved, numbers exact).
SELECT '[{"b": 2, "a": 1}, 2, "x", null, [1, 2], {"a": 1, "a": 3}]'::collect.lump;
SELECT '[]'::collect.lump AS empty;
SELECT '[123456789012345678901234567890.000001, 1e3, -0.5]'::collect.lump AS exact_numbers;

-- Building one from jsonb: an array gives its elements, anything else is one entry.
-- (Give the argument a type: Postgres reads collect.lump('...') with an untyped
-- literal as a cast from the type's text form, which must be an array.)
SELECT collect.lump('[{"event": "click"}, {"event": "view"}]'::jsonb);
SELECT collect.lump('{"event": "click"}'::jsonb);
SELECT collect.lump('{"event": "click"}');
\echo :LAST_ERROR_SQLSTATE
SELECT '[1, 2]'::jsonb::collect.lump AS cast_from_jsonb;

-- Reading it back.
SELECT collect.to_jsonb('[{"a": 1}, {"a": 2}]');
SELECT '[{"a": 1}, {"a": 2}]'::collect.lump::jsonb -> 1 AS second_entry;
SELECT e, e->>'a' AS a FROM collect.entries('[{"a": 1}, {"a": 2}, 3]') AS e;
SELECT collect.entry_count('[1, 2, 3]'), collect.entry_count('[]');

-- Appending (one entry, or each element of an array) and merging keep order.
-- The || operator lives in schema collect: name it with OPERATOR(), or put collect on the
-- search_path.
SELECT collect.lump_append('[1, 2]', '3') AS one_more;
SELECT '[1, 2]'::collect.lump OPERATOR(collect.||) '[3, 4]'::jsonb AS two_more;
SET search_path = public, collect;
SELECT '[1, 2]'::collection || '[[3, 4]]'::jsonb AS an_array_entry;
RESET search_path;
SELECT collect.merge('[1, 2]'::collect.lump, '[3]') AS merged, collect.merge('[]'::collect.lump, '[]') AS both_empty;

-- lump_agg gathers rows into one lump; like jsonb_agg it keeps SQL NULLs as JSON
-- null and returns NULL over no rows.
CREATE TABLE events (id int, body jsonb);
INSERT INTO events VALUES (1, '{"k": "a"}'), (2, NULL), (3, '{"k": "b"}');
SELECT collect.lump_agg(body ORDER BY id) FROM events;
SELECT collect.lump_agg(body ORDER BY id)::jsonb = jsonb_agg(body ORDER BY id) AS same_as_jsonb_agg
FROM events;
SELECT collect.lump_agg(body) IS NULL AS null_over_no_rows FROM events WHERE false;

-- A collection column: stored compressed, read without decompressing for its count.
CREATE TABLE lumps (day date PRIMARY KEY, entries collect.lump);
INSERT INTO lumps
SELECT d::date, collect.lump_agg(jsonb_build_object('user', u, 'action', 'view', 'day', d::date) ORDER BY u)
FROM generate_series('2026-01-01'::date, '2026-01-03', '1 day') d, generate_series(1, 500) u
GROUP BY d;
SELECT day, collect.entry_count(entries), pg_column_size(entries) < 8000 AS compressed
FROM lumps ORDER BY day;
SELECT count(*) AS views_of_user_7
FROM lumps, collect.entries(entries) e
WHERE e->>'user' = '7';

-- NULL in, NULL out (the functions are strict).
SELECT collect.entry_count(NULL) IS NULL AS strict, collect.lump(NULL) IS NULL AS strict_too;

-- Bad text input is an error with SQLSTATE 22P02 that shows the culprit.
SELECT 'not json'::collect.lump;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"a": 1}'::collect.lump;
\echo :LAST_ERROR_SQLSTATE
SELECT '[{"a": 1}'::collect.lump;
\echo :LAST_ERROR_SQLSTATE
SELECT '[1, 2]]'::collect.lump;
\echo :LAST_ERROR_SQLSTATE

-- Parallel aggregation: partial lumps are built in workers and combined.
CREATE TABLE many AS SELECT g AS id, jsonb_build_object('id', g) AS body FROM generate_series(1, 100000) g;
ANALYZE many;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT collect.lump_agg(body) FROM many;
CREATE TABLE parallel_result AS SELECT collect.lump_agg(body) AS c FROM many;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial_result AS SELECT collect.lump_agg(body) AS c FROM many;
RESET max_parallel_workers_per_gather;
-- Same entries (a parallel aggregate without ORDER BY has no fixed order).
SELECT collect.entry_count(p.c) AS parallel_count, collect.entry_count(s.c) AS serial_count,
       (SELECT array_agg(e ORDER BY (e->>'id')::int) FROM collect.entries(p.c) e)
     = (SELECT array_agg(e ORDER BY (e->>'id')::int) FROM collect.entries(s.c) e) AS same_entries
FROM parallel_result p, serial_result s;
