-- What pg_collect made in this database, one line per property, from the catalogs: run on an
-- updated database and on a fresh install of the same version, the two outputs must be equal.
-- Object identities are by name (never by OID), so the lines compare across databases.
\set ON_ERROR_STOP on
SET search_path = pg_catalog;
SET IntervalStyle = postgres;
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'pg_collect' AND d.deptype = 'e'
), rels AS (
    SELECT c.* FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
), lines(line) AS (
    SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
    UNION ALL
    SELECT format('function %s (%s) returns %s kind=%s volatile=%s strict=%s parallel=%s secdef=%s leakproof=%s config=%s acl=%s lang=%s cost=%s rows=%s src=%s bin=%s comment=%s',
                  p.oid::regprocedure, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prokind, p.provolatile, p.proisstrict, p.proparallel,
                  p.prosecdef, p.proleakproof, p.proconfig, p.proacl, l.lanname, p.procost, p.prorows,
                  CASE WHEN l.lanname = 'c' THEN p.prosrc ELSE md5(p.prosrc) END, p.probin, obj_description(p.oid, 'pg_proc'))
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid JOIN pg_language l ON l.oid = p.prolang
    UNION ALL
    SELECT format('function %s default args %s', p.oid::regprocedure, pg_get_expr(p.proargdefaults, 0))
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid WHERE p.proargdefaults IS NOT NULL
    UNION ALL
    SELECT format('aggregate %s kind=%s trans=%s final=%s combine=%s serial=%s deserial=%s mtrans=%s stype=%s sspace=%s init=%s finalextra=%s finalmodify=%s sortop=%s',
                  a.aggfnoid::regprocedure, a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                  a.aggdeserialfn, a.aggmtransfn, a.aggtranstype::regtype, a.aggtransspace, a.agginitval, a.aggfinalextra,
                  a.aggfinalmodify, a.aggsortop::regoperator)
      FROM members m JOIN pg_aggregate a ON m.classid = 'pg_proc'::regclass AND a.aggfnoid = m.objid
    UNION ALL
    SELECT format('relation %s kind=%s persistence=%s rls=%s forcerls=%s acl=%s options=%s comment=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.reloptions,
                  obj_description(c.oid, 'pg_class'))
      FROM rels c
    UNION ALL
    SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s storage=%s collation=%s acl=%s',
                  c.oid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  a.attidentity, a.attgenerated, a.attstorage, a.attcollation, a.attacl)
      FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('column order %s: %s', c.oid::regclass,
                  (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
      FROM rels c WHERE c.relkind = 'v'
    UNION ALL
    SELECT format('constraint %s %s %s validated=%s', con.conrelid::regclass, con.conname, pg_get_constraintdef(con.oid), con.convalidated)
      FROM rels c JOIN pg_constraint con ON con.conrelid = c.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rels c JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s', pol.polrelid::regclass, pol.polname, pol.polcmd,
                  pol.polpermissive, (SELECT array_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END ORDER BY 1) FROM unnest(pol.polroles) r),
                  pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid))
      FROM rels c JOIN pg_policy pol ON pol.polrelid = c.oid
    UNION ALL
    SELECT format('trigger %s', pg_get_triggerdef(t.oid)) FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid)) FROM rels c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s', s.seqrelid::regclass) FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
    UNION ALL
    SELECT format('type %s type=%s input=%s output=%s receive=%s send=%s modin=%s modout=%s analyze=%s len=%s byval=%s align=%s storage=%s category=%s preferred=%s acl=%s comment=%s',
                  t.oid::regtype, t.typtype, t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze,
                  t.typlen, t.typbyval, t.typalign, t.typstorage, t.typcategory, t.typispreferred, t.typacl, obj_description(t.oid, 'pg_type'))
      FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT format('operator %s code=%s commutator=%s negator=%s restrict=%s join=%s merges=%s hashes=%s',
                  o.oid::regoperator, o.oprcode::regprocedure, o.oprcom::regoperator, o.oprnegate::regoperator, o.oprrest, o.oprjoin,
                  o.oprcanmerge, o.oprcanhash)
      FROM members m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
    UNION ALL
    SELECT format('cast %s -> %s func=%s context=%s method=%s', c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure,
                  c.castcontext, c.castmethod)
      FROM members m JOIN pg_cast c ON m.classid = 'pg_cast'::regclass AND c.oid = m.objid
    UNION ALL
    SELECT format('extension config %s where %s', cfg.tbl::regclass, cfg.cond)
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) cfg(tbl, cond) WHERE e.extname = 'pg_collect'
    UNION ALL
    -- The extension's own rows (what each capability registers with the shared layer).
    SELECT 'capability ' || to_jsonb(c)::text FROM collect.capabilities c
)
SELECT line FROM lines ORDER BY line COLLATE "C";
