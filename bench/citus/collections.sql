-- Collections on Citus against the same collection on one node (in the same run): appends
-- and reads with pgbench (collections_concurrency.sh), normalization of 10,000 keys here.
SELECT collect.create_collection('local_notes', 'bigint');
SELECT collect.create_collection('notes', 'bigint');
SELECT collect.distribute_collection('notes', 4);

CREATE PROCEDURE bench_normalize(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    collection text := CASE variant WHEN 'one node' THEN 'local_notes' ELSE 'notes' END;
    started timestamptz;
BEGIN
    -- 10,000 keys of 10 new entries each.
    PERFORM collect.append_many(collection, k, (SELECT jsonb_agg(jsonb_build_object('n', e, 'run', run, 'at', 1700000000 + e)) FROM generate_series(1, 10) e))
       FROM generate_series(1, 10000) k;
    COMMIT;
    started := clock_timestamp();
    PERFORM collect.normalize(collection, all_keys => true);
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('Citus: normalize 10,000 keys of 10 new entries', CASE variant WHEN 'one node' THEN 'one node' ELSE 'Citus (2 workers, 4 shards)' END,
            variant = 'one node', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 100000);
    COMMIT;
END $$;
DO $$ BEGIN
    FOR r IN 1 .. 3 LOOP
        CALL bench_normalize('one node', r);
        CALL bench_normalize('citus', r);
    END LOOP;
END $$;
