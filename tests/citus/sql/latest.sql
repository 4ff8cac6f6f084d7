-- Latest copies on Citus. The parent is distributed on its key and the child on the
-- link, co-located: each shard's triggers keep the copies of the co-located parent shard, on
-- its own worker; check_latest, repair_latest and backfill_latest run on every shard pair.
-- Every copy is compared with a DISTINCT ON over the versions, computed independently.
\set SHOW_CONTEXT never
SET citus.shard_count = 4;
CREATE TABLE files (id bigint PRIMARY KEY, name text);
CREATE TABLE versions (file_id bigint, version int, size bigint, note text, deleted boolean NOT NULL DEFAULT false,
                       PRIMARY KEY (file_id, version));
SELECT create_distributed_table('files', 'id', colocate_with => 'none');  -- a group of its own

-- The child must be distributed on the link, co-located with the parent.
SELECT collect.create_latest('files', 'versions', 'file_id', 'version', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT create_distributed_table('versions', 'file_id', colocate_with => 'none');
SELECT collect.create_latest('files', 'versions', 'file_id', 'version', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT undistribute_table('versions');
SELECT create_distributed_table('versions', 'file_id', colocate_with => 'files');
-- A partitioned child is refused on Citus.
CREATE TABLE parted_versions (file_id bigint, version int, size bigint, PRIMARY KEY (file_id, version)) PARTITION BY RANGE (version);
CREATE TABLE parted_versions_low PARTITION OF parted_versions FOR VALUES FROM (0) TO (1000000);
SELECT create_distributed_table('parted_versions', 'file_id', colocate_with => 'files');
SELECT collect.create_latest('files', 'parted_versions', 'file_id', 'version', '{size}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE parted_versions;
-- Reference tables are refused.
CREATE TABLE countries (code text PRIMARY KEY);
CREATE TABLE country_names (code text, at timestamptz, name text, PRIMARY KEY (code, at));
SELECT create_reference_table('countries');
SELECT collect.create_latest('countries', 'country_names', 'code', 'at', '{name}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE countries, country_names;

-- Existing versions; then create_latest, with a filter that holds a % (the jobs on the shards
-- pass it through Citus's format()).
INSERT INTO files SELECT g, 'f' || g FROM generate_series(1, 40) g;
INSERT INTO versions (file_id, version, size, note) SELECT g % 40 + 1, g, g * 10, CASE WHEN g % 7 = 0 THEN 'tmp%' END FROM generate_series(1, 400) g;
SELECT collect.create_latest('files', 'versions', 'file_id', 'version', '{size,version,note}',
                            filter => $$NOT deleted AND coalesce(note, '') NOT LIKE 'tmp\%%'$$);
-- Every shard of versions carries the triggers.
SELECT DISTINCT result AS triggers_per_shard FROM run_command_on_shards('versions',
       $$SELECT string_agg(regexp_replace(tgname, '_[0-9]+$', ''), ', ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$);

-- The truth, for comparison.
CREATE FUNCTION wrong_copies() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM files f
      LEFT JOIN (SELECT DISTINCT ON (file_id) file_id, size, version, note FROM versions
                  WHERE NOT deleted AND coalesce(note, '') NOT LIKE 'tmp\%%' ORDER BY file_id, version DESC) v ON v.file_id = f.id
     WHERE (f.latest_size, f.latest_version, f.latest_note) IS DISTINCT FROM (v.size, v.version, v.note)
$$;
SELECT wrong_copies() AS before_backfill, (SELECT count(*) FROM collect.check_latest('files')) AS reported;
SELECT * FROM collect.check_latest('files') LIMIT 3;
SET client_min_messages = warning;  -- the progress NOTICEs hold rates
CALL collect.backfill_latest('files', 15);
RESET client_min_messages;
SELECT wrong_copies() AS after_backfill, (SELECT count(*) FROM collect.check_latest('files')) AS reported;
SELECT backfill, backfilled_parents FROM collect.latest;

-- Writes of every kind, on every shard.
INSERT INTO versions (file_id, version, size) VALUES (1, 1000, 1);
INSERT INTO versions (file_id, version, size) SELECT g, 1000 + g, g FROM generate_series(2, 40) g;
INSERT INTO versions (file_id, version, size) SELECT g, 900, -g FROM generate_series(1, 40) g;  -- older: no change
COPY versions (file_id, version, size, note) FROM STDIN WITH (FORMAT csv);
3,2000,30,
4,2000,40,tmp%
5,2000,50,kept
\.
SELECT id, latest_version, latest_size, latest_note FROM files WHERE id <= 5 ORDER BY id;
UPDATE versions SET deleted = true WHERE version = 2000;
DELETE FROM versions WHERE file_id = 1 AND version = 1000;
UPDATE versions SET size = size + 1 WHERE file_id IN (7, 8) AND version > 1000;
SELECT id, latest_version, latest_size, latest_note FROM files WHERE id IN (1, 3, 4, 5, 7, 8) ORDER BY id;
SELECT wrong_copies() AS after_writes;
-- In one transaction, on several shards.
BEGIN;
INSERT INTO versions (file_id, version, size) VALUES (10, 3000, 3), (11, 3000, 3);
DELETE FROM versions WHERE file_id = 10 AND version = 3000;
COMMIT;
SELECT id, latest_version FROM files WHERE id IN (10, 11) ORDER BY id;
SELECT wrong_copies() AS after_transaction;

-- check_latest reports a copy changed behind the triggers' back; repair_latest fixes it.
UPDATE files SET latest_size = -1 WHERE id IN (12, 13);
SELECT * FROM collect.check_latest('files');
SELECT collect.repair_latest('files') AS repaired;
SELECT wrong_copies() AS after_repair;

-- alter_distributed_table rebuilds both tables (Citus recreates their triggers only with
-- citus.enable_unsafe_triggers): the triggers carry the latest copy, and the registry finds the
-- new tables by the parent's name and the child's triggers.
SET citus.enable_unsafe_triggers = on;
SELECT alter_distributed_table('files', shard_count => 8, cascade_to_colocated => true);
RESET citus.enable_unsafe_triggers;
INSERT INTO versions (file_id, version, size) SELECT g, 4000 + g, g FROM generate_series(1, 40, 3) g;
DELETE FROM versions WHERE file_id = 4 AND version = 4004;
SELECT wrong_copies() AS after_alter, (SELECT count(*) FROM collect.check_latest('files')) AS reported;
SELECT parent, child, trigger_tables FROM collect.latest;

-- A trigger planted on another role's table cannot make a shard write another role's copies,
-- even when the superuser inserts: the parent and child shards must have one owner.
CREATE ROLE citus_mallory LOGIN;
GRANT USAGE, CREATE ON SCHEMA public TO citus_mallory;
SET ROLE citus_mallory;
CREATE TABLE planted (file_id bigint, version int, size bigint, note text, deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (file_id, version));
SELECT create_distributed_table('planted', 'file_id', colocate_with => 'files');
RESET ROLE;
SELECT format('CREATE TRIGGER steal AFTER INSERT ON planted REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
               EXECUTE FUNCTION collect._latest_insert(%L, %L)', d.refresh_function,
              jsonb_set(collect._latest_spec(d), '{child}', '{"schema": "public", "name": "planted"}')) AS command
  FROM collect.latest_defs d \gset
SET ROLE citus_mallory;
SET citus.enable_unsafe_triggers = on;
:command;
RESET citus.enable_unsafe_triggers;
RESET ROLE;
INSERT INTO planted VALUES (1, 99999, 666, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT latest_size FROM files WHERE id = 1;
DROP TABLE planted;
DROP OWNED BY citus_mallory;
DROP ROLE citus_mallory;

-- A job the shards do not know fails on each (22023 there), and the coordinator says which
-- shard failed and why (38000; the shard's number varies, so only the SQLSTATE is shown).
\set VERBOSITY sqlstate
SELECT collect._citus_on_shards('files', 'collect._latest_on_shard',
                                jsonb_build_object('spec', collect._latest_spec(d), 'job', 'nope'))
  FROM collect.latest_defs d;
\set VERBOSITY default
DO $$
BEGIN
    PERFORM collect._citus_on_shards('files', 'collect._latest_on_shard', jsonb_build_object('spec', collect._latest_spec(d), 'job', 'nope'))
       FROM collect.latest_defs d;
EXCEPTION WHEN external_routine_exception THEN
    RAISE NOTICE 'the worker''s error is passed on: %', SQLERRM LIKE '%ERROR:  unknown job nope%';
END $$;

-- TRUNCATE (which Citus fires on the distributed table only) clears every copy.
TRUNCATE versions;
SELECT count(*) FILTER (WHERE latest_size IS NOT NULL) AS copies_left, wrong_copies() AS after_truncate FROM files;

-- drop_latest removes the triggers from every shard.
SELECT collect.drop_latest('files', drop_columns => true);
SELECT DISTINCT result AS triggers_left FROM run_command_on_shards('versions',
       $$SELECT count(*) FROM pg_trigger WHERE tgrelid = '%s'::regclass AND NOT tgisinternal$$);
SELECT count(*) AS columns_left FROM pg_attribute WHERE attrelid = 'files'::regclass AND attname LIKE 'latest_%' AND NOT attisdropped;

-- undistribute_table makes them local tables again, still with their latest copy.
SELECT collect.create_latest('files', 'versions', 'file_id', 'version', '{size,version,note}');
INSERT INTO versions (file_id, version, size) VALUES (1, 5000, 5), (2, 5000, 6);
SELECT undistribute_table('versions');
SELECT undistribute_table('files');
INSERT INTO versions (file_id, version, size) VALUES (1, 5001, 7);
DELETE FROM versions WHERE file_id = 2 AND version = 5000;
SELECT id, latest_version, latest_size FROM files WHERE id IN (1, 2) ORDER BY id;
SELECT count(*) AS wrong_after_undistribute FROM collect.check_latest('files');
SELECT collect.drop_latest('files', drop_columns => true);

-- Tables distributed after create_latest: their triggers for one node refuse to run on shards and
-- say what to do; dropped and created again, they work.
CREATE TABLE late_files (id bigint PRIMARY KEY);
CREATE TABLE late_versions (file_id bigint, version int, size bigint, PRIMARY KEY (file_id, version));
SELECT collect.create_latest('late_files', 'late_versions', 'file_id', 'version', '{size}');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('late_files', 'id');
SELECT create_distributed_table('late_versions', 'file_id', colocate_with => 'late_files');
RESET citus.enable_unsafe_triggers;
INSERT INTO late_files VALUES (1);
INSERT INTO late_versions VALUES (1, 1, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_latest('late_files');
SELECT collect.create_latest('late_files', 'late_versions', 'file_id', 'version', '{size}');
INSERT INTO late_versions VALUES (1, 1, 10);
SELECT id, latest_size FROM late_files;
SELECT collect.drop_latest('late_files', drop_columns => true);
DROP TABLE late_files, late_versions;

-- Local tables on the coordinator have latest copies as on one node.
CREATE TABLE local_files (id bigint PRIMARY KEY, name text);
CREATE TABLE local_versions (file_id bigint REFERENCES local_files, version int, size bigint, PRIMARY KEY (file_id, version));
SELECT collect.create_latest('local_files', 'local_versions', 'file_id', 'version', '{size}');
INSERT INTO local_files VALUES (1, 'a'), (2, 'b');
INSERT INTO local_versions VALUES (1, 1, 10), (1, 2, 20), (2, 1, 5);
SELECT id, latest_size FROM local_files ORDER BY id;
SELECT collect.drop_latest('local_files', drop_columns => true);
DROP FUNCTION wrong_copies();
DROP TABLE files, versions, local_versions, local_files;
