-- The denormalized latest version (a cloud file system's snapshot query): each file row
-- carries a copy of its newest version, so the snapshot reads files alone instead of joining
-- every version and discarding the older ones.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE TABLE folders (id bigint PRIMARY KEY, name text);
CREATE TABLE files (id bigint PRIMARY KEY, folder_id bigint REFERENCES folders, name text);
CREATE TABLE versions (
    id bigserial PRIMARY KEY,
    file_id bigint NOT NULL REFERENCES files ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    size bigint,
    checksum text,
    deleted boolean NOT NULL DEFAULT false
);
CREATE INDEX ON versions (file_id, created_at);
SELECT collect.create_latest('files', 'versions', link => 'file_id', order_by => 'created_at',
                            columns => '{size, checksum, created_at}', filter => 'NOT deleted');
-- The parent got one column per copied column, of the same type.
\d files
SELECT parent, child, link, order_by, parent_columns, filter, backfill, trigger_tables FROM collect.latest;

INSERT INTO folders VALUES (1, 'docs'), (2, 'photos');
INSERT INTO files SELECT g, 1 + g % 2, 'file' || g FROM generate_series(1, 6) g;

-- A new version becomes the latest.
INSERT INTO versions (file_id, created_at, size, checksum) VALUES (1, '2026-11-01 10:00', 100, 'a1');
SELECT id, latest_size, latest_checksum, latest_created_at FROM files WHERE id = 1;
-- An older version arriving late (out of order) leaves the latest alone.
INSERT INTO versions (file_id, created_at, size, checksum) VALUES (1, '2026-10-01 10:00', 50, 'a0');
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;
-- Equal times: the larger version id wins.
INSERT INTO versions (file_id, created_at, size, checksum) VALUES (1, '2026-11-01 10:00', 101, 'a1b');
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;

-- Deleting the latest falls back to the next one, and to NULLs when none is left.
DELETE FROM versions WHERE checksum = 'a1b';
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;
INSERT INTO versions (file_id, created_at, size, checksum) VALUES (2, '2026-11-02', 7, 'b1');
DELETE FROM versions WHERE file_id = 2;
SELECT id, latest_size, latest_checksum, latest_created_at FROM files WHERE id = 2;

-- UPDATE of the ordering column, of a copied column, of the filter's column.
UPDATE versions SET created_at = '2026-12-01' WHERE checksum = 'a0';
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;
UPDATE versions SET size = 55 WHERE checksum = 'a0';
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;
UPDATE versions SET deleted = true WHERE checksum = 'a0';
SELECT id, latest_size, latest_checksum FROM files WHERE id = 1;
-- A version moving to another file keeps both files right.
UPDATE versions SET file_id = 3 WHERE checksum = 'a1';
SELECT id, latest_size, latest_checksum FROM files WHERE id IN (1, 3) ORDER BY id;

-- A multi-row statement touches each parent once: 600 versions of 6 files, 6 parent updates.
BEGIN;
SELECT n_tup_upd AS updates_before FROM pg_stat_xact_user_tables WHERE relname = 'files' \gset
INSERT INTO versions (file_id, created_at, size, checksum)
SELECT 1 + g % 6, '2026-11-05'::timestamptz + g * interval '1 minute', g, 'm' || g FROM generate_series(1, 600) g;
SELECT n_tup_upd - :updates_before AS parent_rows_updated FROM pg_stat_xact_user_tables WHERE relname = 'files';
COMMIT;
SELECT id, latest_size, latest_checksum FROM files ORDER BY id;
-- COPY goes through the same statement trigger.
COPY versions (file_id, created_at, size, checksum) FROM stdin;
4	2027-01-01 00:00:00+00	4000	c4
5	2020-01-01 00:00:00+00	5000	c5-old
\.
SELECT id, latest_size, latest_checksum FROM files WHERE id IN (4, 5) ORDER BY id;
-- One statement of several rows, some tying with their file's copy on created_at: the larger
-- version id wins a tie, so a tied row with other values becomes the latest (file 5), and one
-- with the copy's own values changes nothing (file 1); beside them a newer row (file 4) and
-- an older one (file 3).
INSERT INTO versions (file_id, created_at, size, checksum)
SELECT id, latest_created_at, latest_size + 1, 'tie-' || id FROM files WHERE id = 5
UNION ALL SELECT id, latest_created_at, latest_size, latest_checksum FROM files WHERE id = 1
UNION ALL SELECT 4, '2027-02-01', 4100, 'c4-new'
UNION ALL SELECT 3, '2000-01-01', 1, 'older';
SELECT id, latest_size, latest_checksum FROM files WHERE id BETWEEN 1 AND 5 ORDER BY id;
-- Rows that all tie, none newer.
INSERT INTO versions (file_id, created_at, size, checksum)
SELECT id, latest_created_at, latest_size + 1, 'tie-again-' || id FROM files WHERE id IN (4, 5);
SELECT id, latest_size, latest_checksum FROM files WHERE id IN (4, 5) ORDER BY id;
SELECT count(*) AS wrong_after_ties FROM collect.check_latest('files');

-- The snapshot query reads files alone; it equals the normalized DISTINCT ON query.
SELECT f.name, f.latest_size, f.latest_checksum FROM folders d JOIN files f ON f.folder_id = d.id WHERE d.name = 'docs' ORDER BY f.name;
SELECT (SELECT array_agg((f.id, f.latest_size, f.latest_checksum) ORDER BY f.id) FROM files f)
     = (SELECT array_agg((f.id, v.size, v.checksum) ORDER BY f.id)
          FROM files f LEFT JOIN (SELECT DISTINCT ON (file_id) * FROM versions WHERE NOT deleted
                                  ORDER BY file_id, created_at DESC, id DESC) v ON v.file_id = f.id) AS same_as_distinct_on;
SELECT * FROM collect.check_latest('files');

-- Deleting a file deletes its versions (ON DELETE CASCADE): nothing else changes.
DELETE FROM files WHERE id = 6;
SELECT count(*) AS files_left FROM files;

-- A damaged copy is found and repaired.
UPDATE files SET latest_size = -1 WHERE id = 2;
UPDATE files SET latest_checksum = NULL, latest_size = NULL, latest_created_at = NULL WHERE id = 3;
SELECT * FROM collect.check_latest('files');
SELECT collect.repair_latest('files') AS repaired;
SELECT count(*) AS wrong_after_repair FROM collect.check_latest('files');

-- TRUNCATE of the versions clears every copy.
TRUNCATE versions;
SELECT count(*) FILTER (WHERE latest_size IS NOT NULL OR latest_checksum IS NOT NULL) AS copies_left FROM files;

-- Existing rows: drop_latest, write versions, create_latest again, then backfill in batches.
SELECT collect.drop_latest('files');
INSERT INTO versions (file_id, created_at, size, checksum)
SELECT 1 + g % 5, '2026-11-01'::timestamptz + g * interval '1 hour', g, 'v' || g FROM generate_series(1, 100) g;
SELECT count(*) FILTER (WHERE latest_size IS NOT NULL) AS copies_while_dropped FROM files;
SELECT collect.create_latest('files', 'versions', 'file_id', 'created_at', '{size, checksum, created_at}', filter => 'NOT deleted');
SELECT count(*) AS wrong_before_backfill FROM collect.check_latest('files');
SET client_min_messages = warning;  -- the progress NOTICEs carry rates, which vary
CALL collect.backfill_latest('files', batch_size => 2);
RESET client_min_messages;
SELECT count(*) AS wrong_after_backfill FROM collect.check_latest('files');
SELECT backfill, backfilled_parents FROM collect.latest;
SELECT id, latest_size, latest_checksum FROM files ORDER BY id;

-- Random writes of every kind, many statements: the copies stay exact.
SELECT setseed(0.5);
DO $$
BEGIN
    FOR i IN 1..200 LOOP
        CASE (random() * 5)::int
        WHEN 0, 1 THEN
            INSERT INTO versions (file_id, created_at, size, checksum, deleted)
            SELECT 1 + (random() * 4)::int, '2026-01-01'::timestamptz + (random() * 1000)::int * interval '1 hour',
                   (random() * 1000)::int, md5(random()::text), random() < 0.2
              FROM generate_series(1, 1 + (random() * 5)::int);
        WHEN 2 THEN
            DELETE FROM versions WHERE id IN (SELECT id FROM versions ORDER BY random() LIMIT 3);
        WHEN 3 THEN
            UPDATE versions SET created_at = created_at + (random() * 2000 - 1000)::int * interval '1 hour',
                                deleted = random() < 0.3
             WHERE id IN (SELECT id FROM versions ORDER BY random() LIMIT 3);
        ELSE
            UPDATE versions SET file_id = 1 + (random() * 4)::int WHERE id IN (SELECT id FROM versions ORDER BY random() LIMIT 2);
        END CASE;
    END LOOP;
END $$;
SELECT count(*) AS versions_now FROM versions;
SELECT count(*) AS wrong_after_random_writes FROM collect.check_latest('files');
