-- Edge lists (Twitter's FlockDB): adjacency lists of 64-bit ids, each edge with a state and a
-- position, kept forward (by source) and backward (by destination), with exact per-node counts.
-- Writes are ordered by their `at`, not by arrival (crates/core/src/graphs/edge.rs); storage is described
-- in src/graphs/sql.rs.

-- The registry. A graph `schema.name` owns the tables name_out, name_in, name_counts and
-- name_lists.
CREATE TABLE collect.graph_defs (
    schema name NOT NULL,
    name text NOT NULL,
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Whether writes keep name_lists, from which set operations read.
    compact_lists boolean NOT NULL DEFAULT true,
    PRIMARY KEY (schema, name)
);
COMMENT ON TABLE collect.graph_defs IS 'Graphs made by collect.create_graph';

-- SQL without SET, every name qualified: inlined into every definition check (collections.sql).
CREATE FUNCTION collect._graph_verify(d collect.graph_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_out') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_in') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_counts') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_lists') IS NOT NULL
$$;
SELECT collect._register_capability('graph', 'collect.graph_defs', 'collect._graph_verify', 'collect.graphs');

CREATE FUNCTION collect._graph_def(schema name, name text) RETURNS collect.graph_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := (SELECT d FROM collect.graph_defs d WHERE (d.schema, d.name) = (_graph_def.schema, _graph_def.name));
BEGIN
    PERFORM collect._check_definition(def.name IS NOT NULL, collect._graph_verify(def), 'graph', name, def.owner);
    RETURN def;
END $$;

-- The stored code of a state, or an error naming it.
-- A state's stored code and back (crates/core/src/graphs/edge.rs holds the one list).
CREATE FUNCTION collect._edge_state_code(state text) RETURNS smallint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_state_code_wrapper';
CREATE FUNCTION collect._edge_state_name(code smallint) RETURNS text
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_state_name_wrapper';

CREATE FUNCTION collect._edge_bad_argument(what text, value text, hint text) RETURNS integer
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RAISE EXCEPTION 'invalid %: %', what, quote_literal(value) USING ERRCODE = 'invalid_parameter_value', HINT = hint;
END $$;

-- What the reads run on a graph's list in `direction` (crates/core/src/graphs/generate.rs), by
-- name: position, page, page_before, count (and the direction code it takes), state, check.
-- An unknown direction is 22023 with a hint.
CREATE FUNCTION collect._graph_reads(schema text, name text, direction text) RETURNS jsonb
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_reads_wrapper';

-- The tables of a new graph (crates/core/src/graphs/generate.rs): {tables: {out, inward,
-- counts, lists}, create: the statements that make them}.
CREATE FUNCTION collect._graph_create_sql(schema text, name text) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_create_sql_wrapper';

CREATE FUNCTION collect._create_graph(schema name, name text, compact_lists boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ddl jsonb;
    statement text;
BEGIN
    PERFORM collect._check_name('graph', name);
    IF schema IS NULL THEN
        RAISE EXCEPTION 'no schema to create graph "%" in', name
            USING ERRCODE = 'invalid_schema_name', HINT = 'Set search_path to a schema you can create tables in.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('collect.graph:' || schema || '.' || name));
    IF EXISTS (SELECT FROM collect.graph_defs d WHERE d.schema = _create_graph.schema AND d.name = _create_graph.name) THEN
        RAISE EXCEPTION 'graph %.% already exists', quote_ident(schema), name
            USING ERRCODE = 'duplicate_object', HINT = 'Drop it with collect.drop_graph(name), or pick another name.';
    END IF;
    ddl := collect._graph_create_sql(schema, name);
    FOR statement IN SELECT jsonb_array_elements_text(ddl->'create') LOOP
        EXECUTE statement;
    END LOOP;
    -- On Citus, FlockDB's partitioning: forward edges by source, backward by destination,
    -- counts and compact lists by node, all co-located, so a node's list, its counts and its
    -- blocks live on one shard.
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM collect._citus_distribute((ddl->'tables'->>'out')::regclass, 'source');
        PERFORM collect._citus_distribute((ddl->'tables'->>'inward')::regclass, 'destination', (ddl->'tables'->>'out')::regclass);
        PERFORM collect._citus_distribute((ddl->'tables'->>'counts')::regclass, 'node', (ddl->'tables'->>'out')::regclass);
        PERFORM collect._citus_distribute((ddl->'tables'->>'lists')::regclass, 'node', (ddl->'tables'->>'out')::regclass);
    END IF;
    IF compact_lists IS NULL THEN
        RAISE EXCEPTION 'compact_lists must be true or false, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO collect.graph_defs (schema, name, compact_lists) VALUES (schema, name, compact_lists);
END $$;

CREATE FUNCTION collect.create_graph(name text, compact_lists boolean DEFAULT true) RETURNS void
LANGUAGE sql AS $$
    SELECT collect._create_graph(
               CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(name)) OPERATOR(pg_catalog.=) 2 THEN r.schema
                    ELSE pg_catalog.current_schema() END,
               r.object_name, compact_lists)
      FROM collect._resolve('graph', name, '_out') r
$$;
COMMENT ON FUNCTION collect.create_graph(text, boolean) IS
    'Defines a graph; creates name_out, name_in, name_counts and name_lists in the current schema (distributed when Citus is there). Without compact_lists, writes are cheaper and set operations read the edge tables';

CREATE FUNCTION collect._drop_graph(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('graph', schema, name, ARRAY[name || '_out', name || '_in', name || '_counts', name || '_lists'])
$$;

CREATE FUNCTION collect.drop_graph(name text) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._drop_graph(r.schema, r.object_name) FROM collect._resolve('graph', name, '_out') r $$;

-- ---- writes ----

CREATE FUNCTION collect._graph_write(schema text, name text, sources bigint[], destinations bigint[], state smallint,
                                     positions bigint[], at_us bigint) RETURNS bigint
    LANGUAGE c SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan
    AS 'MODULE_PATHNAME', 'graph_write_wrapper';
CREATE FUNCTION collect._graph_archive(schema text, name text, node bigint, archive boolean, at_us bigint) RETURNS bigint
    LANGUAGE c SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan
    AS 'MODULE_PATHNAME', 'graph_archive_wrapper';

-- An instant as the microseconds since 1970 that _graph_write and _graph_archive take (exact:
-- extract gives a numeric); a STABLE SQL expression, inlined into the writers.
CREATE FUNCTION collect._edge_instant(at timestamptz) RETURNS bigint
    STABLE PARALLEL SAFE LANGUAGE sql
    AS $$ SELECT (EXTRACT(epoch FROM at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 $$;

-- The writers are one SELECT without FROM, which Postgres inlines into the caller's statement
-- (no SQL function to plan at each call); _resolve reads the syscaches, so calling it per field
-- costs little. _graph_write checks its arguments and the graph's definition itself.
CREATE FUNCTION collect.edge_add(graph text, source bigint, destination bigint, edge_position bigint DEFAULT NULL,
                                 at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE sql AS $$
    SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination],
                                collect._edge_state_code('normal'),
                                CASE WHEN edge_position IS NULL THEN NULL ELSE ARRAY[edge_position] END, collect._edge_instant(at))
$$;
COMMENT ON FUNCTION collect.edge_add(text, bigint, bigint, bigint, timestamptz) IS
    'Adds (or restores) an edge, if at is newer than its last write; returns 1 if it changed';

CREATE FUNCTION collect.edge_remove(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], collect._edge_state_code('removed'), NULL, collect._edge_instant(at)) $$;

CREATE FUNCTION collect.edge_negate(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], collect._edge_state_code('negative'), NULL, collect._edge_instant(at)) $$;

-- Fan-out from one source, and pairs from parallel arrays: one call, edges locked in key order.
CREATE FUNCTION collect.edge_add_many(graph text, source bigint, destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, pg_catalog.array_fill(source, ARRAY[pg_catalog.cardinality(destinations)]),
                                                  destinations, collect._edge_state_code('normal'), positions, collect._edge_instant(at)) $$;
CREATE FUNCTION collect.edge_add_pairs(graph text, sources bigint[], destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, collect._edge_state_code('normal'), positions, collect._edge_instant(at)) $$;
CREATE FUNCTION collect.edge_remove_pairs(graph text, sources bigint[], destinations bigint[],
                                         at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, collect._edge_state_code('removed'), NULL, collect._edge_instant(at)) $$;

CREATE FUNCTION collect._edge_archive(schema name, name text, node bigint, archive boolean, at timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF node IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'archiving needs a node and a time, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- _graph_archive checks the graph's definition itself.
    RETURN collect._graph_archive(schema, name, node, archive, collect._edge_instant(at));
END $$;

CREATE FUNCTION collect.edge_archive(graph text, node bigint, at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_archive(r.schema, r.object_name, node, true, at) FROM collect._resolve('graph', graph, '_out') r $$;
COMMENT ON FUNCTION collect.edge_archive(text, bigint, timestamptz) IS
    'Archives every normal or negative edge of a node, both directions (a suspended account), keeping positions';
CREATE FUNCTION collect.edge_unarchive(graph text, node bigint, at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._edge_archive(r.schema, r.object_name, node, false, at) FROM collect._resolve('graph', graph, '_out') r $$;

-- ---- reads ----

-- A page of a node's list, newest position first. `cursor` is the `cursor` of the last row of
-- the previous page (the next page follows it); with `backward`, of the first row of the
-- current page (the page before it). Each page is one index range, however deep.
CREATE FUNCTION collect._edges(schema name, name text, of_node bigint, direction text, state text, page_size integer,
                               after_cursor bigint, backward boolean)
    RETURNS TABLE (node bigint, edge_position bigint, cursor bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := collect._graph_def(schema, name);
    reads jsonb := collect._graph_reads(def.schema, def.name, direction);
    code smallint := collect._edge_state_code(state);
    after_position bigint;
BEGIN
    IF of_node IS NULL THEN
        PERFORM collect._edge_bad_argument('node', NULL, NULL);
    END IF;
    IF page_size IS NULL OR page_size < 1 OR page_size > 100000 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 100000, not %', coalesce(page_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(backward, false) AND after_cursor IS NULL THEN
        RAISE EXCEPTION 'paging backward needs a cursor' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass the cursor of the first row of the page you have; the page before it comes back.';
    END IF;
    IF after_cursor IS NOT NULL THEN
        EXECUTE reads->>'position' INTO after_position USING of_node, after_cursor;
        IF after_position IS NULL THEN
            RAISE EXCEPTION 'cursor % is not an edge of node % (%)', after_cursor, of_node, direction
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the cursor column of a row this function returned.';
        END IF;
    END IF;
    RETURN QUERY EXECUTE reads->>(CASE WHEN coalesce(backward, false) THEN 'page_before' ELSE 'page' END)
        USING of_node, code, after_position, after_cursor, page_size;
END $$;

CREATE FUNCTION collect.edges(graph text, node bigint, direction text DEFAULT 'out', state text DEFAULT 'normal',
                              page_size integer DEFAULT 100, cursor bigint DEFAULT NULL, backward boolean DEFAULT false)
    RETURNS TABLE (node bigint, edge_position bigint, cursor bigint)
    STABLE LANGUAGE sql AS $$
    SELECT e.* FROM collect._resolve('graph', graph, '_out') r,
                    collect._edges(r.schema, r.object_name, node, direction, state, page_size, cursor, backward) e
$$;

CREATE FUNCTION collect._edge_count(schema name, name text, node bigint, direction text, state text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := collect._graph_def(schema, name);
    reads jsonb := collect._graph_reads(def.schema, def.name, direction);
    counted bigint;
BEGIN
    IF node IS NULL THEN
        PERFORM collect._edge_bad_argument('node', NULL, NULL);
    END IF;
    EXECUTE reads->>'count' INTO counted USING node, reads->>'direction', collect._edge_state_code(state);
    RETURN counted;
END $$;

CREATE FUNCTION collect.edge_count(graph text, node bigint, direction text DEFAULT 'out', state text DEFAULT 'normal') RETURNS bigint
    STABLE LANGUAGE sql AS $$ SELECT collect._edge_count(r.schema, r.object_name, node, direction, state)
                                FROM collect._resolve('graph', graph, '_out') r $$;

CREATE FUNCTION collect._edge_state(schema name, name text, source bigint, destination bigint) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := collect._graph_def(schema, name);
    code smallint;
BEGIN
    IF source IS NULL OR destination IS NULL THEN
        PERFORM collect._edge_bad_argument('node', NULL, NULL);
    END IF;
    EXECUTE collect._graph_reads(def.schema, def.name, 'out')->>'state' INTO code USING source, destination;
    RETURN collect._edge_state_name(code);
END $$;

CREATE FUNCTION collect.edge_state(graph text, source bigint, destination bigint) RETURNS text
    STABLE LANGUAGE sql AS $$ SELECT collect._edge_state(r.schema, r.object_name, source, destination)
                                FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_exists(graph text, source bigint, destination bigint) RETURNS boolean
    STABLE LANGUAGE sql AS $$ SELECT coalesce(collect.edge_state(graph, source, destination) OPERATOR(pg_catalog.=) 'normal', false) $$;

-- Set operations over nodes' lists: exact, whatever their sizes and shards (src/graphs/sets.rs).
CREATE FUNCTION collect._graph_sets(schema text, name text, op text, nodes bigint[], direction text, state smallint)
    RETURNS bigint[] LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'graph_sets_wrapper';
CREATE FUNCTION collect._graph_sets_count(schema text, name text, op text, nodes bigint[], direction text, state smallint)
    RETURNS bigint LANGUAGE c STABLE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'graph_sets_count_wrapper';

-- The set operations check their arguments and the graph themselves (src/graphs/sets.rs). The
-- result comes as one array, unnested in the select list (so these wrappers inline): far cheaper per
-- row than a set-returning C function's calls (bench: 500k rows in 27 ms instead of ~200 ms).
CREATE FUNCTION collect.edge_intersect(graph text, nodes bigint[], direction text DEFAULT 'out') RETURNS SETOF bigint
    STABLE ROWS 1000 LANGUAGE sql AS $$
    SELECT pg_catalog.unnest(collect._graph_sets(r.schema, r.object_name, 'intersect', nodes, direction, 0::pg_catalog.int2))
      FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_union(graph text, nodes bigint[], direction text DEFAULT 'out') RETURNS SETOF bigint
    STABLE ROWS 1000 LANGUAGE sql AS $$
    SELECT pg_catalog.unnest(collect._graph_sets(r.schema, r.object_name, 'union', nodes, direction, 0::pg_catalog.int2))
      FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_difference(graph text, a bigint, b bigint, direction text DEFAULT 'out') RETURNS SETOF bigint
    STABLE ROWS 1000 LANGUAGE sql AS $$
    SELECT pg_catalog.unnest(collect._graph_sets(r.schema, r.object_name, 'difference', ARRAY[a, b], direction, 0::pg_catalog.int2))
      FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_intersect_count(graph text, nodes bigint[], direction text DEFAULT 'out') RETURNS bigint
    STABLE LANGUAGE sql AS $$
    SELECT collect._graph_sets_count(r.schema, r.object_name, 'intersect', nodes, direction, 0::pg_catalog.int2)
      FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_union_count(graph text, nodes bigint[], direction text DEFAULT 'out') RETURNS bigint
    STABLE LANGUAGE sql AS $$
    SELECT collect._graph_sets_count(r.schema, r.object_name, 'union', nodes, direction, 0::pg_catalog.int2)
      FROM collect._resolve('graph', graph, '_out') r $$;
CREATE FUNCTION collect.edge_difference_count(graph text, a bigint, b bigint, direction text DEFAULT 'out') RETURNS bigint
    STABLE LANGUAGE sql AS $$
    SELECT collect._graph_sets_count(r.schema, r.object_name, 'difference', ARRAY[a, b], direction, 0::pg_catalog.int2)
      FROM collect._resolve('graph', graph, '_out') r $$;

-- ---- checking ----

CREATE FUNCTION collect._graph_block_ids(ids bytea) RETURNS bigint[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'graph_block_ids_wrapper';
COMMENT ON FUNCTION collect._graph_block_ids(bytea) IS 'The ids of a block of a graph''s name_lists table';

CREATE FUNCTION collect._check_graph(schema name, name text) RETURNS TABLE (part text, mismatches bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := collect._graph_def(schema, name);
BEGIN
    RETURN QUERY EXECUTE collect._graph_reads(def.schema, def.name, 'out')->>'check' USING def.compact_lists;
END $$;

CREATE FUNCTION collect.check_graph(graph text) RETURNS TABLE (part text, mismatches bigint)
    STABLE LANGUAGE sql AS $$ SELECT c.* FROM collect._resolve('graph', graph, '_out') r, collect._check_graph(r.schema, r.object_name) c $$;
COMMENT ON FUNCTION collect.check_graph(text) IS
    'How many stored facts of a graph disagree: backward with forward edges, counts, compact lists, block bounds (all 0 when all is right)';

UPDATE collect.capabilities SET figures =
    'SELECT (SELECT jsonb_object_agg(collect._edge_state_name(state), n)
               FROM (SELECT state, sum(n) AS n FROM %1$s WHERE direction = ''o'' GROUP BY state) c) AS edges,
            (SELECT count(*) FROM (SELECT node FROM %1$s GROUP BY node HAVING sum(n) <> 0) x) AS nodes'
 WHERE kind = 'graph';

CREATE VIEW collect.graphs AS
SELECT d.schema, d.name, d.owner, f->'edges' AS edges, (f->>'nodes')::bigint AS nodes, d.compact_lists
  FROM collect.graph_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name || '_counts') AS counts) t,
       LATERAL collect._figures('graph', ARRAY[t.counts]) f;
GRANT SELECT ON collect.graphs TO PUBLIC;
