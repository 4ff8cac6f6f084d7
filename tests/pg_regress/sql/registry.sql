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
SELECT collect.drop_rollup('no_such_rollup');
SELECT collect._lock_definition('collection', 'public', 'registry_feed', 'SHARE');
\echo :LAST_ERROR_SQLSTATE

SELECT collect.drop_collection('registry_feed');
SELECT collect.drop_rollup('registry_events_1m');
DROP TABLE registry_events;
SELECT count(*) AS jobs_left FROM collect.jobs WHERE object LIKE '%registry%';
