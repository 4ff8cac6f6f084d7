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

-- One append, one read: C functions from 0.5.0 that keep their statements for the session.
-- Every overload; a key of another type is read as its text, as before.
SELECT collect.create_collection('calls_text') IS NOT NULL AS created;
SELECT collect.create_collection('calls_num', 'bigint') IS NOT NULL AS created;
SELECT collect.create_collection('calls_id', 'uuid') IS NOT NULL AS created;
SELECT collect.append('calls_text', 7, '{"a": 1}') > 0 AS bigint_key,
       collect.append('calls_text', '7', '{"a": 2}') > 0 AS text_key,
       collect.append('calls_text', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{"a": 3}') > 0 AS uuid_key;
SELECT collect.read('calls_text', 7) AS by_bigint, collect.read('calls_text', '7') AS by_text,
       collect.read('calls_text', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) AS by_uuid;
SELECT collect.append('calls_num', ' 42', '{"n": 1}') > 0 AS text_key,
       collect.append('calls_num', 42, '{"n": 2}') > 0 AS bigint_key;
SELECT collect.read('calls_num', 42) AS by_bigint, collect.read('calls_num', '042') AS by_text;
SELECT collect.append('calls_id', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"u": 1}') > 0 AS text_key,
       collect.append('calls_id', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{"u": 2}') > 0 AS uuid_key;
SELECT collect.read('calls_id', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) AS by_uuid,
       collect.read('calls_id', '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}') AS by_text;
-- An append returns its entry's seq; a JSON null is an entry like any other.
SELECT collect.append('calls_num', 1, 'null') AS seq \gset
SELECT :seq = max(seq) AS returns_its_seq FROM calls_num_pending;
SELECT collect.read('calls_num', 1);
-- A collection dropped and made again under the same name, in the same session: its new
-- tables, with their new key type.
SELECT collect.drop_collection('calls_num');
SELECT collect.create_collection('calls_num', 'text') IS NOT NULL AS created;
SELECT collect.append('calls_num', 'k', '{"again": true}') > 0 AS appended;
SELECT collect.read('calls_num', 'k');
-- The same name in another schema: the search path decides, as it does for tables.
CREATE SCHEMA calls_other;
SELECT collect.create_collection('calls_other.calls_num', 'text') IS NOT NULL AS created;
SET search_path = calls_other, public;
SELECT collect.append('calls_num', 'k', '{"other": true}') > 0 AS appended;
SELECT collect.read('calls_num', 'k') AS first_on_the_path;
RESET search_path;
SELECT collect.read('calls_num', 'k') AS public_one, collect.read('calls_other.calls_num', 'k') AS other_one;
-- A key column changed by hand to another type still takes appends (the earlier path).
ALTER TABLE calls_text_pending ALTER COLUMN key TYPE varchar(64);
SELECT collect.append('calls_text', 8, '{"a": 4}') > 0 AS appended;
SELECT collect.read('calls_text', '8');
-- Each definition check is one statement: the verify function is inlined into it (no call of
-- collect._collection_verify in the plan, only the ownership checks it is made of).
EXPLAIN (VERBOSE, COSTS OFF)
SELECT d.name FROM collect.collection_defs d WHERE collect._collection_verify(d);
SELECT collect.drop_collection(c) FROM unnest(ARRAY['calls_text', 'calls_num', 'calls_id', 'calls_other.calls_num']) c;
DROP SCHEMA calls_other;
