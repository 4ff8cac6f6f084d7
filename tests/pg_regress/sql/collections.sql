-- Append-only collections with read-time reducers (Rocket Fuel's Blackbird).
-- A collection stores each append as one small row; a pipeline of reducers runs when a key
-- is read; normalization folds appended entries into a compressed base per key.
\set SHOW_CONTEXT never

-- Recipe 1, SegmentSet: keep the latest entry per segment, at most 1000 segments, newest first.
SELECT collect.create_collection('segment_sets', 'bigint',
    read => '[{"latest_by": "segment"}, {"limit": 1000}, {"order_by": "$seq", "desc": true}]');
SELECT collect.append('segment_sets', 42, '{"segment": "sports", "score": 0.2}');
SELECT collect.append('segment_sets', 42, '{"segment": "news", "score": 0.5}');
SELECT collect.append_many('segment_sets', 42,
    '[{"segment": "sports", "score": 0.9}, {"segment": "cars", "score": 0.1}]');
SELECT collect.read('segment_sets', 42);
SELECT * FROM collect.read_entries('segment_sets', 42);
SELECT collect.read('segment_sets', 7) AS never_written;

-- Appends are rows in segment_sets_pending; normalization folds them into segment_sets_base.
SELECT count(*) AS pending FROM segment_sets_pending;
SELECT s - 'ms' - 'bytes_before' - 'bytes_after' AS summary,
       (s->>'bytes_after')::int < (s->>'bytes_before')::int AS smaller
FROM collect.normalize('segment_sets') s;
SELECT count(*) AS pending_after FROM segment_sets_pending;
SELECT key, collect.entry_count(entries) FROM segment_sets_base;
-- Reads return the same as before the fold; new appends join the folded base.
SELECT collect.read('segment_sets', 42);
SELECT collect.append('segment_sets', 42, '{"segment": "news", "score": 0.7}') > 0 AS appended;
SELECT collect.read('segment_sets', 42);
SELECT key, jsonb_array_length(entries) FROM collect.read_many('segment_sets', ARRAY[42, 7, 42]);

-- Recipe 2, Transient Counters: increments and decrements per counter, counters untouched
-- for an hour expire, at most 1000 counters. Normalization levels apply the same steps.
SELECT collect.create_collection('counters', 'text',
    read => '[{"sum_by": "counter", "value": "delta", "drop_zero": true}, {"expire": "1 hour"}, {"limit": 1000}]',
    normalization => '{"daily": [{"sum_by": "counter", "value": "delta", "drop_zero": true}, {"expire": "1 hour"}, {"limit": 1000}]}');
SELECT collect.append_many('counters', 'page:home', '[
    {"counter": "views", "delta": 3}, {"counter": "likes", "delta": 1},
    {"counter": "views", "delta": 2}, {"counter": "likes", "delta": -1},
    {"counter": "shares", "delta": 1}]');
SELECT collect.read('counters', 'page:home');
-- Pretend the shares happened two hours ago: that counter has expired.
UPDATE counters_pending SET at = now() - interval '2 hours' WHERE entry->>'counter' = 'shares';
SELECT collect.read('counters', 'page:home');
SELECT s->'entries_in' AS entries_in, s->'entries_out' AS entries_out
FROM collect.normalize('counters', 'daily') s;
SELECT collect.read('counters', 'page:home');

-- Expiry reaches back by PostgreSQL's calendar, as now() - interval does: "1 year" keeps an
-- entry 362 days old (a year is not 360 days), and a normalization level that applies it
-- drops only what is more than a year old.
SELECT collect.create_collection('yearly', 'text',
    read => '[{"expire": "1 year", "at": "t"}]',
    normalization => '{"daily": [{"expire": "1 year", "at": "t"}]}');
SELECT collect.append_many('yearly', 'k', jsonb_build_array(
    jsonb_build_object('n', 1, 't', now() - interval '1 year' - interval '1 minute'),
    jsonb_build_object('n', 2, 't', now() - interval '1 year' + interval '1 minute'),
    jsonb_build_object('n', 3, 't', now() - interval '362 days'))) > 0 AS appended;
SELECT jsonb_path_query_array(collect.read('yearly', 'k'), '$[*].n') AS kept;
SELECT s->'entries_out' AS entries_out FROM collect.normalize('yearly', 'daily') s;
SELECT jsonb_path_query_array(collect.read('yearly', 'k'), '$[*].n') AS kept_after_normalizing;
-- An age that reaches back before the first representable time expires nothing.
SELECT collect.create_collection('forever', 'text', '[{"expire": "200000 years"}]');
SELECT collect.append('forever', 'k', '{"n": 1}') > 0 AS appended;
SELECT collect.read('forever', 'k');

-- The other steps.
SELECT collect.create_collection('scores', 'uuid',
    read => '[{"where": {"game": "chess", "score": {"gte": 10}}}, {"limit": 2, "by": "score"}, {"order_by": "score", "desc": true}]');
SELECT collect.append_many('scores', '8a3b0c6e-1d2f-4e5a-9b7c-0d1e2f3a4b5c', '[
    {"game": "chess", "score": 12}, {"game": "go", "score": 50}, {"game": "chess", "score": 9},
    {"game": "chess", "score": 30}, {"game": "chess", "score": 18}]');
SELECT collect.read('scores', '8a3b0c6e-1d2f-4e5a-9b7c-0d1e2f3a4b5c'::uuid);

-- A custom reducer: any function (jsonb) -> jsonb over the array of entries.
CREATE FUNCTION top_scorer(entries jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT coalesce(jsonb_agg(e ORDER BY (e->>'score')::numeric DESC), '[]') FROM (
        SELECT e FROM jsonb_array_elements(entries) e ORDER BY (e->>'score')::numeric DESC LIMIT 1) s
$$;
SELECT collect.create_collection('best', read => '[{"sql": "public.top_scorer"}]');
SELECT collect.append_many('best', 'k', '[{"score": 1}, {"score": 7}, {"score": 3}]');
SELECT collect.read('best', 'k');

-- What exists: collect.collections.
SELECT name, key_type, keys, pending_entries, base_bytes > 0 AS has_base
FROM collect.collections ORDER BY name;
