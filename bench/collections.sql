-- Append-only collections against read-modify-write of a jsonb array and plain SQL reads.
\set runs 5
SET max_parallel_workers_per_gather = 0;

CREATE FUNCTION bench_event(i int) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('segment', 'seg-' || (i * 7919) % 3000, 'score', round(((i * 31) % 1000) / 1000.0, 3),
                              'source', (ARRAY['web', 'app', 'email'])[1 + i % 3], 'ts', 1793491200 + i)
$$;

-- WAL per append: a key holding 10 entries and one holding 10,000 (both normalized), against
-- UPDATE ... SET doc = doc || entry on jsonb arrays of the same sizes.
SELECT collect.create_collection('wal_bench');
SELECT collect.append_many('wal_bench', 'small', (SELECT jsonb_agg(bench_event(g)) FROM generate_series(1, 10) g));
SELECT collect.append_many('wal_bench', 'large', (SELECT jsonb_agg(bench_event(g)) FROM generate_series(1, 10000) g));
SELECT collect.normalize('wal_bench') IS NOT NULL;
CREATE TABLE docs (id text PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO docs SELECT 'small', jsonb_agg(bench_event(g)) FROM generate_series(1, 10) g;
INSERT INTO docs SELECT 'large', jsonb_agg(bench_event(g)) FROM generate_series(1, 10000) g;
CHECKPOINT;
CALL bench.wal_per_statement('WAL per append, key of 10 entries', 'UPDATE jsonb doc = doc || entry', true,
    'UPDATE docs SET doc = doc || bench_event($1) WHERE id = ''small''', 200, :runs);
CALL bench.wal_per_statement('WAL per append, key of 10 entries', 'collect.append', false,
    'SELECT collect.append(''wal_bench'', ''small'', bench_event($1))', 200, :runs);
CALL bench.wal_per_statement('WAL per append, key of 10,000 entries', 'UPDATE jsonb doc = doc || entry', true,
    'UPDATE docs SET doc = doc || bench_event($1) WHERE id = ''large''', 50, :runs);
CALL bench.wal_per_statement('WAL per append, key of 10,000 entries', 'collect.append', false,
    'SELECT collect.append(''wal_bench'', ''large'', bench_event($1))', 200, :runs);

-- Reading a SegmentSet key: 10,000 appends over 3,000 segments, normalized, then 100 more
-- pending; against the best plain SQL over an indexed entries table holding the same rows.
SELECT collect.create_collection('segsets', 'bigint', '[{"latest_by": "segment"}, {"limit": 1000}]');
SELECT collect.append_many('segsets', 1, (SELECT jsonb_agg(bench_event(g) ORDER BY g) FROM generate_series(1, 10000) g));
SELECT collect.normalize('segsets') IS NOT NULL;
SELECT collect.append_many('segsets', 1, (SELECT jsonb_agg(bench_event(g) ORDER BY g) FROM generate_series(10001, 10100) g));
CREATE TABLE seg_entries (key bigint, seq bigint, segment text, entry jsonb, PRIMARY KEY (key, seq));
INSERT INTO seg_entries SELECT 1, g, bench_event(g)->>'segment', bench_event(g) FROM generate_series(1, 10100) g;
CREATE INDEX ON seg_entries (key, segment, seq DESC);
ANALYZE seg_entries;
CREATE FUNCTION plain_segment_set(k bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_agg(entry ORDER BY seq) FROM (
        SELECT entry, seq FROM (
            SELECT DISTINCT ON (segment) entry, seq FROM seg_entries WHERE key = k ORDER BY segment, seq DESC) latest
        ORDER BY seq DESC LIMIT 1000) newest
$$;
SELECT plain_segment_set(1) = collect.read('segsets', 1) AS same_answer \gset
\if :same_answer
\else
  \echo 'plain SQL and collect.read disagree'
  \quit
\endif
CALL bench.compare('read a SegmentSet key (10,000 appended, 100 pending), 20 reads', 20, :runs, ARRAY[
    ['DISTINCT ON + ORDER BY LIMIT on an indexed table', 'SELECT plain_segment_set(1) FROM generate_series(1, 20)'],
    ['collect.read', 'SELECT collect.read(''segsets'', 1) FROM generate_series(1, 20)']]);

-- Normalization throughput: 5,000 keys with 10 pending entries each, folded into bases;
-- against a set-based plain SQL fold of the same rows into jsonb arrays.
SELECT collect.create_collection('fold_bench', 'bigint');
CREATE TABLE fold_source AS SELECT k, bench_event(k * 10 + p) AS e FROM generate_series(1, 5000) k, generate_series(1, 10) p;
CREATE TABLE plain_pending (key bigint, seq bigserial, entry jsonb, PRIMARY KEY (key, seq));
CREATE TABLE plain_base (key bigint PRIMARY KEY, entries jsonb);
CREATE PROCEDURE bench_fold_reset() LANGUAGE sql AS $$
    TRUNCATE fold_bench_pending, fold_bench_base, plain_pending, plain_base;
    INSERT INTO fold_bench_pending (key, entry) SELECT k, e FROM fold_source;
    INSERT INTO plain_pending (key, entry) SELECT k, e FROM fold_source;
$$;
CREATE PROCEDURE bench_fold(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
BEGIN
    CALL bench_fold_reset();
    COMMIT;
    started := clock_timestamp();
    IF variant = 'plain' THEN
        WITH d AS (DELETE FROM plain_pending RETURNING *)
        INSERT INTO plain_base
        SELECT key, jsonb_agg(entry ORDER BY seq) FROM d GROUP BY key
        ON CONFLICT (key) DO UPDATE SET entries = plain_base.entries || excluded.entries;
    ELSE
        PERFORM collect.normalize('fold_bench');
    END IF;
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('normalize 5,000 keys x 10 entries', CASE variant WHEN 'plain' THEN 'plain SQL fold into jsonb arrays' ELSE 'collect.normalize' END,
            variant = 'plain', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 50000);
    COMMIT;
END $$;
CALL bench_fold('plain', 0);
CALL bench_fold('ours', 0);
DELETE FROM bench.results WHERE run = 0;
CALL bench_fold('plain', 1);
CALL bench_fold('ours', 1);
CALL bench_fold('plain', 2);
CALL bench_fold('ours', 2);
CALL bench_fold('plain', 3);
CALL bench_fold('ours', 3);

-- One call at a time from one session (a loop of single calls, as an application's requests
-- are): reading a key of 52 entries (50 normalized, 2 pending), against jsonb_agg over its rows
-- in a plain table; appending one entry, against a plain INSERT into a table of the same shape.
SELECT collect.create_collection('calls', 'bigint');
SELECT collect.append_many('calls', k, (SELECT jsonb_agg(bench_event(k * 100 + g) ORDER BY g) FROM generate_series(1, 50) g))
  FROM generate_series(1, 1000) k;
SELECT collect.normalize('calls', all_keys => true) IS NOT NULL;
SELECT collect.append_many('calls', k, jsonb_build_array(bench_event(k * 100 + 51), bench_event(k * 100 + 52)))
  FROM generate_series(1, 1000) k;
CREATE TABLE plain_calls (key bigint NOT NULL, txn xid8 NOT NULL DEFAULT pg_current_xact_id(), seq bigserial,
                          at timestamptz NOT NULL DEFAULT now(), entry jsonb NOT NULL, PRIMARY KEY (key, seq));
INSERT INTO plain_calls (key, entry) SELECT k, bench_event(k * 100 + g) FROM generate_series(1, 1000) k, generate_series(1, 52) g
  ORDER BY k, g;
VACUUM ANALYZE calls_pending, calls_base, plain_calls;
SELECT bool_and(collect.read('calls', k) = (SELECT jsonb_agg(entry ORDER BY seq) FROM plain_calls WHERE key = k)) AS same_answer
  FROM generate_series(1, 1000) k \gset
\if :same_answer
\else
  \echo 'plain SQL and collect.read disagree'
  \quit
\endif
CALL bench.compare('read one key of 52 entries, 2,000 single calls', 2000, :runs, ARRAY[
    ['jsonb_agg over its rows in a plain table',
     'DO $b$ BEGIN FOR i IN 1 .. 2000 LOOP PERFORM (SELECT jsonb_agg(entry ORDER BY seq) FROM plain_calls WHERE key = i % 1000 + 1); END LOOP; END $b$'],
    ['collect.read',
     'DO $b$ BEGIN FOR i IN 1 .. 2000 LOOP PERFORM collect.read(''calls'', i % 1000 + 1); END LOOP; END $b$']]);
CALL bench.compare('append one entry, 2,000 single calls', 2000, :runs, ARRAY[
    ['plain INSERT into a table of the same shape',
     'DO $b$ BEGIN FOR i IN 1 .. 2000 LOOP INSERT INTO plain_calls (key, entry) VALUES (i % 1000 + 1, ''{"segment": "seg-7", "score": 0.25, "source": "web", "ts": 1793491207}''); END LOOP; END $b$'],
    ['collect.append',
     'DO $b$ BEGIN FOR i IN 1 .. 2000 LOOP PERFORM collect.append(''calls'', i % 1000 + 1, ''{"segment": "seg-7", "score": 0.25, "source": "web", "ts": 1793491207}''); END LOOP; END $b$']]);
