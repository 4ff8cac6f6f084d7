-- pg_collect walkthrough: one section per capability. `make run` runs it in a fresh database.

-- =====================================================================================
-- 1. Lumps: collect.lump, JSON entries stored gzip-compressed
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
       collect.lump_agg(event ORDER BY id) AS events
FROM page_views GROUP BY 1;

SELECT hour, collect.entry_count(events) AS events, pg_column_size(events) AS lump_bytes
FROM page_view_lumps ORDER BY hour LIMIT 3;

-- Read a lump back as rows, or as one jsonb array.
SELECT e->>'url' AS url, count(*) AS views
FROM page_view_lumps, collect.entries(events) e
WHERE hour = '2026-11-01 05:00+00'
GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;

-- Appending copies the compressed bytes and adds a new gzip member: nothing is inflated.
SELECT collect.entry_count(collect.lump_append(events, '{"url": "/late-arrival"}'))
FROM page_view_lumps ORDER BY hour LIMIT 1;

-- The text form is a JSON array.
SELECT collect.merge('[{"a": 1}]'::collect.lump, '[{"b": 2}]') AS merged;

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

-- =====================================================================================
-- 3. Minute rollups at ingest with mergeable sketches (Druid, as Plumbr used it).
-- =====================================================================================

CREATE TABLE interactions (
    started timestamptz NOT NULL, app text, operation text, outcome text,
    user_id bigint, duration_ms integer, root_cause text
);
SELECT collect.create_rollup('interactions_1m', 'interactions', 'started', '{app, operation, outcome}',
    '{"total_ms": "sum(duration_ms)", "users": "distinct(user_id)",
      "latency": "quantiles(duration_ms)", "causes": "top(root_cause, 5)"}');
SELECT collect.add_tier('interactions_1m', 'interactions_1h', '1 hour');

-- A day of interactions; each statement is rolled up in one pass as it commits.
INSERT INTO interactions
SELECT '2026-11-02'::timestamptz + (g * 1.7) * interval '1 second',
       (ARRAY['shop', 'blog'])[1 + g % 2], (ARRAY['login', 'pay', 'search'])[1 + g % 3],
       CASE WHEN g % 19 = 0 THEN 'failed' ELSE 'ok' END,
       g % 4000, (g * 7919) % 3000, CASE WHEN g % 19 = 0 THEN 'timeout-' || g % 3 END
FROM generate_series(1, 50000) g;
SELECT name, rows_in, rollup_rows, rollup_ratio FROM collect.rollups;

-- Daily active users, from minute sketches merged at query time.
SELECT date_trunc('day', bucket) AS day, collect.distinct_count(collect.merge(users)) AS active_users
FROM interactions_1m GROUP BY 1 ORDER BY 1;
-- Top root causes of failures.
SELECT * FROM collect.top((SELECT collect.merge(causes) FROM interactions_1h WHERE outcome = 'failed'), 3);
-- Latency percentiles of 'pay', from the hour tier.
SELECT collect.quantiles(collect.merge(latency), '{0.5, 0.95, 0.99}') AS pay_p50_p95_p99
FROM interactions_1h WHERE operation = 'pay';

-- =====================================================================================
-- 4. The latest version copied onto its parent (a cloud file system's snapshot query:
--    "denormalize the information about the latest entry on to the file table itself").
-- =====================================================================================

CREATE TABLE folders (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE files (id bigint PRIMARY KEY, folder_id bigint NOT NULL REFERENCES folders, name text NOT NULL);
CREATE TABLE versions (
    id bigserial PRIMARY KEY,
    file_id bigint NOT NULL REFERENCES files,
    created_at timestamptz NOT NULL,
    size bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false
);
CREATE INDEX ON versions (file_id, created_at);
INSERT INTO folders VALUES (1, 'docs'), (2, 'photos');
INSERT INTO files SELECT g, 1 + g % 2, 'file' || g FROM generate_series(1, 1000) g;
-- Versions that existed before the copy was kept.
INSERT INTO versions (file_id, created_at, size)
SELECT 1 + g % 1000, '2026-01-01'::timestamptz + g * interval '1 minute', g FROM generate_series(1, 10000) g;

SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size, created_at}', filter => 'NOT deleted');
CALL collect.backfill_latest('files', 250);

-- New versions, an old one arriving late, a deleted one: the copies follow.
INSERT INTO versions (file_id, created_at, size) VALUES (2, '2026-12-01', 222222), (2, '2025-01-01', 1);
UPDATE versions SET deleted = true WHERE file_id = 4 AND created_at = (SELECT max(created_at) FROM versions WHERE file_id = 4);
SELECT id, name, latest_size, latest_created_at FROM files WHERE id IN (2, 4) ORDER BY id;

-- The snapshot of a folder reads files alone.
SELECT count(*) AS files_in_docs, sum(latest_size) AS bytes FROM files WHERE folder_id = 1;
SELECT count(*) AS wrong_copies FROM collect.check_latest('files');
SELECT parent, child, parent_columns, filter, backfill FROM collect.latest;

-- 5. Edge lists (FlockDB): who follows whom, with states, cursor paging and exact set operations.
SELECT collect.create_graph('follows');
-- Users 1 and 2 each follow 100,000 accounts, half of them the same ones.
SELECT collect.edge_add_many('follows', 1, ARRAY(SELECT g FROM generate_series(1, 100000) g)) AS followed_by_1;
SELECT collect.edge_add_many('follows', 2, ARRAY(SELECT g FROM generate_series(50001, 150000) g)) AS followed_by_2;
SELECT collect.edge_remove('follows', 1, 60000) AS unfollowed;
SELECT collect.edge_count('follows', 1) AS follows_of_1, collect.edge_state('follows', 1, 60000) AS state;
SELECT collect.edge_intersect_count('follows', '{1, 2}') AS followed_by_both;
SELECT * FROM collect.edges('follows', 60001, 'in');
SELECT * FROM collect.check_graph('follows');
