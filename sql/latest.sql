-- The denormalized latest version: a parent row (a file) carries a copy of its newest eligible
-- child row (version), kept exact by statement-level triggers with transition tables on the
-- child. The SQL those triggers run is generated per parent with a latest copy (crates/core/src/latest/generate.rs)
-- as two plain PL/pgSQL functions owned by the caller, so plans are cached and pg_dump keeps
-- them.

CREATE TABLE collect.latest_defs (
    schema name NOT NULL,             -- the parent's schema and name
    name text NOT NULL,
    child_schema name NOT NULL,
    child_name text NOT NULL,
    parent_key text NOT NULL,
    key_type text NOT NULL,
    link text NOT NULL,
    order_by text[] NOT NULL,
    columns text[] NOT NULL,
    prefix text NOT NULL,
    filter text,
    refresh_function text NOT NULL,   -- quoted, qualified: <refresh>(keys key_type[]) → bigint
    trigger_function text NOT NULL,   -- quoted, qualified: <trigger>() → trigger
    trigger_tables text[] NOT NULL,   -- the child and its leaf partitions, quoted and qualified
    key_eq text NOT NULL DEFAULT 'pg_catalog.=', -- the key type's equality operator, qualified
    backfill_position text,           -- last parent key done by an unfinished backfill
    backfill_done bigint NOT NULL DEFAULT 0,
    backfilled_at timestamptz,
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema, name)
);
COMMENT ON TABLE collect.latest_defs IS 'Parents kept by collect.create_latest';
-- A function of the latest copy: it exists and belongs to the latest copy's owner.
CREATE FUNCTION collect._latest_owned_function(owner name, function text, args text) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT FROM pg_proc p
                    WHERE p.oid = to_regprocedure(function || '(' || args || ')') AND pg_has_role(owner, p.proowner, 'USAGE'));
END $$;

-- A row may be written only by a role that owns the parent and the generated functions, and
-- may put triggers on the child.
CREATE FUNCTION collect._latest_verify(d collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', d.schema, d.name)) AND pg_has_role(d.owner, c.relowner, 'USAGE'))
       AND EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', d.child_schema, d.child_name))
                                             AND has_table_privilege(d.owner, c.oid, 'TRIGGER'))
       AND collect._latest_owned_function(d.owner, d.refresh_function, d.key_type || '[]')
       AND collect._latest_owned_function(d.owner, d.trigger_function, '');
END $$;
SELECT collect._register_capability('latest', 'collect.latest_defs', 'collect._latest_verify', 'collect.latest');

-- The generated SQL, by name: {refresh_function, trigger_function, check}.
CREATE FUNCTION collect._latest_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'latest_statements_wrapper';
CREATE FUNCTION collect._latest_check_filter(filter text) RETURNS text
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'latest_check_filter_wrapper';

-- A latest copy's parent and child by their names, as the registry keeps them (NULL when no
-- table of that name exists). Citus rebuilds a table under the same name
-- (alter_distributed_table, undistribute_table), and a restore makes every table anew: names
-- find them again, numbers would not.
CREATE FUNCTION collect._latest_parent(def collect.latest_defs) RETURNS regclass
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT to_regclass(format('%I.%I', def.schema, def.name)) $$;
CREATE FUNCTION collect._latest_child(def collect.latest_defs) RETURNS regclass
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT to_regclass(format('%I.%I', def.child_schema, def.child_name)) $$;

-- Whether the latest copy's triggers are still in place on its child: false once the child
-- was dropped (and maybe made again), so that what is left of the copy can go.
CREATE FUNCTION collect._latest_in_place(def collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM pg_trigger t
                    WHERE t.tgrelid = collect._latest_child(def) AND t.tgfoid = 'collect._latest_insert()'::regprocedure
                      AND position(convert_to(def.refresh_function, 'UTF8') || '\x00'::bytea IN t.tgargs) = 1)
$$;

-- The latest copy kept on `parent`, by the parent's name; `usable`: one that still names
-- tables its owner owns (every use but its drop needs that).
CREATE FUNCTION collect._latest_def(parent regclass, usable boolean DEFAULT true) RETURNS collect.latest_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs;
BEGIN
    SELECT * INTO def FROM collect.latest_defs d
     WHERE (d.schema, d.name) = (SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = _latest_def.parent);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no latest copy is kept on %', coalesce(parent::text, 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'collect.latest lists the parents that have one, by name: a renamed parent has its copy again under its old name.';
    END IF;
    PERFORM collect._check_definition(true, NOT usable OR collect._latest_verify(def), 'latest', parent::text, def.owner);
    RETURN def;
END $$;

-- What the generator needs to know of a latest copy, from its definition and the catalogs.
CREATE FUNCTION collect._latest_spec(def collect.latest_defs) RETURNS jsonb
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'parent', jsonb_build_object('schema', def.schema, 'name', def.name),
        'child', jsonb_build_object('schema', def.child_schema, 'name', def.child_name),
        'parent_key', def.parent_key, 'key_type', def.key_type, 'key_eq', def.key_eq,
        -- None once the child is gone: what drop_latest generates then needs no child.
        'child_key', coalesce((SELECT array_agg(pa.attname::text ORDER BY k.ord)
                                 FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                                 JOIN pg_attribute pa ON pa.attnum = k.attnum
                                WHERE i.indrelid = collect._latest_child(def) AND i.indisprimary AND pa.attrelid = i.indrelid
                                  AND k.ord <= i.indnkeyatts), '{}'),
        'link', def.link, 'order_by', def.order_by, 'columns', def.columns, 'prefix', def.prefix, 'filter', def.filter,
        'refresh_function', jsonb_build_object('schema', (parse_ident(def.refresh_function))[1], 'name', (parse_ident(def.refresh_function))[2]),
        'trigger_function', jsonb_build_object('schema', (parse_ident(def.trigger_function))[1], 'name', (parse_ident(def.trigger_function))[2]))
$$;

-- The trigger's work on Citus shards, by name: {inserted_keys, deleted_keys, updated_keys,
-- keys_with_copies, lock, recompute, check, clear} (crates/core/src/latest/generate.rs).
CREATE FUNCTION collect._latest_shard_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'latest_shard_statements_wrapper';

-- The parent's copies of child `columns` it lacks, of `types` (format_type's text).
CREATE FUNCTION collect._latest_add_columns_sql(spec jsonb, columns text[], types text[]) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'latest_add_columns_sql_wrapper';

-- What a trigger of the latest copy whose refresh function is `refresh` (the triggers' first
-- argument: a name, which pg_dump keeps) works from when it fires on `rel`.
-- * On one node, `rel` is the child or a leaf partition the latest copy has triggers on, and the
--   spec comes from the registry.
-- * On Citus the triggers fire on the child's shards, on the workers, where the registry is
--   not: they carry the spec (`spec`), and it is mapped to the shards of parent and child
--   co-located with `rel`, which must belong to one role, so that a trigger planted on a
--   table of one role cannot write another's. The jobs of check_latest, repair_latest and
--   backfill_latest (collect._latest_on_shard) come the same way with a shard of the parent.
-- An error for anything else, so the trigger functions cannot be aimed elsewhere.
CREATE FUNCTION collect._latest_trigger_spec(rel regclass, refresh text, spec jsonb) RETURNS jsonb
    VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shard bigint := collect._citus_shard_id(rel);
    def collect.latest_defs;
    parent regclass;
    child regclass;
    logical regclass;
    parent_shard regclass;
    child_shard regclass;
BEGIN
    IF shard IS NULL THEN
        def := (SELECT d FROM collect.latest_defs d
                 WHERE d.refresh_function = refresh
                   AND (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = rel) = ANY (d.trigger_tables));
        IF def.name IS NULL THEN
            RAISE EXCEPTION 'no latest copy has triggers on %: a trigger or shard job of collect.create_latest was aimed at it', coalesce(rel::text, 'NULL')
                USING ERRCODE = 'triggered_action_exception', HINT = 'Only collect.create_latest makes these triggers.';
        END IF;
        RETURN collect._latest_spec(collect._latest_def(collect._latest_parent(def)));
    END IF;
    EXECUTE 'SELECT logicalrelid FROM pg_catalog.pg_dist_shard WHERE shardid = $1' INTO logical USING shard;
    parent := to_regclass(quote_ident(spec->'parent'->>'schema') || '.' || quote_ident(spec->'parent'->>'name'));
    child := to_regclass(quote_ident(spec->'child'->>'schema') || '.' || quote_ident(spec->'child'->>'name'));
    IF logical = child THEN
        child_shard := rel;
        parent_shard := to_regclass((collect._citus_colocated_shards(rel, ARRAY[parent]))[1]);
    ELSIF logical = parent THEN
        parent_shard := rel;
        child_shard := to_regclass((collect._citus_colocated_shards(rel, ARRAY[child]))[1]);
    END IF;
    IF parent_shard IS NULL OR child_shard IS NULL OR parent_shard = child_shard OR spec->>'refresh_function' IS NULL
       OR quote_ident(spec->'refresh_function'->>'schema') || '.' || quote_ident(spec->'refresh_function'->>'name') IS DISTINCT FROM refresh THEN
        RAISE EXCEPTION 'a shard of % is not one of those the latest copy % names, or not its owner''s', coalesce(logical::text, rel::text), refresh
            USING ERRCODE = 'triggered_action_exception',
                  HINT = CASE WHEN spec IS NULL THEN 'The tables were distributed after collect.create_latest: call collect.drop_latest, then collect.create_latest again.'
                              ELSE 'Only collect.create_latest makes these triggers.' END;
    END IF;
    IF spec->>'filter' IS NOT NULL THEN
        PERFORM collect._latest_check_filter(spec->>'filter');
    END IF;
    RETURN spec || jsonb_build_object(
        'parent', (SELECT jsonb_build_object('schema', n.nspname, 'name', c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent_shard),
        'child', (SELECT jsonb_build_object('schema', n.nspname, 'name', c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = child_shard));
END $$;

-- What collect._latest_insert (src/latest/insert.rs) prepares for the child, partition or
-- shard `rel` a statement inserted into (see collect._latest_trigger_spec): the latest copy's
-- spec, whether the ordering columns compare with pg_catalog's operators, and the key type
-- with its array type.
CREATE FUNCTION collect._latest_insert_plan(rel regclass, refresh text, spec jsonb) RETURNS text
    VOLATILE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    copy jsonb := collect._latest_trigger_spec(rel, refresh, spec);
BEGIN
    RETURN (copy || jsonb_build_object(
        'order_ops_builtin', NOT EXISTS (
            SELECT FROM jsonb_array_elements_text(copy->'order_by') o JOIN pg_attribute a ON a.attrelid = rel AND a.attname = o
             WHERE NOT EXISTS (SELECT FROM pg_operator op WHERE op.oprname IN ('>', '=') AND op.oprleft = a.atttypid
                                  AND op.oprright = a.atttypid AND op.oprnamespace = 'pg_catalog'::regnamespace
                                GROUP BY op.oprleft HAVING count(*) = 2)),
        'key_type_oid', to_regtype(copy->>'key_type')::oid::bigint,
        'key_array_oid', (SELECT typarray::bigint FROM pg_type WHERE oid = to_regtype(copy->>'key_type'))))::text;
END $$;
-- Its statements that carry a latest copy's filter run with search_path = pg_catalog, pg_temp,
-- like the generated functions (a filter is read with pg_catalog only); the function sets it
-- itself around them (src/latest/insert.rs, with_pinned_search_path) instead of through a
-- SET clause, which would cost every single-row INSERT a GUC change.
CREATE FUNCTION collect._latest_insert() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'latest_insert_wrapper';

-- UPDATE, DELETE and TRUNCATE on a shard of a child with a latest copy on Citus: what the generated
-- trigger function does, with statements made for the shards (collect._latest_trigger_spec).
-- TG_ARGV is (refresh function, spec) of the latest copy.
CREATE FUNCTION collect._latest_shard_sync() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    statements jsonb;
    keys text;
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' OR TG_OP NOT IN ('UPDATE', 'DELETE', 'TRUNCATE') OR TG_NARGS <> 2 THEN
        RAISE EXCEPTION 'collect._latest_shard_sync must be an AFTER UPDATE, DELETE or TRUNCATE statement trigger made by collect.create_latest'
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    statements := collect._latest_shard_statements(collect._latest_trigger_spec(TG_RELID, TG_ARGV[0], TG_ARGV[1]::jsonb));
    -- Citus fires TRUNCATE triggers on the distributed table (on the coordinator, from the
    -- registry), not on its shards, and before it truncates them: nothing is left, so every
    -- copy is cleared, in the same distributed transaction.
    IF collect._citus_shard_id(TG_RELID) IS NULL AND collect._distribution_column(TG_RELID) IS NOT NULL THEN
        IF TG_OP = 'TRUNCATE' THEN
            EXECUTE statements->>'clear';
        END IF;
        RETURN NULL;
    END IF;
    EXECUTE statements->>CASE TG_OP WHEN 'DELETE' THEN 'deleted_keys' WHEN 'UPDATE' THEN 'updated_keys' ELSE 'keys_with_copies' END INTO keys;
    IF keys <> '{}' THEN
        EXECUTE statements->>'lock' USING keys;
        EXECUTE statements->>'recompute' USING keys;
    END IF;
    RETURN NULL;
END $$;

-- One job of check_latest, repair_latest or backfill_latest on the shard `parent_shard` of a
-- parent with a latest copy on Citus and the child's co-located shard, run on its worker by
-- collect._citus_on_shards with the caller's privileges. `job` is {spec, job, keys}: 'check'
-- returns the rows check_latest reports, as a JSON array of [key, stored, expected];
-- 'refresh' recomputes the parents `keys` (the text of an array; those on other shards are
-- not found here) and 'repair' those the check reports, each returning how many changed.
CREATE FUNCTION collect._latest_on_shard(parent_shard regclass, job jsonb) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    spec jsonb := job->'spec';
    statements jsonb := collect._latest_shard_statements(collect._latest_trigger_spec(
        parent_shard, quote_ident(spec->'refresh_function'->>'schema') || '.' || quote_ident(spec->'refresh_function'->>'name'), spec));
    keys text := job->>'keys';
    found text;
    changed bigint;
BEGIN
    IF job->>'job' = 'check' THEN
        EXECUTE statements->>'check_found' INTO found;
        RETURN found;
    ELSIF job->>'job' = 'repair' THEN
        EXECUTE statements->>'check_keys' INTO keys;
    ELSIF job->>'job' IS DISTINCT FROM 'refresh' OR keys IS NULL THEN
        RAISE EXCEPTION 'unknown job %', job->>'job' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE statements->>'lock' USING keys;
    EXECUTE statements->>'recompute' USING keys;
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed::text;
END $$;

-- A latest copy of distributed tables (create_latest allows no other Citus tables).
CREATE FUNCTION collect._latest_distributed(def collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._distribution_column(collect._latest_parent(def)) IS NOT NULL
$$;

-- A job of collect._latest_on_shard on every shard of the parent: their answers.
CREATE FUNCTION collect._latest_on_shards(def collect.latest_defs, job text, keys text) RETURNS SETOF text
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._citus_on_shards(collect._latest_parent(def), 'collect._latest_on_shard',
                                    jsonb_build_object('spec', collect._latest_spec(def), 'job', job, 'keys', keys))
$$;

-- The column of `rel` named `col`, or an error naming both.
CREATE FUNCTION collect._latest_column(rel regclass, col text, role text) RETURNS pg_attribute
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a pg_attribute;
BEGIN
    SELECT * INTO a FROM pg_attribute WHERE attrelid = rel AND attname = col AND attnum > 0 AND NOT attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" (%) does not exist in %', col, role, rel USING ERRCODE = 'undefined_column';
    END IF;
    RETURN a;
END $$;

-- The triggers of a latest copy on its child `tables`: on one node, collect._latest_insert and the
-- generated function `sync`; on Citus, where they fire on the shards, collect._latest_insert
-- and collect._latest_shard_sync, carrying the latest copy's `spec` (triggers on distributed tables
-- need citus.enable_unsafe_triggers: these touch only co-located shards of their own).
CREATE FUNCTION collect._latest_trigger_sql(spec jsonb, tables text[], base text, refresh text, distributed boolean) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'latest_trigger_sql_wrapper';

CREATE FUNCTION collect._latest_make_triggers(tables regclass[], base text, refresh text, spec jsonb, distributed boolean) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
DECLARE
    statement text;
BEGIN
    FOREACH statement IN ARRAY collect._latest_trigger_sql(spec, ARRAY(SELECT t::text FROM unnest(tables) WITH ORDINALITY u(t, o) ORDER BY o),
                                                          base, refresh, distributed) LOOP
        EXECUTE statement;
    END LOOP;
END $$;

-- The generated functions and the revoking of PUBLIC's right to run them (`statements`). They
-- run on the node that holds the registry only: Citus would otherwise create them on every
-- node over one connection each, which it refuses after a parallel command (such as
-- create_distributed_table) in the same transaction; on the workers the triggers run
-- pg_collect's own functions.
CREATE FUNCTION collect._latest_create_functions(statements text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_ddl_propagation = off AS $$
DECLARE
    statement text;
BEGIN
    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
    END LOOP;
END $$;

CREATE FUNCTION collect.create_latest(
    parent regclass,
    child regclass,
    link text,
    order_by text,
    columns text[],
    prefix text DEFAULT 'latest_',
    filter text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_eq text;
    parent_schema name;
    parent_name name;
    child_schema name;
    child_name name;
    key_col pg_attribute;
    link_col pg_attribute;
    child_key text[];
    orders text[];
    ord_col text;
    colname text;
    child_col pg_attribute;
    existing pg_attribute;
    base text;
    refresh_name text;
    trigger_name text;
    generated jsonb;
    statement text;
    tables regclass[];
    distributed boolean;
    spec jsonb;
    stale collect.latest_defs;
BEGIN
    IF parent IS NULL OR child IS NULL OR link IS NULL OR order_by IS NULL OR columns IS NULL OR prefix IS NULL THEN
        RAISE EXCEPTION 'collect.create_latest: only filter may be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT n.nspname, r.relname INTO parent_schema, parent_name FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE r.oid = parent AND r.relkind IN ('r', 'p');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'parent % is not a table', parent USING ERRCODE = 'wrong_object_type';
    END IF;
    SELECT n.nspname, r.relname INTO child_schema, child_name FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE r.oid = child AND r.relkind IN ('r', 'p');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'child % is not a table', child USING ERRCODE = 'wrong_object_type';
    END IF;
    IF EXISTS (SELECT FROM unnest(ARRAY[parent, child]) u(rel), collect._citus_table(u.rel) c WHERE c.reference) THEN
        RAISE EXCEPTION 'collect.create_latest does not support Citus reference tables: % or % is one', parent, child
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Distribute the parent on its key and the child on the link, co-located, or keep both local.';
    END IF;
    IF parent = child THEN
        RAISE EXCEPTION 'parent and child must be different tables, not both %', parent USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT pa.* INTO key_col FROM pg_index i JOIN pg_attribute pa ON pa.attrelid = i.indrelid AND pa.attnum = i.indkey[0]
     WHERE i.indrelid = parent AND i.indisprimary AND i.indnkeyatts = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'parent % has no single-column primary key', parent
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The copy is kept per parent key: add a one-column PRIMARY KEY.';
    END IF;
    SELECT array_agg(pa.attname::text ORDER BY k.ord) INTO child_key
      FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
      JOIN pg_attribute pa ON pa.attnum = k.attnum
     WHERE i.indrelid = child AND i.indisprimary AND pa.attrelid = child AND k.ord <= i.indnkeyatts;
    IF child_key IS NULL THEN
        RAISE EXCEPTION 'child % has no primary key', child
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Ties between versions go to the larger child primary key: add a PRIMARY KEY.';
    END IF;

    link_col := collect._latest_column(child, link, 'link');
    -- On Citus every statement of the latest copy keeps to a parent shard and the child's shard
    -- co-located with it (collect._latest_trigger_spec).
    distributed := collect._distribution_column(parent) IS NOT NULL OR collect._distribution_column(child) IS NOT NULL;
    IF distributed AND EXISTS (SELECT FROM pg_class WHERE oid = child AND relkind = 'p') THEN
        RAISE EXCEPTION 'collect.create_latest does not support a partitioned child on Citus: % is one', child
            USING ERRCODE = 'feature_not_supported', HINT = 'Distribute a child that is not partitioned, or keep both tables local.';
    END IF;
    IF distributed AND (collect._distribution_column(parent) IS DISTINCT FROM key_col.attname::text
                        OR collect._distribution_column(child) IS DISTINCT FROM link OR NOT collect._citus_colocated(parent, child)) THEN
        RAISE EXCEPTION 'on Citus, % must be distributed on its key "%" and % on "%", co-located with it', parent, key_col.attname, child, link
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('SELECT create_distributed_table(%L, %L); SELECT create_distributed_table(%L, %L, colocate_with => %L);',
                                parent::text, key_col.attname, child::text, link, parent::text);
    END IF;
    IF link_col.atttypid <> key_col.atttypid THEN
        RAISE EXCEPTION 'link column "%" of % is %, but the key "%" of % is %', link, child, format_type(link_col.atttypid, link_col.atttypmod),
                        key_col.attname, parent, format_type(key_col.atttypid, key_col.atttypmod)
            USING ERRCODE = 'datatype_mismatch';
    END IF;

    orders := ARRAY(SELECT btrim(x) FROM unnest(string_to_array(order_by, ',')) x);
    IF cardinality(orders) = 0 OR '' = ANY (orders) THEN
        RAISE EXCEPTION 'invalid order_by: %', quote_literal(order_by)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name one or more child columns, separated by commas; the greatest value is the latest.';
    END IF;
    FOREACH ord_col IN ARRAY orders LOOP
        PERFORM collect._latest_column(child, ord_col, 'order_by');
    END LOOP;

    IF cardinality(columns) = 0 OR EXISTS (SELECT FROM unnest(columns) x GROUP BY x HAVING count(*) > 1 OR x IS NULL) THEN
        RAISE EXCEPTION 'columns must name distinct child columns, not %', columns USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH colname IN ARRAY columns LOOP
        child_col := collect._latest_column(child, colname, 'columns');
        IF octet_length(prefix || colname) > 63 THEN
            RAISE EXCEPTION 'parent column name "%" is longer than 63 bytes', prefix || colname USING ERRCODE = 'name_too_long';
        END IF;
        IF prefix || colname = key_col.attname THEN
            RAISE EXCEPTION 'copied column "%" would overwrite the primary key of %', prefix || colname, parent
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Choose another prefix.';
        END IF;
        SELECT * INTO existing FROM pg_attribute WHERE attrelid = parent AND attname = prefix || colname AND attnum > 0 AND NOT attisdropped;
        IF FOUND AND (existing.atttypid, existing.atttypmod) IS DISTINCT FROM (child_col.atttypid, child_col.atttypmod) THEN
            RAISE EXCEPTION 'column "%" of % is %, but "%" of % is %', prefix || colname, parent, format_type(existing.atttypid, existing.atttypmod),
                            colname, child, format_type(child_col.atttypid, child_col.atttypmod)
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;

    IF filter IS NOT NULL THEN
        filter := collect._latest_check_filter(filter);
        BEGIN
            -- Planning WHERE over the child checks its columns and that it is boolean.
            EXECUTE format('SELECT FROM %s WHERE (%s) LIMIT 0', child, E'\n' || filter || E'\n');
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'invalid filter %: %', quote_literal(filter), SQLERRM
                USING ERRCODE = SQLSTATE, HINT = 'A filter is one boolean expression over the child''s columns, such as NOT deleted.';
        END;
    END IF;

    -- One latest copy per parent; parent before child, like the triggers.
    PERFORM pg_advisory_xact_lock(hashtext('collect.latest'), parent::oid::int);
    -- A latest copy of this name whose child was dropped (and the parent with it, or after it)
    -- leaves its functions and row behind: they go. One whose triggers are in place (its
    -- parent dropped alone and made again, or both rebuilt by Citus) is the parent's already.
    SELECT * INTO stale FROM collect.latest_defs d WHERE d.schema = parent_schema AND d.name = parent_name;
    IF FOUND AND NOT collect._latest_in_place(stale) THEN
        PERFORM collect._latest_drop(stale, false);
    END IF;
    IF EXISTS (SELECT FROM collect.latest_defs d WHERE d.schema = parent_schema AND d.name = parent_name) THEN
        RAISE EXCEPTION 'a latest copy is already kept on %', parent
            USING ERRCODE = 'duplicate_object', HINT = 'collect.drop_latest removes it.';
    END IF;
    base := left(parent_name, 40);
    refresh_name := base || '_latest_refresh';
    trigger_name := base || '_latest_sync';
    IF EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = parent_schema AND p.proname IN (refresh_name, trigger_name)) THEN
        RAISE EXCEPTION 'function %.% or %.% already exists', quote_ident(parent_schema), quote_ident(refresh_name),
                        quote_ident(parent_schema), quote_ident(trigger_name) USING ERRCODE = 'duplicate_function';
    END IF;

    -- The key type's own equality operator (its default btree class), named in the generated
    -- SQL, which pins search_path.
    SELECT format('%I.%s', n.nspname, o.oprname) INTO key_eq
      FROM pg_opclass c
      JOIN pg_am am ON am.oid = c.opcmethod AND am.amname = 'btree'
      JOIN pg_amop a ON a.amopfamily = c.opcfamily AND a.amoplefttype = c.opcintype AND a.amoprighttype = c.opcintype AND a.amopstrategy = 3
      JOIN pg_operator o ON o.oid = a.amopopr
      JOIN pg_namespace n ON n.oid = o.oprnamespace
     WHERE c.opcdefault AND c.opcintype = key_col.atttypid;
    key_eq := coalesce(key_eq, 'pg_catalog.=');
    -- The definition as it will be registered, so that its spec is built as every later one is.
    spec := collect._latest_spec(jsonb_populate_record(NULL::collect.latest_defs, jsonb_build_object(
        'schema', parent_schema, 'name', parent_name, 'child_schema', child_schema, 'child_name', child_name,
        'parent_key', key_col.attname, 'key_type', format_type(key_col.atttypid, key_col.atttypmod), 'key_eq', key_eq,
        'link', link, 'order_by', orders, 'columns', columns, 'prefix', prefix, 'filter', filter,
        'refresh_function', format('%I.%I', parent_schema, refresh_name), 'trigger_function', format('%I.%I', parent_schema, trigger_name))));
    generated := collect._latest_statements(spec);
    PERFORM collect._latest_create_functions(ARRAY[generated->>'refresh_function', generated->>'trigger_function']
                                             || ARRAY(SELECT jsonb_array_elements_text(generated->'revoke_functions')));

    -- The copies the parent lacks, each of its child column's type.
    FOREACH statement IN ARRAY collect._latest_add_columns_sql(spec,
        ARRAY(SELECT c FROM unnest(columns) WITH ORDINALITY u(c, o)
               WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = parent AND attname = prefix || c AND NOT attisdropped) ORDER BY o),
        ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(columns) WITH ORDINALITY u(c, o), collect._latest_column(child, u.c, 'columns') a
               WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = parent AND attname = prefix || c AND NOT attisdropped) ORDER BY o)) LOOP
        EXECUTE statement;
    END LOOP;

    -- Statement triggers fire for the table a statement names: the child for writes through
    -- it, and each leaf partition for writes aimed at that partition.
    tables := ARRAY[child] || ARRAY(SELECT relid FROM pg_partition_tree(child) WHERE isleaf AND relid <> child ORDER BY relid);
    PERFORM collect._latest_make_triggers(tables, base, format('%I.%I', parent_schema, refresh_name), spec, distributed);

    IF NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = child AND i.indkey[0] = link_col.attnum
                      AND i.indkey[1] = (collect._latest_column(child, orders[1], 'order_by')).attnum) THEN
        RAISE WARNING 'no index on % starts with (%, %): every write will scan the versions of its parents', child, quote_ident(link), quote_ident(orders[1])
            USING HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I, %s);', child, link,
                                (SELECT string_agg(format('%I', x), ', ') FROM unnest(orders) x));
    END IF;

    INSERT INTO collect.latest_defs (schema, name, child_schema, child_name, parent_key, key_type, link, order_by, columns, prefix, filter,
                                     refresh_function, trigger_function, trigger_tables, key_eq)
    VALUES (parent_schema, parent_name, child_schema, child_name, key_col.attname, format_type(key_col.atttypid, key_col.atttypmod), link, orders,
            columns, prefix, filter, format('%I.%I', parent_schema, refresh_name), format('%I.%I', parent_schema, trigger_name),
            ARRAY(SELECT format('%I.%I', n.nspname, c.relname)
                    FROM unnest(tables) WITH ORDINALITY t(rel, o) JOIN pg_class c ON c.oid = t.rel JOIN pg_namespace n ON n.oid = c.relnamespace
                   ORDER BY t.o),
            key_eq);
END $$;
COMMENT ON FUNCTION collect.create_latest(regclass, regclass, text, text, text[], text, text) IS
    'Keeps a copy of each parent''s latest child row on the parent (existing rows: collect.backfill_latest)';

-- One batch of backfill_latest: the next batch_size parents after the stored position,
-- recomputed; returns how many parents it saw (0 when done). The procedure around it
-- commits between batches (a procedure that commits cannot pin search_path).
CREATE FUNCTION collect._backfill_batch(parent regclass, batch_size integer, started timestamptz, done_at_start bigint)
    RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
    generated jsonb := collect._latest_statements(collect._latest_spec(def));
    last text := def.backfill_position;
    done bigint := CASE WHEN def.backfill_position IS NULL THEN 0 ELSE def.backfill_done END;
    total bigint;
    keys text;
    n bigint;
    batch_changed bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 1000000, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('latest copy of %s', parent),
                                  format('SELECT collect._backfill_batch(%L::pg_catalog.regclass, %s, %L, %s)', parent::oid, batch_size, started, done_at_start))::bigint;
    END IF;
    EXECUTE generated->>(CASE WHEN last IS NULL THEN 'backfill_first' ELSE 'backfill_next' END)
        INTO keys, n, last USING batch_size, def.backfill_position;
    IF n = 0 THEN
        UPDATE collect.latest_defs d SET backfill_position = NULL, backfill_done = done, backfilled_at = now()
         WHERE (d.schema, d.name) = (def.schema, def.name);
        RAISE NOTICE 'backfill_latest %: done, % parents', parent, done;
        RETURN 0;
    END IF;
    IF collect._latest_distributed(def) THEN
        batch_changed := (SELECT sum(changed::bigint) FROM collect._latest_on_shards(def, 'refresh', keys) changed);
    ELSE
        EXECUTE generated->>'refresh' INTO batch_changed USING keys;
    END IF;
    done := done + n;
    UPDATE collect.latest_defs d SET backfill_position = last, backfill_done = done WHERE (d.schema, d.name) = (def.schema, def.name);
    -- The planner's estimate; a table never analyzed has none, and is counted once.
    total := (SELECT reltuples FROM pg_class WHERE oid = parent)::bigint;
    IF total < 0 THEN
        EXECUTE generated->>'count_parents' INTO total;
    END IF;
    RAISE NOTICE 'backfill_latest %: % of ~% parents, % changed, % rows/s', parent, done, greatest(total, done), batch_changed,
        round((done - done_at_start) / greatest(extract(epoch FROM clock_timestamp() - started), 0.001));
    RETURN n;
END $$;

-- Existing rows, a batch of parents per transaction, resumable, while the application writes.
CREATE PROCEDURE collect.backfill_latest(parent regclass, batch_size integer DEFAULT 10000)
LANGUAGE plpgsql AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
    started timestamptz := pg_catalog.clock_timestamp();
    done_at_start bigint := coalesce(def.backfill_done, 0);
    seen bigint;
BEGIN
    IF def.backfill_position IS NOT NULL THEN
        RAISE NOTICE 'backfill_latest %: resuming after key % (% done)', parent, def.backfill_position, def.backfill_done;
    ELSE
        done_at_start := 0;
    END IF;
    LOOP
        seen := collect._backfill_batch(parent, batch_size, started, done_at_start);
        COMMIT;
        EXIT WHEN seen OPERATOR(pg_catalog.=) 0;
    END LOOP;
END $$;
COMMENT ON PROCEDURE collect.backfill_latest(regclass, integer) IS
    'Fills the latest-version copies of existing parents in committed batches (resumable)';

CREATE FUNCTION collect.check_latest(parent regclass) RETURNS TABLE(parent_key text, stored jsonb, expected jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
BEGIN
    IF NOT collect._acting_as(def.owner) THEN
        -- A latest copy's filter may call the owner's functions: the check runs as the owner.
        RETURN QUERY SELECT r->>0, r->1, r->2
          FROM jsonb_array_elements(collect._owner_run(def.owner, format('latest copy of %s', parent), format(
                   'SELECT coalesce(jsonb_agg(jsonb_build_array(c.parent_key, c.stored, c.expected)), ''[]'') FROM collect.check_latest(%L::pg_catalog.regclass) c',
                   parent::oid))::jsonb) r;
        RETURN;
    END IF;
    IF collect._latest_distributed(def) THEN
        RETURN QUERY EXECUTE collect._latest_statements(collect._latest_spec(def))->>'check_on_shards' USING def;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE collect._latest_statements(collect._latest_spec(def))->>'check';
END $$;
COMMENT ON FUNCTION collect.check_latest(regclass) IS 'Parents whose stored latest-version copy differs from their versions';

CREATE FUNCTION collect.repair_latest(parent regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
    changed bigint;
BEGIN
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('latest copy of %s', parent), format('SELECT collect.repair_latest(%L::pg_catalog.regclass)', parent::oid))::bigint;
    END IF;
    IF collect._latest_distributed(def) THEN
        RETURN (SELECT sum(n::bigint) FROM collect._latest_on_shards(def, 'repair', NULL) n);
    END IF;
    EXECUTE collect._latest_statements(collect._latest_spec(def))->>'repair' INTO changed;
    RETURN changed;
END $$;
COMMENT ON FUNCTION collect.repair_latest(regclass) IS 'Rewrites the copies collect.check_latest reports; returns how many changed';

-- Removes latest copy `def`: its triggers, its generated functions and its row (and with
-- drop_columns, the copies). On Citus, the generated functions may have been created on every
-- node (for the triggers of tables distributed after create_latest), and Citus drops them only in
-- sequential mode.
CREATE FUNCTION collect._latest_drop(def collect.latest_defs, drop_columns boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on
    SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
    parent regclass := collect._latest_parent(def);
    sync regprocedure := to_regprocedure(def.trigger_function || '()');
    generated jsonb;
    statement text;
BEGIN
    PERFORM collect._check_owner(def.owner, format('the latest copy on %I.%I', def.schema, def.name));
    PERFORM collect._lock_definition('latest', def.schema, def.name);
    generated := collect._latest_statements(collect._latest_spec(def));
    -- The triggers are found by their function, so renamed tables and partitions added or
    -- dropped since do not matter: those of the generated function first, which is then
    -- dropped, and then pg_collect's.
    PERFORM collect._drop_trigger(t.tgname, t.tgrelid) FROM (SELECT * FROM pg_trigger t WHERE t.tgfoid = sync ORDER BY t.tgrelid, t.tgname) t;
    FOR statement IN SELECT jsonb_array_elements_text(generated->'drop_functions') LOOP
        EXECUTE statement;
    END LOOP;
    PERFORM collect._drop_trigger(t.tgname, t.tgrelid)
       FROM (SELECT * FROM pg_trigger t
              WHERE t.tgfoid IN ('collect._latest_insert()'::regprocedure, 'collect._latest_shard_sync()'::regprocedure)
                AND EXISTS (SELECT FROM pg_class c WHERE c.oid = t.tgrelid AND pg_has_role(def.owner, c.relowner, 'USAGE')
                               AND collect._citus_shard_id(c.oid) IS NULL)
                AND position(convert_to(def.refresh_function, 'UTF8') || '\x00'::bytea IN t.tgargs) = 1
              ORDER BY t.tgrelid, t.tgname) t;
    IF drop_columns AND parent IS NOT NULL THEN
        FOR statement IN SELECT jsonb_array_elements_text(generated->'drop_columns') LOOP
            EXECUTE statement;
        END LOOP;
    END IF;
    PERFORM collect._drop_definition('latest', def.schema, def.name, '{}');
END $$;

CREATE FUNCTION collect.drop_latest(parent regclass, drop_columns boolean DEFAULT false) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._latest_drop(collect._latest_def(parent, usable => false), drop_columns)
$$;
COMMENT ON FUNCTION collect.drop_latest(regclass, boolean) IS 'Removes the triggers (and with drop_columns, the copies)';

-- Backfills not done yet, as one-off work (collect.maintenance).
CREATE FUNCTION collect._latest_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'latest', format('%I.%I', d.schema, d.name), 'backfill', format('CALL collect.backfill_latest(%L)', format('%I.%I', d.schema, d.name)),
           NULL::interval, d.backfill_position IS NOT NULL OR d.backfilled_at IS NULL, d.owner,
           format('SELECT collect._backfill_batch(%L, 10000, pg_catalog.now(), 0) OPERATOR(pg_catalog.=) 0', format('%I.%I', d.schema, d.name))
      FROM collect.latest_defs d ORDER BY 2
$$;
UPDATE collect.capabilities SET maintenance = 'collect._latest_maintenance' WHERE kind = 'latest';

CREATE VIEW collect.latest AS
SELECT collect._latest_parent(d) AS parent, collect._latest_child(d) AS child, d.link, d.order_by, d.columns,
       ARRAY(SELECT d.prefix || c FROM unnest(d.columns) c) AS parent_columns,
       d.filter,
       CASE WHEN d.backfilled_at IS NOT NULL AND d.backfill_position IS NULL THEN 'done'
            WHEN d.backfill_position IS NOT NULL THEN 'in progress'
            ELSE 'not started' END AS backfill,
       d.backfill_done AS backfilled_parents, d.backfilled_at, d.trigger_tables, d.owner, d.created_at
  FROM collect.latest_defs d;
GRANT SELECT ON collect.latest TO PUBLIC;
