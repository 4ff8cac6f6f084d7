-- pg_collect 0.5.0 -> 0.6.0: edge writes call the write function directly (issue #30).
-- The writers keep their names, arguments, answers and errors; the PL/pgSQL step between them
-- and _graph_write (its NULL checks now made by _graph_write, with the same error) is gone,
-- so nothing stored is touched.

CREATE FUNCTION collect._edge_instant(at timestamptz) RETURNS bigint
    STABLE PARALLEL SAFE LANGUAGE sql
    AS $$ SELECT (EXTRACT(epoch FROM at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 $$;

CREATE OR REPLACE FUNCTION collect.edge_add(graph text, source bigint, destination bigint, edge_position bigint DEFAULT NULL,
                                 at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE sql AS $$
    SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination],
                                collect._edge_state_code('normal'),
                                CASE WHEN edge_position IS NULL THEN NULL ELSE ARRAY[edge_position] END, collect._edge_instant(at))
$$;

CREATE OR REPLACE FUNCTION collect.edge_remove(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], collect._edge_state_code('removed'), NULL, collect._edge_instant(at)) $$;

CREATE OR REPLACE FUNCTION collect.edge_negate(graph text, source bigint, destination bigint,
                                    at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, ARRAY[source], ARRAY[destination], collect._edge_state_code('negative'), NULL, collect._edge_instant(at)) $$;

CREATE OR REPLACE FUNCTION collect.edge_add_many(graph text, source bigint, destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, pg_catalog.array_fill(source, ARRAY[pg_catalog.cardinality(destinations)]),
                                                  destinations, collect._edge_state_code('normal'), positions, collect._edge_instant(at)) $$;

CREATE OR REPLACE FUNCTION collect.edge_add_pairs(graph text, sources bigint[], destinations bigint[], positions bigint[] DEFAULT NULL,
                                      at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, collect._edge_state_code('normal'), positions, collect._edge_instant(at)) $$;

CREATE OR REPLACE FUNCTION collect.edge_remove_pairs(graph text, sources bigint[], destinations bigint[],
                                         at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._graph_write((collect._resolve('graph', graph, '_out')).schema, (collect._resolve('graph', graph, '_out')).object_name, sources, destinations, collect._edge_state_code('removed'), NULL, collect._edge_instant(at)) $$;

CREATE OR REPLACE FUNCTION collect._edge_archive(schema name, name text, node bigint, archive boolean, at timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF node IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'archiving needs a node and a time, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- _graph_archive checks the graph's definition itself.
    RETURN collect._graph_archive(schema, name, node, archive, collect._edge_instant(at));
END $$;


DROP FUNCTION collect._edge_write(name, text, bigint[], bigint[], text, bigint[], timestamptz);
