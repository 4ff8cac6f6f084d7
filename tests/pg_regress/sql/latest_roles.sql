-- Latest copies: drop_latest, and ordinary roles. Uses the tables of the latest suite.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- A latest copy is known by its parent's name, as every definition is by its name: a renamed
-- parent has none (its old name back finds it again). drop_latest removes the triggers and
-- functions (found by function, so a renamed child or partition does not matter);
-- drop_columns removes the copies.
ALTER TABLE notes RENAME TO renamed_notes;
SELECT collect.drop_latest('renamed_notes', drop_columns => true);
ALTER TABLE renamed_notes RENAME TO notes;
ALTER TABLE note_edits RENAME TO renamed_note_edits;
SELECT collect.drop_latest('notes', drop_columns => true);
ALTER TABLE renamed_note_edits RENAME TO note_edits;
ALTER TABLE notes RENAME TO renamed_notes;
\d renamed_notes
SELECT count(*) AS functions_left FROM pg_proc WHERE proname LIKE 'notes_latest_%';
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'note_edits'::regclass;

-- An ordinary role keeps latest copies of its own tables: what is generated is its own, runs with the
-- writer's privileges, and only its owner may drop it.
SET client_min_messages = warning;
DROP ROLE IF EXISTS collect_latest_owner;
DROP ROLE IF EXISTS collect_latest_other;
RESET client_min_messages;
CREATE ROLE collect_latest_owner;
CREATE ROLE collect_latest_other;
GRANT CREATE ON SCHEMA public TO collect_latest_owner;
SET ROLE collect_latest_owner;
CREATE TABLE owned_files (id integer PRIMARY KEY);
CREATE TABLE owned_versions (id integer PRIMARY KEY, file_id integer REFERENCES owned_files, v integer);
CREATE INDEX ON owned_versions (file_id, v);
SELECT collect.create_latest('owned_files', 'owned_versions', 'file_id', 'v', '{v}');
SELECT proname, pg_get_userbyid(proowner) AS owner, prosecdef AS security_definer
  FROM pg_proc WHERE proname LIKE 'owned_files_latest_%' ORDER BY 1;
INSERT INTO owned_files VALUES (1);
GRANT SELECT, INSERT ON owned_versions TO collect_latest_other;
SET ROLE collect_latest_other;
-- A writer without UPDATE on the parent cannot leave a stale copy behind: its insert fails.
INSERT INTO owned_versions VALUES (1, 1, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT collect.drop_latest('owned_files');
\echo :LAST_ERROR_SQLSTATE
SET ROLE collect_latest_owner;
INSERT INTO owned_versions VALUES (1, 1, 10);
SELECT * FROM owned_files;
SELECT collect.drop_latest('owned_files', drop_columns => true);
DROP TABLE owned_versions, owned_files;
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM collect_latest_owner;
DROP ROLE collect_latest_owner;
DROP ROLE collect_latest_other;
