-- After ALTER EXTENSION pg_collect UPDATE: every answer recorded by before.sql is the same,
-- and every capability still takes writes.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET TimeZone = 'UTC';
DO $$
DECLARE q record; a text; different text[] := '{}';
BEGIN
    FOR q IN SELECT * FROM questions ORDER BY what LOOP
        EXECUTE coalesce(q.query_now, q.query) INTO a;
        IF a IS DISTINCT FROM q.answer THEN
            different := different || format(E'%s:\n  before: %s\n  after:  %s', q.what, q.answer, a);
        END IF;
    END LOOP;
    IF cardinality(different) > 0 THEN
        RAISE EXCEPTION E'answers changed by the update:\n%', array_to_string(different, E'\n');
    END IF;
END $$;
-- New writes go on working, through the objects made before the update, and what was stored
-- before merges with what is made now.
DO $$
DECLARE
    minute_events bigint := (SELECT event_count FROM events_1m WHERE bucket = '2026-11-01 00:00' AND page = 'p0');
    clicks_before bigint := (SELECT sum(event_count) FROM clicks_1m);
    follows bigint := collect.edge_count('follows', 1, 'out');
BEGIN
    ASSERT collect.append('feed', 2, '{"n": "new"}') > 0;
    ASSERT collect.read('feed', 2) -> -1 = '{"n": "new"}', 'an append after the update is read';
    INSERT INTO events VALUES ('2026-11-01 00:00:01', 'p0', 1, 10);
    ASSERT collect.ingest('events_1m', '[{"at": "2026-11-01T00:00:02Z", "page": "p0", "user_id": 2, "ms": 20}]') = 1;
    ASSERT (SELECT event_count FROM events_1m WHERE bucket = '2026-11-01 00:00' AND page = 'p0') = minute_events + 2,
        'the rollup counts rows inserted and ingested after the update';
    INSERT INTO clicks VALUES ('2026-11-01 00:00:01', 'q0');
    ASSERT (SELECT sum(event_count) FROM clicks_1m) = clicks_before + 1, 'the rollup without raw rows counts on';
    INSERT INTO versions (file_id, size, created_at) VALUES (1, 999999, '2027-01-01');
    ASSERT (SELECT latest_size FROM files WHERE id = 1) = 999999, 'the latest copy follows a new version';
    PERFORM collect.edge_add('follows', 1, 1000);
    ASSERT collect.edge_count('follows', 1, 'out') = follows + 1, 'a new edge is counted';
    ASSERT collect.archive('readings_archive', now() - '2026-10-20'::timestamptz) = 120, 'archiving goes on';
    ASSERT collect.archived('readings_archive', 400::bigint) ->> 'id' = '400';
    ASSERT collect.archived('readings_archive', 42::bigint) ->> 'id' = '42', 'records archived by 0.1.0 still read';
    ASSERT (SELECT collect.distinct_count(collect.merge(users))
              FROM (SELECT users FROM stored UNION ALL SELECT collect.hll_agg(g) FROM generate_series(4000, 6000) g) s)
           BETWEEN 5900 AND 6100, 'a stored distinct count merges with a new one';
    -- A top-k sketch stored in format 1 (64 counters) merges with one made now (format 2).
    ASSERT (SELECT count FROM collect.top((SELECT collect.merge(t) FROM (SELECT pages AS t FROM stored
                                                                        UNION ALL SELECT collect.topk_agg('page1', 3)) s), 1)
             WHERE value = 'page1') = 144, 'a stored top-k merges with a new one';
END $$;
CALL collect.maintain();
SELECT count(*) > 0 AS jobs_listed FROM collect.jobs;
