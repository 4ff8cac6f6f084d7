-- Archives against the heap table they came from, at 1M events over 100 days: the bytes each
-- takes, point reads by key and a one-day range read. Moving rows in (rows/s against a plain
-- DELETE ... INSERT into a cold table) and insert latency while it runs are in
-- archives_concurrency.sh.
\set runs 5
SET max_parallel_workers_per_gather = 0;

-- Request events as a web service logs them: a few kinds, paths and user agents repeated, an
-- account, a status, a duration and a small JSON payload.
CREATE TABLE arch_events (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    account_id integer NOT NULL,
    kind text NOT NULL,
    path text NOT NULL,
    status smallint NOT NULL,
    duration_ms integer NOT NULL,
    user_agent text NOT NULL,
    payload jsonb NOT NULL
);
INSERT INTO arch_events
SELECT g, timestamptz '2025-01-01' + g * interval '8.64 seconds', 1 + (g * 7919) % 5000,
       (ARRAY['page_view', 'api_call', 'login', 'search', 'download', 'upload', 'error', 'logout'])[1 + g % 8],
       '/api/v1/' || (ARRAY['users', 'orders', 'invoices', 'reports', 'files'])[1 + g % 5] || '/' || (g * 31) % 100000,
       (ARRAY[200, 200, 200, 200, 201, 204, 304, 404, 500])[1 + g % 9], (g * 37) % 2000,
       (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
              'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
              'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
              'curl/8.5.0', 'python-requests/2.31.0'])[1 + (g * 13) % 5],
       jsonb_build_object('ip', '10.' || (g % 256) || '.' || ((g / 256) % 256) || '.' || (g * 7 % 256),
                          'bytes', (g * 101) % 100000, 'cache', g % 3 = 0)
  FROM generate_series(1, 1000000::bigint) g;
CREATE INDEX ON arch_events (at);
CREATE INDEX ON arch_events (account_id, at);
VACUUM ANALYZE arch_events;

-- The same rows, archived (archives_concurrency.sh moves them out and back in again).
CREATE TABLE arch_cold (LIKE arch_events INCLUDING ALL);
INSERT INTO arch_cold SELECT * FROM arch_events;
SELECT collect.create_archive('arch_cold_archive', 'arch_cold', 'id', 'at');
SET client_min_messages = warning;
SELECT collect.archive('arch_cold_archive', '0 seconds');
RESET client_min_messages;
VACUUM ANALYZE arch_cold_archive_lumps;

SELECT pg_total_relation_size('arch_events') AS heap_bytes, stored_bytes AS archive_bytes
  FROM collect.archives WHERE name = 'arch_cold_archive' \gset
CALL bench.record('storage of 1M events (bytes)', 'heap table with its 3 indexes', true, :heap_bytes, 'bytes');
CALL bench.record('storage of 1M events (bytes)', 'collect archive: lumps and their position index', false, :archive_bytes, 'bytes');

-- 1,000 keys spread over the whole table.
CREATE TABLE arch_keys AS SELECT 1 + (g * 7919) % 1000000 AS k FROM generate_series(1, 1000) g;

CALL bench.compare('point reads: 1,000 events by key', 1000, :runs, ARRAY[
    ['heap: to_jsonb of the row by primary key', $q$
        SELECT sum(length((SELECT to_jsonb(e) FROM arch_events e WHERE e.id = k.k)::text)) FROM arch_keys k $q$],
    ['collect.archived(archive, key)', $q$
        SELECT sum(length(collect.archived('arch_cold_archive', k.k)::text)) FROM arch_keys k $q$]]);

-- One day: 10,000 events in time order.
CALL bench.compare('range read: one day (10,000 events)', 10000, :runs, ARRAY[
    ['heap: to_jsonb of the rows by the time index', $q$
        SELECT sum(length(r::text)) FROM (SELECT to_jsonb(e) AS r FROM arch_events e
                                           WHERE e.at >= '2025-02-10' AND e.at < '2025-02-11' ORDER BY e.at) s $q$],
    ['collect.archived_range(archive, from, to)', $q$
        SELECT sum(length(r::text)) FROM collect.archived_range('arch_cold_archive', '2025-02-10', '2025-02-11') r $q$]]);
