-- Minute rollups maintained at ingest (Druid, as Plumbr used it). Each INSERT or COPY into a
-- source is aggregated in one pass over its transition table and merged into the rollup with
-- one upsert per touched row; coarser tiers are fed by the same statement.

-- The registry. A rollup `schema.name` is the table schema.name (with schema.name_stale), in
-- the schema of its source; its tiers are tables of the same schema. Rows are trusted only
-- while their owner owns those tables and may put triggers on the source (sql/registry.sql).
-- The SQL the ingest trigger runs is derived from these columns at use, never stored.
-- What create_rollup and add_tier accept, as checks on the registry's columns (rows are
-- written by their owners): a granularity of whole days at most, no months (buckets are fixed
-- lengths) and at most 100 years' worth; tiers an array of {name, granularity, keep} whose
-- intervals are such. A forged row would otherwise overflow the interval arithmetic of
-- collect.jobs and collect.rollups for every role.
CREATE FUNCTION collect._rollup_granularity_ok(granularity interval) RETURNS boolean
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT granularity > interval '0' AND extract(month FROM granularity) = 0 AND extract(year FROM granularity) = 0
       AND granularity <= interval '36500 days'
$$;
CREATE FUNCTION collect._rollup_tiers_ok(tiers jsonb) RETURNS boolean
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tier jsonb;
BEGIN
    IF jsonb_typeof(tiers) <> 'array' THEN
        RETURN false;
    END IF;
    FOR tier IN SELECT * FROM jsonb_array_elements(tiers) LOOP
        IF jsonb_typeof(tier) <> 'object' OR jsonb_typeof(tier->'name') <> 'string'
           OR jsonb_typeof(tier->'granularity') <> 'string'
           OR NOT collect._rollup_granularity_ok((tier->>'granularity')::interval)
           OR (tier->'keep' IS NOT NULL AND jsonb_typeof(tier->'keep') <> 'null'
               AND NOT (jsonb_typeof(tier->'keep') = 'string' AND (tier->>'keep')::interval > interval '0'
                        AND (tier->>'keep')::interval <= interval '36500 days')) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
    RETURN false;
END $$;

CREATE TABLE collect.rollup_defs (
    schema name NOT NULL,
    name text NOT NULL,
    source_schema name NOT NULL,
    source_name name NOT NULL,
    time_column text NOT NULL,
    dimensions text[] NOT NULL,
    metrics jsonb NOT NULL CHECK (jsonb_typeof(metrics) = 'array'), -- [{"name", "kind", "column", "k", "precision", "type"}] (crates/core/src/rollups/generate.rs)
    granularity interval NOT NULL CHECK (collect._rollup_granularity_ok(granularity)),
    keep_raw boolean NOT NULL DEFAULT true,
    time_type text NOT NULL,         -- the time column's type, as format_type writes it
    -- On Citus, the source's distribution column (one of the dimensions): the rollup's tables
    -- are distributed on it, co-located with the source.
    distribution_column text,
    keep interval CHECK (keep > interval '0' AND keep <= interval '36500 days'), -- retention of the rollup table itself
    tiers jsonb NOT NULL DEFAULT '[]' CHECK (collect._rollup_tiers_ok(tiers)), -- [{"name", "granularity", "keep"}]: tables schema.name
    -- Bumped when tiers change. The ingest trigger carries the version it was made for: a
    -- statement whose snapshot still shows an older definition is refused (40001), never
    -- counted in fewer tables than the trigger it fired.
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema, name)
);
COMMENT ON TABLE collect.rollup_defs IS 'Rollups made by collect.create_rollup';

CREATE FUNCTION collect._rollup_source(d collect.rollup_defs) RETURNS regclass
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = d.source_schema AND c.relname = d.source_name
               AND has_table_privilege(d.owner, c.oid, 'TRIGGER'));
END $$;

-- A row may be written only by a role that owns every table it names and may put triggers
-- on its source.
CREATE FUNCTION collect._rollup_verify(d collect.rollup_defs) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN collect._owned_relation(d.owner, d.schema, d.name) IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name || '_stale') IS NOT NULL
       AND collect._rollup_source(d) IS NOT NULL
       AND CASE WHEN jsonb_typeof(d.tiers) <> 'array' THEN false
                ELSE NOT EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t
                                  WHERE collect._owned_relation(d.owner, d.schema, t->>'name') IS NULL) END;
END $$;
SELECT collect._register_capability('rollup', 'collect.rollup_defs', 'collect._rollup_verify', 'collect.rollups');

-- Buckets are aligned to this origin, so every tier's buckets nest in the coarser ones.
CREATE FUNCTION collect._bucket_origin() RETURNS timestamptz
    IMMUTABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT '2000-01-03 00:00:00+00'::pg_catalog.timestamptz $$;

-- Why a rollup's source no longer feeds it, or NULL: the table is gone, or a table was made
-- again under its name (without the rollup's triggers, which went with the old one).
CREATE FUNCTION collect._rollup_source_problem(d collect.rollup_defs) RETURNS text
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN source.oid IS NULL THEN format('its source %I.%I does not exist', d.source_schema, d.source_name)
        WHEN NOT EXISTS (SELECT FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                          WHERE t.tgrelid = source.oid AND t.tgname = d.name || '_ingest'
                            AND p.pronamespace = 'collect'::regnamespace AND p.proname IN ('_rollup_ingest', '_rollup_flush'))
        THEN format('its source %I.%I was dropped and made again, and its rows are not rolled up', d.source_schema, d.source_name)
    END
      FROM (SELECT) one
      LEFT JOIN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = d.source_schema AND c.relname = d.source_name) source ON true
$$;

-- The definition of rollup schema.name, checked against the catalogs.
CREATE FUNCTION collect._rollup_def(schema name, name text) RETURNS collect.rollup_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := (SELECT d FROM collect.rollup_defs d WHERE (d.schema, d.name) = (_rollup_def.schema, _rollup_def.name));
    problem text := CASE WHEN def.name IS NOT NULL THEN collect._rollup_source_problem(def) END;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'rollup %.% no longer rolls anything up: %', quote_ident(def.schema), quote_ident(def.name), problem
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('collect.drop_rollup(%L) drops it and its tables; then create it again over the new table (its rows are rolled up then).',
                                format('%I.%I', def.schema, def.name));
    END IF;
    PERFORM collect._check_definition(def.name IS NOT NULL, collect._rollup_verify(def), 'rollup', name, def.owner);
    RETURN def;
END $$;

-- The rollup a table belongs to (its rollup table or one of its tiers).
CREATE FUNCTION collect._rollup_of_table(rel regclass) RETURNS collect.rollup_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel_schema name;
    rel_name name;
    found_schema name;
    found_name text;
BEGIN
    SELECT n.nspname, c.relname INTO rel_schema, rel_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    SELECT d.schema, d.name INTO found_schema, found_name FROM collect.rollup_defs d
     WHERE d.schema = rel_schema
       AND (d.name = rel_name OR EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t WHERE t->>'name' = rel_name));
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a rollup or tier table', coalesce(rel::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'collect.rollups lists the rollups and their tiers.';
    END IF;
    RETURN collect._rollup_def(found_schema, found_name);
END $$;

-- A rollup's tables, qualified.
CREATE FUNCTION collect._rollup_table(def collect.rollup_defs, suffix text DEFAULT '') RETURNS text
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', def.schema, def.name || suffix)
$$;

-- An interval as (months, days, microseconds): generated SQL writes it in units every
-- IntervalStyle reads back alike.
CREATE FUNCTION collect._interval_parts(i interval) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('months', (extract(year FROM i) * 12 + extract(month FROM i))::integer,
                              'days', extract(day FROM i)::integer,
                              'micros', (extract(hour FROM i) * 3600000000 + extract(minute FROM i) * 60000000
                                         + extract(microseconds FROM i))::bigint)
$$;

-- What the generator (crates/core/src/rollups/generate.rs) needs to know of a rollup. Its tables are
-- the rollup table first, then its tiers, finest first.
CREATE FUNCTION collect._rollup_spec(def collect.rollup_defs) RETURNS jsonb
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'source', jsonb_build_object('schema', def.source_schema, 'name', def.source_name),
        'time_column', def.time_column,
        'time_type', def.time_type,
        'dimensions', to_jsonb(def.dimensions),
        'metrics', def.metrics,
        'tables', (SELECT jsonb_agg(jsonb_build_object('table', jsonb_build_object('schema', def.schema, 'name', t.name),
                                                       'granularity', collect._interval_parts(t.g),
                                                       'keep', collect._interval_parts(t.keep)) ORDER BY t.first DESC, t.g)
                     FROM (SELECT def.name, def.granularity AS g, def.keep, true AS first
                           UNION ALL
                           SELECT x->>'name', (x->>'granularity')::interval, (x->>'keep')::interval, false
                             FROM jsonb_array_elements(def.tiers) x) t),
        'stale', jsonb_build_object('schema', def.schema, 'name', def.name || '_stale'),
        'stale_key', def.distribution_column)
$$;

-- The statements of one kind a rollup runs, generated in Rust (see rollup_sql there): ingest,
-- update, delete, truncate, fill, refresh, range, backfill, retention, create_tier,
-- stale_buckets, clear_stale, newest_bucket, any_rows.
CREATE FUNCTION collect._rollup_sql(spec jsonb, kind text, index integer, tables text[], stale text) RETURNS text[]
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_sql_wrapper';
-- The metrics of create_rollup checked against the source's columns, as rollup_defs keeps them.
CREATE FUNCTION collect._rollup_metrics(source text, metrics jsonb, dimensions text[], columns jsonb) RETURNS text
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_metrics_wrapper';

-- The number of tables a rollup writes (the rollup table and its tiers).
CREATE FUNCTION collect._rollup_table_count(spec jsonb) RETURNS integer
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT jsonb_array_length(spec->'tables') $$;

CREATE FUNCTION collect._rollup_no_null_times(nulls bigint, source text, time_column text) RETURNS void
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF nulls > 0 THEN
        RAISE EXCEPTION 'null value in column "%" of %: % row(s) have no time to roll up by', time_column, source, nulls
            USING ERRCODE = 'not_null_violation', HINT = 'Every event needs a time; give it one, or filter such rows out.';
    END IF;
END $$;

-- What a trigger writes (`kind`: ingest, update, delete or truncate): {"spec": the rollup's
-- description, "tables" and "stale": on a Citus worker, the shards it writes}. On the
-- coordinator, or without Citus, the trigger must be one pg_collect made on this rollup's
-- source, and an ingest trigger must see the definition it was made for (`version`). On a
-- Citus worker the trigger fired on a shard, and the registry is on the coordinator: the
-- trigger carries the rollup's description (`spec`) and writes only the shards co-located
-- with its own, which must all belong to the role that owns its own shard (on Citus a
-- rollup's owner owns its source): a trigger planted on another role's table cannot write
-- into a rollup of yours, whoever inserts.
CREATE FUNCTION collect._rollup_trigger_targets(schema name, name text, version integer, source regclass, spec jsonb, kind text)
    RETURNS jsonb STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shard bigint := collect._citus_shard_id(source);
    def collect.rollup_defs;
    shards text[];
BEGIN
    IF shard IS NOT NULL THEN
        -- The rollup's tables, finest first, then its stale table.
        shards := collect._citus_colocated_shards(source,
                      ARRAY(SELECT to_regclass(format('%I.%I', t->'table'->>'schema', t->'table'->>'name'))
                              FROM jsonb_array_elements(spec->'tables') WITH ORDINALITY x(t, o) ORDER BY o)
                      || to_regclass(format('%I.%I', spec->'stale'->>'schema', spec->'stale'->>'name')));
        IF spec IS NULL OR coalesce(jsonb_array_length(spec->'tables'), 0) = 0 OR shards IS NULL THEN
            RAISE EXCEPTION 'trigger on a shard of % does not belong to rollup %.%',
                            (SELECT logicalrelid FROM pg_catalog.pg_dist_shard WHERE shardid = shard), quote_ident(schema), quote_ident(name)
                USING ERRCODE = 'triggered_action_exception', HINT = 'Only collect.create_rollup makes these triggers.';
        END IF;
        RETURN jsonb_build_object('spec', spec, 'tables', to_jsonb(shards[1:cardinality(shards) - 1]), 'stale', shards[cardinality(shards)]);
    END IF;
    def := collect._rollup_def(schema, name);
    IF collect._rollup_source(def) IS DISTINCT FROM source THEN
        RAISE EXCEPTION 'trigger on % does not belong to rollup %.%', source, quote_ident(schema), quote_ident(name)
            USING ERRCODE = 'triggered_action_exception', HINT = 'Only collect.create_rollup makes these triggers.';
    END IF;
    IF kind = 'ingest' AND def.version <> version THEN
        RAISE EXCEPTION 'rollup %.% changed since this transaction''s snapshot was taken', quote_ident(schema), quote_ident(name)
            USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
    END IF;
    RETURN jsonb_build_object('spec', collect._rollup_spec(def));
END $$;

-- The statements a trigger runs over its statement's rows (see _rollup_trigger_targets).
CREATE FUNCTION collect._rollup_trigger_statements(schema name, name text, version integer, source regclass, spec jsonb, kind text)
    RETURNS text[] STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._rollup_sql(t->'spec', kind, 0,
                               CASE WHEN t ? 'tables' THEN ARRAY(SELECT jsonb_array_elements_text(t->'tables')) END, t->>'stale')
      FROM collect._rollup_trigger_targets(schema, name, version, source, spec, kind) t
$$;

-- The ingest trigger of a table source (src/rollups/statement.rs): TG_ARGV is (schema, name,
-- version, spec) of the rollup; the statement's rows are rolled up in memory where the
-- rollup's columns allow, else by the statements of _rollup_trigger_statements.
CREATE FUNCTION collect._rollup_ingest() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'rollup_ingest_wrapper';

-- Sums and sketches cannot be un-added: changed or removed raw rows mark their buckets stale
-- for collect.refresh_rollup.
CREATE FUNCTION collect._rollup_mark_stale() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' OR TG_OP NOT IN ('UPDATE', 'DELETE', 'TRUNCATE') OR TG_NARGS <> 4 THEN
        RAISE EXCEPTION 'collect._rollup_mark_stale must be an AFTER statement trigger made by collect.create_rollup'
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    FOREACH stmt IN ARRAY collect._rollup_trigger_statements(TG_ARGV[0]::name, TG_ARGV[1], TG_ARGV[2]::integer, TG_RELID::regclass,
                                                             TG_ARGV[3]::jsonb, lower(TG_OP)) LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION collect.create_rollup(
    name text,
    source regclass,
    time_column text,
    dimensions text[] DEFAULT '{}',
    metrics jsonb DEFAULT '{}',
    granularity interval DEFAULT '1 minute',
    keep_raw boolean DEFAULT true
) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target_schema name;
    source_name name;
    col_type regtype;
    dim text;
    time_type text;
    distribution_column text;
    reference boolean;
    metric_defs jsonb;
    dimension_types jsonb := '[]';
    rollup regclass;
    def collect.rollup_defs;
    stmt text;
BEGIN
    -- A rollup lives in its source's schema; a qualified name must say that schema.
    IF name IS NOT NULL AND cardinality(parse_ident(name)) = 2 THEN
        IF (parse_ident(name))[1] <> (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = source) THEN
            RAISE EXCEPTION 'rollup % must be in the schema of its source %', name, source
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Give the name without a schema, or the source''s schema.';
        END IF;
        name := (parse_ident(name))[2];
    END IF;
    PERFORM collect._check_name('rollup', name);
    IF keep_raw IS NULL THEN
        RAISE EXCEPTION 'keep_raw must be true or false, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF keep_raw AND (source IS NULL OR (SELECT relkind FROM pg_class WHERE oid = source) NOT IN ('r', 'p')) THEN
        RAISE EXCEPTION 'rollup source % is not a table', coalesce(source::text, 'NULL') USING ERRCODE = 'wrong_object_type';
    END IF;
    IF NOT keep_raw AND (source IS NULL OR (SELECT relkind FROM pg_class WHERE oid = source) <> 'v') THEN
        RAISE EXCEPTION 'a rollup that keeps no raw rows needs a view as its source, not %', coalesce(source::text, 'NULL')
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Declare the columns with a view that holds no rows, such as CREATE VIEW events AS SELECT NULL::timestamptz AS at, NULL::text AS page WHERE false; then INSERT or COPY into it.';
    END IF;
    IF granularity IS NULL OR NOT collect._rollup_granularity_ok(granularity) THEN
        RAISE EXCEPTION 'invalid rollup granularity: %', coalesce(granularity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a positive interval of whole days or less (at most 36500 days), such as ''1 minute''.';
    END IF;
    SELECT n.nspname, c.relname INTO target_schema, source_name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source;

    SELECT atttypid::regtype INTO col_type FROM pg_attribute
     WHERE attrelid = source AND attname = time_column AND attnum > 0 AND NOT attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of time_column does not exist in %', time_column, source USING ERRCODE = 'undefined_column';
    END IF;
    IF col_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype) THEN
        RAISE EXCEPTION 'time_column "%" of % is %, not a timestamp', time_column, source, col_type
            USING ERRCODE = 'datatype_mismatch', HINT = 'Buckets are cut from timestamptz or timestamp columns.';
    END IF;
    time_type := format_type(col_type, NULL);

    FOREACH dim IN ARRAY coalesce(dimensions, '{}') LOOP
        SELECT atttypid::regtype INTO col_type FROM pg_attribute
         WHERE attrelid = source AND attname = dim AND attnum > 0 AND NOT attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dimension column "%" does not exist in %', dim, source USING ERRCODE = 'undefined_column';
        END IF;
        IF dim IN ('bucket', 'event_count', 'late_events') THEN
            RAISE EXCEPTION 'dimension "%" clashes with a rollup column', dim USING ERRCODE = 'duplicate_column';
        END IF;
        dimension_types := dimension_types || jsonb_build_object('name', dim, 'type', col_type::text);
    END LOOP;

    IF metrics IS NULL OR jsonb_typeof(metrics) <> 'object' THEN
        RAISE EXCEPTION 'metrics must be a JSON object of column name to metric, not %', coalesce(metrics::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"total_ms": "sum(duration_ms)", "users": "distinct(user_id)"}.';
    END IF;
    metric_defs := collect._rollup_metrics(source::text, metrics, coalesce(dimensions, '{}'),
        (SELECT coalesce(jsonb_object_agg(attname, format_type(atttypid, NULL)), '{}') FROM pg_attribute
          WHERE attrelid = source AND attnum > 0 AND NOT attisdropped))::jsonb;

    -- On Citus, each shard's rows are rolled up on its worker into the co-located shard of the
    -- rollup table: a rollup row must hold rows of one shard only, so the source's
    -- distribution column must be a dimension.
    SELECT c.distribution_column, c.reference INTO distribution_column, reference FROM collect._citus_table(source) c;
    IF reference THEN
        RAISE EXCEPTION 'rollups of Citus reference tables are not supported: % is a reference table', source
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Roll up a distributed or local table, or aggregate the reference table with collect.hll_agg, collect.quantiles_agg and collect.topk_agg.';
    END IF;
    IF distribution_column IS NOT NULL AND NOT distribution_column = ANY (coalesce(dimensions, '{}')) THEN
        RAISE EXCEPTION 'the distribution column "%" of % is not a dimension of rollup "%"', distribution_column, source, name
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('Add %s to the dimensions: each worker then rolls up its own shards into co-located rows, and a query merges them across its values (collect.merge).', quote_ident(distribution_column));
    END IF;

    IF distribution_column IS NOT NULL AND NOT pg_has_role((SELECT relowner FROM pg_class WHERE oid = source), 'USAGE') THEN
        RAISE EXCEPTION 'a rollup of distributed table % must be made by its owner', source
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'On Citus the workers trust a rollup''s triggers only when one role owns the source and the rollup.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('collect.rollup:' || target_schema || '.' || name));
    def := (SELECT d FROM collect.rollup_defs d WHERE d.schema = target_schema AND d.name = create_rollup.name);
    IF def.name IS NOT NULL THEN
        RAISE EXCEPTION 'rollup %.% already exists', quote_ident(target_schema), name
            USING ERRCODE = 'duplicate_object',
                  HINT = coalesce('It no longer rolls anything up: ' || collect._rollup_source_problem(def) || '. ', '')
                         || format('Drop it with collect.drop_rollup(%L), or pick another name.', format('%I.%I', target_schema, name));
    END IF;
    FOREACH stmt IN ARRAY collect._rollup_create_sql(target_schema, name, time_type, dimension_types, metric_defs, distribution_column,
                                                     format('Rollup of %s per %s (pg_collect)', source, granularity)) LOOP
        EXECUTE stmt;
    END LOOP;
    rollup := format('%I.%I', target_schema, name)::regclass;
    IF distribution_column IS NOT NULL THEN
        PERFORM collect._citus_distribute(rollup, distribution_column, source);
        PERFORM collect._citus_distribute(format('%I.%I', target_schema, name || '_stale')::regclass, distribution_column, source);
    END IF;

    INSERT INTO collect.rollup_defs (schema, name, source_schema, source_name, time_column, dimensions, metrics, granularity,
                                     keep_raw, time_type, distribution_column)
    VALUES (target_schema, name, target_schema, source_name, time_column, coalesce(dimensions, '{}'), metric_defs, granularity,
            keep_raw, time_type, distribution_column)
    RETURNING * INTO def;
    PERFORM collect._rollup_make_triggers(def);
    -- The rows the source holds already are rolled up now. CREATE TRIGGER took a lock that
    -- waits out every writer (SHARE ROW EXCLUSIVE) until this transaction ends: a row is
    -- either here or goes through the new trigger, never both, never neither.
    IF keep_raw THEN
        FOREACH stmt IN ARRAY collect._rollup_sql(collect._rollup_spec(def), 'backfill', 0, NULL, NULL) LOOP
            EXECUTE stmt;
        END LOOP;
    END IF;
    RETURN rollup;
END $$;

-- The triggers that keep a rollup, made for its current definition (dropped first when they
-- exist: add_tier remakes them). Each carries the rollup's description, which a Citus worker
-- needs (see _rollup_trigger_statements). On Citus, triggers on distributed tables need
-- citus.enable_unsafe_triggers: these touch only the co-located shards of their own shard.
-- The statements that make a new rollup's tables (crates/core/src/rollups/generate.rs,
-- `NewTables`).
CREATE FUNCTION collect._rollup_create_sql(schema text, name text, time_type text, dimensions jsonb, metrics jsonb,
                                           distribution_column text, comment text) RETURNS text[]
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_create_sql_wrapper';

-- The triggers of rollup `def` (crates/core/src/rollups/generate.rs, `Triggers`): {names,
-- create}, names being every trigger a rollup of that name makes, of either kind.
CREATE FUNCTION collect._rollup_triggers(source_schema text, source_name text, schema text, name text, version integer,
                                         keep_raw boolean, spec text) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_triggers_wrapper';

-- Drops the rollup's triggers that exist on its source (what `names` lists).
CREATE FUNCTION collect._rollup_drop_triggers(def collect.rollup_defs) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
DECLARE
    source regclass := to_regclass(format('%I.%I', def.source_schema, def.source_name));
BEGIN
    PERFORM collect._drop_trigger(tgname, source) FROM pg_trigger
      WHERE tgrelid = source AND NOT tgisinternal
        AND tgname IN (SELECT jsonb_array_elements_text(
                           collect._rollup_triggers(def.source_schema, def.source_name, def.schema, def.name,
                                                    def.version, def.keep_raw, '')->'names'));
END $$;

CREATE FUNCTION collect._rollup_make_triggers(def collect.rollup_defs) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
DECLARE
    statement text;
BEGIN
    PERFORM collect._rollup_drop_triggers(def);
    FOR statement IN SELECT jsonb_array_elements_text(collect._rollup_triggers(def.source_schema, def.source_name, def.schema, def.name,
                                                                                 def.version, def.keep_raw, collect._rollup_spec(def)::text)->'create') LOOP
        EXECUTE statement;
    END LOOP;
END $$;
CREATE FUNCTION collect._rollup_begin() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_begin_wrapper';
CREATE FUNCTION collect._rollup_buffer_row() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_buffer_row_wrapper';
CREATE FUNCTION collect._rollup_flush() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'rollup_flush_wrapper';
COMMENT ON FUNCTION collect.create_rollup(text, regclass, text, text[], jsonb, interval, boolean) IS
    'Creates a rollup table kept at ingest: one row per bucket and dimension combination';

-- Events as a JSON array, inserted into the source: one statement per set of keys
-- the events have, naming only those columns, so the others get their defaults.
CREATE FUNCTION collect._ingest(schema name, rollup text, events jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    source regclass := collect._rollup_source(def);
    columns text[];
    keys text[];
    n bigint;
    inserted bigint := 0;
BEGIN
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'collect.ingest takes a JSON array of events, not %', left(coalesce(events::text, 'NULL'), 60)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM jsonb_array_elements(events) e WHERE jsonb_typeof(e) <> 'object') THEN
        RAISE EXCEPTION 'collect.ingest takes events as JSON objects, not %',
                        (SELECT left(e::text, 60) FROM jsonb_array_elements(events) e WHERE jsonb_typeof(e) <> 'object' LIMIT 1)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    columns := ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = source AND attnum > 0 AND NOT attisdropped);
    FOR keys IN
        SELECT DISTINCT ARRAY(SELECT k FROM jsonb_object_keys(e) k WHERE k = ANY (columns) ORDER BY k)
          FROM jsonb_array_elements(events) e
    LOOP
        IF cardinality(keys) = 0 THEN
            FOR i IN 1 .. (SELECT count(*) FROM jsonb_array_elements(events) e
                            WHERE NOT EXISTS (SELECT FROM jsonb_object_keys(e) k WHERE k = ANY (columns))) LOOP
                EXECUTE format('INSERT INTO %s DEFAULT VALUES', source);
                inserted := inserted + 1;
            END LOOP;
            CONTINUE;
        END IF;
        EXECUTE format('INSERT INTO %1$s (%2$s) SELECT %3$s FROM jsonb_populate_recordset(NULL::%1$s, $1) r',
                       source, (SELECT string_agg(format('%I', k), ', ') FROM unnest(keys) k),
                       (SELECT string_agg(format('r.%I', k), ', ') FROM unnest(keys) k))
            USING (SELECT jsonb_agg(e) FROM jsonb_array_elements(events) e
                    WHERE ARRAY(SELECT k FROM jsonb_object_keys(e) k WHERE k = ANY (columns) ORDER BY k) = keys);
        GET DIAGNOSTICS n = ROW_COUNT;
        inserted := inserted + n;
    END LOOP;
    RETURN inserted;
END $$;

CREATE FUNCTION collect.ingest(rollup text, events jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._ingest(r.schema, r.object_name, events) FROM collect._resolve('rollup', rollup) r $$;

-- Events as a batch of newline-delimited JSON, gzip-compressed or not (what a client writes
-- with gzip alone): one JSON object a line; blank lines are skipped.
CREATE FUNCTION collect._ndjson_lines(batch bytea) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ndjson_lines_wrapper';
CREATE FUNCTION collect._ndjson_events(batch bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lines text[] := collect._ndjson_lines(batch);
    events jsonb;
BEGIN
    IF batch IS NULL THEN
        RAISE EXCEPTION 'collect.ingest takes events, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    BEGIN
        SELECT coalesce(jsonb_agg(l.line::jsonb ORDER BY l.n), '[]') INTO events
          FROM unnest(lines) WITH ORDINALITY l(line, n) WHERE l.line <> '';
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR program_limit_exceeded THEN
        -- Name the line: found again one line at a time, on this error path only.
        FOR i IN 1 .. cardinality(lines) LOOP
            BEGIN
                PERFORM lines[i]::jsonb;
            EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR program_limit_exceeded THEN
                RAISE EXCEPTION 'line % of the events is not JSON: %', i, left(lines[i], 60)
                    USING ERRCODE = 'invalid_text_representation', HINT = 'Each line is one event, a JSON object.';
            END;
        END LOOP;
        RAISE;
    END;
    RETURN events;
END $$;

-- What rolling up a batch without rows needs (crates/core/src/rollups/batches.rs): the rollup's description
-- and its source's column types. NULL for a rollup that keeps raw rows, and for a view with
-- more to it than its rollup (other triggers, column defaults, nondeterministic collations):
-- such batches are inserted as rows. Locks the view as an INSERT would, so add_tier waits for
-- the batch.
CREATE FUNCTION collect._rollup_ndjson_plan(schema name, rollup text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    source regclass := collect._rollup_source(def);
BEGIN
    IF def.keep_raw OR NOT has_table_privilege(source, 'INSERT') THEN
        RETURN NULL;
    END IF;
    EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', source);
    def := collect._rollup_def(schema, rollup);
    IF (SELECT count(*) FROM pg_trigger WHERE tgrelid = source AND NOT tgisinternal) <> 3
       OR EXISTS (SELECT FROM pg_attrdef WHERE adrelid = source)
       OR EXISTS (SELECT FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
                   WHERE a.attrelid = source AND a.attnum > 0 AND NOT c.collisdeterministic) THEN
        RETURN NULL;
    END IF;
    RETURN jsonb_build_object('spec', collect._rollup_spec(def),
        'column_types', (SELECT jsonb_object_agg(attname, format_type(atttypid, atttypmod)) FROM pg_attribute
                          WHERE attrelid = source AND attnum > 0 AND NOT attisdropped));
END $$;
CREATE FUNCTION collect._ingest_ndjson(schema text, rollup text, batch bytea) RETURNS bigint
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'rollup_ingest_lump_wrapper';

-- A rollup that keeps no raw rows takes a batch without making rows when it can (every column
-- it reads of a type, and every value of a form, whose meaning is beyond doubt); otherwise,
-- and for rollups of tables, its events are inserted as rows.
CREATE FUNCTION collect.ingest(rollup text, events bytea) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT coalesce(collect._ingest_ndjson(r.schema, r.object_name, events),
                    collect._ingest(r.schema, r.object_name, collect._ndjson_events(events)))
      FROM collect._resolve('rollup', rollup) r
$$;
COMMENT ON FUNCTION collect.ingest(text, bytea) IS
    'Inserts events given as newline-delimited JSON (gzip-compressed or not) into the rollup''s source; returns how many';
-- A JSON array written as a string literal: without this, such a call could be either of the two above.
CREATE FUNCTION collect.ingest(rollup text, events text) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect.ingest(rollup, events::pg_catalog.jsonb) $$;
COMMENT ON FUNCTION collect.ingest(text, text) IS 'Inserts events given as the text of a JSON array into the rollup''s source';

-- A coarser table fed by the same ingest; filled from the rollup when added.
CREATE FUNCTION collect._add_tier(schema name, rollup text, name text, granularity interval) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    tier regclass;
    spec jsonb;
    index integer;
    statement text;
BEGIN
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    PERFORM collect._check_name('tier', name);
    IF granularity IS NOT NULL AND NOT collect._rollup_granularity_ok(granularity) THEN
        RAISE EXCEPTION 'invalid tier granularity: %', granularity
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a positive interval of whole days or less (at most 36500 days).';
    END IF;
    IF granularity IS NULL OR granularity <= def.granularity
       OR extract(epoch FROM granularity)::numeric % extract(epoch FROM def.granularity)::numeric <> 0 THEN
        RAISE EXCEPTION 'tier granularity % must be a multiple of the rollup''s %', coalesce(granularity::text, 'NULL'), def.granularity
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For a minute rollup: ''1 hour'', ''1 day''.';
    END IF;
    PERFORM collect._lock_definition('rollup', def.schema, def.name);
    -- Lock out ingest while the tier is filled and the ingest trigger remade, so no statement
    -- is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', collect._rollup_source(def));
    -- Read again under the locks: a tier another call added meanwhile is kept.
    def := collect._rollup_def(schema, rollup);
    -- The tier's table first, from the definition as it will be (the registry admits a row
    -- only once its owner owns what it names).
    def.tiers := def.tiers || jsonb_build_object('name', _add_tier.name, 'granularity', _add_tier.granularity, 'keep', NULL);
    spec := collect._rollup_spec(def);
    index := (SELECT o::integer - 1 FROM jsonb_array_elements(spec->'tables') WITH ORDINALITY x(t, o) WHERE t->'table'->>'name' = _add_tier.name);
    FOREACH statement IN ARRAY collect._rollup_sql(spec, 'create_tier', index, NULL, NULL) LOOP
        EXECUTE statement;
    END LOOP;
    tier := format('%I.%I', def.schema, name)::regclass;
    IF def.distribution_column IS NOT NULL THEN
        PERFORM collect._citus_distribute(tier, def.distribution_column, collect._rollup_table(def)::regclass);
    END IF;
    UPDATE collect.rollup_defs d SET tiers = def.tiers, version = d.version + 1
     WHERE d.schema = def.schema AND d.name = def.name
    RETURNING * INTO def;
    spec := collect._rollup_spec(def);
    EXECUTE (collect._rollup_sql(spec, 'fill', index, NULL, NULL))[1];
    PERFORM collect._rollup_make_triggers(def);
    RETURN tier;
END $$;

CREATE FUNCTION collect.add_tier(rollup text, name text, granularity interval) RETURNS regclass
    LANGUAGE sql AS $$ SELECT collect._add_tier(r.schema, r.object_name, name, granularity) FROM collect._resolve('rollup', rollup) r $$;

-- Keeps `keep` of buckets in one rollup or tier table; coarser tiers keep their history.
CREATE FUNCTION collect.set_retention(rollup_table regclass, keep interval) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_of_table(rollup_table);
    newest text;
    deleted bigint;
    left_over boolean;
    spec jsonb;
    index integer;
BEGIN
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    IF keep IS NOT NULL AND (keep <= interval '0' OR keep > interval '36500 days') THEN
        RAISE EXCEPTION 'retention must be positive and at most 36500 days, not %', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM collect._lock_definition('rollup', def.schema, def.name);
    IF rollup_table = collect._rollup_table(def)::regclass THEN
        UPDATE collect.rollup_defs d SET keep = set_retention.keep WHERE d.schema = def.schema AND d.name = def.name;
    ELSE
        UPDATE collect.rollup_defs d
           SET tiers = (SELECT jsonb_agg(CASE WHEN format('%I.%I', def.schema, t->>'name')::regclass = rollup_table
                                              THEN t || jsonb_build_object('keep', set_retention.keep) ELSE t END ORDER BY o)
                          FROM jsonb_array_elements(d.tiers) WITH ORDINALITY x(t, o))
         WHERE d.schema = def.schema AND d.name = def.name;
    END IF;
    -- Retention counts back from now(): on a table of past data (an import) it would delete
    -- everything at once. That is refused; a table meant to be emptied can be truncated.
    spec := collect._rollup_spec(def);
    index := (SELECT o::integer - 1 FROM jsonb_array_elements(spec->'tables') WITH ORDINALITY x(t, o)
               WHERE to_regclass(format('%I.%I', t->'table'->>'schema', t->'table'->>'name')) = rollup_table);
    EXECUTE (collect._rollup_sql(spec, 'newest_bucket', index, NULL, NULL))[1] INTO newest;
    deleted := collect._apply_retention(def.schema, def.name);
    EXECUTE (collect._rollup_sql(spec, 'any_rows', index, NULL, NULL))[1] INTO left_over;
    IF newest IS NOT NULL AND NOT left_over THEN
        RAISE EXCEPTION 'a retention of % would delete every row of %, whose newest bucket is %', keep, rollup_table, newest
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Retention counts back from now(), so rows of past times all go. Give a longer retention, or TRUNCATE the table first if it is meant to be emptied.';
    END IF;
    RETURN deleted;
END $$;

-- Deletes buckets past their table's retention, in one rollup or in every rollup the caller
-- owns; run it from a scheduler (pg_cron, say).
CREATE FUNCTION collect._apply_retention(schema name, rollup text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs;
    spec jsonb;
    stmt text;
    n bigint;
    total bigint := 0;
BEGIN
    IF rollup IS NULL THEN
        -- Every rollup the caller owns, each as its owner.
        FOR def IN SELECT * FROM collect.rollup_defs d WHERE pg_has_role(d.owner, 'USAGE') ORDER BY d.schema, d.name LOOP
            total := total + collect._apply_retention(def.schema, def.name);
        END LOOP;
        RETURN total;
    END IF;
    def := collect._rollup_def(schema, rollup);
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('rollup %I.%I', def.schema, def.name),
                                  format('SELECT collect._apply_retention(%L, %L)', schema, rollup))::bigint;
    END IF;
    spec := collect._rollup_spec(def);
    FOR i IN 0 .. collect._rollup_table_count(spec) - 1 LOOP
        FOREACH stmt IN ARRAY collect._rollup_sql(spec, 'retention', i, NULL, NULL) LOOP
            EXECUTE stmt;
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
        END LOOP;
    END LOOP;
    RETURN total;
END $$;

CREATE FUNCTION collect.apply_retention(rollup text DEFAULT NULL) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT CASE WHEN rollup IS NULL THEN collect._apply_retention(NULL, NULL)
                ELSE (SELECT collect._apply_retention(r.schema, r.object_name) FROM collect._resolve('rollup', rollup) r) END
$$;

-- Recomputes stale buckets (or those in [from, to)) of the rollup and its tiers from raw rows.
CREATE FUNCTION collect._refresh_rollup(schema name, rollup text, since timestamptz, until timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    spec jsonb := collect._rollup_spec(def);
    buckets text[];
    stmt text;
BEGIN
    IF NOT def.keep_raw THEN
        RAISE EXCEPTION 'rollup "%" keeps no raw rows to recompute buckets from', def.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (since IS NULL) <> (until IS NULL) THEN
        RAISE EXCEPTION 'give both since and until, or neither' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('rollup %I.%I', def.schema, def.name),
                                  format('SELECT collect._refresh_rollup(%L, %L, %L, %L)', schema, rollup, since, until))::bigint;
    END IF;
    -- Ingest waits while buckets are rebuilt, so none is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', collect._rollup_source(def));
    -- The base buckets to rebuild, as text: the generated statements cast them back to the
    -- bucket's type.
    IF since IS NULL THEN
        EXECUTE (collect._rollup_sql(spec, 'stale_buckets', 0, NULL, NULL))[1] INTO buckets;
    ELSE
        EXECUTE (collect._rollup_sql(spec, 'range', 0, NULL, NULL))[1] INTO buckets USING since, until;
    END IF;
    IF coalesce(cardinality(buckets), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- Every bucket of each table that holds a rebuilt base bucket is rebuilt whole.
    FOR i IN 0 .. collect._rollup_table_count(spec) - 1 LOOP
        FOREACH stmt IN ARRAY collect._rollup_sql(spec, 'refresh', i, NULL, NULL) LOOP
            EXECUTE stmt USING buckets;
        END LOOP;
    END LOOP;
    EXECUTE (collect._rollup_sql(spec, 'clear_stale', 0, NULL, NULL))[1] USING buckets;
    RETURN cardinality(buckets);
END $$;

CREATE FUNCTION collect.refresh_rollup(rollup text, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL)
    RETURNS bigint LANGUAGE sql AS $$
    SELECT collect._refresh_rollup(r.schema, r.object_name, since, until) FROM collect._resolve('rollup', rollup) r
$$;

CREATE FUNCTION collect._drop_rollup(schema name, rollup text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
DECLARE
    def collect.rollup_defs;
BEGIN
    def := (SELECT d FROM collect.rollup_defs d WHERE (d.schema, d.name) = (_drop_rollup.schema, rollup));
    PERFORM collect._check_definition(def.name IS NOT NULL, true, 'rollup', rollup, def.owner);
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    PERFORM collect._lock_definition('rollup', def.schema, def.name);
    PERFORM collect._rollup_drop_triggers(def);
    PERFORM collect._drop_definition('rollup', def.schema, def.name,
                                     ARRAY(SELECT t->>'name' FROM jsonb_array_elements(def.tiers) t) || ARRAY[def.name, def.name || '_stale']);
END $$;

CREATE FUNCTION collect.drop_rollup(rollup text) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._drop_rollup(r.schema, r.object_name) FROM collect._resolve('rollup', rollup) r $$;

-- Each rollup's retention and stale-bucket refresh, as periodic work (collect.maintenance).
CREATE FUNCTION collect._rollup_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'rollup', format('%I.%I', d.schema, d.name), j.job, j.call, j.every, true, d.owner, j.batch
      FROM collect.rollup_defs d,
           LATERAL (SELECT 'apply retention' AS job, format('SELECT collect.apply_retention(%L)', format('%I.%I', d.schema, d.name)) AS call,
                           greatest(d.granularity, interval '1 minute') AS every,
                           format('SELECT true FROM collect._apply_retention(%L, %L)', d.schema, d.name) AS batch
                     WHERE d.keep IS NOT NULL OR EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t WHERE t->>'keep' IS NOT NULL)
                    UNION ALL
                    SELECT 'refresh stale buckets', format('SELECT collect.refresh_rollup(%L)', format('%I.%I', d.schema, d.name)),
                           greatest(d.granularity * 5, interval '5 minutes'),
                           format('SELECT true FROM collect._refresh_rollup(%L, %L, NULL, NULL)', d.schema, d.name)
                     WHERE d.keep_raw) j
     ORDER BY 2, 3
$$;
UPDATE collect.capabilities SET maintenance = 'collect._rollup_maintenance' WHERE kind = 'rollup';

UPDATE collect.capabilities SET figures =
    'SELECT * FROM (SELECT coalesce(sum(event_count), 0) AS rows_in, count(*) AS rollup_rows,
                           coalesce(sum(late_events), 0) AS late_events FROM %1$s) r,
                   (SELECT count(DISTINCT bucket) AS stale_buckets FROM %2$s) s'
 WHERE kind = 'rollup';

CREATE VIEW collect.rollups AS
SELECT d.schema, d.name, t.rollup AS rollup_table, collect._rollup_source(d) AS source,
       d.time_column, d.dimensions, d.granularity, d.keep_raw, d.keep,
       (SELECT coalesce(jsonb_agg(x || jsonb_build_object('table', format('%I.%I', d.schema, x->>'name')) ORDER BY o), '[]')
          FROM jsonb_array_elements(d.tiers) WITH ORDINALITY y(x, o)) AS tiers,
       (f->>'rows_in')::numeric AS rows_in, (f->>'rollup_rows')::bigint AS rollup_rows,
       round((f->>'rows_in')::numeric / nullif((f->>'rollup_rows')::bigint, 0), 1) AS rollup_ratio,
       (f->>'late_events')::numeric AS late_events, (f->>'stale_buckets')::bigint AS stale_buckets,
       collect._rollup_source_problem(d) AS problem
  FROM collect.rollup_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name) AS rollup,
                       collect._owned_relation(d.owner, d.schema, d.name || '_stale') AS stale) t,
       LATERAL collect._figures('rollup', ARRAY[t.rollup, t.stale]) f;
GRANT SELECT ON collect.rollups TO PUBLIC;
