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
