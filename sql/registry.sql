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
-- member of); NULL otherwise.
-- PL/pgSQL rather than SQL for the helpers every call goes through: their plans are cached
-- for the session, where a SQL function with SET would be planned again at every call.
-- (Positional parameters: pg_class has a column named relname.)
CREATE FUNCTION collect._owned_relation(owner name, schema name, relname text) RETURNS regclass
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname = $3
               AND pg_has_role($1, c.relowner, 'USAGE'));
END $$;

-- The error for a definition that is not there.
CREATE FUNCTION collect._no_definition(kind text, name text, hint text) RETURNS void
    IMMUTABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION '% "%" does not exist', kind, name USING ERRCODE = 'undefined_object', HINT = hint;
END $$;

-- The error for a definition whose row names objects its owner does not own (`verified` is
-- the capability's verify function's answer): refused, never followed.
CREATE FUNCTION collect._check_usable(verified boolean, what text, owner name) RETURNS void
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT verified THEN
        RAISE EXCEPTION '% is not usable: what it names does not exist or does not belong to %', what, quote_ident(owner)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A definition only acts on objects its owner owns (and sources it may put triggers on); drop it and create it again.';
    END IF;
END $$;

-- Finds a definition's schema by name, the way Postgres finds a table: a qualified name
-- ('schema.name') names its schema; an unqualified one is looked up along the caller's
-- search_path, and the first schema holding a relation `name || suffix` wins.
-- This one function cannot pin search_path (it reads it), so every reference in it is
-- qualified, operators included; callers resolve names with it first, then pass
-- (schema, name) to workers that do pin search_path.
CREATE FUNCTION collect._resolve(kind text, name text, suffix text DEFAULT '', OUT schema name, OUT object_name text)
    STABLE LANGUAGE plpgsql AS $$
DECLARE
    parts text[];
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION '% name must not be NULL', kind USING ERRCODE = 'null_value_not_allowed';
    END IF;
    parts := pg_catalog.parse_ident(name);
    IF pg_catalog.cardinality(parts) OPERATOR(pg_catalog.>) 2 THEN
        RAISE EXCEPTION 'invalid % name: %', kind, pg_catalog.quote_literal(name)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Write name or schema.name.';
    END IF;
    object_name := parts[pg_catalog.cardinality(parts)];
    IF pg_catalog.cardinality(parts) OPERATOR(pg_catalog.=) 2 THEN
        schema := parts[1];
        RETURN;
    END IF;
    SELECT n.nspname INTO schema
      FROM pg_catalog.unnest(pg_catalog.current_schemas(true)) WITH ORDINALITY AS s(nsp, ord)
      JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) s.nsp
      JOIN pg_catalog.pg_class c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
                                AND c.relname OPERATOR(pg_catalog.=) (object_name OPERATOR(pg_catalog.||) suffix)
     ORDER BY s.ord LIMIT 1;
END $$;

-- Makes `registry` (a table of definitions with `schema`, `name` and `owner` columns) one the
-- extension's functions can write with the caller's privileges: dumped by pg_dump, readable by
-- everybody, and written only with rows that `verify(row)` accepts for their owner.
CREATE FUNCTION collect._make_registry(registry regclass, verify regproc) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    row_name text := (SELECT relname FROM pg_class WHERE oid = registry);
    allowed text := format('pg_catalog.pg_has_role(owner, ''USAGE'') AND %s(%I)', verify, row_name);
BEGIN
    PERFORM pg_extension_config_dump(registry, '');
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO PUBLIC', registry);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', registry);
    EXECUTE format('CREATE POLICY readable ON %s FOR SELECT USING (true)', registry);
    EXECUTE format('CREATE POLICY owner_inserts ON %s FOR INSERT WITH CHECK (%s)', registry, allowed);
    EXECUTE format('CREATE POLICY owner_updates ON %s FOR UPDATE USING (pg_catalog.pg_has_role(owner, ''USAGE'')) WITH CHECK (%s)',
                   registry, allowed);
    EXECUTE format('CREATE POLICY owner_deletes ON %s FOR DELETE USING (pg_catalog.pg_has_role(owner, ''USAGE''))', registry);
END $$;

-- A definition's figures are computed only from tables the caller may read; the others are
-- NULL. Returns whether `rel` may be read.
CREATE FUNCTION collect._readable(rel regclass) RETURNS boolean
    STABLE LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN rel IS NOT NULL AND has_table_privilege(rel, 'SELECT');
END $$;

REVOKE EXECUTE ON FUNCTION collect._make_registry(regclass, regproc) FROM PUBLIC;
