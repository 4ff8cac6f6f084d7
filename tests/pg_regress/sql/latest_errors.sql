-- Latest copies: bad input, and what is left behind (nothing). Uses the tables of
-- the latest suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Bad input: errors name the culprit, with their SQLSTATE.
SELECT collect.create_latest('nosuch', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'nosuch', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'nosuch', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size, nosuch}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'checksum', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE no_key (id bigint);
SELECT collect.create_latest('no_key', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE two_key (a bigint, b bigint, PRIMARY KEY (a, b));
SELECT collect.create_latest('two_key', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'size + 1');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'nosuch > 0');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'file_id IN (SELECT id FROM folders)');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'true); DROP TABLE folders; SELECT (true');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'true) FROM pg_authid WHERE (true');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', filter => 'name = ''x''');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', ' , ', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'folders', 'id', 'id', '{name}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', prefix => NULL);
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE folders ADD COLUMN latest_size text;
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'versions', 'file_id', 'created_at', '{size}', prefix => repeat('x', 60));
\echo :LAST_ERROR_SQLSTATE
SELECT collect.check_latest('folders');
\echo :LAST_ERROR_SQLSTATE
CALL collect.backfill_latest('files', 0);
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW files_view AS SELECT * FROM files;
SELECT collect.create_latest('files_view', 'versions', 'file_id', 'created_at', '{size}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'files_view', 'folder_id', 'id', '{name}');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE keyless_versions (folder_id bigint, at timestamptz);
SELECT collect.create_latest('folders', 'keyless_versions', 'folder_id', 'at', '{at}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'files', 'folder_id', 'id', '{id}', prefix => '');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'files', 'folder_id', 'id', '{name, name}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.create_latest('folders', 'files', 'folder_id', 'id', '{name}', filter => '  ');
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION folders_latest_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
SELECT collect.create_latest('folders', 'files', 'folder_id', 'id', '{name}');
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION folders_latest_sync();
-- Nothing was left behind by the failed calls.
SELECT parent FROM collect.latest ORDER BY parent::text;
SELECT count(*) AS folder_columns FROM pg_attribute WHERE attrelid = 'folders'::regclass AND attnum > 0 AND NOT attisdropped;

-- A table without a (link, order_by) index gets a warning with the index to build.
CREATE TABLE notes (id integer PRIMARY KEY);
CREATE TABLE note_edits (id integer PRIMARY KEY, note_id integer, at timestamptz, body text);
SELECT collect.create_latest('notes', 'note_edits', 'note_id', 'at', '{body}');

-- A parent dropped for good, with its child, leaves the registry's row and the generated
-- functions behind; create_latest on a new table of that name clears them first.
CREATE TABLE gone_files (id bigint PRIMARY KEY);
CREATE TABLE gone_versions (id bigint PRIMARY KEY, file_id bigint, v int);
SELECT collect.create_latest('gone_files', 'gone_versions', 'file_id', 'v', '{v}');
DROP TABLE gone_versions, gone_files;
CREATE TABLE gone_files (id bigint PRIMARY KEY);
CREATE TABLE gone_versions (id bigint PRIMARY KEY, file_id bigint, v int);
SELECT collect.create_latest('gone_files', 'gone_versions', 'file_id', 'v', '{v}');
INSERT INTO gone_files VALUES (1);
INSERT INTO gone_versions VALUES (1, 1, 3), (2, 1, 5);
SELECT id, latest_v FROM gone_files;
-- A parent dropped alone, its child still carrying the triggers: the new table of that name
-- takes the latest copy over (as after a Citus rebuild), so it already has one; dropping it
-- and creating it again starts afresh.
DROP TABLE gone_files;
CREATE TABLE gone_files (id bigint PRIMARY KEY);
SELECT collect.create_latest('gone_files', 'gone_versions', 'file_id', 'v', '{v}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_latest('gone_files');
SELECT collect.create_latest('gone_files', 'gone_versions', 'file_id', 'v', '{v}');
INSERT INTO gone_files VALUES (1);
INSERT INTO gone_versions VALUES (3, 1, 9);
SELECT id, latest_v FROM gone_files;
SELECT collect.drop_latest('gone_files', drop_columns => true);
DROP TABLE gone_versions, gone_files;

-- The per-shard job of check/repair/backfill on Citus (collect._latest_on_shard), aimed at a
-- table that is no shard of a latest copy, is refused.
CREATE TABLE not_a_shard (id bigint PRIMARY KEY);
SELECT collect._latest_on_shard('not_a_shard', '{"job": "check", "spec": {"refresh_function": {"schema": "public", "name": "x"}}}');
\echo :LAST_ERROR_SQLSTATE
DROP TABLE not_a_shard;

-- A copy column whose type changed on one side only (README, Rules): a write that compares
-- the copy with a version equal to it before that column (a tie) fails with 42804 and
-- changes nothing; changing the other side too makes it work again.
CREATE TABLE drafts (id integer PRIMARY KEY);
CREATE TABLE draft_edits (id serial PRIMARY KEY, draft_id integer NOT NULL REFERENCES drafts, at integer NOT NULL, body text);
CREATE INDEX ON draft_edits (draft_id, at);
SELECT collect.create_latest('drafts', 'draft_edits', 'draft_id', 'at', '{at, body}');
INSERT INTO drafts VALUES (1), (2);
INSERT INTO draft_edits (draft_id, at, body) VALUES (1, 1, 'one'), (2, 1, 'two');
ALTER TABLE drafts ALTER COLUMN latest_body TYPE varchar;
-- A newer single row takes one UPDATE, which compares no copies.
INSERT INTO draft_edits (draft_id, at, body) VALUES (1, 2, 'one, later');
-- A tie compares the whole copy.
INSERT INTO draft_edits (draft_id, at, body) VALUES (2, 1, 'two, at the same time');
\echo :LAST_ERROR_SQLSTATE
-- Deleting the latest compares copies that differ already in their first column.
DELETE FROM draft_edits WHERE body = 'one, later';
SELECT * FROM drafts ORDER BY id;
ALTER TABLE draft_edits ALTER COLUMN body TYPE varchar;
INSERT INTO draft_edits (draft_id, at, body) VALUES (2, 1, 'two, at the same time');
SELECT * FROM drafts ORDER BY id;
SELECT count(*) AS wrong_after_both_changed FROM collect.check_latest('drafts');
SELECT collect.drop_latest('drafts', drop_columns => true);
DROP TABLE draft_edits, drafts;

-- The generator of a parent's new columns takes a type for each column.
SELECT collect._latest_add_columns_sql('{}', '{a, b}', '{integer}');
\echo :LAST_ERROR_SQLSTATE
SELECT collect._latest_add_columns_sql('{}', '{a, NULL}', '{integer, text}');
\echo :LAST_ERROR_SQLSTATE
