-- pg_collect walkthrough: one section per capability. `make run` runs it in a fresh database.

-- =====================================================================================
-- 1. Lumps: collect.collection, JSON entries stored gzip-compressed
--    (LiveJournal: "JSON as compromise record encoding; aggregate data into large gzipped
--    files"). Every other capability keeps its folded data in this type.
-- =====================================================================================

-- A day of page views, one JSON event per row.
CREATE TABLE page_views AS
SELECT g AS id,
       jsonb_build_object('at', '2026-11-01'::timestamptz + g * interval '9 s',
                          'user_id', g % 700, 'url', '/item/' || g % 90) AS event
FROM generate_series(1, 9600) g;

-- Pack each hour into one lump: one row per hour instead of 400.
CREATE TABLE page_view_lumps AS
SELECT date_trunc('hour', (event->>'at')::timestamptz) AS hour,
       collect.collection_agg(event ORDER BY id) AS events
FROM page_views GROUP BY 1;

SELECT hour, collect.entry_count(events) AS events, pg_column_size(events) AS lump_bytes
FROM page_view_lumps ORDER BY hour LIMIT 3;

-- Read a lump back as rows, or as one jsonb array.
SELECT e->>'url' AS url, count(*) AS views
FROM page_view_lumps, collect.entries(events) e
WHERE hour = '2026-11-01 05:00+00'
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;

-- Appending copies the compressed bytes and adds a new gzip member: nothing is inflated.
SELECT collect.entry_count(collect.collection_append(events, '{"url": "/late-arrival"}'))
FROM page_view_lumps ORDER BY hour LIMIT 1;

-- The text form is a JSON array.
SELECT collect.merge('[{"a": 1}]', '[{"b": 2}]') AS merged;

-- =====================================================================================
-- 2. Append-only collections with read-time reducers (Rocket Fuel's Blackbird).
--    Appends are small inserts; a pipeline of reducers runs at read time; normalization
--    folds what was appended into one compressed lump per key.
-- =====================================================================================

-- SegmentSet: the latest entry per segment, at most 1000 segments, newest first.
SELECT collect.create_collection('user_segments', 'bigint',
    read => '[{"latest_by": "segment"}, {"limit": 1000}, {"order_by": "$seq", "desc": true}]');
SELECT collect.append('user_segments', 1001, '{"segment": "sports", "score": 0.4}');
SELECT collect.append('user_segments', 1001, '{"segment": "travel", "score": 0.8}');
SELECT collect.append('user_segments', 1001, '{"segment": "sports", "score": 0.9}');
SELECT collect.read('user_segments', 1001);

-- Transient counters: increments per counter, counters idle for a day expire.
SELECT collect.create_collection('page_counters', 'text',
    read => '[{"sum_by": "counter", "value": "delta", "drop_zero": true}, {"expire": "1 day"}, {"limit": 1000}]');
SELECT collect.append_many('page_counters', '/home',
    '[{"counter": "views", "delta": 1}, {"counter": "views", "delta": 1}, {"counter": "likes", "delta": 1}]');
SELECT collect.read('page_counters', '/home');

-- The nightly pass folds pending entries into each key's lump; reads are unchanged.
SELECT collect.normalize('user_segments') - 'ms' AS nightly_pass;
SELECT collect.read('user_segments', 1001);
SELECT name, keys, pending_entries, base_bytes FROM collect.collections;
