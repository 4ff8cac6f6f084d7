//! Two login roles that are not superusers, each on its own connections, one trying to misuse
//! what pg_collect gives the other.

use crate::{connect, connect_as, db_user, drop_roles, sqlstate, two_roles};

#[test]
fn a_login_role_cannot_crash_the_server_through_trigger_entry_points() {
    let (db, alice, mallory) = two_roles("crash");
    let mut bystander = connect_as(&db, &alice);
    bystander
        .batch_execute("BEGIN; CREATE TABLE alice.kept (x int); INSERT INTO alice.kept VALUES (1);")
        .unwrap();
    let mut attacker = connect_as(&db, &mallory);
    attacker
        .batch_execute("CREATE TABLE mallory.t (x int)")
        .unwrap();
    for (function, trigger) in [
        (
            "collect._rollup_buffer_row()",
            "AFTER INSERT ON mallory.t FOR EACH STATEMENT",
        ),
        (
            "collect._rollup_buffer_row('alice', 'r')",
            "AFTER INSERT ON mallory.t FOR EACH ROW",
        ),
        (
            "collect._rollup_begin()",
            "BEFORE INSERT ON mallory.t FOR EACH ROW",
        ),
        (
            "collect._rollup_flush('alice', 'r', '1')",
            "AFTER INSERT ON mallory.t FOR EACH STATEMENT",
        ),
        (
            "collect._rollup_ingest('alice', 'r', '1')",
            "AFTER INSERT ON mallory.t FOR EACH ROW",
        ),
        (
            "collect._rollup_mark_stale('alice', 'r')",
            "BEFORE INSERT ON mallory.t FOR EACH ROW",
        ),
        (
            "collect._latest_insert('alice.files_latest_refresh')",
            "AFTER INSERT ON mallory.t FOR EACH ROW",
        ),
        (
            "collect._latest_insert()",
            "AFTER INSERT ON mallory.t REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
        ),
        (
            "collect._latest_insert('alice.files_latest_refresh', '{}')",
            "AFTER INSERT ON mallory.t REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
        ),
        (
            "collect._latest_shard_sync('alice.files_latest_refresh', '{}')",
            "AFTER INSERT ON mallory.t FOR EACH STATEMENT",
        ),
        (
            "collect._latest_shard_sync('alice.files_latest_refresh', '{}')",
            "AFTER INSERT ON mallory.t FOR EACH ROW",
        ),
    ] {
        attacker
            .batch_execute(&format!(
                "CREATE TRIGGER z {trigger} EXECUTE FUNCTION {function}"
            ))
            .unwrap();
        let err = attacker
            .batch_execute("INSERT INTO mallory.t VALUES (1)")
            .expect_err(function);
        let code = sqlstate(&err);
        assert!(
            ["39P01", "09000"].contains(&code.as_str()),
            "{function}: {err}"
        );
        attacker
            .batch_execute("DROP TRIGGER z ON mallory.t")
            .unwrap();
    }
    // A crash would have ended every session: the other role's open transaction is intact.
    bystander
        .batch_execute("INSERT INTO alice.kept VALUES (2); COMMIT")
        .unwrap();
    let n: i64 = bystander
        .query_one("SELECT count(*) FROM alice.kept", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    drop((bystander, attacker));
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn planted_registry_rows_and_forged_triggers_never_act_on_another_roles_tables() {
    let (db, alice, mallory) = two_roles("plant");
    let mut a = connect_as(&db, &alice);
    a.batch_execute(
        r#"SET search_path = alice;
           CREATE TABLE events (at timestamptz, page text, n int);
           SELECT collect.create_rollup('r', 'events', 'at', '{page}', '{"total": "sum(n)"}');
           SELECT collect.add_tier('r', 'r_1h', '1 hour');
           SELECT collect.set_retention('r_1h', '3650 days');
           INSERT INTO events VALUES ('2026-11-01 10:00', 'home', 5);
           SELECT collect.create_collection('feed', 'text', '[{"latest_by": "k"}]');
           SELECT collect.append('feed', 'a', '{"k": 1}');"#,
    )
    .unwrap();
    let mut m = connect_as(&db, &mallory);
    // Rows naming alice's tables, or carrying alice as owner, are refused.
    for plant in [
        "INSERT INTO collect.rollup_defs (schema, name, source_schema, source_name, time_column, dimensions, metrics, granularity, tiers)
         VALUES ('alice', 'x', 'alice', 'events', 'at', '{}', '[]', '1 minute', '[{\"name\": \"r\", \"granularity\": \"1 hour\", \"keep\": \"1 second\"}]')",
        "INSERT INTO collect.collection_defs (schema, name, key_type, read) VALUES ('alice', 'feed2', 'text', '[]')",
        "INSERT INTO collect.collection_defs (schema, name, key_type, read, owner) VALUES ('mallory', 'feed', 'text', '[]', current_user)",
    ] {
        let err = m.batch_execute(plant).expect_err(plant);
        assert_eq!(sqlstate(&err), "42501", "{plant}: {err}");
    }
    // Updates of alice's rows touch nothing; deletes are not PUBLIC's at all (a table-level
    // DELETE would let any role lock the registry), and pg_collect's own delete takes only the
    // caller's rows.
    m.batch_execute("UPDATE collect.rollup_defs SET keep = '1 second'")
        .unwrap();
    let err = m
        .batch_execute("DELETE FROM collect.collection_defs")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let deleted: i64 = m
        .query_one("SELECT collect._delete_registry_rows('collect.collection_defs', '{\"schema\": \"alice\", \"name\": \"feed\"}')", &[])
        .unwrap()
        .get(0);
    assert_eq!(deleted, 0);
    // A forged trigger naming alice's rollup does not feed it.
    m.batch_execute(
        "CREATE TABLE mallory.events (at timestamptz, page text, n int);
         CREATE TRIGGER steal AFTER INSERT ON mallory.events REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('alice', 'r', '2', '{}');",
    )
    .unwrap();
    let err = m
        .batch_execute("INSERT INTO mallory.events VALUES ('2026-11-01 10:00', 'home', 1000)")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "09000", "{err}");
    // Nor does a forged version-insert trigger naming a latest copy of alice's.
    m.batch_execute(
        "DROP TRIGGER steal ON mallory.events;
         CREATE TRIGGER steal AFTER INSERT ON mallory.events REFERENCING NEW TABLE AS new_rows
             FOR EACH STATEMENT EXECUTE FUNCTION collect._latest_insert('alice.files_latest_refresh');",
    )
    .unwrap();
    let err = m
        .batch_execute("INSERT INTO mallory.events VALUES ('2026-11-01 10:00', 'home', 1000)")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "09000", "{err}");
    // Nor do the triggers that carry a latest copy's description (made for Citus shards), even
    // for a latest copy alice has, with UPDATE on her parent granted to mallory.
    a.batch_execute(
        "CREATE TABLE alice.files (id bigint PRIMARY KEY);
         CREATE TABLE alice.versions (file_id bigint, v int, size bigint, PRIMARY KEY (file_id, v));
         SELECT collect.create_latest('alice.files', 'alice.versions', 'file_id', 'v', '{size}');
         INSERT INTO alice.files VALUES (1); INSERT INTO alice.versions VALUES (1, 1, 10);",
    )
    .unwrap();
    a.batch_execute(&format!("GRANT USAGE ON SCHEMA alice TO {mallory}; GRANT SELECT, UPDATE ON alice.files TO {mallory};")).unwrap();
    let spec: String = a
        .query_one(
            r#"SELECT jsonb_set(collect._latest_spec(d), '{child}', '{"schema": "mallory", "name": "versions"}')::text
                 FROM collect.latest_defs d WHERE (d.schema, d.name) = ('alice', 'files')"#,
            &[],
        )
        .unwrap()
        .get(0);
    m.batch_execute("CREATE TABLE mallory.versions (file_id bigint, v int, size bigint, PRIMARY KEY (file_id, v))").unwrap();
    for (trigger, write) in [
        ("AFTER INSERT ON mallory.versions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._latest_insert",
         "INSERT INTO mallory.versions VALUES (1, 99, 666)"),
        ("AFTER UPDATE ON mallory.versions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._latest_shard_sync",
         "UPDATE mallory.versions SET size = 667"),
    ] {
        m.batch_execute(&format!("CREATE TRIGGER steal {trigger}('alice.files_latest_refresh', '{}')", spec.replace('\'', "''"))).unwrap();
        let err = m.batch_execute(write).unwrap_err();
        assert_eq!(sqlstate(&err), "09000", "{write}: {err}");
        m.batch_execute("DROP TRIGGER steal ON mallory.versions; INSERT INTO mallory.versions VALUES (1, 99, 666) ON CONFLICT DO NOTHING").unwrap();
    }
    let size: i64 = a
        .query_one("SELECT latest_size FROM alice.files WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(size, 10, "alice's copy is untouched");
    // Mallory's own "r" and "feed" live in her schema; alice's calls, unqualified along her
    // own search_path, keep reaching alice's.
    m.batch_execute(
        r#"SET search_path = public;
           CREATE TABLE public.events (at timestamptz, page text, n int);
           SELECT collect.create_rollup('r', 'public.events', 'at', '{page}', '{"total": "sum(n)"}');
           SELECT collect.create_collection('feed');"#,
    )
    .unwrap();
    a.batch_execute(
        r#"SET search_path = alice, public;
           SELECT collect.ingest('r', '[{"at": "2026-11-01T10:00:00Z", "page": "home", "n": 7}]');
           SELECT collect.append('feed', 'a', '{"k": 2}');
           SELECT collect.apply_retention();"#,
    )
    .unwrap();
    let totals: (i64, i64) = {
        let row = a.query_one("SELECT (SELECT sum(total) FROM alice.r)::int8, (SELECT sum(total) FROM alice.r_1h)::int8", &[]).unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        totals,
        (12, 12),
        "alice's rollup and tier hold exactly her events"
    );
    let feed: String = a
        .query_one("SELECT collect.read('feed', 'a')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(feed, r#"[{"k": 1}, {"k": 2}]"#);
    let mallory_total: Option<i64> = m
        .query_one("SELECT sum(total)::int8 FROM public.r", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        mallory_total, None,
        "nothing of alice's reached mallory's rollup"
    );
    // The views answer both roles, with figures only for what each may read.
    let seen: Vec<(String, Option<i64>)> = m
        .query(
            "SELECT schema::text, keys FROM collect.collections ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        seen,
        [("alice".to_string(), None), ("public".to_string(), Some(0))]
    );
    let rollups: Vec<(String, Option<String>, Option<i64>)> = m
        .query(
            "SELECT schema::text, rollup_table::text, rollup_rows FROM collect.rollups ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rollups,
        [
            ("alice".to_string(), Some("alice.r".to_string()), None),
            ("public".to_string(), Some("r".to_string()), Some(0))
        ]
    );
    m.query("SELECT * FROM collect.collections", &[]).unwrap();
    drop((a, m));
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn sql_steps_run_as_the_collections_owner_whoever_reads_or_normalizes() {
    let (db, alice, mallory) = two_roles("owner");
    let mut a = connect_as(&db, &alice);
    a.batch_execute(&format!(
        r#"CREATE FUNCTION alice.stamp(entries jsonb) RETURNS jsonb LANGUAGE sql AS
               $$ SELECT jsonb_build_array(jsonb_build_object('ran_as', current_user::text, 'n', jsonb_array_length(entries))) $$;
           SELECT collect.create_collection('alice.c', 'text', '[{{"sql": "alice.stamp"}}]',
                                            normalization => '{{"daily": [{{"sql": "alice.stamp"}}]}}');
           SELECT collect.append('alice.c', 'k', '{{"x": 1}}');
           GRANT USAGE ON SCHEMA alice TO {mallory};
           GRANT SELECT ON alice.c_pending, alice.c_base TO {mallory};"#
    ))
    .unwrap();
    let mut m = connect_as(&db, &mallory);
    let as_reader: String = m
        .query_one("SELECT collect.read('alice.c', 'k') -> 0 ->> 'ran_as'", &[])
        .unwrap()
        .get(0);
    assert_eq!(as_reader, alice);
    // The superuser's nightly pass runs alice's function as alice, not as a superuser.
    let mut admin = connect(&db);
    admin
        .query_one("SELECT collect.normalize('alice.c')", &[])
        .unwrap();
    let folded: String = admin
        .query_one(
            "SELECT (collect.entries(entries) -> 2 ->> 'ran_as') FROM alice.c_base",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(folded, alice);
    assert_ne!(folded, db_user());
    drop((a, m, admin));
    drop_roles(&db, &[&alice, &mallory]);
}
