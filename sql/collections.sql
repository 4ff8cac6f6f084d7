-- Append-only collections with read-time reducers and normalization (Rocket Fuel's Blackbird).
-- Storage and ordering are described in src/collection/sql.rs; reducers in
-- src/collection/pipeline.rs.

-- The registry. Rows are dumped by pg_dump (extension config table); the tables they name
-- are ordinary tables owned by whoever created the collection.
CREATE TABLE collect.collection_defs (
    name text PRIMARY KEY,
    key_type regtype NOT NULL,
    read jsonb NOT NULL,
    "normalize" jsonb,
    pending_table regclass NOT NULL,
    base_table regclass NOT NULL,
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_normalized jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE collect.collection_defs IS 'Collections made by collect.create_collection';
SELECT collect._make_registry('collect.collection_defs');

CREATE FUNCTION collect._validate_pipelines(read jsonb, levels jsonb) RETURNS boolean
    STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_validate_wrapper';

CREATE FUNCTION collect.create_collection(
    name text,
    key_type regtype DEFAULT 'text',
    read jsonb DEFAULT '[]',
    "normalize" jsonb DEFAULT NULL
) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    target_schema name := current_schema();
    pending text := name || '_pending';
    base text := name || '_base';
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
    PERFORM collect._validate_pipelines(coalesce(read, '[]'), "normalize");
    -- Serializes creators of the same name; the primary key catches the rest.
    PERFORM pg_advisory_xact_lock(hashtext('collect.collection:' || name));
    IF EXISTS (SELECT FROM collect.collection_defs d WHERE d.name = create_collection.name) THEN
        RAISE EXCEPTION 'collection "%" already exists', name
            USING ERRCODE = 'duplicate_object', HINT = 'Drop it with collect.drop_collection(name), or pick another name.';
    END IF;
    EXECUTE format(
        'CREATE TABLE %I.%I (
             key %s NOT NULL,
             txn xid8 NOT NULL DEFAULT pg_current_xact_id(),
             seq bigint GENERATED ALWAYS AS IDENTITY,
             at timestamptz NOT NULL DEFAULT now(),
             entry jsonb NOT NULL,
             PRIMARY KEY (key, seq))',
        target_schema, pending, key_type);
    EXECUTE format(
        'CREATE TABLE %I.%I (
             key %s PRIMARY KEY,
             entries collect.collection NOT NULL,
             updated_at timestamptz NOT NULL,
             levels jsonb NOT NULL DEFAULT ''{}'')',
        target_schema, base, key_type);
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', target_schema, pending,
        'Entries appended to collection ' || name || ', not yet normalized (pg_collect)');
    EXECUTE format('COMMENT ON TABLE %I.%I IS %L', target_schema, base,
        'Normalized entries of collection ' || name || ' per key, as [seq, at_us, entry] lumps (pg_collect)');
    INSERT INTO collect.collection_defs (name, key_type, read, "normalize", pending_table, base_table)
    VALUES (name, key_type, coalesce(read, '[]'), "normalize",
            format('%I.%I', target_schema, pending)::regclass, format('%I.%I', target_schema, base)::regclass);
    RETURN format('%I.%I', target_schema, pending)::regclass;
END $$;
COMMENT ON FUNCTION collect.create_collection(text, regtype, jsonb, jsonb) IS
    'Defines a collection: its key type, read pipeline and normalization levels; creates name_pending and name_base in the current schema';

CREATE FUNCTION collect._pending_table(collection text, OUT pending regclass, OUT key_type regtype)
    STABLE LANGUAGE plpgsql AS $$
BEGIN
    SELECT d.pending_table, d.key_type INTO pending, key_type
      FROM collect.collection_defs d WHERE d.name = collection;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection "%" does not exist', collection
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with collect.create_collection(name); collect.collections lists those there are.';
    END IF;
END $$;

-- An append is one small insert: nothing existing is read or rewritten.
CREATE FUNCTION collect._append(collection text, key text, entry jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    target record;
    seq bigint;
BEGIN
    IF collection IS NULL OR key IS NULL OR entry IS NULL THEN
        RAISE EXCEPTION 'collect.append needs a collection, a key and an entry, not NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'To append a JSON null, pass ''null''::jsonb.';
    END IF;
    target := collect._pending_table(collection);
    EXECUTE format('INSERT INTO %s (key, entry) VALUES ($1::%s, $2) RETURNING seq', target.pending, target.key_type)
        INTO seq USING key, entry;
    RETURN seq;
END $$;

CREATE FUNCTION collect.append(collection text, key text, entry jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append(collection, key, entry) $$;
CREATE FUNCTION collect.append(collection text, key bigint, entry jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append(collection, key::text, entry) $$;
CREATE FUNCTION collect.append(collection text, key uuid, entry jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append(collection, key::text, entry) $$;
COMMENT ON FUNCTION collect.append(text, text, jsonb) IS 'Appends one entry; returns its sequence number';

CREATE FUNCTION collect._append_many(collection text, key text, entries jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    target record;
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
    target := collect._pending_table(collection);
    EXECUTE format(
        'INSERT INTO %s (key, entry) SELECT $1::%s, e FROM jsonb_array_elements($2) WITH ORDINALITY AS x(e, n) ORDER BY n',
        target.pending, target.key_type) USING key, entries;
    GET DIAGNOSTICS appended = ROW_COUNT;
    RETURN appended;
END $$;

CREATE FUNCTION collect.append_many(collection text, key text, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(collection, key, entries) $$;
CREATE FUNCTION collect.append_many(collection text, key bigint, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(collection, key::text, entries) $$;
CREATE FUNCTION collect.append_many(collection text, key uuid, entries jsonb) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._append_many(collection, key::text, entries) $$;
COMMENT ON FUNCTION collect.append_many(text, text, jsonb) IS
    'Appends each element of a JSON array (a lump), in order; returns how many';

-- Reads run the read pipeline over the key's base and pending entries, in one snapshot.
CREATE FUNCTION collect._read(collection text, key text) RETURNS jsonb
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_wrapper';
CREATE FUNCTION collect.read(collection text, key text) RETURNS jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT collect._read(collection, key) $$;
CREATE FUNCTION collect.read(collection text, key bigint) RETURNS jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT collect._read(collection, key::text) $$;
CREATE FUNCTION collect.read(collection text, key uuid) RETURNS jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT collect._read(collection, key::text) $$;
COMMENT ON FUNCTION collect.read(text, text) IS
    'The key''s entries after the read pipeline, as a JSON array ([] for a key never written)';

CREATE FUNCTION collect.read_entries(collection text, key text) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT jsonb_array_elements(collect._read(collection, key)) $$;
CREATE FUNCTION collect.read_entries(collection text, key bigint) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT jsonb_array_elements(collect._read(collection, key::text)) $$;
CREATE FUNCTION collect.read_entries(collection text, key uuid) RETURNS SETOF jsonb
    STABLE STRICT LANGUAGE sql AS $$ SELECT jsonb_array_elements(collect._read(collection, key::text)) $$;

CREATE FUNCTION collect._read_many(collection text, keys text[]) RETURNS TABLE (key text, entries jsonb)
    STABLE STRICT ROWS 100 LANGUAGE c AS 'MODULE_PATHNAME', 'collection_read_many_wrapper';
CREATE FUNCTION collect.read_many(collection text, keys anyarray) RETURNS TABLE (key text, entries jsonb)
    STABLE STRICT ROWS 100 LANGUAGE sql AS $$ SELECT * FROM collect._read_many(collection, keys::text[]) $$;
COMMENT ON FUNCTION collect.read_many(text, anyarray) IS
    'read() for many keys in two index scans; one row per key asked for, in that order';

CREATE FUNCTION collect._normalize(collection text, level text, all_keys boolean, max_keys bigint,
                                   pass_started timestamptz) RETURNS jsonb
    LANGUAGE c AS 'MODULE_PATHNAME', 'collection_normalize_wrapper';

CREATE FUNCTION collect.normalize(
    collection text,
    level text DEFAULT 'daily',
    all_keys boolean DEFAULT false,
    max_keys bigint DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF collection IS NULL OR level IS NULL OR all_keys IS NULL THEN
        RAISE EXCEPTION 'collect.normalize needs a collection, a level and all_keys, not NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF max_keys IS NOT NULL AND max_keys < 1 THEN
        RAISE EXCEPTION 'max_keys must be positive, not %', max_keys USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN collect._normalize(collection, level, all_keys, max_keys, NULL);
END $$;
COMMENT ON FUNCTION collect.normalize(text, text, boolean, bigint) IS
    'Folds appended entries into each key''s compressed base with the level''s pipeline; returns a summary';

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
    pass_started timestamptz;
    summary jsonb;
    total bigint := 0;
    started timestamptz := clock_timestamp();
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM collect._pending_table(collection);
    IF all_keys THEN
        SELECT (d.last_normalized -> level ->> 'pass_started')::timestamptz INTO pass_started
          FROM collect.collection_defs d
         WHERE d.name = collection AND (d.last_normalized -> level ->> 'complete')::boolean IS FALSE;
        pass_started := coalesce(pass_started, now());
    END IF;
    LOOP
        summary := collect._normalize(collection, level, all_keys, batch_size, pass_started);
        total := total + (summary ->> 'keys_visited')::bigint;
        IF all_keys THEN
            UPDATE collect.collection_defs d
               SET last_normalized = jsonb_set(d.last_normalized, ARRAY[level, 'pass_started'], to_jsonb(pass_started))
             WHERE d.name = collection;
        END IF;
        COMMIT;
        RAISE NOTICE 'normalize %: % keys so far (%/s)', level, total,
            round(total / greatest(extract(epoch FROM clock_timestamp() - started), 0.001));
        EXIT WHEN (summary ->> 'complete')::boolean;
    END LOOP;
END $$;

CREATE FUNCTION collect.drop_collection(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    def collect.collection_defs;
BEGIN
    SELECT * INTO def FROM collect.collection_defs d WHERE d.name = drop_collection.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'collection "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM collect._check_owner(def.owner, format('collection "%s"', name));
    PERFORM FROM collect.collection_defs d WHERE d.name = drop_collection.name FOR UPDATE;
    EXECUTE format('DROP TABLE %s, %s', def.pending_table, def.base_table);
    DELETE FROM collect.collection_defs d WHERE d.name = drop_collection.name;
END $$;

CREATE FUNCTION collect._collection_figures(
    OUT name text, OUT keys bigint, OUT pending_entries bigint, OUT base_bytes bigint)
    RETURNS SETOF record STABLE LANGUAGE plpgsql AS $$
DECLARE
    def collect.collection_defs;
BEGIN
    FOR def IN SELECT * FROM collect.collection_defs ORDER BY 1 LOOP
        name := def.name;
        EXECUTE format('SELECT (SELECT count(*) FROM (SELECT key FROM %1$s UNION SELECT key FROM %2$s) k),
                               (SELECT count(*) FROM %2$s),
                               (SELECT coalesce(sum(pg_column_size(entries)), 0) FROM %1$s)',
                       def.base_table, def.pending_table)
            INTO keys, pending_entries, base_bytes;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE VIEW collect.collections AS
SELECT d.name, d.key_type, d.read, d."normalize", d.pending_table, d.base_table, d.owner,
       f.keys, f.pending_entries, f.base_bytes, d.last_normalized
  FROM collect.collection_defs d JOIN collect._collection_figures() f USING (name);
GRANT SELECT ON collect.collections TO PUBLIC;
