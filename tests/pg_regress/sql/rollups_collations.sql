-- Dimensions compared by a nondeterministic collation: rows the collation calls equal are one
-- group, as GROUP BY makes them. The in-memory path compares bytes, so such a rollup is rolled
-- up by SQL (a DEBUG line says so). Nondeterministic collations need ICU: on a server built
-- without it there is nothing to test, and the suite's output says so (rollups_collations_1.out).
\set SHOW_CONTEXT never
-- (PostgreSQL 16 lists its "unicode" collation as ICU's even in a build without ICU.)
SELECT NOT EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i' AND collname <> 'unicode') AS no_icu \gset
\if :no_icu
\echo 'this server has no ICU collations: skipped'
\quit
\endif
CREATE COLLATION case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE folded (at timestamptz, host text COLLATE case_blind, n integer);
SELECT collect.create_rollup('folded_1m', 'folded', 'at', '{host}', '{"total": "sum(n)"}');
SET client_min_messages = debug1;
INSERT INTO folded VALUES ('2026-11-04 00:00+00', 'Web', 1), ('2026-11-04 00:00:30+00', 'WEB', 2);
RESET client_min_messages;
SELECT host, event_count, total FROM folded_1m;
SELECT collect.drop_rollup('folded_1m');
DROP TABLE folded;
DROP COLLATION case_blind;
