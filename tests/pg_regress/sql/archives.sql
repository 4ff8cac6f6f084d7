-- Archives (LiveJournal's data collection): a table's cold rows moved into gzipped JSON lumps,
-- each row one record (to_jsonb of it, numbers exact), with key and time positions indexed in
-- SQL; read back by key or time range, edited one lump at a time.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE arch_events (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    amount numeric,
    payload jsonb,
    tags text[],
    twice bigint GENERATED ALWAYS AS (id * 2) STORED
);
CREATE INDEX ON arch_events (at);
-- 30 days of arch_events, one every 5 minutes; some numbers no float holds.
INSERT INTO arch_events (id, at, kind, amount, payload, tags)
SELECT i, '2026-10-01'::timestamptz + i * interval '5 minutes', 'kind ' || (i % 5), i * 1.25,
       jsonb_build_object('n', i, 'exact', CASE WHEN i % 1000 = 0 THEN 1e400::text::numeric ELSE 0.1 END,
                          'deep', CASE WHEN i = 42 THEN (SELECT repeat('[', 200) || '1' || repeat(']', 200))::jsonb END),
       ARRAY['t' || (i % 3)]
  FROM generate_series(1, 8640) i;
CREATE TABLE arch_originals AS SELECT * FROM arch_events;

SELECT collect.create_archive('cold_events', 'arch_events', 'id', 'at', lump_rows => 1000);
\d cold_events_lumps

-- Everything before Oct 21 moves, in lumps of at most 1,000 rows.
SELECT collect.archive('cold_events', now() - '2026-10-21'::timestamptz) AS moved;
SELECT count(*) AS left_in_source, min(at) AS oldest_left FROM arch_events;
SELECT count(*) AS lumps, sum(records) AS records, max(records) AS largest, bool_and(cardinality(keys) = records) AS keys_per_record
  FROM cold_events_lumps;
-- Each lump is an ordinary collection: its records are the rows, in time order.
SELECT bool_and(collect.entry_count(lump) = records) AS counts_agree FROM cold_events_lumps;
-- A second call finds nothing more to move.
SELECT collect.archive('cold_events', now() - '2026-10-21'::timestamptz) AS moved_again;

-- Point reads: every archived record equals to_jsonb of its original row.
SELECT count(*) AS records_checked,
       count(*) FILTER (WHERE collect.archived('cold_events', o.id) IS DISTINCT FROM to_jsonb(o)) AS different
  FROM arch_originals o WHERE o.at < '2026-10-21';
SELECT collect.archived('cold_events', 42::bigint) -> 'payload' -> 'deep' = (SELECT payload -> 'deep' FROM arch_originals WHERE id = 42) AS deep_exact,
       collect.archived('cold_events', 1000::bigint) #>> '{payload,exact}' = 1e400::text AS big_exact;
-- An integer literal key works for a bigint key; a key not archived (still in the source, or
-- never there) is NULL.
SELECT collect.archived('cold_events', 7) ->> 'kind' AS kind_of_7,
       collect.archived('cold_events', 8000) AS not_archived, collect.archived('cold_events', -1) AS never;

-- Range reads: the same records as the same range of the original rows, in time order.
SELECT count(*) AS in_range,
       bool_and(a.record = to_jsonb(o)) AS equal
  FROM (SELECT r AS record, row_number() OVER () AS n FROM collect.archived_range('cold_events', '2026-10-05 12:00', '2026-10-07') r) a
  JOIN (SELECT o, row_number() OVER (ORDER BY o.at, o.id) AS n FROM arch_originals o WHERE o.at >= '2026-10-05 12:00' AND o.at < '2026-10-07') o
    USING (n);
SELECT count(*) FROM collect.archived_range('cold_events', '2026-10-20 23:00', '2026-10-22') AS up_to_the_cutoff;
SELECT count(*) FROM collect.archived_range('cold_events', '2026-11-01', '2026-11-02') AS after_the_archive;

-- Erasure: one record goes; only the lump that held it is rewritten.
SELECT lump_id AS lump_of_500 FROM cold_events_lumps WHERE 500 = ANY (keys) \gset
SELECT collect.archive_delete('cold_events', 500::bigint) AS erased, collect.archive_delete('cold_events', 500::bigint) AS again;
SELECT collect.archived('cold_events', 500::bigint) AS gone, collect.archived('cold_events', 501::bigint) ->> 'id' AS neighbour;
SELECT count(*) FILTER (WHERE lump_id = :lump_of_500) AS old_lump_left, sum(records) AS records FROM cold_events_lumps;

-- Unarchive: records of Oct 10 go back into the source, equal to the original rows (the
-- generated column is computed again).
SELECT collect.unarchive('cold_events', '2026-10-10', '2026-10-11') AS restored;
SELECT count(*) AS restored_rows, bool_and(e = o) AS equal_to_originals
  FROM arch_events e JOIN arch_originals o USING (id) WHERE e.at >= '2026-10-10' AND e.at < '2026-10-11';
SELECT count(*) FROM collect.archived_range('cold_events', '2026-10-10', '2026-10-11') AS still_archived;
SELECT sum(records) AS records_now FROM cold_events_lumps;
-- Archiving again moves them back.
SELECT collect.archive('cold_events', now() - '2026-10-21'::timestamptz) AS moved_back;

-- What it saves (the figures depend on the heap, so only their shape is shown here; `make
-- bench` measures them).
SELECT name, source, lumps, records, stored_bytes < heap_bytes_estimate AS smaller, ratio > 1 AS ratio_above_one FROM collect.archives;

-- In batches, committing after each lump, with progress NOTICEs (hidden here: they show rates).
SET client_min_messages = warning;
SELECT collect.unarchive('cold_events', '2026-10-01', '2026-11-01') AS all_back;
CALL collect.archive_in_batches('cold_events', now() - '2026-10-03'::timestamptz);
RESET client_min_messages;
SELECT count(*) AS lumps, sum(records) AS records FROM cold_events_lumps;

-- A key archived, written again to the source and archived again has one record, its newest:
-- a point read, a range read and an erasure all see that one.
SELECT collect.archived('cold_events', 7::bigint) ->> 'kind' AS kind_archived_first;
INSERT INTO arch_events (id, at, kind) VALUES (7, '2026-10-02 12:00', 'written again');
-- Meanwhile the live row is the source's: putting the archived one back fails and changes nothing.
SELECT collect.unarchive('cold_events', '2026-10-01', '2026-10-01 01:00');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS source_rows_of_the_first_hour FROM arch_events WHERE at < '2026-10-01 01:00';
SELECT collect.archive('cold_events', now() - '2026-10-03'::timestamptz) AS moved;
SELECT collect.archived('cold_events', 7::bigint) ->> 'kind' AS kind_now,
       (SELECT count(*) FROM collect.archived_range('cold_events', '2026-10-01', '2026-10-03') r WHERE r ->> 'id' = '7') AS records_of_7,
       (SELECT count(*) FROM cold_events_lumps WHERE 7 = ANY (keys)) AS lumps_holding_7,
       (SELECT sum(records) FROM cold_events_lumps) AS records;
SELECT collect.archive_delete('cold_events', 7::bigint) AS erased;

-- What the rows took in the heap and its indexes is estimated from the records and the index
-- definitions: it stays near the truth once archiving has emptied the source, whose indexes
-- keep their pages (a share of those per row read 50x and more).
CREATE TABLE arch_sized (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text, url text, payload jsonb);
CREATE INDEX ON arch_sized (at);
CREATE INDEX ON arch_sized (kind, at);
INSERT INTO arch_sized SELECT i, '2026-01-01'::timestamptz + i * interval '1 second', 'kind ' || (i % 7),
       'https://example.com/p/' || (i * 7919 % 100000), jsonb_build_object('n', i)
  FROM generate_series(1, 20000) i;
VACUUM ANALYZE arch_sized;
SELECT pg_total_relation_size('arch_sized') AS true_bytes \gset
SELECT collect.create_archive('sized_archive', 'arch_sized', 'id', 'at') IS NOT NULL AS created;
SELECT collect.archive('sized_archive', now() - '2026-02-01'::timestamptz) AS moved;
VACUUM arch_sized;
SELECT (SELECT count(*) FROM arch_sized) AS left_in_source,
       heap_bytes_estimate BETWEEN 0.8 * :true_bytes AND 1.2 * :true_bytes AS estimate_within_20_percent
  FROM collect.archives WHERE name = 'sized_archive';
SELECT collect.drop_archive('sized_archive');
DROP TABLE arch_sized;

-- Other key and time types: text keys, a timestamp without time zone.
CREATE TABLE arch_notes (code text PRIMARY KEY, written timestamp NOT NULL, body text);
INSERT INTO arch_notes VALUES ('a''b', '2026-01-01 10:00', 'one'), ('ü', '2026-01-02 10:00', 'two'), ('z', '2027-01-01', 'three');
SELECT collect.create_archive('cold_notes', 'arch_notes', 'code', 'written');
-- A fixed cutoff instead of an age: rows whose time is before it move.
SELECT collect.archive_before('cold_notes', '2026-06-01');
SELECT collect.archived('cold_notes', 'a''b'::text), collect.archived('cold_notes', 'ü'::text) ->> 'body' AS body;
SELECT collect.archived_range('cold_notes', '2026-01-01', '2026-01-02');
SELECT collect.drop_archive('cold_notes');
SELECT to_regclass('cold_notes_lumps') AS lumps_table_after_drop;

-- Range reads (a C function from 0.7.0) find each record's time without parsing the record
-- and parse only those in range; what that reader cannot read itself goes through
-- collect._archived_range, the SQL of earlier releases. Both give the same records in the same
-- order: lumps written by hand, with records without a time or with a JSON null there, equal
-- times within a lump and across lumps (in lump then place order), nesting deeper than the
-- reader follows, and a time that is a JSON number (left to SQL's ->> and cast).
SELECT l.lanname AS archived_range_language FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.oid = 'collect.archived_range(text, timestamptz, timestamptz)'::regprocedure;
CREATE TABLE arch_hand (id bigint PRIMARY KEY, at timestamptz NOT NULL);
SELECT collect.create_archive('cold_hand', 'arch_hand', 'id', 'at');
CREATE FUNCTION hand_lump(min_time timestamptz, max_time timestamptz, records jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO cold_hand_lumps (shard_key, min_key, max_key, min_time, max_time, records, heap_bytes, keys, lump)
    SELECT 0, 1, jsonb_array_length(records), min_time, max_time, jsonb_array_length(records), 100,
           ARRAY(SELECT generate_series(1, jsonb_array_length(records))), collect.lump(records)
$$;
SELECT hand_lump('2026-01-01 10:00', '2026-01-01 12:00', jsonb_build_array(
    '{"id": 1, "at": "2026-01-01T11:00:00+00:00"}'::jsonb, '{"id": 2}'::jsonb, '{"id": 3, "at": null}'::jsonb,
    '{"id": 4, "at": "2026-01-01T10:00:00+00:00"}'::jsonb, '{"id": 5, "at": "2026-01-01T11:00:00+00:00"}'::jsonb,
    jsonb_build_object('id', 6, 'at', '2026-01-01T12:00:00+00:00')));
SELECT hand_lump('2026-01-01 09:00', '2026-01-01 11:00', jsonb_build_array(
    '{"id": 7, "at": "2026-01-01T11:00:00+01:00"}'::jsonb, '{"id": 8, "at": "2026-01-01 09:30:00-01"}'::jsonb,
    jsonb_build_object('id', 9, 'at', '2026-01-01T10:30:00+00:00', 'deep', (SELECT repeat('[', 300) || repeat(']', 300))::jsonb)));
SELECT r ->> 'id' AS id, r ->> 'at' AS at FROM collect.archived_range('cold_hand', '2026-01-01 10:00', '2026-01-01 12:00') r;
SELECT (SELECT array_agg(r::text) FROM collect.archived_range('cold_hand', '-infinity', 'infinity') r)
     = (SELECT array_agg(r::text) FROM collect._archived_range(current_schema(), 'cold_hand', '-infinity', 'infinity') r) AS same_as_sql;
-- Lumps whose rows took more than a read holds in memory (64 MB) are read by SQL, which
-- spills to disk: the same again.
-- (At DEBUG1 the reader says why SQL reads a range.)
SET client_min_messages = debug1;
SELECT count(*) AS deep_record_left_to_sql FROM collect.archived_range('cold_hand', '2026-01-01 10:00', '2026-01-01 12:00');
UPDATE cold_hand_lumps SET heap_bytes = 100000000 WHERE min_time = '2026-01-01 09:00';
SELECT count(*) AS too_much_to_hold FROM collect.archived_range('cold_hand', '2026-01-01 10:00', '2026-01-01 12:00');
RESET client_min_messages;
SELECT (SELECT array_agg(r::text) FROM collect.archived_range('cold_hand', '-infinity', 'infinity') r)
     = (SELECT array_agg(r::text) FROM collect._archived_range(current_schema(), 'cold_hand', '-infinity', 'infinity') r) AS same_as_sql;
SELECT hand_lump('2026-01-01 10:00', '2026-01-01 10:00', '[{"id": 10, "at": 20260101}]');
SELECT r ->> 'id' AS id FROM collect.archived_range('cold_hand', '2026-01-01', '2026-01-01 11:00') r;
SELECT (SELECT array_agg(r::text) FROM collect.archived_range('cold_hand', '-infinity', 'infinity') r)
     = (SELECT array_agg(r::text) FROM collect._archived_range(current_schema(), 'cold_hand', '-infinity', 'infinity') r) AS same_as_sql;
-- A time that is no time is the cast's error, naming it, whichever reads it.
SELECT hand_lump('2026-01-02 10:00', '2026-01-02 10:00', '[{"id": 11, "at": "soon"}]');
SELECT count(*) FROM collect.archived_range('cold_hand', '2026-01-02', '2026-01-03');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_archive('cold_hand');
DROP FUNCTION hand_lump(timestamptz, timestamptz, jsonb);
DROP TABLE arch_hand;

-- What goes in comes out exactly: a column named like the generated statement's row alias
-- (m), json text as written, a JSON null apart from SQL NULL, -0 and float extremes, and
-- session settings that would change how values are written.
CREATE TABLE arch_exact (id bigint PRIMARY KEY, at timestamptz NOT NULL, m text, doc json, tree jsonb, f float8, r real,
                         n numeric, span interval, nn jsonb NOT NULL);
INSERT INTO arch_exact VALUES
    (1, '2026-01-01', 'kept', '{"b": 1,  "a": [1, 2], "a": 3}', 'null', '-0', '-0', 1e-40, '1 year 2 mons -3 days 04:05:06.789', 'null'),
    (2, '2026-01-02', NULL, NULL, NULL, 'NaN', 'Infinity', 'NaN', '-178000000 years', '{}'),
    (3, '2026-01-03', 'x', '  [ ]', '{"deep": [[[[1e400]]]]}', 3.141592653589793, 1.1754944e-38, 123456789012345678901234567890.123456789,
     '1 microsecond', '[1e400]');
CREATE TABLE arch_exact_before AS SELECT * FROM arch_exact;
SELECT collect.create_archive('exact_archive', 'arch_exact', 'id', 'at');
SET extra_float_digits = -15;
SET IntervalStyle = sql_standard;
SELECT collect.archive('exact_archive', now() - '2026-06-01'::timestamptz) AS archived;
RESET extra_float_digits;
RESET IntervalStyle;
SELECT collect.archived('exact_archive', 1::bigint) ->> 'm' AS column_m, collect.archived('exact_archive', 3::bigint) ->> 'f' AS pi;
SET IntervalStyle = iso_8601;
SELECT collect.unarchive('exact_archive', '2026-01-01', '2026-02-01') AS back;
RESET IntervalStyle;
-- Every value as it was: json compared as text, floats by their bits, NULLs by position.
SELECT b.id, a.m IS NOT DISTINCT FROM b.m AS m, a.doc::text IS NOT DISTINCT FROM b.doc::text AS doc,
       a.tree IS NOT DISTINCT FROM b.tree AS tree, (a.tree IS NULL) = (b.tree IS NULL) AS tree_null,
       a.f::text IS NOT DISTINCT FROM b.f::text AS f, a.r::text IS NOT DISTINCT FROM b.r::text AS r,
       a.n IS NOT DISTINCT FROM b.n AS n, a.span::text IS NOT DISTINCT FROM b.span::text AS span, a.nn = b.nn AS nn
  FROM arch_exact_before b LEFT JOIN arch_exact a USING (id) ORDER BY b.id;
SELECT collect.drop_archive('exact_archive');

-- Point reads by every kind of key: integers are found by their stored bits, other types by
-- their own equality (numeric 1.0 finds 1.00, as = does); a key of another type that casts to
-- the archive's implicitly is read as that type; one that does not is refused with a hint;
-- a NULL key is NULL.
CREATE TABLE arch_kinds (id int PRIMARY KEY, n numeric UNIQUE, u uuid UNIQUE, at timestamptz NOT NULL);
INSERT INTO arch_kinds SELECT i, i / 100.0, md5(i::text)::uuid, '2026-01-01'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 300) i;
CREATE TABLE arch_kinds_n (LIKE arch_kinds INCLUDING ALL);
INSERT INTO arch_kinds_n SELECT * FROM arch_kinds;
CREATE TABLE arch_kinds_u (LIKE arch_kinds INCLUDING ALL);
INSERT INTO arch_kinds_u SELECT * FROM arch_kinds;
CREATE TABLE arch_kinds_o AS SELECT * FROM arch_kinds;
SELECT collect.create_archive('kinds_by_int', 'arch_kinds', 'id', 'at', lump_rows => 64) IS NOT NULL AS by_int,
       collect.create_archive('kinds_by_numeric', 'arch_kinds_n', 'n', 'at', lump_rows => 64) IS NOT NULL AS by_numeric,
       collect.create_archive('kinds_by_uuid', 'arch_kinds_u', 'u', 'at', lump_rows => 64) IS NOT NULL AS by_uuid;
SELECT collect.archive_before('kinds_by_int', '2027-01-01') AS ints, collect.archive_before('kinds_by_numeric', '2027-01-01') AS numerics,
       collect.archive_before('kinds_by_uuid', '2027-01-01') AS uuids;
SELECT count(*) FILTER (WHERE collect.archived('kinds_by_int', o.id) IS DISTINCT FROM to_jsonb(o)) AS int_different,
       count(*) FILTER (WHERE collect.archived('kinds_by_int', o.id::smallint) IS DISTINCT FROM to_jsonb(o)) AS smallint_different,
       count(*) FILTER (WHERE collect.archived('kinds_by_numeric', o.n) IS DISTINCT FROM to_jsonb(o)) AS numeric_different,
       count(*) FILTER (WHERE collect.archived('kinds_by_uuid', o.u) IS DISTINCT FROM to_jsonb(o)) AS uuid_different
  FROM arch_kinds_o o;
SELECT collect.archived('kinds_by_numeric', 1.000) ->> 'id' AS numeric_1_000, collect.archived('kinds_by_numeric', 1) ->> 'id' AS integer_1,
       collect.archived('kinds_by_int', 301) AS past_the_last, collect.archived('kinds_by_int', 0) AS below_the_first,
       collect.archived('kinds_by_int', NULL::int) AS null_key, collect.archived('kinds_by_uuid', NULL::uuid) AS null_uuid;
SELECT collect.archived('kinds_by_int', 1::bigint);
SELECT collect.archived('kinds_by_uuid', 'not a uuid'::text);
SELECT collect.archived(NULL, 1);
-- A session keeps what it prepared per archive: an archive made again under the same name is
-- read as the new one, and a name means what the search path makes it mean at each call.
SELECT collect.archived('kinds_by_int', 1) ->> 'at' AS before_drop;
SELECT collect.drop_archive('kinds_by_int');
SELECT collect.archived('kinds_by_int', 1);
CREATE TABLE arch_kinds_again (LIKE arch_kinds INCLUDING ALL);
INSERT INTO arch_kinds_again SELECT id, n, u, at - interval '2 years' FROM arch_kinds_o WHERE id <= 5;
SELECT collect.create_archive('kinds_by_int', 'arch_kinds_again', 'id', 'at') IS NOT NULL AS made_again;
SELECT collect.archive_before('kinds_by_int', '2027-01-01') AS moved;
SELECT collect.archived('kinds_by_int', 1) ->> 'at' AS after_made_again, collect.archived('kinds_by_int', 6) AS not_in_the_new_one;
SELECT collect.drop_archive('kinds_by_int');
CREATE SCHEMA arch_other;
CREATE TABLE arch_other.arch_kinds (LIKE arch_kinds INCLUDING ALL);
INSERT INTO arch_other.arch_kinds SELECT id, n, u, at - interval '1 year' FROM arch_kinds_o WHERE id <= 2;
SELECT collect.create_archive('arch_other.kinds_by_int', 'arch_other.arch_kinds', 'id', 'at') IS NOT NULL AS made_again_elsewhere;
SELECT collect.archive_before('arch_other.kinds_by_int', '2027-01-01') AS moved;
SELECT collect.archived('kinds_by_int', 1) AS not_on_the_search_path;
SET search_path = arch_other, public;
SELECT collect.archived('kinds_by_int', 1) ->> 'at' AS found_on_the_search_path, collect.archived('kinds_by_int', 3) AS only_two_there;
RESET search_path;
SELECT collect.archived('arch_other.kinds_by_int', 2) ->> 'at' AS qualified;
SELECT collect.drop_archive('arch_other.kinds_by_int'), collect.drop_archive('kinds_by_numeric'), collect.drop_archive('kinds_by_uuid');
DROP SCHEMA arch_other CASCADE;
DROP TABLE arch_kinds, arch_kinds_n, arch_kinds_u, arch_kinds_o, arch_kinds_again;
