-- Latest copies on tables of other shapes: partitioned children, odd names.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- A partitioned child, written through the partitioned table and into a partition directly.
CREATE TABLE docs (id text PRIMARY KEY);
CREATE TABLE revisions (doc_id text NOT NULL, rev integer NOT NULL, body text, PRIMARY KEY (doc_id, rev)) PARTITION BY HASH (doc_id);
CREATE TABLE revisions_0 PARTITION OF revisions FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE revisions_1 PARTITION OF revisions FOR VALUES WITH (MODULUS 2, REMAINDER 1);
SELECT collect.create_latest('docs', 'revisions', 'doc_id', 'rev', '{rev, body}', prefix => 'current_');
SELECT trigger_tables FROM collect.latest WHERE parent = 'docs'::regclass;
INSERT INTO docs SELECT 'doc' || g FROM generate_series(1, 4) g;
INSERT INTO revisions SELECT 'doc' || (1 + g % 4), g, 'body ' || g FROM generate_series(1, 40) g;
SELECT * FROM docs ORDER BY id;
-- Straight into a partition: that partition's own triggers keep it right.
INSERT INTO revisions_0 SELECT doc_id, 100, 'direct' FROM revisions_0 GROUP BY doc_id;
UPDATE revisions SET rev = 0 WHERE rev = 40;
DELETE FROM revisions_1 WHERE rev >= 37;
SELECT * FROM docs ORDER BY id;
SELECT count(*) AS wrong_partitioned FROM collect.check_latest('docs');
TRUNCATE revisions_0;
SELECT count(*) AS wrong_after_partition_truncate FROM collect.check_latest('docs');
SELECT * FROM docs ORDER BY id;

-- Every name is quoted: odd table and column names work.
CREATE TABLE "Odd ""Files""" ("select" integer PRIMARY KEY);
CREATE TABLE "odd versions" (id integer PRIMARY KEY, "from" integer REFERENCES "Odd ""Files""", "order" integer, "where" text);
SELECT collect.create_latest('"Odd ""Files"""', '"odd versions"', 'from', 'order', '{where}', prefix => 'last ', filter => '"where" <> ''skip me''');
INSERT INTO "Odd ""Files""" VALUES (1);
INSERT INTO "odd versions" VALUES (1, 1, 1, 'one'), (2, 1, 3, 'skip me'), (3, 1, 2, 'two');
SELECT * FROM "Odd ""Files""";
