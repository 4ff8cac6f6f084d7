-- pg_collect 0.1.0 -> 0.2.0 (issues #26 and #27): code run as its owner in a security-restricted
-- operation, registries that hold only validated values and grant PUBLIC no table-level
-- UPDATE or DELETE, bounded inflation, exact archives, calendar intervals, rollups that follow
-- their source, top-k sketches with more counters (format 2; format 1 still reads), and the
-- rest of those two issues. Frozen with release 0.2.0: never edit it, add the next release's.
-- The upgrade test in `make test` (tests/upgrade) checks that a database updated through it
-- answers as before and equals a fresh install of 0.2.0, object by object.
\echo Use "ALTER EXTENSION pg_collect UPDATE TO '0.2.0'" to load this file. \quit

-- Views that change go first: they name functions that change or go.
DROP VIEW collect.job_runs;
DROP VIEW collect.jobs;
DROP VIEW collect.archives;
DROP VIEW collect.graphs;
DROP VIEW collect.rollups;
DROP VIEW collect.collections;

-- Functions whose arguments changed, or that are gone (their C symbols stay in the library,
-- so a database not yet updated keeps working).
DROP FUNCTION collect._run_as(name, text);
DROP FUNCTION collect._job_lock_keys(text, text);
DROP FUNCTION collect._figures(regclass[], text);
DROP FUNCTION collect._next_slot(timestamptz, interval);
DROP FUNCTION collect._archive(name, text, interval);

-- Registries. New columns: each capability's figures query, and each schedule's own random
-- lock key (rows of 0.1.0 get theirs here).
ALTER TABLE collect.capabilities ADD COLUMN figures text;
ALTER TABLE collect.schedules
    ADD COLUMN lock_key integer NOT NULL DEFAULT ('x' || substr(md5(gen_random_uuid()::text), 1, 8))::bit(32)::integer,
    ALTER COLUMN every DROP NOT NULL,
    ALTER COLUMN next_run DROP NOT NULL,
    DROP CONSTRAINT schedules_every_check;

-- New and changed functions.
CREATE OR REPLACE FUNCTION collect._drop_definition(kind text, schema name, name text, table_suffixes text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    registry regclass := (SELECT c.registry FROM collect.capabilities c WHERE c.kind = _drop_definition.kind);
    owner name;
    tables text;
BEGIN
    EXECUTE format('SELECT d.owner FROM %s d WHERE d.schema = $1 AND d.name = $2', registry) INTO owner USING schema, name;
    PERFORM collect._check_definition(owner IS NOT NULL, true, kind, name, owner);
    -- The definition's row lock first (only its owner gets it), then the tables, in the order
    -- work on it takes them.
    PERFORM collect._lock_definition(kind, schema, name);
    SELECT string_agg(t::text, ', ') INTO tables
      FROM unnest(table_suffixes) s, LATERAL (SELECT collect._owned_relation(owner, schema, name || s) AS t) r
     WHERE t IS NOT NULL;
    IF tables IS NOT NULL THEN
        EXECUTE 'DROP TABLE ' || tables;
    END IF;
    PERFORM collect._delete_registry_rows(registry, jsonb_build_object('schema', schema, 'name', name));
END $$;

CREATE OR REPLACE FUNCTION collect._past_job_deadline() RETURNS boolean
    VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'registry_past_job_deadline_wrapper';

CREATE OR REPLACE FUNCTION collect._as_owner(owner name, query text, as_job boolean DEFAULT false) RETURNS text
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_as_owner_wrapper';

CREATE OR REPLACE FUNCTION collect._acting_as(owner name) RETURNS boolean
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'registry_acting_as_wrapper';

CREATE OR REPLACE FUNCTION collect._owner_run(owner name, what text, query text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM collect._check_owner(owner, what);
    RETURN collect._as_owner(owner, query);
END $$;

CREATE OR REPLACE FUNCTION collect._delete_registry_rows(registry regclass, key jsonb) RETURNS bigint
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_delete_rows_wrapper';

CREATE OR REPLACE FUNCTION collect._figures_as_owner(kind text, tables regclass[]) RETURNS jsonb
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_figures_wrapper';

CREATE OR REPLACE FUNCTION collect._figures(kind text, tables regclass[]) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN collect._figures_as_owner(kind, tables);
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION collect._relation_bytes(t regclass, OUT total bigint, OUT table_only bigint, OUT indexes bigint)
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF collect._distribution_column(t) IS NULL THEN
        total := pg_total_relation_size(t);
        table_only := pg_table_size(t);
    ELSE
        EXECUTE 'SELECT pg_catalog.citus_total_relation_size($1), pg_catalog.citus_table_size($1)' INTO total, table_only USING t;
    END IF;
    indexes := total - table_only;
END $$;

CREATE OR REPLACE FUNCTION collect._register_capability(kind text, registry regclass, verify regproc, listed_in text)
    RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_name text := (SELECT relname FROM pg_class WHERE oid = registry);
    allowed text := format('pg_catalog.pg_has_role(owner, ''USAGE'') AND %s(%I)', verify, row_name);
BEGIN
    INSERT INTO collect.capabilities (kind, registry, verify, listed_in) VALUES (kind, registry, verify, listed_in);
    PERFORM pg_extension_config_dump(registry, '');
    -- UPDATE column by column, not on the table, and no DELETE: an owner still updates and
    -- locks its own rows (row level security), but no role can LOCK TABLE a registry in a
    -- mode that stalls others; deletes go through collect._delete_registry_rows.
    EXECUTE format('GRANT SELECT, INSERT ON %s TO PUBLIC', registry);
    EXECUTE format('GRANT UPDATE (%s) ON %s TO PUBLIC',
                   (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                     WHERE a.attrelid = registry AND a.attnum > 0 AND NOT a.attisdropped), registry);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', registry);
    EXECUTE format('CREATE POLICY readable ON %s FOR SELECT USING (true)', registry);
    EXECUTE format('CREATE POLICY owner_inserts ON %s FOR INSERT WITH CHECK (%s)', registry, allowed);
    EXECUTE format('CREATE POLICY owner_updates ON %s FOR UPDATE USING (pg_catalog.pg_has_role(owner, ''USAGE'')) WITH CHECK (%s)',
                   registry, allowed);
END $$;

CREATE OR REPLACE FUNCTION collect._is_level_map(levels jsonb) RETURNS boolean
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_typeof(levels) = 'object'
       AND NOT EXISTS (SELECT FROM jsonb_each(levels) e WHERE jsonb_typeof(e.value) <> 'array')
$$;

CREATE OR REPLACE FUNCTION collect.distinct_count(sketch collect.hll) RETURNS bigint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_distinct_count_wrapper';

CREATE OR REPLACE FUNCTION collect.value_count(sketch collect.quantiles) RETURNS bigint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_count_wrapper';

CREATE OR REPLACE FUNCTION collect._rollup_granularity_ok(granularity interval) RETURNS boolean
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT granularity > interval '0' AND extract(month FROM granularity) = 0 AND extract(year FROM granularity) = 0
       AND granularity <= interval '36500 days'
$$;

CREATE OR REPLACE FUNCTION collect._rollup_tiers_ok(tiers jsonb) RETURNS boolean
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

CREATE OR REPLACE FUNCTION collect._rollup_verify(d collect.rollup_defs) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN collect._owned_relation(d.owner, d.schema, d.name) IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name || '_stale') IS NOT NULL
       AND collect._rollup_source(d) IS NOT NULL
       AND CASE WHEN jsonb_typeof(d.tiers) <> 'array' THEN false
                ELSE NOT EXISTS (SELECT FROM jsonb_array_elements(d.tiers) t
                                  WHERE collect._owned_relation(d.owner, d.schema, t->>'name') IS NULL) END;
END $$;

CREATE OR REPLACE FUNCTION collect._rollup_source_problem(d collect.rollup_defs) RETURNS text
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

CREATE OR REPLACE FUNCTION collect._rollup_def(schema name, name text) RETURNS collect.rollup_defs
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

CREATE OR REPLACE FUNCTION collect.create_rollup(
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
    columns text := '';
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
    metric_defs := collect._rollup_metrics(source::text, metrics, coalesce(dimensions, '{}'),
        (SELECT coalesce(jsonb_object_agg(attname, format_type(atttypid, NULL)), '{}') FROM pg_attribute
          WHERE attrelid = source AND attnum > 0 AND NOT attisdropped))::jsonb;
    columns := columns || coalesce((SELECT string_agg(format(', %I %s', m->>'name', m->>'type'), '' ORDER BY o)
                                      FROM jsonb_array_elements(metric_defs) WITH ORDINALITY x(m, o)), '');

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
    EXECUTE format('CREATE TABLE %I.%I (%s)', target_schema, name, columns);
    rollup := format('%I.%I', target_schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', rollup,
                   coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(dimensions) WITH ORDINALITY u(d, o)), ''));
    EXECUTE format('CREATE TABLE %I.%I (bucket %s, %s marked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket%s))',
                   target_schema, name || '_stale', (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rollup AND attname = 'bucket'),
                   CASE WHEN distribution_column IS NULL THEN ''
                        ELSE format('%I %s,', distribution_column, (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rollup AND attname = distribution_column)) END,
                   CASE WHEN distribution_column IS NULL THEN '' ELSE format(', %I', distribution_column) END);
    EXECUTE format('COMMENT ON TABLE %s IS %L', rollup,
                   format('Rollup of %s per %s (pg_collect)', source, granularity));
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

CREATE OR REPLACE FUNCTION collect._add_tier(schema name, rollup text, name text, granularity interval) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    tier regclass;
    spec jsonb;
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
    def := collect._rollup_def(schema, rollup);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s)', def.schema, name, collect._rollup_table(def));
    tier := format('%I.%I', def.schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', tier,
                   coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(def.dimensions) WITH ORDINALITY u(d, o)), ''));
    IF def.distribution_column IS NOT NULL THEN
        PERFORM collect._citus_distribute(tier, def.distribution_column, collect._rollup_table(def)::regclass);
    END IF;
    UPDATE collect.rollup_defs d
       SET tiers = d.tiers || jsonb_build_object('name', _add_tier.name, 'granularity', _add_tier.granularity, 'keep', NULL),
           version = d.version + 1
     WHERE d.schema = def.schema AND d.name = def.name
    RETURNING * INTO def;
    spec := collect._rollup_spec(def);
    EXECUTE (collect._rollup_sql(spec, 'fill', (SELECT o::integer - 1 FROM jsonb_array_elements(spec->'tables') WITH ORDINALITY x(t, o)
                                                 WHERE t->'table'->>'name' = _add_tier.name), NULL, NULL))[1];
    PERFORM collect._rollup_make_triggers(def);
    RETURN tier;
END $$;

CREATE OR REPLACE FUNCTION collect.set_retention(rollup_table regclass, keep interval) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_of_table(rollup_table);
    newest text;
    deleted bigint;
    left_over boolean;
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
    EXECUTE format('SELECT max(bucket)::text FROM %s', rollup_table) INTO newest;
    deleted := collect._apply_retention(def.schema, def.name);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', rollup_table) INTO left_over;
    IF newest IS NOT NULL AND NOT left_over THEN
        RAISE EXCEPTION 'a retention of % would delete every row of %, whose newest bucket is %', keep, rollup_table, newest
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Retention counts back from now(), so rows of past times all go. Give a longer retention, or TRUNCATE the table first if it is meant to be emptied.';
    END IF;
    RETURN deleted;
END $$;

CREATE OR REPLACE FUNCTION collect._apply_retention(schema name, rollup text) RETURNS bigint
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

CREATE OR REPLACE FUNCTION collect._refresh_rollup(schema name, rollup text, "from" timestamptz, "to" timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(schema, rollup);
    spec jsonb := collect._rollup_spec(def);
    stale text := collect._rollup_table(def, '_stale');
    buckets text[];
    stmt text;
BEGIN
    IF NOT def.keep_raw THEN
        RAISE EXCEPTION 'rollup "%" keeps no raw rows to recompute buckets from', def.name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF ("from" IS NULL) <> ("to" IS NULL) THEN
        RAISE EXCEPTION 'give both "from" and "to", or neither' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('rollup %I.%I', def.schema, def.name),
                                  format('SELECT collect._refresh_rollup(%L, %L, %L, %L)', schema, rollup, "from", "to"))::bigint;
    END IF;
    -- Ingest waits while buckets are rebuilt, so none is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', collect._rollup_source(def));
    -- The base buckets to rebuild, as text: the generated statements cast them back to the
    -- bucket's type.
    IF "from" IS NULL THEN
        EXECUTE format('SELECT array_agg(DISTINCT bucket::text) FROM %s', stale) INTO buckets;
    ELSE
        EXECUTE (collect._rollup_sql(spec, 'range', 0, NULL, NULL))[1] INTO buckets USING "from", "to";
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
    EXECUTE format('DELETE FROM %s WHERE bucket = ANY ($1::%s[])', stale, def.time_type) USING buckets;
    RETURN cardinality(buckets);
END $$;

CREATE OR REPLACE FUNCTION collect._drop_rollup(schema name, rollup text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
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
    PERFORM collect._delete_registry_rows('collect.rollup_defs', jsonb_build_object('schema', def.schema, 'name', def.name));
END $$;

CREATE OR REPLACE FUNCTION collect._backfill_batch(parent regclass, batch_size integer, started timestamptz, done_at_start bigint)
    RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
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
        RETURN collect._owner_run(def.owner, format('tracking of %s', parent),
                                  format('SELECT collect._backfill_batch(%L::pg_catalog.regclass, %s, %L, %s)', parent::oid, batch_size, started, done_at_start))::bigint;
    END IF;
    IF last IS NULL THEN
        EXECUTE format('SELECT array_agg(k ORDER BY k)::text, count(*), max(k)::text FROM (SELECT %1$I AS k FROM %2$s ORDER BY 1 LIMIT $1) s',
                       def.parent_key, parent) INTO keys, n, last USING batch_size;
    ELSE
        EXECUTE format('SELECT array_agg(k ORDER BY k)::text, count(*), max(k)::text FROM (SELECT %1$I AS k FROM %2$s WHERE %1$I > $2::%3$s ORDER BY 1 LIMIT $1) s',
                       def.parent_key, parent, def.key_type) INTO keys, n, last USING batch_size, def.backfill_position;
    END IF;
    IF n = 0 THEN
        UPDATE collect.latest_defs d SET backfill_position = NULL, backfill_done = done, backfilled_at = now() WHERE d.parent = def.parent;
        RAISE NOTICE 'backfill_latest %: done, % parents', parent, done;
        RETURN 0;
    END IF;
    IF collect._latest_distributed(def) THEN
        batch_changed := (SELECT sum(changed::bigint) FROM collect._latest_on_shards(def, 'refresh', keys) changed);
    ELSE
        EXECUTE format('SELECT %s($1::%s[])', def.refresh_function, def.key_type) INTO batch_changed USING keys;
    END IF;
    done := done + n;
    UPDATE collect.latest_defs d SET backfill_position = last, backfill_done = done WHERE d.parent = def.parent;
    -- The planner's estimate; a table never analyzed has none, and is counted once.
    total := (SELECT reltuples FROM pg_class WHERE oid = parent)::bigint;
    IF total < 0 THEN
        EXECUTE format('SELECT count(*) FROM %s', parent) INTO total;
    END IF;
    RAISE NOTICE 'backfill_latest %: % of ~% parents, % changed, % rows/s', parent, done, greatest(total, done), batch_changed,
        round((done - done_at_start) / greatest(extract(epoch FROM clock_timestamp() - started), 0.001));
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION collect.check_latest(parent regclass) RETURNS TABLE(parent_key text, stored jsonb, expected jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
BEGIN
    IF NOT collect._acting_as(def.owner) THEN
        -- A tracking's filter may call the owner's functions: the check runs as the owner.
        RETURN QUERY SELECT r->>0, r->1, r->2
          FROM jsonb_array_elements(collect._owner_run(def.owner, format('tracking of %s', parent), format(
                   'SELECT coalesce(jsonb_agg(jsonb_build_array(c.parent_key, c.stored, c.expected)), ''[]'') FROM collect.check_latest(%L::pg_catalog.regclass) c',
                   parent::oid))::jsonb) r;
        RETURN;
    END IF;
    IF collect._latest_distributed(def) THEN
        RETURN QUERY EXECUTE format('SELECT r->>0, r->1, r->2 FROM collect._latest_on_shards($1, ''check'', NULL) found,
                                            jsonb_array_elements(found::jsonb) r ORDER BY (r->>0)::%s', def.key_type) USING def;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE (collect._latest_sql(collect._latest_spec(def)))[3];
END $$;

CREATE OR REPLACE FUNCTION collect.repair_latest(parent regclass) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.latest_defs := collect._latest_def(parent);
    changed bigint;
BEGIN
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('tracking of %s', parent), format('SELECT collect.repair_latest(%L::pg_catalog.regclass)', parent::oid))::bigint;
    END IF;
    IF collect._latest_distributed(def) THEN
        RETURN (SELECT sum(n::bigint) FROM collect._latest_on_shards(def, 'repair', NULL) n);
    END IF;
    EXECUTE format('SELECT %s(ARRAY(SELECT k::%s FROM (%s) AS c(k, s, e)))', def.refresh_function, def.key_type,
                   (collect._latest_sql(collect._latest_spec(def)))[3])
        INTO changed;
    RETURN changed;
END $$;

CREATE OR REPLACE FUNCTION collect._latest_untrack(def collect.latest_defs, drop_columns boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on
    SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
    parent regclass := (SELECT c.oid FROM pg_class c WHERE c.oid = def.parent);
    sync regprocedure := to_regprocedure(def.trigger_function || '()');
    current_schema name;
    current_name text;
    tg record;
    colname text;
BEGIN
    PERFORM collect._check_owner(def.owner, format('the latest-version tracking on %I.%I', def.schema, def.name));
    -- Catch up with a rename of the parent, and lock the definition for the drop.
    UPDATE collect.latest_defs d SET schema = c.relnamespace::regnamespace::name, name = c.relname
      FROM pg_class c WHERE c.oid = d.parent AND d.parent = def.parent
    RETURNING d.schema, d.name INTO current_schema, current_name;
    PERFORM collect._lock_definition('tracking', coalesce(current_schema, def.schema), coalesce(current_name, def.name));
    -- The triggers are found by their function, so renamed tables and partitions added or
    -- dropped since do not matter: those of the generated function first, which is then
    -- dropped, and then pg_collect's.
    FOR tg IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t WHERE t.tgfoid = sync ORDER BY t.tgrelid, t.tgname LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', tg.tgname, tg.rel);
    END LOOP;
    -- CASCADE: on Citus, the shards of a table distributed after tracking keep TRUNCATE
    -- triggers of the generated function that dropping the table's triggers leaves behind.
    EXECUTE format('DROP FUNCTION IF EXISTS %s() CASCADE', def.trigger_function);
    EXECUTE format('DROP FUNCTION IF EXISTS %s(%s[])', def.refresh_function, def.key_type);
    FOR tg IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
               WHERE t.tgfoid IN ('collect._latest_insert()'::regprocedure, 'collect._latest_shard_sync()'::regprocedure)
                 AND t.tgrelid = ANY (def.trigger_tables)
                 AND position(convert_to(def.refresh_function, 'UTF8') || '\x00'::bytea IN t.tgargs) = 1
               ORDER BY t.tgrelid, t.tgname LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', tg.tgname, tg.rel);
    END LOOP;
    IF drop_columns AND parent IS NOT NULL THEN
        FOREACH colname IN ARRAY def.columns LOOP
            EXECUTE format('ALTER TABLE %s DROP COLUMN IF EXISTS %I', parent, def.prefix || colname);
        END LOOP;
    END IF;
    -- By the parent's OID: the row's schema and name may predate a rename.
    PERFORM collect._delete_registry_rows('collect.latest_defs', jsonb_build_object('parent', def.parent::oid::text));
END $$;

CREATE OR REPLACE FUNCTION collect._archive_spec(def collect.archive_defs) RETURNS jsonb
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    source regclass := collect._owned_relation(def.owner, def.source_schema, def.source_name);
BEGIN
    -- Every read asks for the spec: the source's columns are read in one scan.
    RETURN jsonb_build_object(
        'source', jsonb_build_object('schema', def.source_schema, 'name', def.source_name),
        'lumps', jsonb_build_object('schema', def.schema, 'name', def.name || '_lumps'),
        'key', def.key_column, 'key_type', format_type(def.key_type, NULL), 'time', def.time_column,
        'distributed', collect._distribution_column(source) IS NOT NULL)
     || (SELECT jsonb_build_object(
                    'columns', jsonb_agg(a.attname ORDER BY a.attnum),
                    -- What to_jsonb of the row would not give back exactly (src/archives/generate.rs).
                    'column_kinds', jsonb_agg(CASE WHEN a.atttypid = 'json'::regtype THEN 'json'
                                                   WHEN a.atttypid = 'jsonb'::regtype AND a.attnotnull THEN 'jsonb not null'
                                                   WHEN a.atttypid = 'jsonb'::regtype THEN 'jsonb'
                                                   WHEN a.atttypid IN ('real'::regtype, 'double precision'::regtype) THEN 'float'
                                                   ELSE 'plain' END ORDER BY a.attnum))
           FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '');
END $$;

CREATE OR REPLACE FUNCTION collect._create_archive(target_schema name, name text, source regclass, key_column text, time_column text,
                                        lump_rows integer, archive_after interval) RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    source_schema name;
    source_name text;
    key_attnum smallint;
    key_type regtype;
    time_type regtype;
    source_key text;
    source_reference boolean;
    def collect.archive_defs;
    lumps regclass;
    statement text;
BEGIN
    PERFORM collect._check_name('archive', name);
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'no schema to create archive "%" in', name
            USING ERRCODE = 'invalid_schema_name', HINT = 'Set search_path to a schema you can create tables in.';
    END IF;
    IF source IS NULL OR key_column IS NULL OR time_column IS NULL THEN
        RAISE EXCEPTION 'collect.create_archive needs a source, a key column and a time column, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lump_rows IS NULL OR lump_rows < 1 THEN
        RAISE EXCEPTION 'lump_rows must be positive, not %', coalesce(lump_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Lumps of 1,000 to 100,000 rows compress well; 10,000 is the default.';
    END IF;
    IF archive_after < interval '0' OR archive_after > interval '36500 days' THEN
        RAISE EXCEPTION 'archive_after must be between 0 and 36500 days, not %', archive_after USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname, c.relname INTO source_schema, source_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source AND c.relkind IN ('r', 'p');
    IF source_name IS NULL THEN
        RAISE EXCEPTION '% is not a table', source USING ERRCODE = 'wrong_object_type';
    END IF;
    PERFORM collect._check_owner((SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.oid = source),
                                 format('table %s', source));
    SELECT a.attnum, a.atttypid INTO key_attnum, key_type FROM pg_attribute a
     WHERE a.attrelid = source AND a.attname = key_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF key_attnum IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', key_column, source USING ERRCODE = 'undefined_column';
    END IF;
    -- On Citus a unique key includes the distribution column, so that check comes first.
    SELECT c.distribution_column, c.reference INTO source_key, source_reference FROM collect._citus_table(source) c;
    IF source_key IS NOT NULL AND source_key <> key_column THEN
        RAISE EXCEPTION 'archive key "%" is not the distribution column of %', key_column, source
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('On Citus an archive keeps each shard''s rows with that shard: archive by %I.', source_key);
    END IF;
    IF source_key IS NOT NULL AND key_type NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype, 'numeric'::regtype,
                                                  'text'::regtype, 'character varying'::regtype, 'uuid'::regtype) THEN
        RAISE EXCEPTION 'key column "%" has type %, which archives of distributed tables do not support', key_column, key_type
            USING ERRCODE = 'feature_not_supported', HINT = 'On Citus, archive keys are integers, numeric, text or uuid.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = source AND i.indisunique AND i.indnatts = 1
                      AND i.indkey[0] = key_attnum AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
        RAISE EXCEPTION 'key column "%" of % is not unique', key_column, source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An archive finds a record by its key: use a column with a primary key or unique index of its own.';
    END IF;
    -- Built-in key types only: the generated statements compare keys with pg_catalog's operators.
    IF (SELECT t.typnamespace <> 'pg_catalog'::regnamespace OR t.typtype <> 'b' FROM pg_type t WHERE t.oid = key_type)
       OR NOT EXISTS (SELECT FROM pg_opclass o WHERE o.opcmethod = (SELECT oid FROM pg_am WHERE amname = 'btree')
                         AND o.opcintype = key_type AND o.opcdefault) THEN
        RAISE EXCEPTION 'key column "%" has type %, which archives do not support', key_column, key_type
            USING ERRCODE = 'feature_not_supported', HINT = 'Archive keys are of a built-in type such as bigint, integer, text or uuid.';
    END IF;
    SELECT a.atttypid INTO time_type FROM pg_attribute a
     WHERE a.attrelid = source AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF time_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', time_column, source USING ERRCODE = 'undefined_column';
    END IF;
    IF time_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'time column "%" has type %, not a time', time_column, time_type
            USING ERRCODE = 'datatype_mismatch', HINT = 'The time column is timestamptz, timestamp or date.';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('collect.archive:' || target_schema || '.' || name));
    IF EXISTS (SELECT FROM collect.archive_defs d WHERE d.schema = target_schema AND d.name = _create_archive.name) THEN
        RAISE EXCEPTION 'archive %.% already exists', quote_ident(target_schema), name
            USING ERRCODE = 'duplicate_object', HINT = 'Drop it with collect.drop_archive(name), or pick another name.';
    END IF;
    -- The tables first: the registry's row level security admits a row only once its owner
    -- owns what it names.
    def := ROW(target_schema, name, source_schema, source_name, key_column, key_type, time_column, lump_rows, archive_after,
               current_user, now())::collect.archive_defs;
    FOREACH statement IN ARRAY collect._archive_create_sql(collect._archive_spec(def)) LOOP
        EXECUTE statement;
    END LOOP;
    INSERT INTO collect.archive_defs SELECT def.*;
    lumps := format('%I.%I', target_schema, name || '_lumps')::regclass;
    EXECUTE format('COMMENT ON TABLE %s IS %L', lumps, format('Rows of %s archived as gzipped JSON lumps by archive %s (pg_collect)', source, name));
    IF source_key IS NOT NULL THEN
        PERFORM collect._citus_distribute(lumps, 'shard_key', source);
    ELSIF source_reference THEN
        EXECUTE format('SELECT create_reference_table(%L)', lumps::text);
    END IF;
    RETURN lumps;
END $$;

CREATE OR REPLACE FUNCTION collect._archive_batch(schema name, name text, before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 SET IntervalStyle = postgres AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    spec jsonb := collect._archive_spec(def);
    statements text[] := collect._archive_sql(spec);
    source regclass := format('%I.%I', def.source_schema, def.source_name)::regclass;
    moved bigint := 0;
    n bigint;
    shard_key text;
    keys text;
    lump record;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'archive % needs a time to archive rows older than, not NULL', name USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('archive %I.%I', schema, name),
                                  format('SELECT collect._archive_batch(%L, %L, %L)', schema, name, before))::bigint;
    END IF;
    -- Work under the definition queues behind a drop (and a drop behind the work).
    PERFORM collect._lock_definition('archive', schema, name, 'NO KEY UPDATE');
    -- Each new lump erases the older records of its keys (statements[7]): a key archived,
    -- written again to the source and archived again keeps one record, its newest.
    IF NOT (spec->>'distributed')::boolean THEN
        EXECUTE statements[1] INTO lump USING before, def.lump_rows;
        IF lump.records > 0 THEN
            EXECUTE statements[7] USING lump.lump_id, lump.min_key, lump.max_key, lump.keys, lump.shard_key;
        END IF;
        RETURN coalesce(lump.records, 0);
    END IF;
    FOR shard_key IN SELECT collect._archive_shard_keys(source, def.key_type) LOOP
        EXECUTE statements[2] INTO keys USING before, def.lump_rows, shard_key;
        IF keys IS NOT NULL THEN
            EXECUTE statements[1] INTO lump USING before, def.lump_rows, shard_key, keys;
            IF lump.records > 0 THEN
                EXECUTE statements[7] USING lump.lump_id, lump.min_key, lump.max_key, lump.keys, lump.shard_key;
            END IF;
            moved := moved + coalesce(lump.records, 0);
        END IF;
    END LOOP;
    RETURN moved;
END $$;

CREATE OR REPLACE FUNCTION collect._archive(schema name, name text, before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lump_rows integer := (collect._archive_def(schema, name)).lump_rows;
    total bigint := 0;
    n bigint;
BEGIN
    -- A batch short of a full lump has caught up: rows that writers add meanwhile wait for
    -- the next call, so the call ends however fast they come.
    LOOP
        n := collect._archive_batch(schema, name, before);
        total := total + n;
        EXIT WHEN n < lump_rows;
    END LOOP;
    RETURN total;
END $$;

CREATE OR REPLACE FUNCTION collect.archive(name text, older_than interval) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT collect._archive(r.schema, r.object_name, collect._archive_cutoff(older_than)) FROM collect._resolve('archive', name, '_lumps') r
$$;

CREATE OR REPLACE FUNCTION collect.archive_before(name text, before timestamptz) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._archive(r.schema, r.object_name, before) FROM collect._resolve('archive', name, '_lumps') r $$;

CREATE OR REPLACE FUNCTION collect._unarchive(schema name, name text, "from" timestamptz, "to" timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET IntervalStyle = postgres AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    removed bigint;
    rewritten bigint;
BEGIN
    IF "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'unarchive needs both ends of the range, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('archive %I.%I', schema, name),
                                  format('SELECT collect._unarchive(%L, %L, %L, %L)', schema, name, "from", "to"))::bigint;
    END IF;
    PERFORM collect._lock_definition('archive', schema, name, 'NO KEY UPDATE');
    EXECUTE (collect._archive_sql(collect._archive_spec(def)))[5]
        INTO removed, rewritten USING "from", "to";
    RETURN removed;
END $$;

CREATE OR REPLACE FUNCTION collect._archive_delete(schema name, name text, key anyelement) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    spec jsonb := collect._archive_spec(def);
    removed bigint;
    rewritten bigint;
BEGIN
    PERFORM collect._archive_key(def, pg_typeof(key), name);
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('archive %I.%I', schema, name),
                                  format('SELECT collect._archive_delete(%L, %L, %L::%s)', schema, name, key, pg_typeof(key)))::boolean;
    END IF;
    PERFORM collect._lock_definition('archive', schema, name, 'NO KEY UPDATE');
    EXECUTE (collect._archive_sql(spec))[6] INTO removed, rewritten USING key, collect._archive_key_shard(def, spec, key::text);
    RETURN removed > 0;
END $$;

CREATE OR REPLACE FUNCTION collect._index_bytes_per_row(t regclass) RETURNS numeric
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(((8 + k.key_bytes + 7) / 8 * 8 + 4) / 0.9), 0)
      FROM pg_index i,
           LATERAL (SELECT sum(CASE WHEN ia.attlen > 0 THEN ia.attlen ELSE coalesce(s.avg_width, 32) END)::integer AS key_bytes
                      FROM pg_attribute ia
                      LEFT JOIN pg_attribute ta ON ta.attrelid = i.indrelid AND ta.attnum = i.indkey[ia.attnum - 1]
                      LEFT JOIN pg_stats s ON s.schemaname = (SELECT relnamespace::regnamespace::name FROM pg_class WHERE oid = t)
                                          AND s.tablename = (SELECT relname FROM pg_class WHERE oid = t) AND s.attname = ta.attname
                     WHERE ia.attrelid = i.indexrelid AND ia.attnum > 0) k
     WHERE i.indrelid = t
$$;

CREATE OR REPLACE FUNCTION collect._job_result(owner name, result text) RETURNS text
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN result IS NULL OR pg_has_role(owner, 'USAGE') OR result NOT LIKE 'failed:%' THEN result
                ELSE substring(result FROM '^failed: [0-9A-Z]{5}') || ' (the message is for the job''s owner)' END
$$;

CREATE OR REPLACE FUNCTION collect._schedule(found collect.maintenance, every interval, start_at timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    next_run timestamptz := coalesce(start_at, now());
BEGIN
    PERFORM collect._check_owner(found.owner, format('%s %s', found.kind, found.object));
    every := coalesce(every, found.every);
    -- A job with no usual interval (a backfill) and none given runs once, to its end.
    IF every < interval '1 second' OR every > interval '100 years' THEN
        RAISE EXCEPTION 'a job runs every second to every 100 years, not every %', every USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT (p->>'months')::integer < 0 OR (p->>'days')::integer < 0 OR (p->>'micros')::bigint < 0 FROM collect._interval_parts(every) p) THEN
        RAISE EXCEPTION 'a job runs every interval with no negative part, not every %', every USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT isfinite(next_run) THEN
        RAISE EXCEPTION 'a schedule starts at a time, not at %', next_run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO collect.schedules AS s (object, job, every, owner, next_run)
    VALUES (found.object, found.job, every, found.owner, next_run)
    ON CONFLICT (object, job) DO UPDATE SET every = excluded.every, owner = excluded.owner, next_run = excluded.next_run, failures = 0;
    RETURN next_run;
END $$;

CREATE OR REPLACE FUNCTION collect._unschedule(object text, job text) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- From the view, which lists every role's jobs: another role's schedule is refused (42501),
    -- not taken for one that does not exist.
    owner name := (SELECT j.owner FROM collect.jobs j WHERE (j.object, j.job) = (_unschedule.object, _unschedule.job));
BEGIN
    IF owner IS NULL THEN
        RETURN false;
    END IF;
    PERFORM collect._check_owner(owner, format('the schedule of %s', object));
    PERFORM collect._delete_registry_rows('collect.schedules', jsonb_build_object('object', object, 'job', job));
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION collect._job_lock_class() RETURNS integer
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT hashtext('pg_collect maintenance') $$;

CREATE OR REPLACE FUNCTION collect._release_job_locks() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    held record;
BEGIN
    FOR held IN SELECT l.classid, l.objid FROM pg_locks l
                 WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.objsubid = 2 AND l.granted
                   AND l.classid = collect._job_lock_class()::oid LOOP
        WHILE pg_advisory_unlock(held.classid::integer, held.objid::integer) LOOP END LOOP;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION collect._claim_job(skip text[], OUT object text, OUT job text, OUT started timestamptz)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    candidate record;
BEGIN
    FOR candidate IN SELECT s.object, s.job, s.lock_key FROM collect.schedules s
                      WHERE s.next_run <= clock_timestamp() AND pg_has_role(s.owner, 'USAGE')
                        AND NOT (s.object || ' ' || s.job) = ANY (coalesce(skip, '{}'))
                      ORDER BY (SELECT count(*) FROM collect.schedules r
                                 WHERE r.owner = s.owner AND (r.object || ' ' || r.job) = ANY (coalesce(skip, '{}'))),
                               s.next_run LOOP
        CONTINUE WHEN NOT pg_try_advisory_lock(collect._job_lock_class(), candidate.lock_key);
        -- Another caller may have run it between the query above and the lock: a new
        -- statement sees its commit.
        UPDATE collect.schedules s SET last_started = clock_timestamp()
         WHERE (s.object, s.job) = (candidate.object, candidate.job) AND s.next_run <= clock_timestamp()
        RETURNING s.object, s.job, s.last_started INTO object, job, started;
        IF object IS NOT NULL THEN
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(collect._job_lock_class(), candidate.lock_key);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION collect._run_job_step(object text, job text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found collect.maintenance := (SELECT m FROM collect._maintenance() m WHERE (m.object, m.job) = (_run_job_step.object, _run_job_step.job));
    done boolean;
    state text;
    message text;
BEGIN
    IF found.step IS NULL THEN
        RETURN 'failed: 42704 the job no longer exists (its object was dropped?)';
    END IF;
    BEGIN
        -- The job's code runs as its owner, never as the caller (a superuser, for pg_cron or
        -- the background worker), in a restricted operation whose settings are unwound.
        done := collect._as_owner(found.owner, found.step, as_job => true)::boolean;
        RETURN CASE WHEN done IS FALSE THEN 'more' ELSE 'done' END;
    EXCEPTION
        WHEN query_canceled THEN
            -- The batch ran past collect.job_timeout: a failure of this job. Any other cancel
            -- is the caller's, and ends the call.
            IF NOT collect._past_job_deadline() THEN
                RAISE;
            END IF;
            RETURN format('failed: 57014 the batch ran past collect.job_timeout (%s)', current_setting('collect.job_timeout'));
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
            RETURN format('failed: %s %s', state, message);
    END;
END $$;

CREATE OR REPLACE FUNCTION collect._finish_job(object text, job text, started timestamptz, result text, batches integer) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lock_key integer := (SELECT s.lock_key FROM collect.schedules s WHERE (s.object, s.job) = (_finish_job.object, _finish_job.job));
    failed boolean := result LIKE 'failed:%';
BEGIN
    UPDATE collect.schedules s
       SET last_finished = clock_timestamp(),
           last_result = CASE WHEN result = 'more' THEN format('ok, %s batches, more left', batches)
                              WHEN failed THEN result ELSE format('ok, %s batches', batches) END,
           failures = CASE WHEN failed THEN least(s.failures + 1, 1000000) ELSE 0 END,
           -- A job that runs once (every NULL) is done when it ends without failing or work left.
           next_run = CASE WHEN failed THEN least(clock_timestamp() + interval '1 minute' * 2 ^ least(s.failures, 20),
                                                  collect._next_slot(s.next_run, s.every, clock_timestamp()))
                           WHEN s.every IS NULL AND result = 'more' THEN clock_timestamp()
                           ELSE collect._next_slot(s.next_run, s.every, clock_timestamp()) END,
           runs = (SELECT coalesce(jsonb_agg(r ORDER BY n), '[]') FROM jsonb_array_elements(
                      jsonb_build_array(jsonb_build_object('started', started, 'finished', clock_timestamp(), 'batches', batches,
                                                           'result', CASE WHEN failed THEN result ELSE 'ok' END))
                      || s.runs) WITH ORDINALITY AS x(r, n)
                   WHERE n <= collect._job_history())
     WHERE (s.object, s.job) = (_finish_job.object, _finish_job.job);
    PERFORM pg_advisory_unlock(collect._job_lock_class(), lock_key);
END $$;

CREATE OR REPLACE FUNCTION collect._next_slot(slot timestamptz, every interval, after timestamptz) RETURNS timestamptz
    STABLE STRICT LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bigint;
BEGIN
    -- An interval that does not move forward from this slot ("1 month -30 days" from January
    -- 31st; collect.schedule refuses negative parts, a row written directly may have them) has
    -- no next slot: the job stops (next_run NULL, as collect.jobs shows) instead of failing
    -- the call that runs everyone's jobs.
    IF slot + every <= slot THEN
        RETURN NULL;
    END IF;
    k := floor(greatest(extract(epoch FROM after - slot), 0) / extract(epoch FROM every)) + 1;
    WHILE k > 1 AND slot + every * (k - 1) > after LOOP
        k := k - 1;
    END LOOP;
    WHILE slot + every * k <= after LOOP
        k := k + 1;
    END LOOP;
    RETURN slot + every * k;
END $$;

-- Checks on every column a role can write. Rows written before them are checked here; a row
-- that fails (one no pg_collect call writes) leaves its check NOT VALID, with a warning that
-- names it, instead of failing the update: fix or delete the row, then VALIDATE it.
ALTER TABLE collect.collection_defs
    ADD CONSTRAINT collection_defs_key_type_check CHECK (key_type IN ('text'::regtype, 'bigint'::regtype, 'uuid'::regtype)) NOT VALID,
    ADD CONSTRAINT collection_defs_read_check CHECK (jsonb_typeof(read) = 'array') NOT VALID,
    ADD CONSTRAINT collection_defs_normalize_check CHECK (collect._is_level_map("normalize")) NOT VALID,
    ADD CONSTRAINT collection_defs_last_normalized_check CHECK (jsonb_typeof(last_normalized) = 'object') NOT VALID;
ALTER TABLE collect.rollup_defs
    ADD CONSTRAINT rollup_defs_metrics_check CHECK (jsonb_typeof(metrics) = 'array') NOT VALID,
    ADD CONSTRAINT rollup_defs_granularity_check CHECK (collect._rollup_granularity_ok(granularity)) NOT VALID,
    ADD CONSTRAINT rollup_defs_keep_check CHECK (keep > interval '0' AND keep <= interval '36500 days') NOT VALID,
    ADD CONSTRAINT rollup_defs_tiers_check CHECK (collect._rollup_tiers_ok(tiers)) NOT VALID,
    ADD CONSTRAINT rollup_defs_version_check CHECK (version >= 1) NOT VALID;
ALTER TABLE collect.archive_defs
    ADD CONSTRAINT archive_defs_archive_after_check CHECK (archive_after >= interval '0' AND archive_after <= interval '36500 days') NOT VALID;
ALTER TABLE collect.schedules
    ADD CONSTRAINT schedules_every_check CHECK (every >= interval '1 second' AND every <= interval '100 years') NOT VALID,
    ADD CONSTRAINT schedules_next_run_check CHECK (next_run > '-infinity' AND next_run < 'infinity') NOT VALID,
    ADD CONSTRAINT schedules_failures_check CHECK (failures BETWEEN 0 AND 1000000) NOT VALID,
    ADD CONSTRAINT schedules_runs_check CHECK (jsonb_typeof(runs) = 'array') NOT VALID;
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT con.conrelid::regclass AS tbl, con.conname FROM pg_catalog.pg_constraint con
              WHERE con.connamespace = 'collect'::regnamespace AND NOT con.convalidated ORDER BY 1, 2 LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tbl, c.conname);
        EXCEPTION WHEN check_violation THEN
            RAISE WARNING 'rows of % fail its new check %: it stays NOT VALID', c.tbl, c.conname
                USING HINT = format('Find them with SELECT * FROM %s WHERE NOT (%s); fix or delete them, then ALTER TABLE %s VALIDATE CONSTRAINT %I.',
                                    c.tbl, (SELECT pg_catalog.substring(pg_catalog.pg_get_constraintdef(x.oid) FROM 7) FROM pg_catalog.pg_constraint x
                                             WHERE x.conrelid = c.tbl AND x.conname = c.conname), c.tbl, c.conname);
        END;
    END LOOP;
END $$;

-- PUBLIC keeps SELECT and INSERT, and UPDATE column by column: no table-level UPDATE or DELETE,
-- with which any role could LOCK TABLE a registry; deletes go through _delete_registry_rows.
DO $$
DECLARE
    registry regclass;
BEGIN
    FOR registry IN SELECT c.registry FROM collect.capabilities c ORDER BY 1 LOOP
        EXECUTE format('REVOKE UPDATE, DELETE ON %s FROM PUBLIC', registry);
        EXECUTE format('GRANT UPDATE (%s) ON %s TO PUBLIC',
                       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = registry AND a.attnum > 0 AND NOT a.attisdropped), registry);
        EXECUTE format('DROP POLICY owner_deletes ON %s', registry);
    END LOOP;
END $$;

-- What each capability registers, and the rest.
UPDATE collect.capabilities SET figures =
    'SELECT (SELECT count(*) FROM (SELECT key FROM %1$s UNION SELECT key FROM %2$s) k) AS keys,
            (SELECT count(*) FROM %2$s) AS pending_entries,
            (SELECT coalesce(sum(pg_column_size(entries)), 0) FROM %1$s) AS base_bytes'
 WHERE kind = 'collection';

UPDATE collect.capabilities SET figures =
    'SELECT * FROM (SELECT coalesce(sum(event_count), 0) AS rows_in, count(*) AS rollup_rows,
                           coalesce(sum(late_events), 0) AS late_events FROM %1$s) r,
                   (SELECT count(DISTINCT bucket) AS stale_buckets FROM %2$s) s'
 WHERE kind = 'rollup';

UPDATE collect.capabilities SET figures =
    'SELECT (SELECT jsonb_object_agg(s, n) FROM (SELECT CASE state WHEN 0 THEN ''normal'' WHEN 1 THEN ''removed''
                                                                  WHEN 2 THEN ''archived'' ELSE ''negative'' END AS s,
                                                      sum(n) AS n FROM %1$s WHERE direction = ''o'' GROUP BY state) c) AS edges,
            (SELECT count(*) FROM (SELECT node FROM %1$s GROUP BY node HAVING sum(n) <> 0) x) AS nodes'
 WHERE kind = 'graph';

COMMENT ON FUNCTION collect.archive_before(text, timestamptz) IS
    'Moves the source''s rows whose time is before `before` into lumps; returns how many moved';

UPDATE collect.capabilities SET figures =
    'SELECT count(*) AS lumps, coalesce(sum(records), 0) AS records, (collect._relation_bytes(%1$L)).total AS stored_bytes,
            (coalesce(sum(heap_bytes), 0) + coalesce(sum(records), 0) * collect._index_bytes_per_row(%2$L))::bigint AS heap_bytes_estimate
       FROM %1$s'
 WHERE kind = 'archive';

ALTER POLICY readable ON collect.schedules USING (pg_catalog.pg_has_role(owner, 'USAGE'));

COMMENT ON FUNCTION collect.schedule(text, text, interval, timestamptz) IS
    'Runs a maintenance job every `every` (its usual interval if NULL; once, to its end, for a job with none) from start_at (now if NULL); returns its first run';

-- The views, as 0.2.0 makes them.
CREATE VIEW collect.collections AS
SELECT d.schema, d.name, d.key_type, d.read, d."normalize", t.pending AS pending_table, t.base AS base_table,
       d.owner, (f->>'keys')::bigint AS keys, (f->>'pending_entries')::bigint AS pending_entries,
       (f->>'base_bytes')::bigint AS base_bytes, d.last_normalized
  FROM collect.collection_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name || '_pending') AS pending,
                       collect._owned_relation(d.owner, d.schema, d.name || '_base') AS base) t,
       LATERAL collect._figures('collection', ARRAY[t.base, t.pending]) f;

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

CREATE VIEW collect.graphs AS
SELECT d.schema, d.name, d.owner, f->'edges' AS edges, (f->>'nodes')::bigint AS nodes, d.compact_lists
  FROM collect.graph_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name || '_counts') AS counts) t,
       LATERAL collect._figures('graph', ARRAY[t.counts]) f;

CREATE VIEW collect.archives AS
SELECT d.schema, d.name, format('%I.%I', d.source_schema, d.source_name) AS source, d.key_column, d.time_column, d.lump_rows,
       d.archive_after, d.owner,
       (f->>'lumps')::bigint AS lumps, (f->>'records')::bigint AS records, (f->>'stored_bytes')::bigint AS stored_bytes,
       (f->>'heap_bytes_estimate')::bigint AS heap_bytes_estimate,
       round((f->>'heap_bytes_estimate')::numeric / nullif((f->>'stored_bytes')::numeric, 0), 1) AS ratio
  FROM collect.archive_defs d,
       LATERAL collect._owned_relation(d.owner, d.schema, d.name || '_lumps') l,
       LATERAL collect._owned_relation(d.owner, d.source_schema, d.source_name) s,
       LATERAL collect._figures('archive', ARRAY[l, s]) f;

CREATE VIEW collect.jobs AS
SELECT s.object, s.job, m.kind, s.every, s.owner, s.next_run, s.last_started AS last_run, s.last_finished,
       collect._job_result(s.owner, s.last_result) AS last_result, s.failures,
       EXISTS (SELECT FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid = collect._job_lock_class()::oid AND l.objid = s.lock_key::oid AND l.objsubid = 2 AND l.granted) AS running,
       m.call
  FROM collect.schedules s LEFT JOIN collect._maintenance() m ON (m.object, m.job) = (s.object, s.job);

CREATE VIEW collect.job_runs AS
SELECT s.object, s.job, (r->>'started')::timestamptz AS started, (r->>'finished')::timestamptz AS finished,
       (r->>'batches')::integer AS batches, collect._job_result(s.owner, r->>'result') AS result
  FROM collect.schedules s, jsonb_array_elements(s.runs) r;

GRANT SELECT ON collect.collections TO PUBLIC;
GRANT SELECT ON collect.rollups TO PUBLIC;
GRANT SELECT ON collect.graphs TO PUBLIC;
GRANT SELECT ON collect.archives TO PUBLIC;
COMMENT ON VIEW collect.archives IS 'Archives, with their lumps, records, bytes stored and what the rows took in the heap';
GRANT SELECT ON collect.jobs TO PUBLIC;
COMMENT ON VIEW collect.jobs IS 'Scheduled maintenance jobs: when they run next, how the last run went, whether one runs now';
GRANT SELECT ON collect.job_runs TO PUBLIC;
COMMENT ON VIEW collect.job_runs IS 'The last runs of each scheduled job (collect._job_history() of them), newest first';
