-- The registry layer every capability uses: one place where each declares its registry, how
-- a definition is verified, where users list them, and its periodic work.
\set SHOW_CONTEXT never
SELECT kind, registry, verify, listed_in, maintenance FROM collect.capabilities ORDER BY kind;
-- Nobody but the extension script writes it.
SELECT has_table_privilege('public', 'collect.capabilities', 'INSERT') AS public_may_insert;

-- Every capability's periodic work in one list, for one scheduler to run.
SELECT collect.create_collection('registry_feed', 'text', '[{"latest_by": "k"}]',
                                 normalization => '{"daily": [{"latest_by": "k"}], "weekly": [{"limit": 5}]}');
CREATE TABLE registry_events (at timestamptz, n int);
SELECT collect.create_rollup('registry_events_1m', 'registry_events', 'at', metrics => '{"total": "sum(n)"}');
SELECT collect.set_retention('registry_events_1m', '30 days');
SELECT kind, object, job, call, usual_every, owner FROM collect.jobs WHERE object LIKE '%registry%' ORDER BY kind, object, job;

-- One lookup for every capability: a missing definition names itself and where to look.
SELECT collect.read('no_such_collection', 'k');
-- A name is found as Postgres finds a table (collect._resolve): name or schema.name, quoted
-- or not; anything else is 22023 with a hint, a NULL name 22004; a name too long for any
-- relation names none.
SELECT collect.read('a.b.c', 'k');
\echo :LAST_ERROR_SQLSTATE
SELECT collect.read(E'a.b."c\\''d"', 'k');
SELECT * FROM collect._resolve('collection', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM collect._resolve('collection', 'Public.registry_feed', '_pending');
SELECT * FROM collect._resolve('collection', 'registry_feed', '_pending');
SELECT * FROM collect._resolve('collection', '"registry_feed"', '_pending');
SELECT * FROM collect._resolve('collection', 'registry_feed', NULL) AS no_suffix;
SELECT * FROM collect._resolve('collection', repeat('r', 63), '_pending') AS too_long;
SELECT * FROM collect._resolve('collection', 'nowhere', '_pending') AS not_found;
-- A relation name holds at most 63 bytes: a longer text names no relation, not the one its
-- first 63 bytes name (as relname = text compares in pg_class).
CREATE TABLE registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr_x ();
SELECT collect._owned_relation(current_user, 'public', 'registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr_x') IS NOT NULL AS exact_name,
       collect._owned_relation(current_user, 'public', 'registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr_xy') AS longer_name,
       (collect._resolve('collection', 'registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr', '_x')).schema AS found_with_suffix,
       (collect._resolve('collection', 'registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr', '_xy')).schema AS longer_with_suffix;
DROP TABLE registry_long_name_rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr_x;
SELECT collect.drop_rollup('no_such_rollup');
SELECT collect._lock_definition('collection', 'public', 'registry_feed', 'SHARE');
\echo :LAST_ERROR_SQLSTATE

SELECT collect.drop_collection('registry_feed');
SELECT collect.drop_rollup('registry_events_1m');
DROP TABLE registry_events;
SELECT count(*) AS jobs_left FROM collect.jobs WHERE object LIKE '%registry%';
