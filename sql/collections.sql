-- Append-only collections with read-time reducers and normalization (Rocket Fuel's Blackbird).
-- Storage and ordering are described in src/collections/sql.rs; reducers in
-- crates/core/src/collections/pipeline/.

-- The registry. A collection lives in a schema, like its tables: `schema.name` owns the tables
-- `schema.name_pending` and `schema.name_base`. Rows are dumped by pg_dump (extension config
-- table) and are trusted only while their owner owns both tables (sql/registry.sql).
-- A collection's levels: an object of pipelines (arrays). A registry column a role writes holds
-- only what pg_collect would write (the checks below): a malformed row would otherwise make
-- collect.jobs, the views and maintain() fail for every role.
CREATE FUNCTION collect._is_level_map(levels jsonb) RETURNS boolean
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_typeof(levels) = 'object'
       AND NOT EXISTS (SELECT FROM jsonb_each(levels) e WHERE jsonb_typeof(e.value) <> 'array')
$$;

CREATE TABLE collect.collection_defs (
    schema name NOT NULL,
    name text NOT NULL,
    key_type regtype NOT NULL CHECK (key_type IN ('text'::regtype, 'bigint'::regtype, 'uuid'::regtype)),
    read jsonb NOT NULL CHECK (jsonb_typeof(read) = 'array'),
    normalization jsonb CHECK (collect._is_level_map(normalization)),
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_normalized jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(last_normalized) = 'object'),
    PRIMARY KEY (schema, name)
);
COMMENT ON TABLE collect.collection_defs IS 'Collections made by collect.create_collection';

-- A row may be written only by a role that owns both tables it names. SQL without SET, every
-- name qualified, so that Postgres inlines it into the statements that check a definition
-- (every append and read); key types by OID (text, bigint, uuid), which no search_path moves.
CREATE FUNCTION collect._collection_verify(d collect.collection_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT d.key_type::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ('{25,20,2950}'::pg_catalog.oid[])
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_pending') IS NOT NULL
       AND collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_base') IS NOT NULL
$$;
SELECT collect._register_capability('collection', 'collect.collection_defs', 'collect._collection_verify', 'collect.collections');

-- The definition of schema.name, checked against the catalogs: an error if there is none, or if
-- its tables do not belong to its owner.
CREATE FUNCTION collect._collection_def(schema name, name text) RETURNS collect.collection_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.collection_defs := (SELECT d FROM collect.collection_defs d WHERE (d.schema, d.name) = (_collection_def.schema, _collection_def.name));
BEGIN
    PERFORM collect._check_definition(def.name IS NOT NULL, collect._collection_verify(def), 'collection', name, def.owner);
    RETURN def;
END $$;

CREATE FUNCTION collect._validate_pipelines(read jsonb, levels jsonb) RETURNS jsonb
    STABLE LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'collection_validate_wrapper';

-- The statements that make a collection's tables (crates/core/src/collections/generate.rs).
CREATE FUNCTION collect._collection_create_sql(schema text, name text, key_type text) RETURNS text[]
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

-- Creates the collection in the first schema of the caller's search_path, like CREATE TABLE.
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

-- An append is one small insert: nothing existing is read or rewritten.
CREATE FUNCTION collect._append(schema name, collection text, key text, entry jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.collection_defs;
    seq bigint;
BEGIN
    IF collection IS NULL OR key IS NULL OR entry IS NULL THEN
        RAISE EXCEPTION 'collect.append needs a collection, a key and an entry, not NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'To append a JSON null, pass ''null''::jsonb.';
    END IF;
    def := collect._collection_def(schema, collection);
    EXECUTE format('INSERT INTO %I.%I (key, entry) VALUES ($1::%s, $2) RETURNING seq', def.schema, def.name || '_pending', def.key_type)
        INTO seq USING key, entry;
    RETURN seq;
END $$;

-- src/collections/append.rs: resolves and checks as collect._append does, then inserts with
-- a statement the session prepared once (collect._append on Citus).
CREATE FUNCTION collect.append(collection text, key text, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_text_wrapper';
CREATE FUNCTION collect.append(collection text, key bigint, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_bigint_wrapper';
CREATE FUNCTION collect.append(collection text, key uuid, entry jsonb) RETURNS bigint
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_uuid_wrapper';
COMMENT ON FUNCTION collect.append(text, text, jsonb) IS 'Appends one entry; returns its sequence number';

CREATE FUNCTION collect._append_many(schema name, collection text, key text, entries jsonb) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.collection_defs;
    appended bigint;
BEGIN
    IF collection IS NULL OR key IS NULL OR entries IS NULL THEN
        RAISE EXCEPTION 'collect.append_many needs a collection, a key and entries, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(entries) <> 'array' THEN
        RAISE EXCEPTION 'collect.append_many takes a JSON array of entries, not %', left(entries::text, 60)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use collect.append for a single entry.';
    END IF;
    def := collect._collection_def(schema, collection);
    EXECUTE format(
        'INSERT INTO %I.%I (key, entry) SELECT $1::%s, e FROM jsonb_array_elements($2) WITH ORDINALITY AS x(e, n) ORDER BY n',
        def.schema, def.name || '_pending', def.key_type) USING key, entries;
    GET DIAGNOSTICS appended = ROW_COUNT;
    RETURN appended;
END $$;

CREATE FUNCTION collect.append_many(collection text, key text, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(r.schema, r.object_name, key, entries) FROM collect._resolve('collection', collection, '_pending') r $$;
CREATE FUNCTION collect.append_many(collection text, key bigint, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(r.schema, r.object_name, key::pg_catalog.text, entries) FROM collect._resolve('collection', collection, '_pending') r $$;
CREATE FUNCTION collect.append_many(collection text, key uuid, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(r.schema, r.object_name, key::pg_catalog.text, entries) FROM collect._resolve('collection', collection, '_pending') r $$;
COMMENT ON FUNCTION collect.append_many(text, text, jsonb) IS
    'Appends each element of a JSON array, in order; returns how many';

-- Reads run the read pipeline over the key's base and pending entries, in one snapshot.
CREATE FUNCTION collect._read(schema text, collection text, key text) RETURNS jsonb
    STABLE LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'collection_read_wrapper';
-- src/collections/read.rs: resolves the name as collect._resolve does, then reads as _read does.
CREATE FUNCTION collect.read(collection text, key text) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_text_wrapper';
CREATE FUNCTION collect.read(collection text, key bigint) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_bigint_wrapper';
CREATE FUNCTION collect.read(collection text, key uuid) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_uuid_wrapper';
COMMENT ON FUNCTION collect.read(text, text) IS
    'The key''s entries after the read pipeline, as a JSON array ([] for a key never written)';

CREATE FUNCTION collect.read_entries(collection text, key text) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT pg_catalog.jsonb_array_elements(collect.read(collection, key)) $$;
CREATE FUNCTION collect.read_entries(collection text, key bigint) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT pg_catalog.jsonb_array_elements(collect.read(collection, key)) $$;
CREATE FUNCTION collect.read_entries(collection text, key uuid) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT pg_catalog.jsonb_array_elements(collect.read(collection, key)) $$;

CREATE FUNCTION collect._read_many(schema text, collection text, keys text[]) RETURNS TABLE (key text, entries jsonb)
    STABLE ROWS 100 LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'collection_read_many_wrapper';
CREATE FUNCTION collect.read_many(collection text, keys anyarray) RETURNS TABLE (key text, entries jsonb)
    STABLE STRICT ROWS 100 LANGUAGE sql AS $$
    SELECT m.* FROM collect._resolve('collection', collection, '_pending') r,
                    collect._read_many(r.schema, r.object_name, keys::pg_catalog.text[]) m $$;
COMMENT ON FUNCTION collect.read_many(text, anyarray) IS
    'read() for many keys in two index scans; one row per key asked for, in that order';

CREATE FUNCTION collect._normalize(schema text, collection text, level text, all_keys boolean, max_keys bigint,
                                   pass_started timestamptz) RETURNS jsonb
    LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'collection_normalize_wrapper';

CREATE FUNCTION collect._normalize_checked(schema name, collection text, level text, all_keys boolean, max_keys bigint)
    RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF collection IS NULL OR level IS NULL OR all_keys IS NULL THEN
        RAISE EXCEPTION 'collect.normalize needs a collection, a level and all_keys, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_keys IS NOT NULL AND max_keys < 1 THEN
        RAISE EXCEPTION 'max_keys must be positive, not %', max_keys USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN collect._normalize(schema, collection, level, all_keys, max_keys, NULL);
END $$;

CREATE FUNCTION collect.normalize(
    collection text,
    level text DEFAULT 'daily',
    all_keys boolean DEFAULT false,
    max_keys bigint DEFAULT NULL
) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT collect._normalize_checked(r.schema, r.object_name, level, all_keys, max_keys)
      FROM collect._resolve('collection', collection, '_pending') r
$$;
COMMENT ON FUNCTION collect.normalize(text, text, boolean, bigint) IS
    'Folds appended entries into each key''s compressed base with the level''s pipeline; returns a summary';

-- One batch of normalize_in_batches: folds up to batch_size keys and reports progress;
-- returns true when the pass is complete. The procedure around it commits between batches
-- (a procedure that commits cannot pin search_path, so all its work is done here).
CREATE FUNCTION collect._normalize_batch(schema name, collection text, level text, all_keys boolean, batch_size bigint,
                                         started timestamptz, INOUT total bigint, OUT complete boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.collection_defs;
    pass_started timestamptz;
    summary jsonb;
BEGIN
    IF collection IS NULL OR level IS NULL OR all_keys IS NULL THEN
        RAISE EXCEPTION 'collect.normalize_in_batches needs a collection, a level and all_keys, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, not %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    def := collect._collection_def(schema, collection);
    IF all_keys THEN
        -- An unfinished all_keys pass resumes: keys it visited are not visited again.
        pass_started := CASE WHEN (def.last_normalized -> level ->> 'complete')::boolean IS FALSE
                             THEN (def.last_normalized -> level ->> 'pass_started')::timestamptz END;
        pass_started := coalesce(pass_started, now());
    END IF;
    summary := collect._normalize(schema, collection, level, all_keys, batch_size, pass_started);
    IF all_keys THEN
        UPDATE collect.collection_defs d
           SET last_normalized = jsonb_set(d.last_normalized, ARRAY[level, 'pass_started'], to_jsonb(pass_started))
         WHERE d.schema = def.schema AND d.name = def.name;
    END IF;
    total := coalesce(total, 0) + (summary ->> 'keys_visited')::bigint;
    complete := (summary ->> 'complete')::boolean;
    RAISE NOTICE 'normalize %: % keys so far (%/s)', level, total,
        round(total / greatest(extract(epoch FROM clock_timestamp() - started), 0.001));
END $$;

-- Long passes: commits after every batch, so an interrupted pass loses nothing and a rerun
-- carries on (an all_keys pass resumes where it stopped).
CREATE PROCEDURE collect.normalize_in_batches(
    collection text,
    level text DEFAULT 'daily',
    all_keys boolean DEFAULT false,
    batch_size bigint DEFAULT 1000
)
LANGUAGE plpgsql AS $$
DECLARE
    target record := collect._resolve('collection', collection, '_pending');
    started timestamptz := pg_catalog.clock_timestamp();
    total bigint := 0;
    complete boolean;
BEGIN
    LOOP
        SELECT * INTO total, complete
          FROM collect._normalize_batch(target.schema, target.object_name, level, all_keys, batch_size, started, total);
        COMMIT;
        EXIT WHEN complete;
    END LOOP;
END $$;

CREATE FUNCTION collect._drop_collection(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('collection', schema, name, ARRAY[name || '_pending', name || '_base'])
$$;

CREATE FUNCTION collect.drop_collection(name text) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._drop_collection(r.schema, r.object_name) FROM collect._resolve('collection', name, '_pending') r $$;

-- On Citus: distributes both tables of a collection on their key, co-located, so that every
-- append, read and fold of a key runs on the worker holding it.
CREATE FUNCTION collect._distribute_collection(schema name, collection text, shard_count integer) RETURNS void
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
CREATE FUNCTION collect.distribute_collection(name text, shard_count integer DEFAULT NULL) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._distribute_collection(r.schema, r.object_name, shard_count) FROM collect._resolve('collection', name, '_pending') r $$;
COMMENT ON FUNCTION collect.distribute_collection(text, integer) IS
    'On Citus: distributes the collection''s two tables on their key, co-located';

-- Each collection's normalization levels, as periodic work (collect.maintenance): a level
-- named hourly, daily or weekly runs that often; others are listed for you to schedule.
CREATE FUNCTION collect._collection_maintenance() RETURNS SETOF collect.maintenance
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
UPDATE collect.capabilities SET maintenance = 'collect._collection_maintenance' WHERE kind = 'collection';

UPDATE collect.capabilities SET figures =
    'SELECT (SELECT count(*) FROM (SELECT key FROM %1$s UNION SELECT key FROM %2$s) k) AS keys,
            (SELECT count(*) FROM %2$s) AS pending_entries,
            (SELECT coalesce(sum(pg_column_size(entries)), 0) FROM %1$s) AS base_bytes'
 WHERE kind = 'collection';

CREATE VIEW collect.collections AS
SELECT d.schema, d.name, d.key_type, d.read, d.normalization, t.pending AS pending_table, t.base AS base_table,
       d.owner, (f->>'keys')::bigint AS keys, (f->>'pending_entries')::bigint AS pending_entries,
       (f->>'base_bytes')::bigint AS base_bytes, d.last_normalized
  FROM collect.collection_defs d,
       LATERAL (SELECT collect._owned_relation(d.owner, d.schema, d.name || '_pending') AS pending,
                       collect._owned_relation(d.owner, d.schema, d.name || '_base') AS base) t,
       LATERAL collect._figures('collection', ARRAY[t.base, t.pending]) f;
GRANT SELECT ON collect.collections TO PUBLIC;
