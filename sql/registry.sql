-- The registry layer every capability uses: name checks, definitions that live in schemas like
-- the tables behind them, ownership, and the rules that keep a registry from being planted.
--
-- A definition names objects by schema and name (never by OID: OIDs do not survive a table
-- being rebuilt), and is trusted only while the objects it names belong to its owner. Two
-- things make that hold without SECURITY DEFINER:
-- 1. Row level security: a role may only write rows it owns, and only rows whose objects it
--    owns (each registry's `verify` function says which objects a row names).
-- 2. Every use checks again (`collect._owned_relation`), so a row restored or written by a
--    superuser that names somebody else's table is refused, not followed.
-- Every function here pins search_path: nothing is resolved through the caller's path.

-- Everything in the schema is for everybody to use; privileges on the tables users create
-- through pg_collect are theirs to grant.
GRANT USAGE ON SCHEMA collect TO PUBLIC;

-- A name the extension turns into table names (with suffixes such as _pending or _stale).
CREATE FUNCTION collect._check_name(kind text, name text) RETURNS void
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]*$' OR length(name) > 48 THEN
        RAISE EXCEPTION 'invalid % name: %', kind, coalesce(quote_literal(name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use up to 48 lower-case letters, digits and underscores, starting with a letter or underscore.';
    END IF;
END $$;

-- Only a definition's owner (or a member of that role) may change or remove it.
CREATE FUNCTION collect._check_owner(owner name, what text) RETURNS void
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT pg_has_role(owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of %', what
            USING ERRCODE = 'insufficient_privilege', DETAIL = format('Its owner is %I.', owner);
    END IF;
END $$;

-- The relation schema.relname if it exists and belongs to `owner` (or to a role `owner` is a
-- member of); NULL otherwise. Every use of a definition asks it for each object the definition
-- names, so it reads the syscaches (src/registry/mod.rs) instead of running a query.
CREATE FUNCTION collect._owned_relation(owner name, schema name, relname text) RETURNS regclass
    STABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'owned_relation_wrapper';

-- PL/pgSQL rather than SQL for the helpers every call goes through: their plans are cached
-- for the session, where a SQL function with SET would be planned again at every call.
-- The one check every capability's definition lookup ends with: a definition that is not
-- there is 42704, one whose row names objects its owner does not own (`verified` is the
-- capability's verify function's answer for the row) is refused (42501), never followed.
CREATE FUNCTION collect._check_definition(exists_ boolean, verified boolean, kind text, name text, owner name)
    RETURNS void STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    capability collect.capabilities := (SELECT c FROM collect.capabilities c WHERE c.kind = _check_definition.kind);
BEGIN
    IF NOT exists_ THEN
        RAISE EXCEPTION '% "%" does not exist', kind, name
            USING ERRCODE = 'undefined_object', HINT = format('%s lists the %ss there are.', capability.listed_in, kind);
    END IF;
    IF NOT verified THEN
        RAISE EXCEPTION '% % is not usable: what it names does not exist or does not belong to %', kind, name, quote_ident(owner)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A definition only acts on objects its owner owns (and sources it may put triggers on); drop it and create it again.';
    END IF;
END $$;

-- Locks a definition's row (`mode`: UPDATE to drop or change it, NO KEY UPDATE to work under
-- it), so that work on it and its drop queue in one order; false when it is gone, 42501 when
-- it is somebody else's.
CREATE FUNCTION collect._lock_definition(kind text, schema name, name text, mode text DEFAULT 'UPDATE') RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    registry regclass := (SELECT c.registry FROM collect.capabilities c WHERE c.kind = _lock_definition.kind);
    locked boolean;
    owner name;
BEGIN
    IF mode NOT IN ('UPDATE', 'NO KEY UPDATE') THEN
        RAISE EXCEPTION 'invalid lock mode %', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT true FROM %s d WHERE d.schema = $1 AND d.name = $2 FOR %s', registry, mode)
        INTO locked USING schema, name;
    IF locked IS NULL THEN
        -- Row level security lets only the owner lock the row: a definition everybody sees but
        -- the caller cannot lock is not the caller's, and says so.
        EXECUTE format('SELECT d.owner FROM %s d WHERE d.schema = $1 AND d.name = $2', registry) INTO owner USING schema, name;
        IF owner IS NOT NULL THEN
            PERFORM collect._check_owner(owner, format('%s %I.%I', kind, schema, name));
        END IF;
    END IF;
    RETURN coalesce(locked, false);
END $$;

-- Drops a definition its caller owns: the row is locked, those of `tables` (names in its
-- schema) that belong to its owner are dropped, and the row goes. Every capability's drop
-- ends here, after removing what is not a table of its own (triggers on a source).
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

-- Drops trigger `tgname` of `rel`, found in pg_trigger by the caller (who must own `rel`):
-- rollups' and latest copies' triggers on tables that are not theirs go this way.
CREATE FUNCTION collect._drop_trigger(tgname name, rel regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('DROP TRIGGER %I ON %s', tgname, rel);
END $$;

-- Another role's code runs as that role, whoever triggers it: `_as_owner(owner, query)` runs
-- `query` (one row of one column, answered as text) as `owner` inside a security-restricted
-- operation with a GUC nest level of its own (src/registry/mod.rs, `as_owner`), for a caller
-- who may become `owner`. An owner-run call (normalize, archive, refresh, …) starts with
--     IF NOT collect._acting_as(owner) THEN RETURN collect._as_owner(owner, <itself>); END IF;
-- so that whatever it sets off (triggers on the owner's tables, their defaults, the owner's
-- functions) runs as the owner and leaves nothing behind in the caller's session.
-- `as_job`: a maintenance job's batch, which `collect.job_timeout` also bounds
-- (`_past_job_deadline` then tells its cancel from the caller's).
CREATE FUNCTION collect._past_job_deadline() RETURNS boolean
    VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'registry_past_job_deadline_wrapper';
CREATE FUNCTION collect._as_owner(owner name, query text, as_job boolean DEFAULT false) RETURNS text
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_as_owner_wrapper';
CREATE FUNCTION collect._acting_as(owner name) RETURNS boolean
    STABLE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'registry_acting_as_wrapper';

-- The owner-run call's door: the caller must own `what` (42501 otherwise), and `query` then
-- runs as the owner.
CREATE FUNCTION collect._owner_run(owner name, what text, query text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM collect._check_owner(owner, what);
    RETURN collect._as_owner(owner, query);
END $$;

-- Deletes a registry's rows whose columns equal `key` and that the caller owns: PUBLIC has no
-- DELETE (nor table-level UPDATE) on registries, since either would let any role LOCK TABLE
-- them in any mode and stall everybody (src/registry/mod.rs, `registry_delete_rows`).
CREATE FUNCTION collect._delete_registry_rows(registry regclass, key jsonb) RETURNS bigint
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_delete_rows_wrapper';

-- A definition's figures, for the views that list definitions: the capability's `figures`
-- query (collect.capabilities, written only by the extension script; %1$s, %2$s for `tables`),
-- as one row made jsonb, computed only when the caller may read every table, and then as the
-- tables' owner in a restricted operation (src/registry/mod.rs, `registry_figures`): the tables
-- are another role's, and what reading them runs (a view, a policy, a cast) is that role's
-- code, never to run as whoever lists definitions. NULL when the caller may not read them, the
-- tables have more than one owner, or the query fails (a table its owner changed), so the
-- views answer every role.
CREATE FUNCTION collect._figures_as_owner(kind text, tables regclass[]) RETURNS jsonb
    STRICT LANGUAGE c SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'registry_figures_wrapper';
CREATE FUNCTION collect._figures(kind text, tables regclass[]) RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN collect._figures_as_owner(kind, tables);
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

-- A table's bytes, whole, without indexes, and of its indexes; on Citus, over its shards.
CREATE FUNCTION collect._relation_bytes(t regclass, OUT total bigint, OUT table_only bigint, OUT indexes bigint)
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

-- Finds a definition's schema by name, the way Postgres finds a table: a qualified name
-- ('schema.name') names its schema; an unqualified one is looked up along the caller's
-- search_path, and the first schema holding a relation `name || suffix` wins.
-- It reads search_path (src/registry/mod.rs, from the syscaches: every call of every
-- capability starts here); callers resolve names with it first, then pass (schema, name) to
-- workers that do pin search_path.
CREATE FUNCTION collect._resolve(kind text, name text, suffix text DEFAULT '', OUT schema name, OUT object_name text)
    STABLE LANGUAGE c AS 'MODULE_PATHNAME', 'resolve_wrapper';

-- What each capability declares, in one place: its registry, how a row is verified, where
-- users list its definitions, and the periodic work it has (`maintenance`: a function
-- returning rows of collect.maintenance). Written only by the extension script.
CREATE TABLE collect.capabilities (
    kind text PRIMARY KEY,
    registry regclass NOT NULL UNIQUE,
    verify regproc NOT NULL,
    listed_in text NOT NULL,
    maintenance regproc,
    figures text
);
GRANT SELECT ON collect.capabilities TO PUBLIC;

-- Citus: how a table is held — its distribution column when hash-distributed, whether it is a
-- reference table (a copy on every node); NULL and false for any other table and without
-- Citus. Read with EXECUTE so that pg_collect installs without Citus.
CREATE FUNCTION collect._citus_table(t regclass, OUT distribution_column text, OUT reference boolean)
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    reference := false;
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        EXECUTE 'SELECT CASE WHEN partmethod = ''h'' THEN column_to_column_name(logicalrelid, partkey) END,
                        partmethod = ''n'' AND repmodel = ''t''
                   FROM pg_dist_partition WHERE logicalrelid = $1'
            INTO distribution_column, reference USING t;
        reference := coalesce(reference, false);
    END IF;
END $$;

CREATE FUNCTION collect._distribution_column(t regclass) RETURNS text
    STABLE LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT (collect._citus_table(t)).distribution_column $$;

-- Distributes table t on `column` (Citus), co-located with `colocate_with`, or when that is
-- NULL in Citus' default group (of `shard_count` shards, when given).
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

-- Makes `t` a Citus reference table (a copy on every node).
CREATE FUNCTION collect._citus_reference(t regclass) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING t;
END $$;

-- The shard id of relation `shard` when it is a shard of a Citus table on this node (a
-- trigger on a distributed table fires there), else NULL.
CREATE FUNCTION collect._citus_shard_id(shard regclass) RETURNS bigint
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id bigint := substring((SELECT relname FROM pg_class WHERE oid = shard) FROM '_([0-9]{1,18})$')::bigint;
    found bigint;
BEGIN
    IF id IS NULL OR NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT shardid FROM pg_catalog.pg_dist_shard
              WHERE shardid = $1 AND pg_catalog.to_regclass(pg_catalog.shard_name(logicalrelid, shardid, false)) = $2'
        INTO found USING id, shard;
    RETURN found;
END $$;

-- The shard of `target` co-located with shard `shard` (same co-location group, same hash
-- range), quoted and qualified; NULL when `target` is not co-located with it.
CREATE FUNCTION collect._citus_colocated_shard(shard bigint, target regclass) RETURNS text
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found text;
BEGIN
    IF shard IS NULL OR target IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.shard_name(t.logicalrelid, t.shardid, false)
               FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_dist_partition sp ON sp.logicalrelid = s.logicalrelid
               JOIN pg_catalog.pg_dist_partition tp ON tp.colocationid = sp.colocationid AND tp.logicalrelid = $2
               JOIN pg_catalog.pg_dist_shard t ON t.logicalrelid = tp.logicalrelid AND t.shardminvalue = s.shardminvalue
              WHERE s.shardid = $1'
        INTO found USING shard, target;
    RETURN found;
END $$;

-- What a trigger on a shard may write: the shards of `tables` co-located with shard `rel`, in
-- order; NULL unless every one exists and they and `rel` have one owner, so that a trigger
-- planted on a table of one role cannot reach another's (or when `rel` is no shard).
CREATE FUNCTION collect._citus_colocated_shards(rel regclass, tables regclass[]) RETURNS text[]
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

-- Runs `fn(shard regclass, args jsonb)` on every shard of table t, each on its worker in a
-- transaction of its own (Citus's run_command_on_shards, as the current user): their answers,
-- or the first failure as an error. `fn` is one of pg_collect's functions, qualified.
CREATE FUNCTION collect._citus_on_shards(t regclass, fn text, args jsonb) RETURNS SETOF text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- run_command_on_shards passes the command through format() with the shard's name.
    command text := format('SELECT %s(%%L::pg_catalog.regclass, %s::pg_catalog.jsonb)', fn, replace(quote_literal(args::text), '%', '%%'));
    answer record;
BEGIN
    FOR answer IN EXECUTE 'SELECT shardid, success, result FROM pg_catalog.run_command_on_shards($1, $2) ORDER BY shardid' USING t, command LOOP
        IF NOT answer.success THEN
            RAISE EXCEPTION '% failed on shard % of %: %', fn, answer.shardid, t, answer.result
                USING ERRCODE = 'external_routine_exception';
        END IF;
        RETURN NEXT answer.result;
    END LOOP;
END $$;

-- Tables a and b are hash-distributed and co-located (Citus).
CREATE FUNCTION collect._citus_colocated(a regclass, b regclass) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    together boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN false;
    END IF;
    EXECUTE $q$SELECT count(DISTINCT colocationid) = 1 AND count(*) = 2 FROM pg_catalog.pg_dist_partition
                WHERE logicalrelid IN ($1, $2) AND partmethod = 'h'$q$ INTO together USING a, b;
    RETURN together;
END $$;

-- Registers a capability and makes its registry (a table of definitions with `owner`,
-- `schema` and `name` columns) one the extension's functions can write with the caller's
-- privileges: dumped by pg_dump, readable by everybody, written only with rows that
-- `verify(row)` accepts for their owner.
CREATE FUNCTION collect._register_capability(kind text, registry regclass, verify regproc, listed_in text)
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

-- Periodic work: each capability's `maintenance` function returns its rows. `call` is what a
-- person or pg_cron runs, every `every` (NULL: once, when `due`); `batch` is one bounded batch of
-- it, a query returning true when nothing is left, which collect.maintain() runs as `owner`
-- with a commit after each (sql/maintenance.sql).
CREATE TYPE collect.maintenance AS (kind text, object text, job text, call text, every interval, due boolean,
                                    owner name, batch text);

CREATE FUNCTION collect._maintenance() RETURNS SETOF collect.maintenance
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c collect.capabilities;
BEGIN
    FOR c IN SELECT * FROM collect.capabilities WHERE maintenance IS NOT NULL ORDER BY kind LOOP
        RETURN QUERY EXECUTE format('SELECT * FROM %s()', c.maintenance);
    END LOOP;
END $$;


REVOKE EXECUTE ON FUNCTION collect._register_capability(text, regclass, regproc, text) FROM PUBLIC;
