-- Minute rollups maintained at ingest (Druid, as Plumbr used it). Each INSERT or COPY into a
-- source is aggregated in one pass over its transition table and merged into the rollup with
-- one upsert per touched row; coarser tiers are fed by the same statement.

CREATE TABLE collect.rollup_defs (
    name text PRIMARY KEY,
    rollup_table regclass NOT NULL UNIQUE,
    source regclass NOT NULL,
    time_column text NOT NULL,
    dimensions text[] NOT NULL,
    metrics jsonb NOT NULL,          -- [{"name", "kind", "column", "k", "type"}]
    granularity interval NOT NULL,
    keep_raw boolean NOT NULL DEFAULT true,
    keep interval,                   -- retention of the rollup table itself
    tiers jsonb NOT NULL DEFAULT '[]', -- [{"name", "table", "granularity", "keep"}]
    statements text[] NOT NULL,      -- the upserts the ingest trigger runs, generated
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE collect.rollup_defs IS 'Rollups made by collect.create_rollup';
SELECT collect._make_registry('collect.rollup_defs');

-- Buckets are aligned to this origin, so every tier's buckets nest in the coarser ones.
CREATE FUNCTION collect._bucket_origin() RETURNS timestamptz
    IMMUTABLE PARALLEL SAFE LANGUAGE sql AS $$ SELECT '2000-01-03 00:00:00+00'::timestamptz $$;

CREATE FUNCTION collect._rollup_def(rollup text) RETURNS collect.rollup_defs
    STABLE LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs;
BEGIN
    SELECT * INTO def FROM collect.rollup_defs d
     WHERE d.name = rollup OR d.rollup_table = to_regclass(rollup)
     ORDER BY d.name = rollup DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rollup "%" does not exist', rollup
            USING ERRCODE = 'undefined_object', HINT = 'collect.rollups lists the rollups there are.';
    END IF;
    RETURN def;
END $$;

-- The upsert that merges one statement's rows (transition table new_rows) into `target` at
-- `granularity`, skipping buckets older than `keep`. A rebuild from raw rows does not count
-- late events (`count_late => false`): nothing arrives then.
CREATE FUNCTION collect._rollup_upsert(def collect.rollup_defs, target regclass, granularity interval, keep interval,
                                       count_late boolean DEFAULT true)
    RETURNS text IMMUTABLE LANGUAGE plpgsql AS $$
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
            WHEN 'distinct' THEN format('collect.hll_agg(%I)', m->>'column')
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

CREATE FUNCTION collect._rollup_statements(def collect.rollup_defs) RETURNS text[]
    IMMUTABLE LANGUAGE sql AS $$
    SELECT ARRAY[collect._rollup_upsert(def, def.rollup_table, def.granularity, def.keep)]
        || coalesce((SELECT array_agg(collect._rollup_upsert(def, (t->>'table')::regclass, (t->>'granularity')::interval,
                                                            (t->>'keep')::interval) ORDER BY (t->>'granularity')::interval)
                     FROM jsonb_array_elements(def.tiers) t), '{}')
$$;

-- Trigger functions: TG_ARGV[0] names the rollup.
CREATE FUNCTION collect._rollup_ingest() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN SELECT unnest(statements) FROM collect.rollup_defs WHERE name = TG_ARGV[0] LOOP
        EXECUTE stmt;
    END LOOP;
    RETURN NULL;
END $$;

-- Sums and sketches cannot be un-added: changed or removed raw rows mark their buckets stale
-- for collect.refresh_rollup.
CREATE FUNCTION collect._rollup_mark_stale() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(TG_ARGV[0]);
    stale regclass := (def.rollup_table::text || '_stale')::regclass;
    bucket text := format('date_bin(%L::interval, %I, collect._bucket_origin())', def.granularity, def.time_column);
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('INSERT INTO %s (bucket) SELECT DISTINCT bucket FROM %s ON CONFLICT DO NOTHING', stale, def.rollup_table);
    ELSIF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO %s (bucket) SELECT DISTINCT %s FROM old_rows ON CONFLICT DO NOTHING', stale, bucket);
    ELSE
        EXECUTE format('INSERT INTO %1$s (bucket) SELECT %2$s FROM old_rows UNION SELECT %2$s FROM new_rows ON CONFLICT DO NOTHING',
                       stale, bucket);
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
LANGUAGE plpgsql AS $$
DECLARE
    target_schema name;
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
    SELECT n.nspname INTO target_schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source;

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
           OR (parsed[1] = 'top') <> (parsed[3] IS NOT NULL) THEN
            RAISE EXCEPTION 'invalid metric "%": %', metric.key, metric.value
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Metrics are sum(col), min(col), max(col), distinct(col), quantiles(col) or top(col, k).';
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
        IF kind = 'top' AND (parsed[3]::int < 1 OR parsed[3]::int > 10000) THEN
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
                                                         'k', parsed[3]::int, 'type', col_type::text);
    END LOOP;

    PERFORM pg_advisory_xact_lock(hashtext('collect.rollup:' || name));
    IF EXISTS (SELECT FROM collect.rollup_defs d WHERE d.name = create_rollup.name) THEN
        RAISE EXCEPTION 'rollup "%" already exists', name USING ERRCODE = 'duplicate_object';
    END IF;
    EXECUTE format('CREATE TABLE %I.%I (%s)', target_schema, name, columns);
    rollup := format('%I.%I', target_schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', rollup,
                   coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(dimensions) WITH ORDINALITY u(d, o)), ''));
    EXECUTE format('CREATE TABLE %I.%I (bucket %s PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now())',
                   target_schema, name || '_stale', (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = rollup AND attname = 'bucket'));
    EXECUTE format('COMMENT ON TABLE %s IS %L', rollup,
                   format('Rollup of %s per %s (pg_collect)', source, granularity));

    def := ROW(name, rollup, source, time_column, coalesce(dimensions, '{}'), metric_defs, granularity, keep_raw, NULL, '[]', '{}', current_user, now());
    def.statements := collect._rollup_statements(def);
    INSERT INTO collect.rollup_defs SELECT def.*;

    IF NOT keep_raw THEN
        -- Rows are buffered in memory per statement and rolled up; none is stored.
        EXECUTE format('CREATE TRIGGER %I INSTEAD OF INSERT ON %s FOR EACH ROW EXECUTE FUNCTION collect._rollup_buffer_row()',
                       name || '_buffer', source);
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_flush(%L)',
                       name || '_ingest', source, name);
        RETURN rollup;
    END IF;
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest(%L)', name || '_ingest', source, name);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L)', name || '_update', source, name);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L)', name || '_delete', source, name);
    EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale(%L)', name || '_truncate', source, name);
    RETURN rollup;
END $$;
CREATE FUNCTION collect._rollup_buffer_row() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_buffer_row_wrapper';
CREATE FUNCTION collect._rollup_flush() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_flush_wrapper';
COMMENT ON FUNCTION collect.create_rollup(text, regclass, text, text[], jsonb, interval, boolean) IS
    'Creates a rollup table kept at ingest: one row per bucket and dimension combination';

-- Events as a JSON array (a lump), inserted into the source in one statement.
CREATE FUNCTION collect.ingest(rollup text, events jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(rollup);
    inserted bigint;
BEGIN
    IF events IS NULL OR jsonb_typeof(events) <> 'array' THEN
        RAISE EXCEPTION 'collect.ingest takes a JSON array of events, not %', left(coalesce(events::text, 'NULL'), 60)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('INSERT INTO %1$s SELECT * FROM jsonb_populate_recordset(NULL::%1$s, $1)', def.source) USING events;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;

-- A coarser table fed by the same ingest; filled from the rollup when added.
CREATE FUNCTION collect.add_tier(rollup text, name text, granularity interval) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(rollup);
    target_schema name := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = def.rollup_table);
    tier regclass;
    dims text := coalesce((SELECT string_agg(format(', %I', d), '' ORDER BY o) FROM unnest(def.dimensions) WITH ORDINALITY u(d, o)), '');
    merged text;
BEGIN
    PERFORM collect._check_name('tier', name);
    IF granularity IS NULL OR extract(month FROM granularity) <> 0 OR granularity <= def.granularity
       OR extract(epoch FROM granularity)::numeric % extract(epoch FROM def.granularity)::numeric <> 0 THEN
        RAISE EXCEPTION 'tier granularity % must be a multiple of the rollup''s %', coalesce(granularity::text, 'NULL'), def.granularity
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For a minute rollup: ''1 hour'', ''1 day''.';
    END IF;
    PERFORM FROM collect.rollup_defs d WHERE d.name = def.name FOR UPDATE;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s)', target_schema, name, def.rollup_table);
    tier := format('%I.%I', target_schema, name)::regclass;
    EXECUTE format('CREATE UNIQUE INDEX ON %s (bucket%s) NULLS NOT DISTINCT', tier, dims);
    SELECT string_agg(', ' || CASE m->>'kind'
            WHEN 'sum' THEN format('sum(%I)', m->>'name') WHEN 'min' THEN format('min(%I)', m->>'name')
            WHEN 'max' THEN format('max(%I)', m->>'name') ELSE format('collect.merge(%I)', m->>'name') END, '')
      INTO merged FROM jsonb_array_elements(def.metrics) m;
    -- Lock out ingest while the tier is filled, so no statement is counted twice or missed.
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', def.source);
    EXECUTE format('INSERT INTO %s SELECT date_bin(%L::interval, bucket, collect._bucket_origin())%s, sum(event_count), sum(late_events)%s
                      FROM %s GROUP BY 1%s',
                   tier, granularity, dims, coalesce(merged, ''), def.rollup_table,
                   (SELECT string_agg(', ' || g, '') FROM generate_series(2, 1 + cardinality(def.dimensions)) g));
    def.tiers := def.tiers || jsonb_build_object('name', name, 'table', tier::text, 'granularity', granularity, 'keep', NULL);
    UPDATE collect.rollup_defs d SET tiers = def.tiers, statements = collect._rollup_statements(def) WHERE d.name = def.name;
    RETURN tier;
END $$;

-- Keeps `keep` of buckets in one rollup or tier table; coarser tiers keep their history.
CREATE FUNCTION collect.set_retention(rollup_table regclass, keep interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(rollup_table::text);
BEGIN
    IF keep IS NOT NULL AND keep <= interval '0' THEN
        RAISE EXCEPTION 'retention must be positive, not %', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM FROM collect.rollup_defs d WHERE d.name = def.name FOR UPDATE;
    IF def.rollup_table = rollup_table THEN
        def.keep := keep;
    ELSIF EXISTS (SELECT FROM jsonb_array_elements(def.tiers) t WHERE (t->>'table')::regclass = rollup_table) THEN
        def.tiers := (SELECT jsonb_agg(CASE WHEN (t->>'table')::regclass = rollup_table THEN t || jsonb_build_object('keep', keep) ELSE t END)
                        FROM jsonb_array_elements(def.tiers) t);
    ELSE
        RAISE EXCEPTION '% is not a rollup or tier table', rollup_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE collect.rollup_defs d SET keep = def.keep, tiers = def.tiers, statements = collect._rollup_statements(def)
     WHERE d.name = def.name;
    RETURN collect.apply_retention(def.name);
END $$;

-- Deletes buckets past their table's retention; run it from a scheduler (pg_cron, say).
CREATE FUNCTION collect.apply_retention(rollup text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    n bigint;
    total bigint := 0;
BEGIN
    FOR t IN
        SELECT d.rollup_table AS tbl, d.granularity AS g, d.keep FROM collect.rollup_defs d
         WHERE d.keep IS NOT NULL AND (rollup IS NULL OR d.name = rollup)
        UNION ALL
        SELECT (x->>'table')::regclass, (x->>'granularity')::interval, (x->>'keep')::interval
          FROM collect.rollup_defs d, jsonb_array_elements(d.tiers) x
         WHERE x->>'keep' IS NOT NULL AND (rollup IS NULL OR d.name = rollup)
    LOOP
        EXECUTE format('DELETE FROM %s WHERE bucket < date_bin(%L::interval, now(), collect._bucket_origin()) - %L::interval',
                       t.tbl, t.g, t.keep);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END $$;

-- Recomputes stale buckets (or those in [from, to)) of the rollup and its tiers from raw rows.
CREATE FUNCTION collect.refresh_rollup(rollup text, "from" timestamptz DEFAULT NULL, "to" timestamptz DEFAULT NULL)
    RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(rollup);
    stale regclass := (def.rollup_table::text || '_stale')::regclass;
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
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', def.source);
    CREATE TEMP TABLE IF NOT EXISTS pg_collect_refresh (bucket timestamptz PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE pg_collect_refresh;
    IF "from" IS NULL THEN
        EXECUTE format('INSERT INTO pg_collect_refresh SELECT bucket FROM %s', stale);
    ELSE
        EXECUTE format('INSERT INTO pg_collect_refresh SELECT DISTINCT %s FROM %s WHERE %I >= $1 AND %I < $2
                        UNION SELECT bucket FROM %s WHERE bucket >= date_bin(%L::interval, $1, collect._bucket_origin()) AND bucket < $2',
                       bucket_expr, def.source, def.time_column, def.time_column, def.rollup_table, def.granularity)
            USING "from", "to";
    END IF;
    SELECT count(*) INTO refreshed FROM pg_collect_refresh;
    FOR t IN
        SELECT def.rollup_table AS tbl, def.granularity AS g, def.keep AS keep
        UNION ALL
        SELECT (x->>'table')::regclass, (x->>'granularity')::interval, (x->>'keep')::interval
          FROM jsonb_array_elements(def.tiers) x
    LOOP
        -- Every bucket of this table that holds a refreshed base bucket is rebuilt whole.
        EXECUTE format('DELETE FROM %s WHERE bucket IN (SELECT DISTINCT date_bin(%L::interval, bucket, collect._bucket_origin()) FROM pg_collect_refresh)',
                       t.tbl, t.g);
        EXECUTE format('CREATE TEMP VIEW new_rows AS SELECT * FROM %s WHERE date_bin(%L::interval, %I, collect._bucket_origin())
                          IN (SELECT DISTINCT date_bin(%L::interval, bucket, collect._bucket_origin()) FROM pg_collect_refresh)',
                       def.source, t.g, def.time_column, t.g);
        EXECUTE collect._rollup_upsert(def, t.tbl, t.g, t.keep, count_late => false);
        DROP VIEW new_rows;
    END LOOP;
    EXECUTE format('DELETE FROM %s WHERE bucket IN (SELECT bucket FROM pg_collect_refresh)', stale);
    RETURN refreshed;
END $$;

CREATE FUNCTION collect.drop_rollup(rollup text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs := collect._rollup_def(rollup);
    t jsonb;
BEGIN
    PERFORM collect._check_owner(def.owner, format('rollup "%s"', def.name));
    FOR t IN SELECT * FROM jsonb_array_elements(def.tiers) LOOP
        EXECUTE format('DROP TABLE %s', (t->>'table')::regclass);
    END LOOP;
    EXECUTE format('DROP TRIGGER %I ON %s', def.name || '_ingest', def.source);
    IF def.keep_raw THEN
        EXECUTE format('DROP TRIGGER %I ON %s', def.name || '_update', def.source);
        EXECUTE format('DROP TRIGGER %I ON %s', def.name || '_delete', def.source);
        EXECUTE format('DROP TRIGGER %I ON %s', def.name || '_truncate', def.source);
    ELSE
        EXECUTE format('DROP TRIGGER %I ON %s', def.name || '_buffer', def.source);
    END IF;
    EXECUTE format('DROP TABLE %s, %s', def.rollup_table, (def.rollup_table::text || '_stale')::regclass);
    DELETE FROM collect.rollup_defs d WHERE d.name = def.name;
END $$;

CREATE FUNCTION collect._rollup_figures(OUT name text, OUT rows_in numeric, OUT rollup_rows bigint,
                                        OUT late_events numeric, OUT stale_buckets bigint)
    RETURNS SETOF record STABLE LANGUAGE plpgsql AS $$
DECLARE
    def collect.rollup_defs;
BEGIN
    FOR def IN SELECT * FROM collect.rollup_defs ORDER BY 1 LOOP
        name := def.name;
        EXECUTE format('SELECT coalesce(sum(event_count), 0), count(*), coalesce(sum(late_events), 0), (SELECT count(*) FROM %s) FROM %s',
                       (def.rollup_table::text || '_stale')::regclass, def.rollup_table)
            INTO rows_in, rollup_rows, late_events, stale_buckets;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE VIEW collect.rollups AS
SELECT d.name, d.rollup_table, d.source, d.time_column, d.dimensions, d.granularity, d.keep_raw, d.keep,
       (SELECT coalesce(jsonb_agg(t - 'table' || jsonb_build_object('table', t->>'table')), '[]') FROM jsonb_array_elements(d.tiers) t) AS tiers,
       f.rows_in, f.rollup_rows, round(f.rows_in / nullif(f.rollup_rows, 0), 1) AS rollup_ratio,
       f.late_events, f.stale_buckets
  FROM collect.rollup_defs d JOIN collect._rollup_figures() f USING (name);
GRANT SELECT ON collect.rollups TO PUBLIC;
