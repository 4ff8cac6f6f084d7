-- Latest-version tracking on Citus: not built yet. Its statements join parent and child across
-- shards, so track_latest refuses distributed and reference tables, and says so.
\set SHOW_CONTEXT never
SET citus.shard_count = 4;
CREATE TABLE files (id bigint PRIMARY KEY, name text);
CREATE TABLE versions (file_id bigint, version int, size bigint, PRIMARY KEY (file_id, version));
SELECT create_distributed_table('files', 'id');
SELECT create_distributed_table('versions', 'file_id', colocate_with => 'files');
SELECT collect.track_latest('files', 'versions', 'file_id', 'version', '{size}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE countries (code text PRIMARY KEY);
CREATE TABLE country_names (code text, at timestamptz, name text, PRIMARY KEY (code, at));
SELECT create_reference_table('countries');
SELECT collect.track_latest('countries', 'country_names', 'code', 'at', '{name}');
\echo :LAST_ERROR_SQLSTATE
-- Local tables on the coordinator are tracked as on one node.
CREATE TABLE local_files (id bigint PRIMARY KEY, name text);
CREATE TABLE local_versions (file_id bigint REFERENCES local_files, version int, size bigint, PRIMARY KEY (file_id, version));
SELECT collect.track_latest('local_files', 'local_versions', 'file_id', 'version', '{size}');
INSERT INTO local_files VALUES (1, 'a'), (2, 'b');
INSERT INTO local_versions VALUES (1, 1, 10), (1, 2, 20), (2, 1, 5);
SELECT id, latest_size FROM local_files ORDER BY id;
SELECT collect.untrack_latest('local_files', drop_columns => true);
DROP TABLE files, versions, countries, country_names, local_versions, local_files;
