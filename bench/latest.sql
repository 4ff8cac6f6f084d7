-- The denormalized latest version against the normalized queries (DISTINCT ON, LATERAL) at
-- 1M files and 10M versions, and version inserts with the trigger against no trigger and a
-- hand-written PL/pgSQL row trigger. The backfill and insert latency during it are in
-- latest_concurrency.sh.
\set runs 3
SET max_parallel_workers_per_gather = 0;

-- 1,000 folders of 1,000 files, 10 versions per file arriving over time (so a file's versions
-- are spread over the table, as they are when users save files).
CREATE TABLE folders (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE files (id bigint PRIMARY KEY, folder_id bigint NOT NULL REFERENCES folders, name text NOT NULL);
CREATE TABLE versions (id bigserial PRIMARY KEY, file_id bigint NOT NULL REFERENCES files,
                       created_at timestamptz NOT NULL, size bigint NOT NULL, checksum text NOT NULL);
INSERT INTO folders SELECT g, 'folder' || g FROM generate_series(1, 1000) g;
INSERT INTO files SELECT g, 1 + g % 1000, 'file' || g FROM generate_series(1, 1000000) g;
ALTER TABLE versions SET (autovacuum_enabled = false);
INSERT INTO versions (file_id, created_at, size, checksum)
SELECT 1 + (g * 7919) % 1000000, '2020-01-01'::timestamptz + g * interval '1 second', g % 100000, md5(g::text)
  FROM generate_series(1, 10000000::bigint) g;
ALTER TABLE versions RESET (autovacuum_enabled);
CREATE INDEX ON files (folder_id);
CREATE INDEX ON versions (file_id, created_at);
VACUUM ANALYZE folders, files, versions;
SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size, checksum, created_at}');
SET client_min_messages = warning;
CALL collect.backfill_latest('files', 10000);
RESET client_min_messages;
VACUUM ANALYZE files;
SELECT count(*) = 0 AS exact FROM collect.check_latest('files') \gset
\if :exact
\else
  \echo 'the backfill left wrong copies'
  \quit
\endif

-- The snapshot query: every file of 100 folders (100,000 files) with its latest version.
CALL bench.compare('snapshot of 100 folders (100k files, 1M versions)', 100000, :runs, ARRAY[
    ['normalized: JOIN versions, DISTINCT ON', $q$
        SELECT count(*), sum(size) FROM (
            SELECT DISTINCT ON (f.id) f.id, f.name, v.size, v.checksum, v.created_at
              FROM files f JOIN versions v ON v.file_id = f.id
             WHERE f.folder_id BETWEEN 1 AND 100
             ORDER BY f.id, v.created_at DESC, v.id DESC) s $q$],
    ['normalized: LATERAL (... ORDER BY created_at DESC LIMIT 1)', $q$
        SELECT count(*), sum(size) FROM files f
          LEFT JOIN LATERAL (SELECT size, checksum, created_at FROM versions v WHERE v.file_id = f.id
                              ORDER BY created_at DESC, id DESC LIMIT 1) v ON true
         WHERE f.folder_id BETWEEN 1 AND 100 $q$],
    ['denormalized: files alone (collect.create_latest)', $q$
        SELECT count(*), sum(latest_size) FROM (
            SELECT f.id, f.name, f.latest_size, f.latest_checksum, f.latest_created_at
              FROM files f WHERE f.folder_id BETWEEN 1 AND 100) s $q$]]);

-- The whole snapshot: 1M files, 10M versions.
CALL bench.compare('full snapshot (1M files, 10M versions)', 1000000, :runs, ARRAY[
    ['normalized: JOIN versions, DISTINCT ON', $q$
        SELECT count(*), sum(size) FROM (
            SELECT DISTINCT ON (f.id) f.id, f.name, v.size, v.checksum
              FROM folders d JOIN files f ON f.folder_id = d.id JOIN versions v ON v.file_id = f.id
             ORDER BY f.id, v.created_at DESC, v.id DESC) s $q$],
    ['normalized: LATERAL (... ORDER BY created_at DESC LIMIT 1)', $q$
        SELECT count(*), sum(size) FROM folders d JOIN files f ON f.folder_id = d.id
          LEFT JOIN LATERAL (SELECT size, checksum FROM versions v WHERE v.file_id = f.id
                              ORDER BY created_at DESC, id DESC LIMIT 1) v ON true $q$],
    ['denormalized: files alone (collect.create_latest)', $q$
        SELECT count(*), sum(latest_size) FROM folders d JOIN files f ON f.folder_id = d.id $q$]]);

-- Version inserts: 100,000 files of their own; each run adds a newer version to every one,
-- by COPY (one statement) and by 5,000 single-row INSERT statements.
CREATE TABLE ins_files (id bigint PRIMARY KEY, latest_size bigint, latest_checksum text, latest_created_at timestamptz);
CREATE TABLE ins_plain (id bigserial PRIMARY KEY, file_id bigint NOT NULL REFERENCES ins_files,
                        created_at timestamptz NOT NULL, size bigint NOT NULL, checksum text NOT NULL);
CREATE INDEX ON ins_plain (file_id, created_at);
CREATE TABLE ins_collect (LIKE ins_plain INCLUDING ALL);
ALTER TABLE ins_collect ADD FOREIGN KEY (file_id) REFERENCES ins_files;
CREATE TABLE ins_hand (LIKE ins_plain INCLUDING ALL);
ALTER TABLE ins_hand ADD FOREIGN KEY (file_id) REFERENCES ins_files;
CREATE TABLE hand_files (LIKE ins_files INCLUDING ALL);
CREATE TABLE collect_files (LIKE ins_files INCLUDING ALL);
ALTER TABLE ins_collect DROP CONSTRAINT ins_collect_file_id_fkey, ADD FOREIGN KEY (file_id) REFERENCES collect_files;
ALTER TABLE ins_hand DROP CONSTRAINT ins_hand_file_id_fkey, ADD FOREIGN KEY (file_id) REFERENCES hand_files;
INSERT INTO ins_files (id) SELECT g FROM generate_series(1, 100000) g;
INSERT INTO hand_files (id) SELECT g FROM generate_series(1, 100000) g;
INSERT INTO collect_files (id) SELECT g FROM generate_series(1, 100000) g;
SELECT collect.create_latest('collect_files', 'ins_collect', 'file_id', 'created_at', '{size, checksum, created_at}');
-- What a developer writes by hand for inserts only (deletes and updates not handled).
CREATE FUNCTION hand_latest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hand_files SET latest_size = NEW.size, latest_checksum = NEW.checksum, latest_created_at = NEW.created_at
     WHERE id = NEW.file_id AND (latest_created_at IS NULL OR latest_created_at <= NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER hand_latest AFTER INSERT ON ins_hand FOR EACH ROW EXECUTE FUNCTION hand_latest();
VACUUM ANALYZE ins_files, hand_files, collect_files;

CREATE PROCEDURE bench_version_inserts(run int) LANGUAGE plpgsql AS $$
DECLARE
    variant text;
    started timestamptz;
    i int;
BEGIN
    EXECUTE format($c$COPY (SELECT g, '2020-01-01'::timestamptz + %s * interval '1 day' + g * interval '1 ms', g %% 1000, md5(g::text)
                             FROM generate_series(1, 100000) g) TO '/tmp/pg_collect_bench_versions.csv' (FORMAT csv)$c$, run);
    FOREACH variant IN ARRAY ARRAY['ins_plain', 'ins_collect', 'ins_hand'] LOOP
        COMMIT;
        started := clock_timestamp();
        EXECUTE format('COPY %I (file_id, created_at, size, checksum) FROM %L (FORMAT csv)', variant, '/tmp/pg_collect_bench_versions.csv');
        COMMIT;
        IF run > 0 THEN
            INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
            VALUES ('COPY 100k versions of 100k files', CASE variant WHEN 'ins_plain' THEN 'no trigger'
                        WHEN 'ins_collect' THEN 'collect.create_latest' ELSE 'hand-written PL/pgSQL row trigger (inserts only)' END,
                    variant = 'ins_plain', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', 100000);
        END IF;
        COMMIT;
    END LOOP;
END $$;
CALL bench_version_inserts(0);
CALL bench_version_inserts(1);
CALL bench_version_inserts(2);
CALL bench_version_inserts(3);
SELECT (SELECT count(*) FROM collect.check_latest('collect_files')) = 0
   AND (SELECT count(*) FROM hand_files h JOIN collect_files c USING (id)
         WHERE (h.latest_size, h.latest_created_at) IS DISTINCT FROM (c.latest_size, c.latest_created_at)) = 0 AS inserts_exact \gset
\if :inserts_exact
\else
  \echo 'the insert benchmark left wrong copies'
  \quit
\endif

-- Single-row INSERTs from one session, each committed on its own: the server's share of what
-- pgbench measures (latest_concurrency.sh), without pgbench on the same cores. New versions
-- (the common case: one UPDATE of the parent), and versions older than the copy arriving
-- late (the trigger then also locks the parent and looks again, which keeps it exact under
-- concurrent deletes; the hand-written trigger does not).
CREATE PROCEDURE bench_single_row_inserts(run int, n int) LANGUAGE plpgsql AS $$
DECLARE
    variants text[] := ARRAY['ins_plain', 'ins_collect', 'ins_hand'];
    variant text;
    kind text;
    started timestamptz;
BEGIN
    FOREACH kind IN ARRAY ARRAY['new versions', 'older versions arriving late'] LOOP
        FOR v IN 0..2 LOOP
            variant := variants[1 + (run + v) % 3];
            COMMIT;
            started := clock_timestamp();
            FOR i IN 1..n LOOP
                EXECUTE format('INSERT INTO %I (file_id, created_at, size, checksum) VALUES ($1, $2, 1, ''x'')', variant)
                  USING 1 + (i * 7919) % 100000, CASE kind WHEN 'new versions' THEN clock_timestamp() ELSE '2000-01-01' END;
                COMMIT;
            END LOOP;
            INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
            VALUES ('single-row version INSERTs, one session, one transaction each: ' || kind,
                    CASE variant WHEN 'ins_plain' THEN 'no trigger' WHEN 'ins_collect' THEN 'collect.create_latest'
                         ELSE 'hand-written PL/pgSQL row trigger (inserts only)' END,
                    variant = 'ins_plain', run, extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', n);
            COMMIT;
        END LOOP;
    END LOOP;
END $$;
CALL bench_single_row_inserts(0, 30000);
CALL bench_single_row_inserts(1, 30000);
CALL bench_single_row_inserts(2, 30000);
