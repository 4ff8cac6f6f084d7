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

-- The writers are one SELECT without FROM, which Postgres inlines into the caller's statement
-- (no SQL function to plan at each call); _resolve reads the syscaches, so calling it per field
-- costs little.
CREATE OR REPLACE FUNCTION collect.edge_add(graph text, source bigint, destination bigint, edge_position bigint DEFAULT NULL,
                                 at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE sql AS $$
    SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], 'normal',
                               CASE WHEN edge_position IS NULL THEN NULL ELSE ARRAY[edge_position] END, at)
$$;
CREATE OR REPLACE FUNCTION collect.edge_remove(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], 'removed', NULL, at) $$;
CREATE OR REPLACE FUNCTION collect.edge_negate(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], 'negative', NULL, at) $$;
CREATE OR REPLACE FUNCTION collect.edge_add_many(graph text, source bigint, destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, pg_catalog.array_fill(source, ARRAY[pg_catalog.cardinality(destinations)]),
                                                  destinations, 'normal', positions, at) $$;
CREATE OR REPLACE FUNCTION collect.edge_add_pairs(graph text, sources bigint[], destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, 'normal', positions, at) $$;
CREATE OR REPLACE FUNCTION collect.edge_remove_pairs(graph text, sources bigint[], destinations bigint[],
                                         at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, 'removed', NULL, at) $$;
