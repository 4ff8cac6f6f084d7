-- pg_collect 0.4.0 -> 0.5.0: collection appends and reads of one key without planning per
-- call, and definition checks inlined into the statements that make them (issue #30).
-- The functions keep their names, arguments and answers; only how they are computed changes,
-- so nothing stored is touched.

CREATE OR REPLACE FUNCTION collect._collection_verify(d collect.collection_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT d.key_type::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ('{25,20,2950}'::pg_catalog.oid[])
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_pending') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_base') IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION collect.append(collection text, key text, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_text_wrapper';

CREATE OR REPLACE FUNCTION collect.append(collection text, key bigint, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_bigint_wrapper';

CREATE OR REPLACE FUNCTION collect.append(collection text, key uuid, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_uuid_wrapper';

CREATE OR REPLACE FUNCTION collect.read(collection text, key text) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_text_wrapper';

CREATE OR REPLACE FUNCTION collect.read(collection text, key bigint) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_bigint_wrapper';

CREATE OR REPLACE FUNCTION collect.read(collection text, key uuid) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_uuid_wrapper';

CREATE OR REPLACE FUNCTION collect._graph_verify(d collect.graph_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_out') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_in') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_counts') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_lists') IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION collect._archive_verify(d collect.archive_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_lumps') IS NOT NULL
       AND collect._owned_relation(d.owner, d.source_schema, d.source_name) IS NOT NULL
$$;
