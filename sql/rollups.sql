-- Minute rollups maintained at ingest (Druid, as Plumbr used it). Each INSERT or COPY into a
-- source is aggregated in one pass over its transition table and merged into the rollup with
-- one upsert per touched row; coarser tiers are fed by the same statement.

-- The registry. A rollup `schema.name` is the table schema.name (with schema.name_stale), in
-- the schema of its source; its tiers are tables of the same schema. Rows are trusted only
-- while their owner owns those tables and may put triggers on the source (sql/registry.sql).
-- The SQL the ingest trigger runs is derived from these columns at use, never stored.
CREATE TABLE collect.rollup_defs (
    schema name NOT NULL,
    name text NOT NULL,
    source_schema name NOT NULL,
    source_name name NOT NULL,
    time_column text NOT NULL,
    dimensions text[] NOT NULL,
    metrics jsonb NOT NULL,          -- [{"name", "kind", "column", "k", "type"}]
    granularity interval NOT NULL,
    keep_raw boolean NOT NULL DEFAULT true,
    keep interval,                   -- retention of the rollup table itself
    tiers jsonb NOT NULL DEFAULT '[]', -- [{"name", "granularity", "keep"}]: tables schema.name
    -- Bumped when tiers change. The ingest trigger carries the version it was made for: a
    -- statement whose snapshot still shows an older definition is refused (40001), never
    -- counted in fewer tables than the trigger it fired.
    version integer NOT NULL DEFAULT 1,
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
       AND NOT EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t
                        WHERE collect._owned_relation(d.owner, d.schema, t->>'name') IS NULL);
END $$;
SELECT collect._register_capability('rollup', 'collect.rollup_defs', 'collect._rollup_verify', 'collect.rollups');

-- Buckets are aligned to this origin, so every tier's buckets nest in the coarser ones.
CREATE FUNCTION collect._bucket_origin() RETURNS timestamptz
    IMMUTABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT '2000-01-03 00:00:00+00'::pg_catalog.timestamptz $$;

-- The definition of rollup schema.name, checked against the catalogs.
CREATE FUNCTION collect._rollup_def(schema name, name text) RETURNS collect.rollup_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := (SELECT d FROM collect.rollup_defs d WHERE (d.schema, d.name) = (_rollup_def.schema, _rollup_def.name));
BEGIN
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

-- The rollup table and each tier, finest first: (table, granularity, retention).
CREATE FUNCTION collect._rollup_tiers(def collect.rollup_defs, OUT tbl text, OUT g interval, OUT keep interval)
    RETURNS SETOF record IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._rollup_table(def), def.granularity, def.keep
    UNION ALL
    (SELECT format('%I.%I', def.schema, x->>'name'), (x->>'granularity')::interval, (x->>'keep')::interval
       FROM jsonb_array_elements(def.tiers) x ORDER BY 2)
$$;

-- The upsert that merges one statement's rows (transition table new_rows) into `target` at
-- `granularity`, skipping buckets older than `keep`. A rebuild from raw rows does not count
-- late events (`count_late => false`): nothing arrives then.
CREATE FUNCTION collect._rollup_upsert(def collect.rollup_defs, target text, granularity interval, keep interval,
                                       count_late boolean DEFAULT true)
    RETURNS text IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bucket text := format('date_bin(%L::interval, %I, collect._bucket_origin())', granularity, def.time_column);
    dims text := coalesce((SELECT string_agg(format('%I', d), ', ' ORDER BY o) FROM unnest(def.dimensions) WITH ORDINALITY u(d, o)), '');
    group_cols text := (SELECT string_agg(g::text, ', ') FROM generate_series(1, 1 + cardinality(def.dimensions)) g);
    select_metrics text := '';
    merge_metrics text := '';
    m jsonb;
BEGIN
    FOR m IN SELECT * FROM jsonb_array_elements(def.metrics) LOOP
        select_metrics := select_metrics || ', ' || CASE m->>'kind'
            WHEN 'sum' THEN format('sum(%I)', m->>'column')
            WHEN 'min' THEN format('min(%I)', m->>'column')
            WHEN 'max' THEN format('max(%I)', m->>'column')
            WHEN 'distinct' THEN format('collect.hll_agg(%I, %s)', m->>'column', coalesce((m->>'precision')::int, 14))
            WHEN 'quantiles' THEN format('collect.quantiles_agg(%I::float8)', m->>'column')
            WHEN 'top' THEN format('collect.topk_agg(%I::text, %s)', m->>'column', (m->>'k')::int)
        END;
        merge_metrics := merge_metrics || format(', %1$I = ', m->>'name') || CASE m->>'kind'
            WHEN 'sum' THEN format('coalesce(r.%1$I + excluded.%1$I, r.%1$I, excluded.%1$I)', m->>'name')
            WHEN 'min' THEN format('least(r.%1$I, excluded.%1$I)', m->>'name')
            WHEN 'max' THEN format('greatest(r.%1$I, excluded.%1$I)', m->>'name')
            WHEN 'distinct' THEN format('coalesce(collect.hll_union(r.%1$I, excluded.%1$I), r.%1$I, excluded.%1$I)', m->>'name')
            WHEN 'quantiles' THEN format('coalesce(collect.quantiles_union(r.%1$I, excluded.%1$I), r.%1$I, excluded.%1$I)', m->>'name')
            WHEN 'top' THEN format('coalesce(collect.topk_union(r.%1$I, excluded.%1$I), r.%1$I, excluded.%1$I)', m->>'name')
        END;
    END LOOP;
    RETURN format(
        'INSERT INTO %1$s AS r (bucket%2$s, event_count, late_events%3$s)
         SELECT %4$s AS bucket%2$s, count(*),
                %10$s%6$s
           FROM new_rows %7$s
          GROUP BY %8$s ORDER BY %8$s
         ON CONFLICT (bucket%2$s) DO UPDATE SET
                event_count = r.event_count + excluded.event_count,
                late_events = r.late_events + excluded.late_events%9$s',
        target,
        CASE WHEN dims = '' THEN '' ELSE ', ' || dims END,
        coalesce((SELECT string_agg(format(', %I', x->>'name'), '') FROM jsonb_array_elements(def.metrics) x), ''),
        bucket, granularity, select_metrics,
        CASE WHEN keep IS NULL THEN '' ELSE format('WHERE %s >= date_bin(%L::interval, now(), collect._bucket_origin()) - %L::interval', bucket, granularity, keep) END,
        group_cols, merge_metrics,
        CASE WHEN count_late
             THEN format('count(*) FILTER (WHERE %s < date_bin(%L::interval, now(), collect._bucket_origin()) - %L::interval)',
                         bucket, granularity, granularity)
             ELSE '0' END);
END $$;

-- What one statement's rows (new_rows) do: a check that no row lacks a time, then one upsert
-- per table, the rollup's first and then its tiers, coarsest last.
CREATE FUNCTION collect._rollup_statements(def collect.rollup_defs) RETURNS text[]
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY[format('SELECT collect._rollup_no_null_times(count(*), %L, %L) FROM new_rows WHERE %I IS NULL',
                        format('%I.%I', def.source_schema, def.source_name), def.time_column, def.time_column)]
        || ARRAY(SELECT collect._rollup_upsert(def, t.tbl, t.g, t.keep) FROM collect._rollup_tiers(def) t)
$$;

CREATE FUNCTION collect._rollup_no_null_times(nulls bigint, source text, time_column text) RETURNS void
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF nulls > 0 THEN
        RAISE EXCEPTION 'null value in column "%" of %: % row(s) have no time to roll up by', time_column, source, nulls
            USING ERRCODE = 'not_null_violation', HINT = 'Every event needs a time; give it one, or filter such rows out.';
    END IF;
END $$;

-- The definition an ingest trigger fired for, checked: it must be the trigger pg_collect made
-- on this rollup's source, and the statement must see the definition the trigger was made
-- for. Returns the statements to run over new_rows.
CREATE FUNCTION collect._rollup_trigger_statements(schema name, name text, version integer, source regclass)
    RETURNS text[] STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, name);
BEGIN
    IF collect._rollup_source(def) IS DISTINCT FROM source THEN
        RAISE EXCEPTION 'trigger on % does not belong to rollup %.%', source, quote_ident(schema), quote_ident(name)
            USING ERRCODE = 'triggered_action_exception', HINT = 'Only collect.create_rollup makes these triggers.';
    END IF;
    IF def.version <> version THEN
        RAISE EXCEPTION 'rollup %.% changed since this transaction''s snapshot was taken', quote_ident(schema), quote_ident(name)
            USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
    END IF;
    RETURN collect._rollup_statements(def);
END $$;

-- Trigger functions: TG_ARGV is (schema, name, version) of the rollup.
CREATE FUNCTION collect._rollup_ingest() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stmt text;
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' OR TG_OP <> 'INSERT' OR TG_NARGS <> 3 THEN
        RAISE EXCEPTION 'collect._rollup_ingest must be an AFTER INSERT statement trigger made by collect.create_rollup'
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    FOREACH stmt IN ARRAY collect._rollup_trigger_statements(TG_ARGV[0]::name, TG_ARGV[1], TG_ARGV[2]::integer, TG_RELID::regclass) LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN NULL;
END $$;

-- Sums and sketches cannot be un-added: changed or removed raw rows mark their buckets stale
-- for collect.refresh_rollup.
CREATE FUNCTION collect._rollup_mark_stale() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs;
    stale text;
    bucket text;
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' OR TG_OP NOT IN ('UPDATE', 'DELETE', 'TRUNCATE') OR TG_NARGS < 2 THEN
        RAISE EXCEPTION 'collect._rollup_mark_stale must be an AFTER statement trigger made by collect.create_rollup'
            USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    def := collect._rollup_def(TG_ARGV[0]::name, TG_ARGV[1]);
    IF collect._rollup_source(def) IS DISTINCT FROM TG_RELID::regclass THEN
        RAISE EXCEPTION 'trigger on % does not belong to rollup %.%', TG_RELID::regclass, quote_ident(def.schema), quote_ident(def.name)
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    stale := collect._rollup_table(def, '_stale');
    bucket := format('date_bin(%L::interval, %I, collect._bucket_origin())', def.granularity, def.time_column);
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('INSERT INTO %s (bucket) SELECT DISTINCT bucket FROM %s ON CONFLICT DO NOTHING', stale, collect._rollup_table(def));
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO %s (bucket) SELECT DISTINCT %s FROM old_rows WHERE %I IS NOT NULL ON CONFLICT DO NOTHING',
                       stale, bucket, def.time_column);
    ELSE
        EXECUTE format('INSERT INTO %1$s (bucket) SELECT b FROM (SELECT %2$s AS b FROM old_rows UNION SELECT %2$s FROM new_rows) s
                        WHERE b IS NOT NULL ON CONFLICT DO NOTHING', stale, bucket);
    END IF;
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
    metric record;
    parsed text[];
    kind text;
    metric_defs jsonb := '[]';
    columns text := '';
    rollup regclass;
    def collect.rollup_defs;
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
    IF granularity IS NULL OR granularity <= interval '0' OR extract(month FROM granularity) <> 0 OR extract(year FROM granularity) <> 0 THEN
        RAISE EXCEPTION 'invalid rollup granularity: %', coalesce(granularity::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a positive interval of days or less, such as ''1 minute''.';
    END IF;
    -- On Citus, INSERT and COPY into a distributed table run on its shards, where this rollup's
    -- triggers and registry are not: it would count nothing. Refused until it is built (#13).
    IF (SELECT c.distribution_column IS NOT NULL OR c.reference FROM collect._citus_table(source) c) THEN
        RAISE EXCEPTION 'rollups of Citus tables are not supported yet: % is a distributed or reference table', source
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Roll up a local table, or aggregate the distributed table with collect.hll_agg, collect.quantiles_agg and collect.topk_agg, which Citus pushes down to its workers.';
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
    columns := format('bucket %s NOT NULL', col_type);

    FOREACH dim IN ARRAY coalesce(dimensions, '{}') LOOP
        SELECT atttypid::regtype INTO col_type FROM pg_attribute
         WHERE attrelid = source AND attname = dim AND attnum > 0 AND NOT attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'dimension column "%" does not exist in %', dim, source USING ERRCODE = 'undefined_column';
        END IF;
        IF dim IN ('bucket', 'event_count', 'late_events') THEN
            RAISE EXCEPTION 'dimension "%" clashes with a rollup column', dim USING ERRCODE = 'duplicate_column';
        END IF;
        columns := columns || format(', %I %s', dim, col_type);
    END LOOP;
    columns := columns || ', event_count bigint NOT NULL, late_events bigint NOT NULL';

    IF metrics IS NULL OR jsonb_typeof(metrics) <> 'object' THEN
        RAISE EXCEPTION 'metrics must be a JSON object of column name to metric, not %', coalesce(metrics::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example {"total_ms": "sum(duration_ms)", "users": "distinct(user_id)"}.';
    END IF;
    FOR metric IN SELECT key, value FROM jsonb_each(metrics) ORDER BY key LOOP
        parsed := regexp_match(metric.value #>> '{}',
            '^\s*(sum|min|max|distinct|quantiles|top)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*([0-9]+)\s*)?\)\s*$');
        IF jsonb_typeof(metric.value) <> 'string' OR parsed IS NULL
           OR (parsed[1] = 'top' AND parsed[3] IS NULL) OR (parsed[1] NOT IN ('top', 'distinct') AND parsed[3] IS NOT NULL) THEN
            RAISE EXCEPTION 'invalid metric "%": %', metric.key, metric.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Metrics are sum(col), min(col), max(col), distinct(col) or distinct(col, precision), quantiles(col) or top(col, k).';
        END IF;
        IF metric.key = '' OR octet_length(metric.key) > 63 THEN
            RAISE EXCEPTION 'invalid metric name %', quote_literal(metric.key)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'A metric''s name is its column''s name: 1 to 63 bytes.';
        END IF;
        IF metric.key IN ('bucket', 'event_count', 'late_events') OR metric.key = ANY (coalesce(dimensions, '{}')) THEN
            RAISE EXCEPTION 'metric name "%" clashes with another rollup column', metric.key USING ERRCODE = 'duplicate_column';
        END IF;
        kind := parsed[1];
        SELECT atttypid::regtype INTO col_type FROM pg_attribute
         WHERE attrelid = source AND attname = parsed[2] AND attnum > 0 AND NOT attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of metric "%" does not exist in %', parsed[2], metric.key, source
                USING ERRCODE = 'undefined_column';
        END IF;
        IF kind IN ('sum', 'quantiles') AND col_type NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                                           'numeric'::regtype, 'real'::regtype, 'double precision'::regtype) THEN
            RAISE EXCEPTION 'metric "%" needs a number, but column "%" is %', metric.key, parsed[2], col_type
                USING ERRCODE = 'datatype_mismatch';
        END IF;
        IF kind = 'distinct' AND parsed[3] IS NOT NULL AND (length(parsed[3]) > 2 OR parsed[3]::int NOT BETWEEN 4 AND 18) THEN
            RAISE EXCEPTION 'metric "%": precision must be between 4 and 18, not %', metric.key, parsed[3]
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The standard error is 1.04/sqrt(2^precision): 2.3% at 11, 0.81% at 14 (the default), 0.41% at 16.';
        END IF;
        IF kind = 'top' AND (length(parsed[3]) > 5 OR parsed[3]::int < 1 OR parsed[3]::int > 10000) THEN
            RAISE EXCEPTION 'metric "%": k must be between 1 and 10000, not %', metric.key, parsed[3]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        col_type := CASE kind
            WHEN 'sum' THEN CASE WHEN col_type IN ('smallint'::regtype, 'integer'::regtype) THEN 'bigint'::regtype
                                 WHEN col_type = 'bigint'::regtype THEN 'numeric'::regtype
                                 WHEN col_type = 'real'::regtype THEN 'double precision'::regtype ELSE col_type END
            WHEN 'distinct' THEN 'collect.hll'::regtype
            WHEN 'quantiles' THEN 'collect.quantiles'::regtype
            WHEN 'top' THEN 'collect.topk'::regtype
            ELSE col_type END;
        columns := columns || format(', %I %s', metric.key, col_type);
        metric_defs := metric_defs || jsonb_build_object('name', metric.key, 'kind', kind, 'column', parsed[2],
                                                         'k', CASE WHEN kind = 'top' THEN parsed[3]::int END,
                                                         'precision', CASE WHEN kind = 'distinct' THEN parsed[3]::int END,
                                                         'type', col_type::text);
    END LOOP;

    PERFORM pg_advisory_xact_lock(hashtext('collect.rollup:' || target_schema || '.' || name));
    IF EXISTS (SELECT FROM collect.rollup_defs d WHERE d.schema = target_schema AND d.name = create_rollup.name) THEN
        RAISE EXCEPTION 'rollup %.% already exists', quote_ident(target_schema), name USING ERRCODE = 'duplicate_object';
    END IF;
    EXECUTE format('CREATE TABLE %I.%I (%s)', target_schema, name, columns);
    rollup := format('%I.%I', target_schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', rollup,
                   coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(dimensions) WITH ORDINALITY u(d, o)), ''));
    EXECUTE format('CREATE TABLE %I.%I (bucket %s PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now())',
                   target_schema, name || '_stale', (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rollup AND attname = 'bucket'));
    EXECUTE format('COMMENT ON TABLE %s IS %L', rollup,
                   format('Rollup of %s per %s (pg_collect)', source, granularity));

    INSERT INTO collect.rollup_defs (schema, name, source_schema, source_name, time_column, dimensions, metrics, granularity, keep_raw)
    VALUES (target_schema, name, target_schema, source_name, time_column, coalesce(dimensions, '{}'), metric_defs, granularity, keep_raw)
    RETURNING * INTO def;
    PERFORM collect._rollup_make_ingest_triggers(def);
    IF keep_raw THEN
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L, %L)', name || '_update', source, target_schema, name);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L, %L)', name || '_delete', source, target_schema, name);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s
                        FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L, %L)', name || '_truncate', source, target_schema, name);
    END IF;
    RETURN rollup;
END $$;

-- The triggers that feed a rollup at ingest, made for its current version (dropped first
-- when they exist: add_tier remakes them).
CREATE FUNCTION collect._rollup_make_ingest_triggers(def collect.rollup_defs) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    source text := format('%I.%I', def.source_schema, def.source_name);
    old text;
BEGIN
    FOR old IN SELECT tgname FROM pg_trigger WHERE tgrelid = source::regclass
                  AND tgname IN (def.name || '_ingest', def.name || '_begin', def.name || '_buffer') LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', old, source);
    END LOOP;
    IF NOT def.keep_raw THEN
        -- Rows are buffered in memory per statement and rolled up; none is stored.
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_begin(%L, %L)',
                       def.name || '_begin', source, def.schema, def.name);
        EXECUTE format('CREATE TRIGGER %I INSTEAD OF INSERT ON %s FOR EACH ROW EXECUTE FUNCTION collect._rollup_buffer_row(%L, %L)',
                       def.name || '_buffer', source, def.schema, def.name);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_flush(%L, %L, %L)',
                       def.name || '_ingest', source, def.schema, def.name, def.version);
    ELSE
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest(%L, %L, %L)',
                       def.name || '_ingest', source, def.schema, def.name, def.version);
    END IF;
END $$;
CREATE FUNCTION collect._rollup_begin() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_begin_wrapper';
CREATE FUNCTION collect._rollup_buffer_row() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_buffer_row_wrapper';
CREATE FUNCTION collect._rollup_flush() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'rollup_flush_wrapper';
COMMENT ON FUNCTION collect.create_rollup(text, regclass, text, text[], jsonb, interval, boolean) IS
    'Creates a rollup table kept at ingest: one row per bucket and dimension combination';

-- Events as a JSON array (a lump), inserted into the source: one statement per set of keys
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

-- Events as a lump of newline-delimited JSON, gzip-compressed or not (what a client writes
-- with gzip alone): one JSON object a line; blank lines are skipped.
CREATE FUNCTION collect._ndjson_lines(lump bytea) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ndjson_lines_wrapper';
CREATE FUNCTION collect._ndjson_events(lump bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lines text[] := collect._ndjson_lines(lump);
    events jsonb;
BEGIN
    IF lump IS NULL THEN
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

CREATE FUNCTION collect.ingest(rollup text, events bytea) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT collect._ingest(r.schema, r.object_name, collect._ndjson_events(events)) FROM collect._resolve('rollup', rollup) r
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
    dims text := coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(def.dimensions) WITH ORDINALITY u(d, o)), '');
    merged text;
BEGIN
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    PERFORM collect._check_name('tier', name);
    IF granularity IS NULL OR extract(month FROM granularity) <> 0 OR granularity <= def.granularity
       OR extract(epoch FROM granularity)::numeric % extract(epoch FROM def.granularity)::numeric <> 0 THEN
        RAISE EXCEPTION 'tier granularity % must be a multiple of the rollup''s %', coalesce(granularity::text, 'NULL'), def.granularity
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For a minute rollup: ''1 hour'', ''1 day''.';
    END IF;
    PERFORM collect._lock_definition('rollup', def.schema, def.name);
    -- Lock out ingest while the tier is filled and the ingest trigger remade, so no statement
    -- is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', collect._rollup_source(def));
    def := collect._rollup_def(schema, rollup);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s)', def.schema, name, collect._rollup_table(def));
    tier := format('%I.%I', def.schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', tier, dims);
    SELECT string_agg(', ' || CASE m->>'kind'
            WHEN 'sum' THEN format('sum(%I)', m->>'name') WHEN 'min' THEN format('min(%I)', m->>'name')
            WHEN 'max' THEN format('max(%I)', m->>'name') ELSE format('collect.merge(%I)', m->>'name') END, '')
      INTO merged FROM jsonb_array_elements(def.metrics) m;
    EXECUTE format('INSERT INTO %s SELECT date_bin(%L::interval, bucket, collect._bucket_origin())%s, sum(event_count), sum(late_events)%s
                      FROM %s GROUP BY 1%s',
                   tier, granularity, dims, coalesce(merged, ''), collect._rollup_table(def),
                   (SELECT string_agg(', ' || g, '') FROM generate_series(2, 1 + cardinality(def.dimensions)) g));
    UPDATE collect.rollup_defs d
       SET tiers = d.tiers || jsonb_build_object('name', _add_tier.name, 'granularity', _add_tier.granularity, 'keep', NULL),
           version = d.version + 1
     WHERE d.schema = def.schema AND d.name = def.name
    RETURNING * INTO def;
    PERFORM collect._rollup_make_ingest_triggers(def);
    RETURN tier;
END $$;

CREATE FUNCTION collect.add_tier(rollup text, name text, granularity interval) RETURNS regclass
    LANGUAGE sql AS $$ SELECT collect._add_tier(r.schema, r.object_name, name, granularity) FROM collect._resolve('rollup', rollup) r $$;

-- Keeps `keep` of buckets in one rollup or tier table; coarser tiers keep their history.
CREATE FUNCTION collect.set_retention(rollup_table regclass, keep interval) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_of_table(rollup_table);
BEGIN
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    IF keep IS NOT NULL AND keep <= interval '0' THEN
        RAISE EXCEPTION 'retention must be positive, not %', keep USING ERRCODE = 'invalid_parameter_value';
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
    RETURN collect._apply_retention(def.schema, def.name);
END $$;

-- Deletes buckets past their table's retention, in one rollup or in every rollup the caller
-- owns; run it from a scheduler (pg_cron, say).
CREATE FUNCTION collect._apply_retention(schema name, rollup text) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs;
    t record;
    n bigint;
    total bigint := 0;
BEGIN
    FOR def IN
        SELECT * FROM collect.rollup_defs d
         WHERE (rollup IS NULL AND pg_has_role(d.owner, 'USAGE')) OR (d.schema = _apply_retention.schema AND d.name = rollup)
         ORDER BY d.schema, d.name
    LOOP
        def := collect._rollup_def(def.schema, def.name);
        FOR t IN SELECT * FROM collect._rollup_tiers(def) LOOP
            CONTINUE WHEN t.keep IS NULL;
            EXECUTE format('DELETE FROM %s WHERE bucket < date_bin(%L::interval, now(), collect._bucket_origin()) - %L::interval',
                           t.tbl, t.g, t.keep);
            GET DIAGNOSTICS n = ROW_COUNT;
            total := total + n;
        END LOOP;
    END LOOP;
    IF rollup IS NOT NULL AND def IS NULL THEN
        PERFORM collect._rollup_def(schema, rollup);
    END IF;
    RETURN total;
END $$;

CREATE FUNCTION collect.apply_retention(rollup text DEFAULT NULL) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT CASE WHEN rollup IS NULL THEN collect._apply_retention(NULL, NULL)
                ELSE (SELECT collect._apply_retention(r.schema, r.object_name) FROM collect._resolve('rollup', rollup) r) END
$$;

-- Recomputes stale buckets (or those in [from, to)) of the rollup and its tiers from raw rows.
CREATE FUNCTION collect._refresh_rollup(schema name, rollup text, "from" timestamptz, "to" timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    source regclass := collect._rollup_source(def);
    stale text := collect._rollup_table(def, '_stale');
    t record;
    bucket_expr text := format('date_bin(%L::interval, %I, collect._bucket_origin())', def.granularity, def.time_column);
    refreshed bigint;
BEGIN
    IF NOT def.keep_raw THEN
        RAISE EXCEPTION 'rollup "%" keeps no raw rows to recompute buckets from', def.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF ("from" IS NULL) <> ("to" IS NULL) THEN
        RAISE EXCEPTION 'give both "from" and "to", or neither' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Ingest waits while buckets are rebuilt, so none is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', source);
    CREATE TEMP TABLE IF NOT EXISTS pg_collect_refresh (bucket timestamptz PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE pg_temp.pg_collect_refresh;
    IF "from" IS NULL THEN
        EXECUTE format('INSERT INTO pg_temp.pg_collect_refresh SELECT bucket FROM %s', stale);
    ELSE
        EXECUTE format('INSERT INTO pg_temp.pg_collect_refresh SELECT DISTINCT %s FROM %s WHERE %I >= $1 AND %I < $2
                        UNION SELECT bucket FROM %s WHERE bucket >= date_bin(%L::interval, $1, collect._bucket_origin()) AND bucket < $2',
                       bucket_expr, source, def.time_column, def.time_column, collect._rollup_table(def), def.granularity)
            USING "from", "to";
    END IF;
    SELECT count(*) INTO refreshed FROM pg_temp.pg_collect_refresh;
    FOR t IN SELECT * FROM collect._rollup_tiers(def) LOOP
        -- Every bucket of this table that holds a refreshed base bucket is rebuilt whole.
        EXECUTE format('DELETE FROM %s WHERE bucket IN (SELECT DISTINCT date_bin(%L::interval, bucket, collect._bucket_origin()) FROM pg_temp.pg_collect_refresh)',
                       t.tbl, t.g);
        EXECUTE format('CREATE TEMP VIEW new_rows AS SELECT * FROM %s WHERE date_bin(%L::interval, %I, collect._bucket_origin())
                          IN (SELECT DISTINCT date_bin(%L::interval, bucket, collect._bucket_origin()) FROM pg_temp.pg_collect_refresh)',
                       source, t.g, def.time_column, t.g);
        EXECUTE collect._rollup_upsert(def, t.tbl, t.g, t.keep, count_late => false);
        DROP VIEW pg_temp.new_rows;
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE bucket IN (SELECT bucket FROM pg_temp.pg_collect_refresh)', stale);
    RETURN refreshed;
END $$;

CREATE FUNCTION collect.refresh_rollup(rollup text, "from" timestamptz DEFAULT NULL, "to" timestamptz DEFAULT NULL)
    RETURNS bigint LANGUAGE sql AS $$
    SELECT collect._refresh_rollup(r.schema, r.object_name, "from", "to") FROM collect._resolve('rollup', rollup) r
$$;

CREATE FUNCTION collect._drop_rollup(schema name, rollup text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs;
    source text;
    t jsonb;
    suffix text;
BEGIN
    def := (SELECT d FROM collect.rollup_defs d WHERE (d.schema, d.name) = (_drop_rollup.schema, rollup));
    PERFORM collect._check_definition(def.name IS NOT NULL, true, 'rollup', rollup, def.owner);
    PERFORM collect._check_owner(def.owner, format('rollup %I.%I', def.schema, def.name));
    PERFORM collect._lock_definition('rollup', def.schema, def.name);
    source := format('%I.%I', def.source_schema, def.source_name);
    FOR suffix IN SELECT tgname FROM pg_trigger
                   WHERE tgrelid = to_regclass(source) AND NOT tgisinternal
                     AND tgname IN (SELECT def.name || s FROM unnest(ARRAY['_ingest', '_update', '_delete', '_truncate', '_begin', '_buffer']) s) LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', suffix, source);
    END LOOP;
    FOR t IN SELECT * FROM jsonb_array_elements(def.tiers) LOOP
        EXECUTE format('DROP TABLE IF EXISTS %s', collect._owned_relation(def.owner, def.schema, t->>'name'));
    END LOOP;
    EXECUTE format('DROP TABLE IF EXISTS %s, %s', collect._owned_relation(def.owner, def.schema, def.name),
                   collect._owned_relation(def.owner, def.schema, def.name || '_stale'));
    DELETE FROM collect.rollup_defs d WHERE d.schema = def.schema AND d.name = def.name;
END $$;

CREATE FUNCTION collect.drop_rollup(rollup text) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._drop_rollup(r.schema, r.object_name) FROM collect._resolve('rollup', rollup) r $$;

-- Each rollup's retention and stale-bucket refresh, as periodic work (collect.maintenance).
CREATE FUNCTION collect._rollup_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'rollup', format('%I.%I', d.schema, d.name), j.job, j.call, j.every, true, d.owner, j.step
      FROM collect.rollup_defs d,
           LATERAL (SELECT 'apply retention' AS job, format('SELECT collect.apply_retention(%L)', format('%I.%I', d.schema, d.name)) AS call,
                           greatest(d.granularity, interval '1 minute') AS every,
                           format('SELECT true FROM collect._apply_retention(%L, %L)', d.schema, d.name) AS step
                     WHERE d.keep IS NOT NULL OR EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t WHERE t->>'keep' IS NOT NULL)
                    UNION ALL
                    SELECT 'refresh stale buckets', format('SELECT collect.refresh_rollup(%L)', format('%I.%I', d.schema, d.name)),
                           greatest(d.granularity * 5, interval '5 minutes'),
                           format('SELECT true FROM collect._refresh_rollup(%L, %L, NULL, NULL)', d.schema, d.name)
                     WHERE d.keep_raw) j
     ORDER BY 2, 3
$$;
UPDATE collect.capabilities SET maintenance = 'collect._rollup_maintenance' WHERE kind = 'rollup';

CREATE VIEW collect.rollups AS
SELECT d.schema, d.name, t.rollup AS rollup_table, collect._rollup_source(d) AS source,
       d.time_column, d.dimensions, d.granularity, d.keep_raw, d.keep,
       (SELECT coalesce(jsonb_agg(x || jsonb_build_object('table', format('%I.%I', d.schema, x->>'name')) ORDER BY o), '[]')
          FROM jsonb_array_elements(d.tiers) WITH ORDINALITY y(x, o)) AS tiers,
       (f->>'rows_in')::numeric AS rows_in, (f->>'rollup_rows')::bigint AS rollup_rows,
       round((f->>'rows_in')::numeric / nullif((f->>'rollup_rows')::bigint, 0), 1) AS rollup_ratio,
       (f->>'late_events')::numeric AS late_events, (f->>'stale_buckets')::bigint AS stale_buckets
  FROM collect.rollup_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name) AS rollup,
                       collect._owned_relation(d.owner, d.schema, d.name || '_stale') AS stale) t,
       LATERAL collect._figures(ARRAY[t.rollup, t.stale],
           'SELECT coalesce(sum(event_count), 0) AS rows_in, count(*) AS rollup_rows, coalesce(sum(late_events), 0) AS late_events,
                   (SELECT count(*) FROM %2$s) AS stale_buckets FROM %1$s') f;
GRANT SELECT ON collect.rollups TO PUBLIC;
