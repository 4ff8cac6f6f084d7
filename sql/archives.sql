-- Archives (LiveJournal's data collection): a table's cold rows moved into gzipped JSON lumps,
-- each row one record (`to_jsonb` of it), with record positions indexed in SQL. The statements
-- are written by crates/core/src/archives/generate.rs; the lump format is crates/core/src/lump/format.rs.

-- The registry: archive schema.name keeps rows of `source` in the table schema.name_lumps.
CREATE TABLE collect.archive_defs (
    schema name NOT NULL,
    name text NOT NULL,
    source_schema name NOT NULL,
    source_name text NOT NULL,
    key_column text NOT NULL,
    key_type regtype NOT NULL,
    time_column text NOT NULL,
    lump_rows integer NOT NULL CHECK (lump_rows > 0),
    archive_after interval CHECK (archive_after >= interval '0' AND archive_after <= interval '36500 days'),
    owner name NOT NULL DEFAULT current_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema, name)
);
COMMENT ON TABLE collect.archive_defs IS 'Archives made by collect.create_archive';

-- A row may be written only by a role that owns both the source and the lumps table. SQL
-- without SET, every name qualified: inlined into every definition check (collections.sql).
CREATE FUNCTION collect._archive_verify(d collect.archive_defs) RETURNS boolean
    STABLE LANGUAGE sql AS $$
    SELECT collect._owned_relation(d.owner, d.schema, d.name OPERATOR(pg_catalog.||) '_lumps') IS NOT NULL
       AND collect._owned_relation(d.owner, d.source_schema, d.source_name) IS NOT NULL
$$;
SELECT collect._register_capability('archive', 'collect.archive_defs', 'collect._archive_verify', 'collect.archives');

CREATE FUNCTION collect._archive_def(schema name, name text) RETURNS collect.archive_defs
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def collect.archive_defs := (SELECT d FROM collect.archive_defs d WHERE (d.schema, d.name) = (_archive_def.schema, _archive_def.name));
BEGIN
    PERFORM collect._check_definition(def.name IS NOT NULL, collect._archive_verify(def), 'archive', name, def.owner);
    RETURN def;
END $$;

-- What crates/core/src/archives/generate.rs needs, with names as the catalogs have them now.
CREATE FUNCTION collect._archive_spec(def collect.archive_defs) RETURNS jsonb
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

CREATE FUNCTION collect._archive_create_sql(spec jsonb) RETURNS text[]
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'archive_create_sql_wrapper';
-- An archive's statements, by name: {batch, shard_batch_keys, point_read, range_read,
-- unarchive, delete, supersede} (crates/core/src/archives/generate.rs).
CREATE FUNCTION collect._archive_statements(spec jsonb) RETURNS jsonb
    IMMUTABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'archive_statements_wrapper';

-- Records gathered into one lump written in gzip members behind a directory, so that one
-- record is read by inflating only its member.
CREATE FUNCTION collect._archive_pack_final(internal) RETURNS collect.lump
    IMMUTABLE LANGUAGE c AS 'MODULE_PATHNAME', 'archive_pack_final_wrapper';
CREATE AGGREGATE collect._archive_pack(jsonb) (
    SFUNC = collect._lump_agg_trans,
    STYPE = internal,
    FINALFUNC = collect._archive_pack_final
);
REVOKE EXECUTE ON FUNCTION collect._archive_pack_final(internal) FROM PUBLIC;

-- The record at `place` (from 0) of a lump, inflating only the member that holds it.
CREATE FUNCTION collect._archive_record(lump collect.lump, place integer) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'archive_record_wrapper';

-- On Citus, every lump holds the rows of one shard of the source and is stored in the
-- co-located shard of the lumps table under one key value of that shard (its `shard_key`):
-- the smallest of a fixed run of candidate values that hashes there. Any key finds its
-- shard's value the same way, so reads and writes of one key go to one shard.
CREATE FUNCTION collect._archive_shard_candidate(key_type regtype, i integer) RETURNS text
    IMMUTABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN key_type = 'uuid'::regtype THEN lpad(to_hex(i), 32, '0') ELSE i::text END
$$;

CREATE FUNCTION collect._archive_shard_key(source regclass, key_type regtype, key text) RETURNS text
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- Citus reads a text value as the distribution column's type.
    shard bigint := get_shard_id_for_distribution_column(source, key);
    candidate text;
BEGIN
    FOR i IN 0..1000000 LOOP
        candidate := collect._archive_shard_candidate(key_type, i);
        IF get_shard_id_for_distribution_column(source, candidate) = shard THEN
            RETURN candidate;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no shard key value found for key % of %', key, source;
END $$;

-- Each shard's key value (see _archive_shard_key): the lumps of a shard are stored under it.
CREATE FUNCTION collect._archive_shard_keys(source regclass, key_type regtype) RETURNS SETOF text
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    shards bigint := (SELECT count(*) FROM pg_dist_shard d WHERE d.logicalrelid = source);
    seen bigint[] := '{}';
    shard bigint;
    candidate text;
BEGIN
    FOR i IN 0..1000000 LOOP
        EXIT WHEN cardinality(seen) = shards;
        candidate := collect._archive_shard_candidate(key_type, i);
        shard := get_shard_id_for_distribution_column(source, candidate);
        IF shard <> ALL (seen) THEN
            seen := seen || shard;
            RETURN NEXT candidate;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION collect._create_archive(target_schema name, name text, source regclass, key_column text, time_column text,
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

-- Creates the archive in the current schema (or the one a qualified name gives), like CREATE TABLE.
CREATE FUNCTION collect.create_archive(name text, source regclass, key_column text, time_column text,
                                       lump_rows integer DEFAULT 10000, archive_after interval DEFAULT NULL)
    RETURNS regclass LANGUAGE sql AS $$
    SELECT collect._create_archive(
               CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(name)) OPERATOR(pg_catalog.=) 2 THEN r.schema
                    ELSE pg_catalog.current_schema() END,
               r.object_name, source, key_column, time_column, lump_rows, archive_after)
      FROM collect._resolve('archive', name, '_lumps') r
$$;
COMMENT ON FUNCTION collect.create_archive(text, regclass, text, text, integer, interval) IS
    'Defines an archive of a table''s cold rows; creates name_lumps (gzipped JSON lumps of up to lump_rows records, with their key and time bounds and keys). With archive_after, its maintenance job archives rows older than that';

CREATE FUNCTION collect._drop_archive(schema name, name text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT collect._drop_definition('archive', schema, name, ARRAY[name || '_lumps'])
$$;

CREATE FUNCTION collect.drop_archive(name text) RETURNS void
    LANGUAGE sql AS $$ SELECT collect._drop_archive(r.schema, r.object_name) FROM collect._resolve('archive', name, '_lumps') r $$;
COMMENT ON FUNCTION collect.drop_archive(text) IS 'Drops an archive and its lumps: the records in them are gone';

-- ---- moving rows in ----

-- One lump per shard (one lump on a single node) of up to lump_rows rows older than `before`,
-- each its own statement; returns how many rows moved (0: nothing left).
-- Records are written and read back under fixed settings: floats in their shortest exact form,
-- intervals in the style that reads back under any other (a session's own choice of either
-- would otherwise decide what is stored).
CREATE FUNCTION collect._archive_batch(schema name, name text, before timestamptz) RETURNS bigint
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

CREATE FUNCTION collect._archive_cutoff(older_than interval) RETURNS timestamptz
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be an interval of zero or more, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = CASE WHEN older_than IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END;
    END IF;
    RETURN now() - older_than;
END $$;

-- Moves rows older than `older_than` into lumps, a statement per lump, and returns how many.
-- A crash or cancel undoes the call (its statements are one transaction); for commits as it
-- goes, CALL collect.archive_in_batches.
CREATE FUNCTION collect._archive(schema name, name text, before timestamptz) RETURNS bigint
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

CREATE FUNCTION collect.archive(name text, older_than interval) RETURNS bigint
    LANGUAGE sql AS $$
    SELECT collect._archive(r.schema, r.object_name, collect._archive_cutoff(older_than)) FROM collect._resolve('archive', name, '_lumps') r
$$;
COMMENT ON FUNCTION collect.archive(text, interval) IS
    'Moves the source''s rows older than older_than into lumps; returns how many moved';
-- The same with a fixed cutoff: rows whose time is before `before` move.
CREATE FUNCTION collect.archive_before(name text, before timestamptz) RETURNS bigint
    LANGUAGE sql AS $$ SELECT collect._archive(r.schema, r.object_name, before) FROM collect._resolve('archive', name, '_lumps') r $$;
COMMENT ON FUNCTION collect.archive_before(text, timestamptz) IS
    'Moves the source''s rows whose time is before `before` into lumps; returns how many moved';

-- The same, committing after every lump: a crash or cancel keeps what was committed, and the
-- next call carries on from there.
CREATE PROCEDURE collect.archive_in_batches(name text, older_than interval)
LANGUAGE plpgsql AS $$
DECLARE
    target record := collect._resolve('archive', name, '_lumps');
    before timestamptz := collect._archive_cutoff(older_than);
    lump_rows integer := (collect._archive_def(target.schema, target.object_name)).lump_rows;
    started timestamptz := pg_catalog.clock_timestamp();
    total bigint := 0;
    n bigint;
BEGIN
    LOOP
        n := collect._archive_batch(target.schema, target.object_name, before);
        COMMIT;
        total := total OPERATOR(pg_catalog.+) n;
        EXIT WHEN n OPERATOR(pg_catalog.<) lump_rows;
        RAISE NOTICE 'archive %: % rows so far (% rows/s)', name, total,
            pg_catalog.round(total OPERATOR(pg_catalog./) GREATEST(
                pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) started), 0.001::float8)::numeric);
    END LOOP;
END $$;
COMMENT ON PROCEDURE collect.archive_in_batches(text, interval) IS
    'Moves the source''s rows older than older_than into lumps, committing after each lump (resumable)';

-- ---- reading ----

-- The key as the archive's key type: the same type, or one that casts to it implicitly.
CREATE FUNCTION collect._archive_key(def collect.archive_defs, key_type regtype, name text) RETURNS void
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF key_type <> def.key_type AND NOT EXISTS (SELECT FROM pg_cast c WHERE c.castsource = key_type AND c.casttarget = def.key_type
                                                                       AND c.castcontext = 'i') THEN
        RAISE EXCEPTION 'archive % has keys of type %, not %', name, def.key_type, key_type
            USING ERRCODE = 'datatype_mismatch', HINT = format('Cast the key: collect.archived(%L, key::%s).', name, def.key_type);
    END IF;
END $$;

-- The shard key value a read or erasure of `key` names on Citus ($2 of its statement); NULL
-- on one node, where the statement has no $2.
CREATE FUNCTION collect._archive_key_shard(def collect.archive_defs, spec jsonb, key text) RETURNS text
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN (spec->>'distributed')::boolean
                THEN collect._archive_shard_key(format('%I.%I', def.source_schema, def.source_name)::regclass, def.key_type, key) END
$$;

CREATE FUNCTION collect._archived(schema name, name text, key anyelement) RETURNS jsonb
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

-- src/archives/sql.rs: resolves and checks as collect._archived does, then reads with a
-- statement the session prepared once.
CREATE FUNCTION collect.archived(name text, key anyelement) RETURNS jsonb
    LANGUAGE c AS 'MODULE_PATHNAME', 'archived_wrapper';
COMMENT ON FUNCTION collect.archived(text, anyelement) IS
    'The archived record with this key (to_jsonb of the row), or NULL; inflates only the part of its lump that holds it';

CREATE FUNCTION collect._archived_range(schema name, name text, since timestamptz, until timestamptz) RETURNS SETOF jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'archived_range needs both ends of the range, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN QUERY EXECUTE collect._archive_statements(collect._archive_spec(collect._archive_def(schema, name)))->>'range_read' USING since, until;
END $$;

-- src/archives/range.rs: resolves and checks as collect._archived_range does, then reads the
-- lumps overlapping the range and parses only the records in it.
CREATE FUNCTION collect.archived_range(name text, since timestamptz, until timestamptz) RETURNS SETOF jsonb
    LANGUAGE c AS 'MODULE_PATHNAME', 'archived_range_wrapper';
COMMENT ON FUNCTION collect.archived_range(text, timestamptz, timestamptz) IS
    'Archived records with since <= time < until, in time order; reads only lumps that overlap the range';

-- ---- late edits ----

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

CREATE FUNCTION collect._archive_delete(schema name, name text, key anyelement) RETURNS boolean
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

CREATE FUNCTION collect.archive_delete(name text, key anyelement) RETURNS boolean
    LANGUAGE sql AS $$ SELECT collect._archive_delete(r.schema, r.object_name, key) FROM collect._resolve('archive', name, '_lumps') r $$;
COMMENT ON FUNCTION collect.archive_delete(text, anyelement) IS
    'Erases the archived record with this key; rewrites only the lump that held it. False if there was none';

-- ---- figures and maintenance ----

-- What one row takes in a table's B-tree indexes: per index, an index tuple (8 bytes of header
-- and the keys, aligned to 8) and its line pointer, on leaf pages filled to 90%. Keys of a
-- fixed length take that length; others their column's average width (pg_stats), else 32.
-- Estimated from the definitions, not from the indexes' size now: once archiving has emptied
-- a table its indexes keep their pages, and a share of them per row would be meaningless.
CREATE FUNCTION collect._index_bytes_per_row(t regclass) RETURNS numeric
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

-- The rows as the heap held them, plus what they took in the source's indexes.
UPDATE collect.capabilities SET figures =
    'SELECT count(*) AS lumps, coalesce(sum(records), 0) AS records, (collect._relation_bytes(%1$L)).total AS stored_bytes,
            (coalesce(sum(heap_bytes), 0) + coalesce(sum(records), 0) * collect._index_bytes_per_row(%2$L))::bigint AS heap_bytes_estimate
       FROM %1$s'
 WHERE kind = 'archive';

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
GRANT SELECT ON collect.archives TO PUBLIC;
COMMENT ON VIEW collect.archives IS 'Archives, with their lumps, records, bytes stored and what the rows took in the heap';

-- Archives with archive_after: moving rows older than that, as periodic work.
CREATE FUNCTION collect._archive_maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT 'archive', format('%I.%I', d.schema, d.name), 'archive',
           format('CALL collect.archive_in_batches(%L, %L)', format('%I.%I', d.schema, d.name), d.archive_after),
           interval '1 hour', true, d.owner,
           format('SELECT collect._archive_batch(%L, %L, pg_catalog.now() OPERATOR(pg_catalog.-) %L::pg_catalog.interval) OPERATOR(pg_catalog.<) %s',
                  d.schema, d.name, d.archive_after, d.lump_rows)
      FROM collect.archive_defs d WHERE d.archive_after IS NOT NULL ORDER BY 2
$$;
UPDATE collect.capabilities SET maintenance = 'collect._archive_maintenance' WHERE kind = 'archive';
