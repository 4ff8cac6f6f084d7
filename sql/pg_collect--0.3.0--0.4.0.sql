-- pg_collect 0.3.0 -> 0.4.0: faster point reads of archives, name resolution and definition
-- checks (issue #30).
-- The functions keep their names, arguments and answers; only how they are computed changes,
-- so nothing stored is touched.

-- The relation schema.relname if it exists and belongs to `owner` (or to a role `owner` is a
-- member of); NULL otherwise. Every use of a definition asks it for each object the definition
-- names, so it reads the syscaches (src/registry/mod.rs) instead of running a query.
CREATE OR REPLACE FUNCTION collect._owned_relation(owner name, schema name, relname text) RETURNS regclass
    STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'owned_relation_wrapper';

-- src/archives/sql.rs: resolves and checks as collect._archived does, then reads with a
-- statement the session prepared once.
CREATE OR REPLACE FUNCTION collect.archived(name text, key anyelement) RETURNS jsonb
    LANGUAGE c AS 'MODULE_PATHNAME', 'archived_wrapper';

-- Finds a definition's schema by name, the way Postgres finds a table (src/registry/mod.rs,
-- from the syscaches: every call of every capability starts here).
CREATE OR REPLACE FUNCTION collect._resolve(kind text, name text, suffix text DEFAULT '', OUT schema name, OUT object_name text)
    STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'resolve_wrapper';
