-- Latest copies on Citus against the same tracking on one node (local tables on the
-- coordinator, in the same run): COPY of 100k versions here, single-row INSERTs with pgbench
-- in latest_concurrency.sh.
SET citus.shard_count = 4;
CREATE TABLE files (id bigint PRIMARY KEY, name text);
CREATE TABLE versions (id bigserial, file_id bigint NOT NULL, created_at timestamptz NOT NULL, size bigint, PRIMARY KEY (file_id, id));
CREATE INDEX ON versions (file_id, created_at);
SELECT create_distributed_table('files', 'id');
SELECT create_distributed_table('versions', 'file_id', colocate_with => 'files');
-- The same child, distributed the same way, without tracking: what Citus itself costs.
CREATE TABLE plain_versions (id bigserial, file_id bigint NOT NULL, created_at timestamptz NOT NULL, size bigint, PRIMARY KEY (file_id, id));
CREATE INDEX ON plain_versions (file_id, created_at);
SELECT create_distributed_table('plain_versions', 'file_id', colocate_with => 'files');
CREATE TABLE local_files (id bigint PRIMARY KEY, name text);
CREATE TABLE local_versions (id bigserial, file_id bigint NOT NULL, created_at timestamptz NOT NULL, size bigint, PRIMARY KEY (file_id, id));
CREATE INDEX ON local_versions (file_id, created_at);
INSERT INTO files SELECT g, 'f' || g FROM generate_series(1, 100000) g;
INSERT INTO local_files SELECT g, 'f' || g FROM generate_series(1, 100000) g;
SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size, created_at}');
SELECT collect.create_latest('local_files', 'local_versions', 'file_id', 'created_at', '{size, created_at}');

COPY (SELECT 1 + (g * 7919) % 100000, '2026-01-01'::timestamptz + g * interval '1 second', g FROM generate_series(1, 100000) g)
  TO '/tmp/pg_collect_citus_bench_versions.csv' (FORMAT csv);

CREATE PROCEDURE bench_copy_versions(variant text, run int) LANGUAGE plpgsql AS $$
DECLARE
    target text := CASE variant WHEN 'one node' THEN 'local_versions' ELSE 'versions' END;
    started timestamptz;
BEGIN
    EXECUTE format('TRUNCATE %I', target);
    COMMIT;
    started := clock_timestamp();
    EXECUTE format('COPY %I (file_id, created_at, size) FROM %L (FORMAT csv)', target, '/tmp/pg_collect_citus_bench_versions.csv');
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
    VALUES ('Citus: COPY 100k versions, tracked', CASE variant WHEN 'one node' THEN 'one node' ELSE 'Citus (2 workers, 4 shards)' END,
            variant = 'one node', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 100000);
    COMMIT;
END $$;
DO $$ BEGIN
    FOR r IN 1 .. 3 LOOP
        CALL bench_copy_versions('one node', r);
        CALL bench_copy_versions('citus', r);
    END LOOP;
END $$;
