-- Made on the oldest release (CREATE EXTENSION pg_collect VERSION '0.1.0'), with its API: one
-- object of every capability, holding data. `questions` lists what the upgrade must keep: each
-- query's answer is recorded here, and after.sql asks again after ALTER EXTENSION … UPDATE.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET TimeZone = 'UTC';
-- The API of the release this runs on, found by what it has (0.3.0 renamed: see README,
-- Renames): psql variables name the objects that were renamed.
SELECT CASE WHEN to_regtype('collect.lump') IS NULL THEN 'collect.collection' ELSE 'collect.lump' END AS lump,
       CASE WHEN to_regproc('collect.create_latest') IS NULL THEN 'collect.track_latest' ELSE 'collect.create_latest' END AS create_latest
\gset

-- Stored values of pg_collect's types in a user's table.
CREATE TABLE stored (id int PRIMARY KEY, lump :lump, users collect.hll, latency collect.quantiles, pages collect.topk);
INSERT INTO stored
SELECT 1, :lump('[1, {"a": 1e400}, "x"]'),
       (SELECT collect.hll_agg(g) FROM generate_series(1, 5000) g),
       (SELECT collect.quantiles_agg(g::float8) FROM generate_series(1, 1000) g),
       (SELECT collect.topk_agg('page' || (g % 7), 3) FROM generate_series(1, 1000) g);

-- A collection, normalized once, with entries appended after.
SELECT collect.create_collection('feed', 'bigint', '[{"limit": 10}]', '{"daily": [{"limit": 10}]}');
SELECT collect.append('feed', k, jsonb_build_object('n', g)) FROM generate_series(1, 30) g, generate_series(1, 3) k;
SELECT collect.normalize('feed', 'daily');
SELECT collect.append('feed', 1, '{"n": "after"}');

-- A rollup with a tier, and one without raw rows.
CREATE TABLE events (at timestamptz NOT NULL, page text, user_id bigint, ms int);
SELECT collect.create_rollup('events_1m', 'events', 'at', '{page}',
    '{"total": "sum(ms)", "users": "distinct(user_id)", "latency": "quantiles(ms)", "top_users": "top(user_id, 3)"}');
SELECT collect.add_tier('events_1m', 'events_1h', '1 hour');
INSERT INTO events SELECT '2026-11-01'::timestamptz + g * interval '7 seconds', 'p' || (g % 3), g % 97, g % 500 FROM generate_series(1, 3000) g;
CREATE VIEW clicks AS SELECT NULL::timestamptz AS at, NULL::text AS page WHERE false;
SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{page}', keep_raw => false);
INSERT INTO clicks SELECT '2026-11-01'::timestamptz + g * interval '13 seconds', 'q' || (g % 2) FROM generate_series(1, 500) g;

-- Latest-version tracking.
CREATE TABLE files (id bigint PRIMARY KEY, name text);
CREATE TABLE versions (id bigserial PRIMARY KEY, file_id bigint NOT NULL, size bigint, created_at timestamptz NOT NULL);
CREATE INDEX ON versions (file_id, created_at);
INSERT INTO files SELECT g, 'f' || g FROM generate_series(1, 20) g;
SELECT :create_latest('files', 'versions', link => 'file_id', order_by => 'created_at', columns => '{size}');
INSERT INTO versions (file_id, size, created_at) SELECT 1 + g % 20, g, '2026-11-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 200) g;

-- A graph with removed and archived edges.
SELECT collect.create_graph('follows');
SELECT collect.edge_add('follows', 1, d) FROM generate_series(2, 40) d;
SELECT collect.edge_add('follows', s, 1) FROM generate_series(2, 10) s;
SELECT collect.edge_remove('follows', 1, 5);
SELECT collect.edge_archive('follows', 7);

-- An archive, with a schedule.
CREATE TABLE readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, value double precision, doc jsonb);
INSERT INTO readings SELECT g, '2026-10-01'::timestamptz + g * interval '1 hour', g / 3.0, jsonb_build_object('g', g) FROM generate_series(1, 500) g;
SELECT collect.create_archive('readings_archive', 'readings', 'id', 'at', lump_rows => 100);
SELECT collect.archive('readings_archive', now() - '2026-10-15'::timestamptz);
SELECT collect.schedule('feed', 'normalize daily', '1 day', start_at => '2026-11-25 03:00');

-- `query` is asked on this release; `query_now`, where the names changed since, after the update.
CREATE TABLE questions (what text PRIMARY KEY, query text NOT NULL, query_now text, answer text);
INSERT INTO questions (what, query) VALUES
 ('stored values', $$SELECT jsonb_build_array(collect.to_jsonb(lump), collect.distinct_count(users), collect.quantiles(latency, '{0.5, 0.99}'), (SELECT jsonb_agg(t) FROM collect.top(pages, 3) t))::text FROM stored$$),
 ('stored bytes', $$SELECT md5(string_agg(lump::text || users::text || latency::text || pages::text, ',')) FROM stored$$),
 ('collection reads', $$SELECT jsonb_agg(collect.read('feed', k) ORDER BY k)::text FROM generate_series(1, 3) k$$),
 ('rollup rows', $$SELECT md5(string_agg(format('%s %s %s %s %s %s', bucket, page, event_count, total, collect.distinct_count(users), collect.quantile(latency, 0.5)), ',' ORDER BY bucket, page)) FROM events_1m$$),
 ('tier rows', $$SELECT md5(string_agg(format('%s %s %s %s', bucket, page, event_count, total), ',' ORDER BY bucket, page)) FROM events_1h$$),
 ('rawless rows', $$SELECT string_agg(format('%s %s', page, event_count), ',' ORDER BY page) FROM (SELECT page, sum(event_count) AS event_count FROM clicks_1m GROUP BY page) s$$),
 ('rollup listing', $$SELECT jsonb_agg(jsonb_build_array(name, rollup_table, source, tiers, rows_in, rollup_rows) ORDER BY name)::text FROM collect.rollups$$),
 ('latest copies', $$SELECT string_agg(format('%s %s', id, latest_size), ',' ORDER BY id) FROM files$$),
 ('graph pages', $$SELECT jsonb_build_array((SELECT jsonb_agg(jsonb_build_array(node, pos, cursor)) FROM collect.edges('follows', 1, 'out', page_size => 50) AS e(node, pos, cursor)), collect.edge_count('follows', 1, 'out'), collect.edge_count('follows', 1, 'in'), collect.edge_state('follows', 1, 5), collect.edge_state('follows', 1, 7))::text$$),
 ('archived records', $$SELECT jsonb_build_array(collect.archived('readings_archive', 42::bigint), (SELECT count(*) FROM collect.archived_range('readings_archive', '2026-10-01', '2026-10-15')))::text$$),
 ('archive listing', $$SELECT jsonb_agg(jsonb_build_array(name, lumps, records))::text FROM collect.archives$$);
INSERT INTO questions (what, query, query_now) VALUES
 ('collection listing', $$SELECT jsonb_agg(jsonb_build_array(name, key_type, read, "normalize"))::text FROM collect.collections$$,
                        $$SELECT jsonb_agg(jsonb_build_array(name, key_type, read, normalization))::text FROM collect.collections$$),
 ('schedules', $$SELECT jsonb_agg(jsonb_build_array(object, job, every, next_run) ORDER BY object, job)::text FROM collect.jobs$$,
               $$SELECT jsonb_agg(jsonb_build_array(object, job, every, next_run) ORDER BY object, job)::text FROM collect.jobs WHERE scheduled$$);
-- A release that has the new names is asked by them.
UPDATE questions SET query = query_now WHERE query_now IS NOT NULL AND to_regtype('collect.lump') IS NOT NULL;
DO $$
DECLARE q record; a text;
BEGIN
    FOR q IN SELECT * FROM questions LOOP
        EXECUTE q.query INTO a;
        UPDATE questions SET answer = a WHERE what = q.what;
    END LOOP;
END $$;
SELECT what, answer IS NOT NULL AS answered FROM questions ORDER BY what;
