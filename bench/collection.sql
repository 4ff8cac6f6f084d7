-- collect.lump against jsonb arrays holding the same entries.
\set runs 7
SET max_parallel_workers_per_gather = 0;

-- Realistic web events: a timestamp, ids, an event name, a URL, a user agent, numbers.
CREATE TABLE bench_events AS
SELECT g AS id, g % 100 AS lump_no,
       jsonb_build_object(
           'ts', '2026-11-01 00:00:00+00'::timestamptz + g * interval '173 ms',
           'user_id', (g * 7919) % 50000,
           'session', md5((g / 20)::text),
           'event', (ARRAY['page_view', 'click', 'add_to_cart', 'search', 'purchase'])[1 + g % 5],
           'url', '/products/' || (g * 31) % 2000 || '?ref=home',
           'ua', (ARRAY['Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0',
                        'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) Safari/605.1.15',
                        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0'])[1 + g % 3],
           'duration_ms', (g * 13) % 5000,
           'price', round(((g * 17) % 10000) / 100.0, 2)) AS body
FROM generate_series(1, 100000) g;
ANALYZE bench_events;

-- Size: N entries as one value, stored in a table (after TOAST, pglz for jsonb by default).
CREATE TABLE size_lump (n int, c collect.lump);
CREATE TABLE size_jsonb (n int, j jsonb);
INSERT INTO size_lump SELECT n, (SELECT collect.lump_agg(body ORDER BY id) FROM bench_events WHERE id <= n)
FROM unnest(ARRAY[100, 1000, 10000]) n;
INSERT INTO size_jsonb SELECT n, (SELECT jsonb_agg(body ORDER BY id) FROM bench_events WHERE id <= n)
FROM unnest(ARRAY[100, 1000, 10000]) n;
SELECT format('CALL bench.record(%L, %L, true, %s, %L); CALL bench.record(%L, %L, false, %s, %L);',
              'stored size, ' || j.n || ' events', 'jsonb array column', pg_column_size(j.j), 'bytes',
              'stored size, ' || j.n || ' events', 'collect.lump column', pg_column_size(l.c), 'bytes')
FROM size_jsonb j JOIN size_lump l USING (n) ORDER BY n \gexec

-- Encode: 100,000 rows into 100 values of 1,000 entries.
CALL bench.compare('encode 100k entries into 100 values', 100000, :runs, ARRAY[
    ['jsonb_agg', 'SELECT sum(pg_column_size(v)) FROM (SELECT jsonb_agg(body) AS v FROM bench_events GROUP BY lump_no) s'],
    ['collect.lump_agg', 'SELECT sum(pg_column_size(v)) FROM (SELECT collect.lump_agg(body) AS v FROM bench_events GROUP BY lump_no) s']]);

-- Decode: the same 100 stored values back into 100,000 rows.
CREATE TABLE stored_lumps AS SELECT lump_no, collect.lump_agg(body ORDER BY id) AS c FROM bench_events GROUP BY lump_no;
CREATE TABLE stored_jsonb AS SELECT lump_no, jsonb_agg(body ORDER BY id) AS j FROM bench_events GROUP BY lump_no;
CALL bench.compare('decode 100 stored values into 100k rows', 100000, :runs, ARRAY[
    ['jsonb_array_elements', 'SELECT count(e->>''event'') FROM stored_jsonb, jsonb_array_elements(j) e'],
    ['collect.entries', 'SELECT count(e->>''event'') FROM stored_lumps, collect.entries(c) e']]);

-- Counting entries of large stored values: the lump's header vs the whole jsonb.
CALL bench.compare('count entries of 100 stored values', 100, :runs, ARRAY[
    ['jsonb_array_length', 'SELECT sum(jsonb_array_length(j)) FROM stored_jsonb'],
    ['collect.entry_count', 'SELECT sum(collect.entry_count(c)) FROM stored_lumps']]);

-- Appending one entry to a stored 1,000-entry value.
CALL bench.compare('append one entry to 100 values of 1000', 100, :runs, ARRAY[
    ['jsonb ||', 'SELECT sum(pg_column_size(j || ''{"event": "x"}''::jsonb)) FROM stored_jsonb'],
    ['collect.lump ||', 'SELECT sum(pg_column_size(collect.lump_append(c, ''{"event": "x"}''))) FROM stored_lumps']]);
