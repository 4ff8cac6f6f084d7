-- pg_collect 0.2.0 -> 0.3.0: one name for each idea (issue #29; the list is in the README,
-- "Renames in 0.3.0"). Renamed objects keep their OIDs, so stored values, the columns and
-- views that use them and every registry row carry over untouched. Functions whose
-- parameters were renamed are dropped and created again: Postgres renames no parameter.

-- A user's object that depends on one of those functions (a view calling collect.edges, a
-- column default calling collect.hll_agg(value, 12), ...) would stop the update at DROP with
-- Postgres' generic message; name them first, and what to do.
DO $$
DECLARE
    dependents text;
BEGIN
    SELECT string_agg(DISTINCT CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                    THEN (SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, r.ev_class, 0)
                                            FROM pg_catalog.pg_rewrite r WHERE r.oid = d.objid)
                                    ELSE pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END, ', ')
      INTO dependents
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid = p.oid
     WHERE p.pronamespace = 'collect'::pg_catalog.regnamespace AND d.deptype = 'n'
       AND (p.proname IN ('_create_collection', 'create_collection', '_ndjson_lines', '_ndjson_events', '_ingest_lump',
                          '_refresh_rollup', 'refresh_rollup', 'edge_add', '_edges', 'edges', '_archived_range',
                          'archived_range', '_unarchive', 'unarchive')
            OR (p.proname = 'hll_agg' AND p.pronargs = 2))
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e
                        WHERE (e.classid, e.objid) = (d.classid, d.objid) AND e.deptype = 'e'
                          AND e.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_collect'))
       AND NOT (d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                AND EXISTS (SELECT FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend e ON e.objid = r.ev_class AND e.deptype = 'e'
                             WHERE r.oid = d.objid
                               AND e.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pg_collect')));
    IF dependents IS NOT NULL THEN
        RAISE EXCEPTION 'pg_collect 0.3.0 renames parameters of functions that these objects use: %', dependents
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop them, run ALTER EXTENSION pg_collect UPDATE, and create them again with the new names (README, Renames in 0.3.0). The update changed nothing.';
    END IF;
END $$;

-- Lumps: the type that collections, archives and users' columns store.
ALTER TYPE collect.collection RENAME TO lump;
ALTER FUNCTION collect.collection_in(cstring) RENAME TO lump_in;
ALTER FUNCTION collect.collection_out(collect.lump) RENAME TO lump_out;
ALTER FUNCTION collect.collection_recv(internal) RENAME TO lump_recv;
ALTER FUNCTION collect.collection_send(collect.lump) RENAME TO lump_send;
ALTER FUNCTION collect.collection(jsonb) RENAME TO lump;
COMMENT ON FUNCTION collect.lump(jsonb) IS 'A lump of the elements of a JSON array, or of one entry if not an array';
ALTER FUNCTION collect.collection_append(collect.lump, jsonb) RENAME TO lump_append;
ALTER FUNCTION collect.collection_agg_trans(internal, jsonb) RENAME TO _lump_agg_trans;
ALTER FUNCTION collect.collection_agg_combine(internal, internal) RENAME TO _lump_agg_combine;
ALTER FUNCTION collect.collection_agg_serialize(internal) RENAME TO _lump_agg_serialize;
ALTER FUNCTION collect.collection_agg_deserialize(bytea, internal) RENAME TO _lump_agg_deserialize;
ALTER FUNCTION collect.collection_agg_final(internal) RENAME TO _lump_agg_final;
ALTER AGGREGATE collect.collection_agg(jsonb) RENAME TO lump_agg;
COMMENT ON AGGREGATE collect.lump_agg(jsonb) IS
    'Gathers values into one lump, in input order (use ORDER BY inside the call to fix it)';

-- Sketches: collect.merge(a, b), as for lumps; aggregate support functions are internal.
ALTER FUNCTION collect.hll_union(collect.hll, collect.hll) RENAME TO merge;
ALTER FUNCTION collect.quantiles_union(collect.quantiles, collect.quantiles) RENAME TO merge;
ALTER FUNCTION collect.topk_union(collect.topk, collect.topk) RENAME TO merge;
ALTER FUNCTION collect.quantiles_agg_trans(collect.quantiles, float8) RENAME TO _quantiles_agg_trans;
ALTER FUNCTION collect.topk_agg_trans(collect.topk, text, integer) RENAME TO _topk_agg_trans;
DO $$
DECLARE
    value_type text;
BEGIN
    FOREACH value_type IN ARRAY ARRAY['anyelement', 'smallint', 'integer', 'bigint', 'text', 'uuid', 'numeric', 'date',
                                      'timestamp', 'timestamptz'] LOOP
        EXECUTE format('ALTER FUNCTION collect.hll_agg_trans(collect.hll, %1$s) RENAME TO _hll_agg_trans', value_type);
        EXECUTE format('ALTER FUNCTION collect.hll_agg_trans(collect.hll, %1$s, integer) RENAME TO _hll_agg_trans', value_type);
        -- The parameter "precision" becomes log2m.
        EXECUTE format('DROP AGGREGATE collect.hll_agg(%1$s, integer)', value_type);
        EXECUTE format($f$CREATE AGGREGATE collect.hll_agg(%1$s, log2m integer) (
                          SFUNC = collect._hll_agg_trans, STYPE = collect.hll,
                          COMBINEFUNC = collect._hll_merge_trans, PARALLEL = SAFE, SSPACE = 1024)$f$, value_type);
        EXECUTE format($f$COMMENT ON AGGREGATE collect.hll_agg(%1$s) IS 'A distinct-count sketch of the non-NULL values (log2m 14: 0.81%% standard error)'$f$, value_type);
        EXECUTE format($f$COMMENT ON AGGREGATE collect.hll_agg(%1$s, integer) IS 'A distinct-count sketch of the non-NULL values, of 2^log2m registers (log2m 4 to 18; standard error 1.04/sqrt(2^log2m))'$f$, value_type);
    END LOOP;
END $$;

-- Collections: the normalization levels, named so that no quoting is needed.
ALTER TABLE collect.collection_defs RENAME COLUMN "normalize" TO normalization;
ALTER TABLE collect.collection_defs RENAME CONSTRAINT collection_defs_normalize_check TO collection_defs_normalization_check;
ALTER VIEW collect.collections RENAME COLUMN "normalize" TO normalization;
DROP FUNCTION collect.create_collection(text, regtype, jsonb, jsonb);
DROP FUNCTION collect._create_collection(name, text, regtype, jsonb, jsonb);
COMMENT ON FUNCTION collect.append_many(text, text, jsonb) IS 'Appends each element of a JSON array, in order; returns how many';

-- Rollups: a batch of NDJSON events, not a lump; since and until.
ALTER FUNCTION collect._rollup_lump_plan(name, text) RENAME TO _rollup_ndjson_plan;
DROP FUNCTION collect._ingest_lump(text, text, bytea);
DROP FUNCTION collect._ndjson_events(bytea);
DROP FUNCTION collect._ndjson_lines(bytea);
DROP FUNCTION collect.refresh_rollup(text, timestamptz, timestamptz);
DROP FUNCTION collect._refresh_rollup(name, text, timestamptz, timestamptz);

-- Latest copies: created and dropped like every other definition, listed in collect.latest.
ALTER FUNCTION collect.track_latest(regclass, regclass, text, text, text[], text, text) RENAME TO create_latest;
ALTER FUNCTION collect.untrack_latest(regclass, boolean) RENAME TO drop_latest;
ALTER FUNCTION collect._latest_untrack(collect.latest_defs, boolean) RENAME TO _latest_drop;
DROP VIEW collect.tracked_latest;
COMMENT ON TABLE collect.latest_defs IS 'Parents kept by collect.create_latest';
UPDATE collect.capabilities SET kind = 'latest', listed_in = 'collect.latest' WHERE kind = 'tracking';

-- The latest registry keeps the parent's and the child's names, as every registry does, not
-- their OIDs (which collect._latest_reattach had to find again after Citus rebuilt a table).
-- The old code finds rebuilt tables a last time; a parent renamed since keeps its new name.
SELECT collect._latest_reattach(d) FROM collect.latest_defs d;
ALTER TABLE collect.latest_defs ADD COLUMN child_schema name, ADD COLUMN child_name text, ADD COLUMN trigger_table_names text[];
UPDATE collect.latest_defs d
   SET schema = coalesce(p.nspname, d.schema), name = coalesce(p.relname, d.name),
       -- A child gone for good leaves names that no table has: the copy is then not usable
       -- (collect._latest_verify), and drop_latest removes it, as before.
       child_schema = coalesce(c.nspname, ''), child_name = coalesce(c.relname, ''),
       trigger_table_names = ARRAY(SELECT format('%I.%I', n.nspname, r.relname)
                                     FROM unnest(d.trigger_tables) WITH ORDINALITY t(rel, o)
                                     JOIN pg_catalog.pg_class r ON r.oid = t.rel JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace
                                    ORDER BY t.o)
  FROM collect.latest_defs d0
  LEFT JOIN (SELECT r.oid, n.nspname, r.relname FROM pg_catalog.pg_class r JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace) p ON p.oid = d0.parent
  LEFT JOIN (SELECT r.oid, n.nspname, r.relname FROM pg_catalog.pg_class r JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace) c ON c.oid = d0.child
 WHERE d0.parent = d.parent;
ALTER TABLE collect.latest_defs DROP COLUMN parent, DROP COLUMN child, DROP COLUMN trigger_tables;
ALTER TABLE collect.latest_defs RENAME COLUMN trigger_table_names TO trigger_tables;
ALTER TABLE collect.latest_defs ALTER COLUMN child_schema SET NOT NULL, ALTER COLUMN child_name SET NOT NULL,
                                ALTER COLUMN trigger_tables SET NOT NULL;
ALTER TABLE collect.latest_defs DROP CONSTRAINT latest_defs_schema_name_key, ADD PRIMARY KEY (schema, name);
GRANT UPDATE (child_schema, child_name, trigger_tables) ON collect.latest_defs TO PUBLIC;
DROP FUNCTION collect._latest_reattach(collect.latest_defs);
-- _latest_def(parent) gains `usable`, for drop_latest.
DROP FUNCTION collect._latest_def(regclass);

-- Graphs: a position given by name needs no quotes.
DROP FUNCTION collect.edge_add(text, bigint, bigint, bigint, timestamptz);
DROP FUNCTION collect.edges(text, bigint, text, text, integer, bigint, boolean);
DROP FUNCTION collect._edges(name, text, bigint, text, text, integer, bigint, boolean);

-- Archives: since and until.
DROP FUNCTION collect.archived_range(text, timestamptz, timestamptz);
DROP FUNCTION collect._archived_range(name, text, timestamptz, timestamptz);
DROP FUNCTION collect.unarchive(text, timestamptz, timestamptz);
DROP FUNCTION collect._unarchive(name, text, timestamptz, timestamptz);

-- Maintenance: jobs (one view of every job, scheduled or not), their schedules, batches.
ALTER TABLE collect.schedules RENAME TO job_schedules;
ALTER TABLE collect.job_schedules RENAME CONSTRAINT schedules_pkey TO job_schedules_pkey;
ALTER TABLE collect.job_schedules RENAME CONSTRAINT schedules_every_check TO job_schedules_every_check;
ALTER TABLE collect.job_schedules RENAME CONSTRAINT schedules_failures_check TO job_schedules_failures_check;
ALTER TABLE collect.job_schedules RENAME CONSTRAINT schedules_next_run_check TO job_schedules_next_run_check;
ALTER TABLE collect.job_schedules RENAME CONSTRAINT schedules_runs_check TO job_schedules_runs_check;
-- PostgreSQL 18 keeps NOT NULL as named constraints too (none before it): their names follow.
DO $$
DECLARE
    c name;
BEGIN
    FOR c IN SELECT conname FROM pg_catalog.pg_constraint
              WHERE conrelid = 'collect.job_schedules'::pg_catalog.regclass AND contype = 'n' AND conname LIKE 'schedules\_%' LOOP
        EXECUTE pg_catalog.format('ALTER TABLE collect.job_schedules RENAME CONSTRAINT %I TO %I', c, 'job_' || c);
    END LOOP;
END $$;
ALTER TYPE collect.maintenance RENAME ATTRIBUTE step TO batch;
ALTER FUNCTION collect._run_job_step(text, text) RENAME TO _run_job_batch;
DROP VIEW collect.maintenance_jobs;
DROP VIEW collect.jobs;

-- The shared layer: one way to distribute a table on Citus, one drop of a definition (its
-- tables now named whole: a rollup's tiers are no suffixes of its name).
DROP FUNCTION collect._citus_distribute(regclass, text, regclass);
DROP FUNCTION collect._drop_definition(text, name, text, text[]);

-- Generated statements come by name, not by position.
DROP FUNCTION collect._latest_sql(jsonb);
DROP FUNCTION collect._latest_shard_sql(jsonb);
DROP FUNCTION collect._archive_sql(jsonb);
-- A latest copy's triggers come from the generator, which takes its spec.
DROP FUNCTION collect._latest_make_triggers(regclass[], text, text, text, jsonb);
-- A graph's reads come from the generator too (collect._graph_reads).
DROP FUNCTION collect._edge_list(collect.graph_defs, text);
-- A latest copy's generated functions come with their REVOKE statements.
DROP FUNCTION collect._latest_create_functions(text[], text[]);

-- Functions created again (new parameter names) or whose bodies use the new names.

CREATE FUNCTION collect._drop_definition(kind text, schema name, name text, tables text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    registry regclass := (SELECT c.registry FROM collect.capabilities c WHERE c.kind = _drop_definition.kind);
    owner name;
    owned text;
BEGIN
    EXECUTE format('SELECT d.owner FROM %s d WHERE d.schema = $1 AND d.name = $2', registry) INTO owner USING schema, name;
    PERFORM collect._check_definition(owner IS NOT NULL, true, kind, name, owner);
    -- The definition's row lock first (only its owner gets it), then the tables, in the order
    -- work on it takes them.
    PERFORM collect._lock_definition(kind, schema, name);
    SELECT string_agg(t::text, ', ') INTO owned
      FROM unnest(tables) n, LATERAL (SELECT collect._owned_relation(owner, schema, n) AS t) r
     WHERE t IS NOT NULL;
    IF owned IS NOT NULL THEN
        EXECUTE 'DROP TABLE ' || owned;
    END IF;
    PERFORM collect._delete_registry_rows(registry, jsonb_build_object('schema', schema, 'name', name));
END $$;

CREATE OR REPLACE FUNCTION collect._drop_trigger(tgname name, rel regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TRIGGER %I ON %s', tgname, rel);
END $$;

CREATE FUNCTION collect._citus_distribute(t regclass, column_name text, colocate_with regclass DEFAULT NULL,
                                          shard_count integer DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF colocate_with IS NOT NULL THEN
        EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3::text)' USING t, column_name, colocate_with;
    ELSIF shard_count IS NOT NULL THEN
        EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2, shard_count => $3)' USING t, column_name, shard_count;
    ELSE
        EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2)' USING t, column_name;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION collect._citus_reference(t regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
END $$;

CREATE OR REPLACE FUNCTION collect._citus_colocated_shards(rel regclass, tables regclass[]) RETURNS text[]
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shard bigint := collect._citus_shard_id(rel);
    shards text[] := ARRAY(SELECT collect._citus_colocated_shard(shard, t) FROM unnest(tables) WITH ORDINALITY u(t, o) ORDER BY o);
BEGIN
    IF shard IS NULL OR coalesce(cardinality(tables), 0) = 0 OR array_position(shards, NULL) IS NOT NULL
       OR (SELECT count(DISTINCT c.relowner) FROM pg_class c
            WHERE c.oid = rel OR c.oid IN (SELECT to_regclass(s) FROM unnest(shards) s)) <> 1 THEN
        RETURN NULL;
    END IF;
    RETURN shards;
END $$;

CREATE OR REPLACE FUNCTION collect._collection_create_sql(schema text, name text, key_type text) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_create_sql_wrapper';

CREATE FUNCTION collect._create_collection(target_schema name, name text, key_type regtype, read jsonb, normalization jsonb)
    RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    checked jsonb;
    statement text;
BEGIN
    PERFORM collect._check_name('collection', name);
    IF key_type IS NULL OR key_type NOT IN ('text'::regtype, 'bigint'::regtype, 'uuid'::regtype) THEN
        RAISE EXCEPTION 'invalid key_type for collection "%": %', name, coalesce(key_type::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'key_type is text, bigint or uuid.';
    END IF;
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'no schema to create collection "%" in', name
            USING ERRCODE = 'invalid_schema_name', HINT = 'Set search_path to a schema you can create tables in.';
    END IF;
    -- sql steps are stored as the functions they resolve to.
    checked := collect._validate_pipelines(coalesce(read, '[]'), normalization);
    -- Serializes creators of the same name; the primary key catches the rest.
    PERFORM pg_advisory_xact_lock(hashtext('collect.collection:' || target_schema || '.' || name));
    IF EXISTS (SELECT FROM collect.collection_defs d WHERE d.schema = target_schema AND d.name = _create_collection.name) THEN
        RAISE EXCEPTION 'collection %.% already exists', quote_ident(target_schema), name
            USING ERRCODE = 'duplicate_object', HINT = 'Drop it with collect.drop_collection(name), or pick another name.';
    END IF;
    FOREACH statement IN ARRAY collect._collection_create_sql(target_schema, name, key_type::text) LOOP
        EXECUTE statement;
    END LOOP;
    INSERT INTO collect.collection_defs (schema, name, key_type, read, normalization)
    VALUES (target_schema, name, key_type, checked->'read', checked->'normalization');
    RETURN format('%I.%I', target_schema, name || '_pending')::regclass;
END $$;

CREATE FUNCTION collect.create_collection(
    name text,
    key_type regtype DEFAULT 'text',
    read jsonb DEFAULT '[]',
    normalization jsonb DEFAULT NULL
) RETURNS regclass
LANGUAGE sql AS $$
    SELECT collect._create_collection(
               CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(name)) OPERATOR(pg_catalog.=) 2 THEN r.schema
                    ELSE pg_catalog.current_schema() END,
               r.object_name, key_type, read, normalization)
      FROM collect._resolve('collection', name, '_pending') r
$$;

COMMENT ON FUNCTION collect.create_collection(text, regtype, jsonb, jsonb) IS
    'Defines a collection: its key type, read pipeline and normalization levels; creates name_pending and name_base in the current schema (or the one a qualified name gives)';

CREATE OR REPLACE FUNCTION collect._drop_collection(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('collection', schema, name, ARRAY[name || '_pending', name || '_base'])
$$;

CREATE OR REPLACE FUNCTION collect._distribute_collection(schema name, collection text, shard_count integer) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.collection_defs := collect._collection_def(schema, collection);
    pending regclass := format('%I.%I', def.schema, def.name || '_pending')::regclass;
    base regclass := format('%I.%I', def.schema, def.name || '_base')::regclass;
BEGIN
    PERFORM collect._check_owner(def.owner, format('collection %I.%I', def.schema, def.name));
    IF shard_count IS NOT NULL AND shard_count < 1 THEN
        RAISE EXCEPTION 'shard_count must be positive, not %', shard_count USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'collect.distribute_collection needs Citus, which is not installed in this database'
            USING ERRCODE = 'feature_not_supported', HINT = 'CREATE EXTENSION citus on the coordinator first.';
    END IF;
    IF collect._distribution_column(pending) IS NULL THEN
        PERFORM collect._citus_distribute(pending, 'key',
                                          shard_count => coalesce(shard_count, current_setting('citus.shard_count')::integer));
    END IF;
    IF collect._distribution_column(base) IS NULL THEN
        PERFORM collect._citus_distribute(base, 'key', pending);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION collect._collection_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'collection', format('%I.%I', d.schema, d.name), 'normalize ' || l.level,
           format('CALL collect.normalize_in_batches(%L, %L)', format('%I.%I', d.schema, d.name), l.level),
           CASE l.level WHEN 'hourly' THEN interval '1 hour' WHEN 'daily' THEN interval '1 day'
                        WHEN 'weekly' THEN interval '7 days' END,
           true, d.owner,
           format('SELECT (collect._normalize_batch(%L, %L, %L, false, 1000, pg_catalog.now(), 0)).complete', d.schema, d.name, l.level)
      FROM collect.collection_defs d,
           LATERAL (SELECT jsonb_object_keys(coalesce(d.normalization, '{"daily": []}')) AS level) l
     ORDER BY 2, 3
$$;

CREATE OR REPLACE FUNCTION collect._rollup_trigger_targets(schema name, name text, version integer, source regclass, spec jsonb, kind text)
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

CREATE OR REPLACE FUNCTION collect._rollup_create_sql(schema text, name text, time_type text, dimensions jsonb, metrics jsonb,
                                           distribution_column text, comment text) RETURNS text[]
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_create_sql_wrapper';

CREATE OR REPLACE FUNCTION collect._rollup_triggers(source_schema text, source_name text, schema text, name text, version integer,
                                         keep_raw boolean, spec text) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rollup_triggers_wrapper';

CREATE OR REPLACE FUNCTION collect._rollup_drop_triggers(def collect.rollup_defs) RETURNS void
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

CREATE OR REPLACE FUNCTION collect._rollup_make_triggers(def collect.rollup_defs) RETURNS void
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

CREATE OR REPLACE FUNCTION collect._rollup_ndjson_plan(schema name, rollup text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION collect.ingest(rollup text, events bytea) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT coalesce(collect._ingest_ndjson(r.schema, r.object_name, events),
                    collect._ingest(r.schema, r.object_name, collect._ndjson_events(events)))
      FROM collect._resolve('rollup', rollup) r
$$;

CREATE OR REPLACE FUNCTION collect._add_tier(schema name, rollup text, name text, granularity interval) RETURNS regclass
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

CREATE OR REPLACE FUNCTION collect.set_retention(rollup_table regclass, keep interval) RETURNS bigint
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

CREATE OR REPLACE FUNCTION collect._drop_rollup(schema name, rollup text) RETURNS void
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

CREATE OR REPLACE FUNCTION collect._rollup_maintenance() RETURNS SETOF collect.maintenance
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

CREATE OR REPLACE FUNCTION collect._latest_verify(d collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', d.schema, d.name)) AND pg_has_role(d.owner, c.relowner, 'USAGE'))
       AND EXISTS (SELECT FROM pg_class c WHERE c.oid = to_regclass(format('%I.%I', d.child_schema, d.child_name))
                                             AND has_table_privilege(d.owner, c.oid, 'TRIGGER'))
       AND collect._latest_owned_function(d.owner, d.refresh_function, d.key_type || '[]')
       AND collect._latest_owned_function(d.owner, d.trigger_function, '');
END $$;

CREATE OR REPLACE FUNCTION collect._latest_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'latest_statements_wrapper';

CREATE OR REPLACE FUNCTION collect._latest_parent(def collect.latest_defs) RETURNS regclass
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT to_regclass(format('%I.%I', def.schema, def.name)) $$;

CREATE OR REPLACE FUNCTION collect._latest_child(def collect.latest_defs) RETURNS regclass
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT to_regclass(format('%I.%I', def.child_schema, def.child_name)) $$;

CREATE OR REPLACE FUNCTION collect._latest_in_place(def collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM pg_trigger t
                    WHERE t.tgrelid = collect._latest_child(def) AND t.tgfoid = 'collect._latest_insert()'::regprocedure
                      AND position(convert_to(def.refresh_function, 'UTF8') || '\x00'::bytea IN t.tgargs) = 1)
$$;

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

CREATE OR REPLACE FUNCTION collect._latest_spec(def collect.latest_defs) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION collect._latest_shard_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'latest_shard_statements_wrapper';

CREATE OR REPLACE FUNCTION collect._latest_add_columns_sql(spec jsonb, columns text[], types text[]) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'latest_add_columns_sql_wrapper';

CREATE OR REPLACE FUNCTION collect._latest_trigger_spec(rel regclass, refresh text, spec jsonb) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION collect._latest_insert_plan(rel regclass, refresh text, spec jsonb) RETURNS text
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

CREATE OR REPLACE FUNCTION collect._latest_shard_sync() RETURNS trigger
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

CREATE OR REPLACE FUNCTION collect._latest_on_shard(parent_shard regclass, job jsonb) RETURNS text
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

CREATE OR REPLACE FUNCTION collect._latest_distributed(def collect.latest_defs) RETURNS boolean
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._distribution_column(collect._latest_parent(def)) IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION collect._latest_on_shards(def collect.latest_defs, job text, keys text) RETURNS SETOF text
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._citus_on_shards(collect._latest_parent(def), 'collect._latest_on_shard',
                                    jsonb_build_object('spec', collect._latest_spec(def), 'job', job, 'keys', keys))
$$;

CREATE OR REPLACE FUNCTION collect._latest_trigger_sql(spec jsonb, tables text[], base text, refresh text, distributed boolean) RETURNS text[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'latest_trigger_sql_wrapper';

CREATE OR REPLACE FUNCTION collect._latest_make_triggers(tables regclass[], base text, refresh text, spec jsonb, distributed boolean) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_unsafe_triggers = on AS $$
DECLARE
    statement text;
BEGIN
    FOREACH statement IN ARRAY collect._latest_trigger_sql(spec, ARRAY(SELECT t::text FROM unnest(tables) WITH ORDINALITY u(t, o) ORDER BY o),
                                                          base, refresh, distributed) LOOP
        EXECUTE statement;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION collect._latest_create_functions(statements text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET citus.enable_ddl_propagation = off AS $$
DECLARE
    statement text;
BEGIN
    FOREACH statement IN ARRAY statements LOOP
        EXECUTE statement;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION collect.create_latest(
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

CREATE OR REPLACE FUNCTION collect._backfill_batch(parent regclass, batch_size integer, started timestamptz, done_at_start bigint)
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

CREATE OR REPLACE FUNCTION collect.check_latest(parent regclass) RETURNS TABLE(parent_key text, stored jsonb, expected jsonb)
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

CREATE OR REPLACE FUNCTION collect.repair_latest(parent regclass) RETURNS bigint
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

CREATE OR REPLACE FUNCTION collect._latest_drop(def collect.latest_defs, drop_columns boolean) RETURNS void
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

CREATE OR REPLACE FUNCTION collect.drop_latest(parent regclass, drop_columns boolean DEFAULT false) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._latest_drop(collect._latest_def(parent, usable => false), drop_columns)
$$;

CREATE OR REPLACE FUNCTION collect._latest_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'latest', format('%I.%I', d.schema, d.name), 'backfill', format('CALL collect.backfill_latest(%L)', format('%I.%I', d.schema, d.name)),
           NULL::interval, d.backfill_position IS NOT NULL OR d.backfilled_at IS NULL, d.owner,
           format('SELECT collect._backfill_batch(%L, 10000, pg_catalog.now(), 0) OPERATOR(pg_catalog.=) 0', format('%I.%I', d.schema, d.name))
      FROM collect.latest_defs d ORDER BY 2
$$;

CREATE OR REPLACE FUNCTION collect._edge_state_code(state text) RETURNS smallint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_state_code_wrapper';

CREATE OR REPLACE FUNCTION collect._edge_state_name(code smallint) RETURNS text
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_state_name_wrapper';

CREATE OR REPLACE FUNCTION collect._graph_reads(schema text, name text, direction text) RETURNS jsonb
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_reads_wrapper';

CREATE OR REPLACE FUNCTION collect._graph_create_sql(schema text, name text) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'graph_create_sql_wrapper';

CREATE OR REPLACE FUNCTION collect._create_graph(schema name, name text, compact_lists boolean) RETURNS void
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

CREATE OR REPLACE FUNCTION collect._drop_graph(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('graph', schema, name, ARRAY[name || '_out', name || '_in', name || '_counts', name || '_lists'])
$$;

CREATE FUNCTION collect.edge_add(graph text, source bigint, destination bigint, edge_position bigint DEFAULT NULL,
                                 at timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE sql AS $$
    SELECT collect._edge_write(r.schema, r.object_name, ARRAY[source], ARRAY[destination], 'normal',
                               CASE WHEN edge_position IS NULL THEN NULL ELSE ARRAY[edge_position] END, at)
      FROM collect._resolve('graph', graph, '_out') r
$$;

COMMENT ON FUNCTION collect.edge_add(text, bigint, bigint, bigint, timestamptz) IS
    'Adds (or restores) an edge, if at is newer than its last write; returns 1 if it changed';

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

CREATE OR REPLACE FUNCTION collect._edge_count(schema name, name text, node bigint, direction text, state text) RETURNS bigint
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

CREATE OR REPLACE FUNCTION collect._edge_state(schema name, name text, source bigint, destination bigint) RETURNS text
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

CREATE OR REPLACE FUNCTION collect._check_graph(schema name, name text) RETURNS TABLE (part text, mismatches bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.graph_defs := collect._graph_def(schema, name);
BEGIN
    RETURN QUERY EXECUTE collect._graph_reads(def.schema, def.name, 'out')->>'check' USING def.compact_lists;
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
                    -- What to_jsonb of the row would not give back exactly (crates/core/src/archives/generate.rs).
                    'column_kinds', jsonb_agg(CASE WHEN a.atttypid = 'json'::regtype THEN 'json'
                                                   WHEN a.atttypid = 'jsonb'::regtype AND a.attnotnull THEN 'jsonb not null'
                                                   WHEN a.atttypid = 'jsonb'::regtype THEN 'jsonb'
                                                   WHEN a.atttypid IN ('real'::regtype, 'double precision'::regtype) THEN 'float'
                                                   ELSE 'plain' END ORDER BY a.attnum))
           FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '');
END $$;

CREATE OR REPLACE FUNCTION collect._archive_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'archive_statements_wrapper';

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
    IF source_key IS NOT NULL THEN
        PERFORM collect._citus_distribute(lumps, 'shard_key', source);
    ELSIF source_reference THEN
        PERFORM collect._citus_reference(lumps);
    END IF;
    RETURN lumps;
END $$;

CREATE OR REPLACE FUNCTION collect._drop_archive(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('archive', schema, name, ARRAY[name || '_lumps'])
$$;

CREATE OR REPLACE FUNCTION collect._archive_batch(schema name, name text, before timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET extra_float_digits = 1 SET IntervalStyle = postgres AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    spec jsonb := collect._archive_spec(def);
    statements jsonb := collect._archive_statements(spec);
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
    -- Each new lump erases the older records of its keys (`supersede`): a key archived,
    -- written again to the source and archived again keeps one record, its newest.
    IF NOT (spec->>'distributed')::boolean THEN
        EXECUTE statements->>'batch' INTO lump USING before, def.lump_rows;
        IF lump.records > 0 THEN
            EXECUTE statements->>'supersede' USING lump.lump_id, lump.min_key, lump.max_key, lump.keys, lump.shard_key;
        END IF;
        RETURN coalesce(lump.records, 0);
    END IF;
    FOR shard_key IN SELECT collect._archive_shard_keys(source, def.key_type) LOOP
        EXECUTE statements->>'shard_batch_keys' INTO keys USING before, def.lump_rows, shard_key;
        IF keys IS NOT NULL THEN
            EXECUTE statements->>'batch' INTO lump USING before, def.lump_rows, shard_key, keys;
            IF lump.records > 0 THEN
                EXECUTE statements->>'supersede' USING lump.lump_id, lump.min_key, lump.max_key, lump.keys, lump.shard_key;
            END IF;
            moved := moved + coalesce(lump.records, 0);
        END IF;
    END LOOP;
    RETURN moved;
END $$;

CREATE OR REPLACE FUNCTION collect._archived(schema name, name text, key anyelement) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    spec jsonb := collect._archive_spec(def);
    record jsonb;
BEGIN
    PERFORM collect._archive_key(def, pg_typeof(key), name);
    EXECUTE collect._archive_statements(spec)->>'point_read' INTO record USING key, collect._archive_key_shard(def, spec, key::text);
    RETURN record;
END $$;

CREATE FUNCTION collect._archived_range(schema name, name text, since timestamptz, until timestamptz) RETURNS SETOF jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'archived_range needs both ends of the range, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY EXECUTE collect._archive_statements(collect._archive_spec(collect._archive_def(schema, name)))->>'range_read' USING since, until;
END $$;

CREATE FUNCTION collect.archived_range(name text, since timestamptz, until timestamptz) RETURNS SETOF jsonb
    LANGUAGE sql AS $$ SELECT collect._archived_range(r.schema, r.object_name, since, until) FROM collect._resolve('archive', name, '_lumps') r $$;

COMMENT ON FUNCTION collect.archived_range(text, timestamptz, timestamptz) IS
    'Archived records with since <= time < until, in time order; reads only lumps that overlap the range';

CREATE FUNCTION collect._unarchive(schema name, name text, since timestamptz, until timestamptz) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET IntervalStyle = postgres AS $$
DECLARE
    def collect.archive_defs := collect._archive_def(schema, name);
    removed bigint;
    rewritten bigint;
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'unarchive needs both ends of the range, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT collect._acting_as(def.owner) THEN
        RETURN collect._owner_run(def.owner, format('archive %I.%I', schema, name),
                                  format('SELECT collect._unarchive(%L, %L, %L, %L)', schema, name, since, until))::bigint;
    END IF;
    PERFORM collect._lock_definition('archive', schema, name, 'NO KEY UPDATE');
    EXECUTE collect._archive_statements(collect._archive_spec(def))->>'unarchive'
        INTO removed, rewritten USING since, until;
    RETURN removed;
END $$;

CREATE FUNCTION collect.unarchive(name text, since timestamptz, until timestamptz) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._unarchive(r.schema, r.object_name, since, until) FROM collect._resolve('archive', name, '_lumps') r $$;

COMMENT ON FUNCTION collect.unarchive(text, timestamptz, timestamptz) IS
    'Moves archived records with since <= time < until back into the source; rewrites only the lumps that held them';

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
    EXECUTE collect._archive_statements(spec)->>'delete' INTO removed, rewritten USING key, collect._archive_key_shard(def, spec, key::text);
    RETURN removed > 0;
END $$;

CREATE OR REPLACE FUNCTION collect._schedule_verify(s collect.job_schedules) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN EXISTS (SELECT FROM collect._maintenance() m WHERE m.object = s.object AND m.job = s.job AND m.owner = s.owner);
END $$;

CREATE OR REPLACE FUNCTION collect._find_job(object text, job text) RETURNS collect.maintenance
    STABLE LANGUAGE plpgsql AS $$
DECLARE
    found collect.maintenance;
BEGIN
    IF object IS NULL OR job IS NULL THEN
        RAISE EXCEPTION 'a job is named by its object and its name, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT m.* INTO found
      FROM collect._maintenance() m
      LEFT JOIN pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS s(nsp, ord)
        ON m.object OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', s.nsp, _find_job.object)
     WHERE m.job OPERATOR(pg_catalog.=) _find_job.job
       AND (m.object OPERATOR(pg_catalog.=) _find_job.object OR s.nsp IS NOT NULL)
     ORDER BY m.object OPERATOR(pg_catalog.=) _find_job.object DESC, s.ord
     LIMIT 1;
    IF found.object IS NULL THEN
        RAISE EXCEPTION 'no job "%" for "%"', job, object
            USING ERRCODE = 'undefined_object', HINT = 'collect.jobs lists the jobs there are.';
    END IF;
    RETURN found;
END $$;

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
    INSERT INTO collect.job_schedules AS s (object, job, every, owner, next_run)
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
    PERFORM collect._delete_registry_rows('collect.job_schedules', jsonb_build_object('object', object, 'job', job));
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION collect.unschedule(object text, job text) RETURNS boolean
    LANGUAGE sql AS $$
    -- ($1, $2: in a SQL function, a bare name is a column before it is a parameter.)
    SELECT collect._unschedule(COALESCE((SELECT s.object FROM collect.job_schedules s
                                           LEFT JOIN pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p(nsp, ord)
                                             ON s.object OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', p.nsp, $1)
                                          WHERE s.job OPERATOR(pg_catalog.=) $2 AND (s.object OPERATOR(pg_catalog.=) $1 OR p.nsp IS NOT NULL)
                                          ORDER BY s.object OPERATOR(pg_catalog.=) $1 DESC, p.ord LIMIT 1), $1), $2)
$$;

CREATE OR REPLACE FUNCTION collect._claim_job(skip text[], OUT object text, OUT job text, OUT started timestamptz)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    candidate record;
BEGIN
    FOR candidate IN SELECT s.object, s.job, s.lock_key FROM collect.job_schedules s
                      WHERE s.next_run <= clock_timestamp() AND pg_has_role(s.owner, 'USAGE')
                        AND NOT (s.object || ' ' || s.job) = ANY (coalesce(skip, '{}'))
                      ORDER BY (SELECT count(*) FROM collect.job_schedules r
                                 WHERE r.owner = s.owner AND (r.object || ' ' || r.job) = ANY (coalesce(skip, '{}'))),
                               s.next_run LOOP
        CONTINUE WHEN NOT pg_try_advisory_lock(collect._job_lock_class(), candidate.lock_key);
        -- Another caller may have run it between the query above and the lock: a new
        -- statement sees its commit.
        UPDATE collect.job_schedules s SET last_started = clock_timestamp()
         WHERE (s.object, s.job) = (candidate.object, candidate.job) AND s.next_run <= clock_timestamp()
        RETURNING s.object, s.job, s.last_started INTO object, job, started;
        IF object IS NOT NULL THEN
            RETURN;
        END IF;
        PERFORM pg_advisory_unlock(collect._job_lock_class(), candidate.lock_key);
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION collect._run_job_batch(object text, job text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found collect.maintenance := (SELECT m FROM collect._maintenance() m WHERE (m.object, m.job) = (_run_job_batch.object, _run_job_batch.job));
    done boolean;
    state text;
    message text;
BEGIN
    IF found.batch IS NULL THEN
        RETURN 'failed: 42704 the job no longer exists (its object was dropped?)';
    END IF;
    BEGIN
        -- The job's code runs as its owner, never as the caller (a superuser, for pg_cron or
        -- the background worker), in a restricted operation whose settings are unwound.
        done := collect._as_owner(found.owner, found.batch, as_job => true)::boolean;
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
    lock_key integer := (SELECT s.lock_key FROM collect.job_schedules s WHERE (s.object, s.job) = (_finish_job.object, _finish_job.job));
    failed boolean := result LIKE 'failed:%';
BEGIN
    UPDATE collect.job_schedules s
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

CREATE OR REPLACE PROCEDURE collect.maintain(max_batches integer DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
    claimed record;
    ran text[] := '{}';
    result text;
    batches integer;
BEGIN
    IF max_batches IS NULL OR max_batches OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'max_batches must be positive, not %', COALESCE(max_batches::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM collect._release_job_locks();
    LOOP
        claimed := collect._claim_job(ran);
        EXIT WHEN claimed.object IS NULL;
        COMMIT;
        ran := ran OPERATOR(pg_catalog.||) (claimed.object OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) claimed.job);
        batches := 0;
        LOOP
            result := collect._run_job_batch(claimed.object, claimed.job);
            batches := batches OPERATOR(pg_catalog.+) 1;
            COMMIT;
            EXIT WHEN result OPERATOR(pg_catalog.<>) 'more' OR batches OPERATOR(pg_catalog.>=) max_batches;
        END LOOP;
        PERFORM collect._finish_job(claimed.object, claimed.job, claimed.started, result, batches);
        COMMIT;
        RAISE LOG 'pg_collect maintenance: database %: % of %: % (% batches)',
            pg_catalog.current_database(), claimed.job, claimed.object, result, batches;
    END LOOP;
END $$;


UPDATE collect.capabilities SET figures =
    'SELECT (SELECT jsonb_object_agg(collect._edge_state_name(state), n)
               FROM (SELECT state, sum(n) AS n FROM %1$s WHERE direction = ''o'' GROUP BY state) c) AS edges,
            (SELECT count(*) FROM (SELECT node FROM %1$s GROUP BY node HAVING sum(n) <> 0) x) AS nodes'
 WHERE kind = 'graph';

-- The latest copies, by name.
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

-- Every job there is, scheduled or not, and a schedule whose job is gone (kind NULL).
CREATE VIEW collect.jobs AS
SELECT coalesce(m.object, s.object) AS object, coalesce(m.job, s.job) AS job, m.kind, coalesce(s.owner, m.owner) AS owner,
       m.call, m.every AS usual_every, s.object IS NOT NULL AS scheduled, s.every, s.next_run, s.last_started, s.last_finished,
       collect._job_result(s.owner, s.last_result) AS last_result, s.failures,
       EXISTS (SELECT FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.classid = collect._job_lock_class()::oid AND l.objid = s.lock_key::oid AND l.objsubid = 2 AND l.granted) AS running
  FROM collect._maintenance() m FULL JOIN collect.job_schedules s ON m.object = s.object AND m.job = s.job;
GRANT SELECT ON collect.jobs TO PUBLIC;
COMMENT ON VIEW collect.jobs IS 'Every maintenance job: what it calls and its usual interval; if scheduled, when it runs next, how the last run went, whether one runs now';
