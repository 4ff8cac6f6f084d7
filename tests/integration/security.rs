//! Two login roles that are not superusers, each on its own connections, one trying to misuse
//! what pg_collect gives the other; and binary input held to exactly what text input makes.

use std::io::Write;
use std::thread;
use std::time::Duration;

use postgres::{Client, NoTls};

use crate::{connect, db_user, dump_and_restore, fresh_database, port, sqlstate};

/// Two login roles, alice and mallory, with schemas of their own and CREATE on public (the
/// pre-15 default), in a fresh database. Returns (database, alice, mallory).
pub(crate) fn two_roles(prefix: &str) -> (String, String, String) {
    let db = fresh_database(prefix);
    let alice = format!("{db}_alice");
    let mallory = format!("{db}_mallory");
    let mut admin = connect(&db);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {alice} LOGIN; CREATE ROLE {mallory} LOGIN;
             GRANT CREATE ON SCHEMA public TO {alice}, {mallory};
             CREATE SCHEMA alice AUTHORIZATION {alice}; CREATE SCHEMA mallory AUTHORIZATION {mallory};"
        ))
        .unwrap();
    (db, alice, mallory)
}

pub(crate) fn connect_as(db: &str, role: &str) -> Client {
    let dsn = format!("host=127.0.0.1 port={} user={role} dbname={db}", port());
    Client::connect(&dsn, NoTls).unwrap_or_else(|e| panic!("connecting to {dsn}: {e}"))
}

pub(crate) fn drop_roles(db: &str, roles: &[&str]) {
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .unwrap();
    for role in roles {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
            .unwrap();
    }
}

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
    // Nor does a forged version-insert trigger naming a tracking of alice's.
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
    // Nor do the triggers that carry a tracking's description (made for Citus shards), even
    // for a tracking alice has, with UPDATE on her parent granted to mallory.
    a.batch_execute(
        "CREATE TABLE alice.files (id bigint PRIMARY KEY);
         CREATE TABLE alice.versions (file_id bigint, v int, size bigint, PRIMARY KEY (file_id, v));
         SELECT collect.track_latest('alice.files', 'alice.versions', 'file_id', 'v', '{size}');
         INSERT INTO alice.files VALUES (1); INSERT INTO alice.versions VALUES (1, 1, 10);",
    )
    .unwrap();
    a.batch_execute(&format!("GRANT USAGE ON SCHEMA alice TO {mallory}; GRANT SELECT, UPDATE ON alice.files TO {mallory};")).unwrap();
    let spec: String = a
        .query_one(
            r#"SELECT jsonb_set(collect._latest_spec(d), '{child}', '{"schema": "mallory", "name": "versions"}')::text
                 FROM collect.latest_defs d WHERE d.parent = 'alice.files'::regclass"#,
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
                                            "normalize" => '{{"daily": [{{"sql": "alice.stamp"}}]}}');
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

#[test]
fn a_tier_added_during_a_repeatable_read_transaction_loses_no_event() {
    let (db, alice, mallory) = two_roles("tier");
    let mut setup = connect_as(&db, &alice);
    setup
        .batch_execute(
            r#"CREATE TABLE alice.events (at timestamptz, n int);
               SELECT collect.create_rollup('alice.r', 'alice.events', 'at', metrics => '{"total": "sum(n)"}');
               INSERT INTO alice.events VALUES ('2026-11-01 10:00', 1);"#,
        )
        .unwrap();
    let mut writer = connect_as(&db, &alice);
    writer
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM alice.r;")
        .unwrap();
    setup
        .query_one("SELECT collect.add_tier('alice.r', 'r_1h', '1 hour')", &[])
        .unwrap();
    // The writer's snapshot predates the tier: its insert is refused rather than counted in
    // the minutes but not the hours; retried, it is counted in both.
    let err = writer
        .batch_execute("INSERT INTO alice.events VALUES ('2026-11-01 10:05', 10)")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "40001", "{err}");
    writer.batch_execute("ROLLBACK").unwrap();
    writer
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; INSERT INTO alice.events VALUES ('2026-11-01 10:05', 10); COMMIT;")
        .unwrap();
    let row = setup
        .query_one("SELECT (SELECT sum(total) FROM alice.r)::int8, (SELECT sum(total) FROM alice.r_1h)::int8", &[])
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (11, 11));
    drop((setup, writer));
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn dropping_a_collection_during_a_batched_normalization_does_not_deadlock() {
    let (db, alice, mallory) = two_roles("dropnorm");
    let mut setup = connect_as(&db, &alice);
    setup
        .batch_execute(
            r#"SELECT collect.create_collection('alice.c', 'bigint', '[{"latest_by": "k"}]');
               SELECT count(collect.append('alice.c', g, jsonb_build_object('k', g % 3))) FROM generate_series(1, 3000) g;"#,
        )
        .unwrap();
    let (db2, alice2) = (db.clone(), alice.clone());
    let pass = thread::spawn(move || {
        let mut c = connect_as(&db2, &alice2);
        c.batch_execute("CALL collect.normalize_in_batches('alice.c', batch_size => 20)")
    });
    thread::sleep(Duration::from_millis(150));
    setup
        .batch_execute("SELECT collect.drop_collection('alice.c')")
        .unwrap();
    match pass.join().unwrap() {
        Ok(()) => {}
        Err(e) => assert!(
            ["42704", "42P01"].contains(&sqlstate(&e).as_str()),
            "the pass ended with {e}"
        ),
    }
    let left: i64 = setup
        .query_one(
            "SELECT count(*) FROM collect.collection_defs WHERE schema = 'alice'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    drop(setup);
    drop_roles(&db, &[&alice, &mallory]);
}

/// A lump of the given entry lines, framed by hand (header, one gzip member).
fn lump_of(entries: &[&[u8]]) -> Vec<u8> {
    let mut raw = Vec::new();
    for e in entries {
        raw.extend_from_slice(e);
        raw.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let mut v = vec![1, 0, 0, 0];
    v.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    v.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    v.extend_from_slice(&gz.finish().unwrap());
    v
}

#[test]
fn binary_input_accepts_exactly_what_text_input_makes() {
    use crate::lump::RawBinary;
    let db = fresh_database("recv_exact");
    let mut client = connect(&db);
    let recv = |client: &mut Client, bytes: Vec<u8>| -> Result<String, postgres::Error> {
        client
            .query_one("SELECT $1::collect.collection::text", &[&RawBinary(bytes)])
            .map(|r| r.get(0))
    };
    // The framing itself must be right: a lump text input made is accepted as is.
    assert_eq!(
        recv(&mut client, lump_of(&[br#"{"a": 1}"#, b"2"])).unwrap(),
        r#"[{"a": 1}, 2]"#
    );
    let deep_ok = format!("{}1{}", "[".repeat(500), "]".repeat(500));
    let deep_bad = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let rejected: Vec<(&str, Vec<u8>)> = vec![
        ("\\u0000", br#""a\u0000b""#.to_vec()),
        ("lone surrogate", br#""\ud800""#.to_vec()),
        ("invalid UTF-8", b"\"\xff\xfe\"".to_vec()),
        ("100,000-deep nesting", deep_bad.into_bytes()),
        ("keys out of jsonb's order", br#"{"b": 1, "a": 2}"#.to_vec()),
        ("duplicate keys", br#"{"a": 1, "a": 2}"#.to_vec()),
        ("exponent form", b"1e400".to_vec()),
        ("not jsonb's spacing", br#"{"a":1}"#.to_vec()),
    ];
    for (what, entry) in rejected {
        let err = recv(&mut client, lump_of(&[b"1", &entry])).expect_err(what);
        assert_eq!(sqlstate(&err), "22P03", "{what}: {err}");
    }
    // What text input makes from those values is accepted and dumps and restores.
    client
        .batch_execute(&format!(
            r#"CREATE TABLE lumps (id int PRIMARY KEY, c collect.collection);
               INSERT INTO lumps VALUES (1, '[1e400, 123456789012345678901234567890, {{"b": 1, "a": 2}}, "\ud83d\ude00"]'),
                                        (2, '[{deep_ok}]');"#
        ))
        .unwrap();
    let mut fuzz = crate::XorShiftLike(0x5eed_1234_abcd_ef01);
    let seeds: [&[u8]; 5] = [
        br#"{"a": [1, 2.50, "x"], "b": null}"#,
        br#""text \"q\" \\ done""#,
        b"[true, false, -0.0001]",
        b"1e400",
        br#"{"": {"": []}}"#,
    ];
    let mut accepted = 0;
    for case in 0..400 {
        let mut entry = seeds[case % seeds.len()].to_vec();
        for _ in 0..1 + fuzz.below(3) {
            let at = fuzz.below(entry.len() + 1);
            match fuzz.below(3) {
                0 if at < entry.len() => {
                    entry.remove(at);
                }
                1 => entry.insert(at, b"{}[]\",:0e\\u\x00\xff -"[fuzz.below(15)]),
                _ if at < entry.len() => entry[at] ^= 1 << fuzz.below(8),
                _ => {}
            }
        }
        if entry.contains(&b'\n') {
            continue;
        }
        match recv(&mut client, lump_of(&[&entry])) {
            Ok(text) => {
                // Accepted: text input of the same value gives exactly these bytes back.
                accepted += 1;
                let again: String = client
                    .query_one("SELECT $1::text::collect.collection::text", &[&text])
                    .unwrap()
                    .get(0);
                assert_eq!(again, text, "case {case}");
                assert_eq!(
                    format!("[{}]", String::from_utf8_lossy(&entry)),
                    text,
                    "case {case}: accepted a non-canonical entry"
                );
            }
            Err(e) => assert_eq!(
                sqlstate(&e),
                "22P03",
                "case {case} {:?}: {e}",
                String::from_utf8_lossy(&entry)
            ),
        }
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
    assert!(accepted > 0, "the fuzz never produced a valid entry");
    let restored = dump_and_restore(&db);
    let texts: Vec<String> = connect(&restored)
        .query("SELECT c::text FROM lumps ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts[0].starts_with("[1000000000"), "{}", texts[0]);
    // topk values travel as text: NUL bytes and invalid UTF-8 are refused in binary input.
    for bad in [b"a\0b".to_vec(), b"\xff".to_vec()] {
        let mut bytes = vec![1u8, 4, 1, 1, bad.len() as u8];
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&[1, 0]);
        let err = client
            .query_one("SELECT $1::collect.topk::text", &[&RawBinary(bytes)])
            .expect_err("a topk value text cannot hold");
        assert_eq!(sqlstate(&err), "22P03", "{err}");
    }
}
