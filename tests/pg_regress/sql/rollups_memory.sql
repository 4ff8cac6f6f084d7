-- A statement's rows rolled up in memory: every rollup row equals what the SQL aggregates make
-- of the same rows, for every metric kind and column type the in-memory path reads; what it
-- does not read, SQL rolls up (a DEBUG line says so), with the same result.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE shapes (at timestamptz, host text, code smallint, zone varchar(8), weight real, n integer, big bigint, cost float8, note text);
CREATE FUNCTION shape_rollup(name text, source regclass) RETURNS regclass LANGUAGE sql AS $$
    SELECT collect.create_rollup(name, source, 'at', '{host, code, zone, weight}',
        '{"n_sum": "sum(n)", "big_sum": "sum(big)", "code_sum": "sum(code)", "weight_sum": "sum(weight)", "cost_sum": "sum(cost)",
          "cost_min": "min(cost)", "cost_max": "max(cost)", "weight_min": "min(weight)", "code_min": "min(code)", "big_max": "max(big)",
          "users": "distinct(big, 11)", "notes": "distinct(note)", "codes": "distinct(code)", "p": "quantiles(n)", "pw": "quantiles(code)",
          "top_notes": "top(note, 3)", "top_n": "top(n, 2)"}')
$$;
SELECT shape_rollup('shapes_1m', 'shapes');
SELECT collect.add_tier('shapes_1m', 'shapes_1h', '1 hour');
-- What the SQL aggregates make of the rows of `t` at `granularity`: each group's rows in the
-- order a scan reads them, as in the statement (hash aggregation; -0 and 0 weights, which
-- group together, are compared as 0). Buckets are counted from the origin by arithmetic, not
-- by date_bin: PostgreSQL 16.2's date_bin puts a time before the origin that lies exactly on
-- a bin boundary one bin early (later minor releases fixed it; pg_collect bins it right).
CREATE FUNCTION expected_rows(t regclass, granularity interval) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL enable_sort = off;
    RETURN QUERY EXECUTE format($q$
        SELECT row(b, host, code, zone, weight + 0, count(*),
                   count(*) FILTER (WHERE b < date_bin(%2$L, now(), '2000-01-03+00') - %2$L::interval),
                   sum(n), sum(big), sum(code), sum(weight), sum(cost), min(cost), max(cost), min(weight), min(code), max(big),
                   collect.hll_agg(big, 11), collect.hll_agg(note), collect.hll_agg(code), collect.quantiles_agg(n), collect.quantiles_agg(code),
                   collect.topk_agg(note, 3), collect.topk_agg(n::text, 2))::text
          FROM (SELECT CASE WHEN isfinite(at) THEN '2000-01-03+00'::timestamptz
                              + floor(extract(epoch FROM at - '2000-01-03+00') / extract(epoch FROM %2$L::interval)) * %2$L::interval
                            ELSE at END AS b, *
                  FROM %1$s) s GROUP BY b, host, code, zone, weight$q$, t, granularity);
END $$;
CREATE FUNCTION rollup_rows(t regclass) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT row(bucket, host, code, zone, weight + 0, event_count, late_events, n_sum, big_sum, code_sum, weight_sum, cost_sum,
                   cost_min, cost_max, weight_min, code_min, big_max, users, notes, codes, p, pw, top_notes, top_n)::text FROM %s$q$, t);
END $$;
CREATE FUNCTION differing(rollup regclass, source regclass, granularity interval) RETURNS bigint LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM (SELECT * FROM rollup_rows(rollup) EXCEPT ALL SELECT * FROM expected_rows(source, granularity)) d)
         + (SELECT count(*) FROM (SELECT * FROM expected_rows(source, granularity) EXCEPT ALL SELECT * FROM rollup_rows(rollup)) d)
$$;
-- One statement of rows of every shape: NULLs in every column but the time, -0 and 0 and NaN
-- as a dimension, infinities and NaN in float metrics, the extremes of each integer type, text
-- that is empty, not ASCII, long enough to be stored compressed, or read from another table
-- stored out of line; times before 2000, and far from now.
CREATE TABLE notes (id integer, note text);
INSERT INTO notes SELECT i, (SELECT string_agg(md5((i * 1000 + k)::text), '') FROM generate_series(1, 200) k) FROM generate_series(1, 3) i;
SELECT bool_and(pg_column_size(note) < octet_length(note) OR pg_column_size(note) > 2000) AS long_notes FROM notes;
INSERT INTO shapes
SELECT CASE WHEN g % 50 = 0 THEN '1999-12-31 23:59:59.5+00' WHEN g % 97 = 0 THEN '0044-03-15 12:00:00+00 BC' ELSE '2026-11-04'::timestamptz + (g * 7919 % 7200) * interval '1 second' END,
       CASE WHEN g % 7 = 0 THEN NULL WHEN g % 11 = 0 THEN '' WHEN g % 13 = 0 THEN 'hôte-ü' ELSE 'h' || g % 3 END,
       CASE WHEN g % 19 = 0 THEN NULL WHEN g % 23 = 0 THEN 32767 WHEN g % 29 = 0 THEN -32768 ELSE g % 4 END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE 'z' || g % 2 END,
       CASE WHEN g % 31 = 0 THEN NULL WHEN g % 37 = 0 THEN 'NaN' WHEN g % 2 = 0 THEN '-0' ELSE '0' END::real,
       CASE WHEN g % 41 = 0 THEN NULL WHEN g % 43 = 0 THEN 2147483647 ELSE (g * 104729) % 5000 - 100 END,
       CASE WHEN g % 47 = 0 THEN NULL WHEN g % 53 = 0 THEN 9223372036854775807 WHEN g % 59 = 0 THEN -9223372036854775808 ELSE g * 31 % 400 END,
       CASE WHEN g % 61 = 0 THEN NULL WHEN g % 67 = 0 THEN 'Infinity' WHEN g % 71 = 0 THEN '-Infinity' WHEN g % 73 = 0 THEN 'NaN' ELSE (g % 89) * 0.1 END,
       CASE WHEN g % 79 = 0 THEN NULL WHEN g % 83 = 0 THEN repeat('long note ', 500) WHEN g % 101 = 0 THEN (SELECT note FROM notes WHERE id = 1 + g % 3) ELSE 'n' || g % 5 END
  FROM generate_series(1, 6000) g;
SELECT count(*) AS minute_rows, differing('shapes_1m', 'shapes', '1 minute') AS minute_rows_differing,
       differing('shapes_1h', 'shapes', '1 hour') AS hour_rows_differing FROM shapes_1m;
-- Metrics that SQL rolls up the same way: sum(int), min, max, distinct and quantiles are the
-- same whichever statement brings the rows; a second statement merges into the same rows.
INSERT INTO shapes SELECT '2026-11-04'::timestamptz + (g % 600) * interval '1 second', 'h1', 1, 'z1', 0, g, g, 1, 'n1' FROM generate_series(1, 1000) g;
SELECT sum(event_count) = (SELECT count(*) FROM shapes) AS every_row_counted,
       (SELECT n_sum FROM shapes_1m WHERE bucket = '2026-11-04 00:05' AND host = 'h1' AND code = 1 AND zone = 'z1' AND weight = 0)
     = (SELECT sum(n) FROM shapes WHERE at >= '2026-11-04 00:05' AND at < '2026-11-04 00:06' AND host = 'h1' AND code = 1 AND zone = 'z1' AND weight = 0) AS sums_merged
  FROM shapes_1m;

-- What the in-memory path leaves to SQL, with the same result: a time of infinity (binned
-- to itself), more groups than collect.rollup_work_mem holds, a dimension compared by a
-- nondeterministic collation, a column type it does not read (numeric).
TRUNCATE shapes;
SELECT collect.drop_rollup('shapes_1m');
SELECT shape_rollup('shapes_1m', 'shapes');
SET client_min_messages = debug1;
INSERT INTO shapes VALUES ('infinity', 'h1', 1, 'z1', 1, 1, 1, 1, 'n1'), ('2026-11-04 00:00', 'h1', 1, 'z1', 1, 2, 2, 2, 'n1');
SET collect.rollup_work_mem = '1MB';
INSERT INTO shapes SELECT '2026-11-04'::timestamptz + g * interval '1 minute', 'h' || g % 3, 1, 'z1', 1, g, g, g, 'n' || g FROM generate_series(1, 5000) g;
RESET collect.rollup_work_mem;
INSERT INTO shapes SELECT '2026-11-05'::timestamptz + g * interval '1 minute', 'h' || g % 3, 1, 'z1', 1, g, g, g, 'n' || g FROM generate_series(1, 5000) g;
RESET client_min_messages;
SELECT count(*) AS minute_rows, differing('shapes_1m', 'shapes', '1 minute') AS minute_rows_differing,
       (SELECT bucket FROM shapes_1m WHERE bucket = 'infinity') AS infinite_bucket FROM shapes_1m;
CREATE TABLE priced (at timestamptz, price numeric);
SELECT collect.create_rollup('priced_1m', 'priced', 'at', metrics => '{"total": "sum(price)"}');
SET client_min_messages = debug1;
INSERT INTO priced VALUES ('2026-11-04 00:00', 1.5), ('2026-11-04 00:00:30', 1e400);
RESET client_min_messages;
SELECT event_count, total = 1.5 + 1e400 AS exact FROM priced_1m;

-- Errors SQL raises are raised the same way, and nothing is rolled up; sums wider than their
-- column are not errors.
INSERT INTO shapes (at, host) VALUES ('2026-11-04 00:00', 'h1'), (NULL, 'h1');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO shapes (at, host, cost) VALUES ('2026-11-04 00:00', 'h1', 1e308), ('2026-11-04 00:00:01', 'h1', 1e308);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO shapes (at, host, big) VALUES ('2026-11-04 00:00', 'h8', 9223372036854775807), ('2026-11-04 00:00:01', 'h8', 1);
SELECT big_sum FROM shapes_1m WHERE host = 'h8';
INSERT INTO shapes (at, host, n) VALUES ('2026-11-04 00:00', 'h7', 2147483647), ('2026-11-04 00:00:01', 'h7', 2147483647);
SELECT n_sum FROM shapes_1m WHERE host = 'h7';
INSERT INTO shapes (at, host, weight) VALUES ('2026-11-04 00:00', 'h6', 'Infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT sum(event_count) = (SELECT count(*) FROM shapes) AS every_row_counted_once FROM shapes_1m;

-- A forged ingest trigger (no transition table, missing arguments, a version that is not a
-- number, another rollup's) is refused.
CREATE TABLE forged (at timestamptz);
CREATE TRIGGER forged AFTER INSERT ON forged FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('public', 'shapes_1m', '1', '{}');
INSERT INTO forged VALUES (now());
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER forged ON forged;
CREATE TRIGGER forged AFTER INSERT ON forged REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('public', 'shapes_1m');
INSERT INTO forged VALUES (now());
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER forged ON forged;
CREATE TRIGGER forged AFTER INSERT ON forged REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('public', 'shapes_1m', 'one', '{}');
INSERT INTO forged VALUES (now());
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER forged ON forged;
CREATE TRIGGER forged AFTER INSERT ON forged REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('public', 'shapes_1m', '1', '{}');
INSERT INTO forged VALUES (now());
\echo :LAST_ERROR_SQLSTATE

SELECT collect.drop_rollup('shapes_1m'), collect.drop_rollup('priced_1m');
DROP TABLE shapes, notes, priced, forged;
DROP FUNCTION shape_rollup, expected_rows, rollup_rows, differing;
