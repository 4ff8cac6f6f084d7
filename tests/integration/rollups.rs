//! Rollups under concurrent ingest.

use std::io::Write;
use std::thread;

use crate::{connect, connect_as, drop_roles, fresh_database, sqlstate, two_roles};

#[test]
fn concurrent_ingest_neither_loses_nor_doubles_counts() {
    let db = fresh_database("rollup_concurrent");
    connect(&db)
        .batch_execute(
            r#"CREATE TABLE events (at timestamptz NOT NULL, page text, user_id bigint, ms integer);
               SELECT collect.create_rollup('events_1m', 'events', 'at', '{page}',
                   '{"total_ms": "sum(ms)", "max_ms": "max(ms)", "users": "distinct(user_id)", "latency": "quantiles(ms)"}');
               SELECT collect.add_tier('events_1m', 'events_1h', '1 hour');"#,
        )
        .unwrap();
    const CLIENTS: i64 = 8;
    const STATEMENTS: i64 = 40;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let db = db.clone();
            thread::spawn(move || {
                let mut client = connect(&db);
                for s in 0..STATEMENTS {
                    // Every statement touches the same few buckets and pages as the others,
                    // in a different order, half of them by COPY.
                    if s % 2 == 0 {
                        client
                            .execute(
                                "INSERT INTO events SELECT '2026-11-01'::timestamptz + ((g * 7 + $1::int8) % 300) * interval '1 second',
                                        'page-' || (g + $1::int8) % 5, g % 40, (g * $1::int8) % 1000
                                   FROM generate_series(1, 50) g",
                                &[&(c * 1000 + s)],
                            )
                            .unwrap();
                    } else {
                        let mut rows = String::new();
                        for g in 0..50i64 {
                            rows.push_str(&format!(
                                "2026-11-01 00:{:02}:{:02}+00\tpage-{}\t{}\t{}\n",
                                ((g * 13 + c + s) % 300) / 60,
                                ((g * 13 + c + s) % 300) % 60,
                                (g + c) % 5,
                                g % 40,
                                (g * 31 + s) % 1000
                            ));
                        }
                        let mut w = client.copy_in("COPY events FROM STDIN").unwrap();
                        w.write_all(rows.as_bytes()).unwrap();
                        w.finish().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join()
            .expect("an ingesting client failed (a deadlock would show here)");
    }
    let mut client = connect(&db);
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM events),
                    (SELECT sum(event_count) FROM events_1m)::bigint,
                    (SELECT sum(event_count) FROM events_1h)::bigint,
                    (SELECT bool_and(r.event_count = w.n AND r.total_ms = w.total AND r.max_ms = w.mx
                                     AND r.users OPERATOR(collect.=) w.users AND r.latency OPERATOR(collect.=) w.latency)
                       FROM events_1m r FULL JOIN (
                           SELECT date_bin('1 minute', at, '2000-01-03') AS bucket, page, count(*) AS n, sum(ms) AS total,
                                  max(ms) AS mx, collect.hll_agg(user_id) AS users, collect.quantiles_agg(ms) AS latency
                             FROM events GROUP BY 1, 2) w USING (bucket, page))",
            &[],
        )
        .unwrap();
    let (raw, minutes, hours, exact): (i64, i64, i64, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(raw, CLIENTS * STATEMENTS * 50);
    assert_eq!(minutes, raw, "minute rollup counts every event once");
    assert_eq!(hours, raw, "hour tier counts every event once");
    assert!(
        exact,
        "every minute row equals the raw rows' aggregates and sketches"
    );
}

#[test]
fn concurrent_ingest_into_a_rollup_without_raw_rows() {
    let db = fresh_database("rollup_rawless");
    connect(&db)
        .batch_execute(
            r#"CREATE VIEW clicks AS SELECT NULL::timestamptz AS at, NULL::text AS page, NULL::bigint AS user_id WHERE false;
               SELECT collect.create_rollup('clicks_1m', 'clicks', 'at', '{page}', '{"users": "distinct(user_id)"}', keep_raw => false);"#,
        )
        .unwrap();
    let handles: Vec<_> = (0..6i64)
        .map(|c| {
            let db = db.clone();
            thread::spawn(move || {
                let mut client = connect(&db);
                for s in 0..30i64 {
                    let mut rows = String::new();
                    for g in 0..100i64 {
                        rows.push_str(&format!(
                            "2026-11-01 00:0{}:{:02}+00\tp{}\t{}\n",
                            (g + s) % 5,
                            (g * 7 + c) % 60,
                            (g + c) % 4,
                            g
                        ));
                    }
                    if s % 3 == 0 {
                        // A transaction that rolls back must leave no trace.
                        client.batch_execute("BEGIN").unwrap();
                        let mut w = client.copy_in("COPY clicks FROM STDIN").unwrap();
                        w.write_all(rows.as_bytes()).unwrap();
                        w.finish().unwrap();
                        client.batch_execute("ROLLBACK").unwrap();
                    }
                    let mut w = client.copy_in("COPY clicks FROM STDIN").unwrap();
                    w.write_all(rows.as_bytes()).unwrap();
                    w.finish().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("an ingesting client failed");
    }
    let row = connect(&db)
        .query_one(
            "SELECT (SELECT sum(event_count) FROM clicks_1m)::bigint, (SELECT count(*) FROM clicks),
                    (SELECT collect.distinct_count(collect.merge(users)) FROM clicks_1m)",
            &[],
        )
        .unwrap();
    let (events, raw, users): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        events,
        6 * 30 * 100,
        "every committed row counted once, rolled-back ones not at all"
    );
    assert_eq!(raw, 0, "no raw rows kept");
    assert_eq!(users, 100);
}

#[test]
fn rollups_survive_pg_dump_and_pg_restore_without_double_counting() {
    let source = fresh_database("rollup_dump");
    connect(&source)
        .batch_execute(
            r#"CREATE TABLE events (at timestamptz NOT NULL, page text, ms integer);
               SELECT collect.create_rollup('events_1m', 'events', 'at', '{page}', '{"total_ms": "sum(ms)", "latency": "quantiles(ms)"}');
               SELECT collect.add_tier('events_1m', 'events_1h', '1 hour');
               INSERT INTO events SELECT '2026-11-01'::timestamptz + g * interval '7 seconds', 'p' || g % 3, g % 100 FROM generate_series(1, 3000) g;"#,
        )
        .unwrap();
    let target = crate::dump_and_restore(&source);
    let mut dst = connect(&target);
    let counts = |c: &mut postgres::Client| -> (i64, i64, i64) {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM events), (SELECT sum(event_count) FROM events_1m)::bigint,
                        (SELECT sum(event_count) FROM events_1h)::bigint",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        counts(&mut dst),
        (3000, 3000, 3000),
        "restoring the raw rows did not roll them up again"
    );
    // Ingest keeps working after the restore.
    dst.batch_execute("INSERT INTO events VALUES ('2026-11-01 00:00:01+00', 'p0', 5)")
        .unwrap();
    assert_eq!(counts(&mut dst), (3001, 3001, 3001));
}

#[test]
fn a_batch_of_events_that_inflates_past_the_limit_is_refused_before_the_rest_is_inflated() {
    let db = fresh_database("rollup_bomb");
    let mut client = connect(&db);
    client
        .batch_execute(
            "CREATE VIEW events AS SELECT NULL::timestamptz AS at, NULL::text AS page WHERE false;
             SELECT collect.create_rollup('per_minute', 'events', 'at', '{page}', '{}', keep_raw => false);",
        )
        .unwrap();
    // 320 MB of blank lines, past the default limit of 256 MB: a megabyte or two on the wire.
    let bomb = crate::lump::gzip_bomb(b"\n", 320 << 20);
    assert!(bomb.len() < 8 << 20, "{} bytes", bomb.len());
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let err = client
        .query_one("SELECT collect.ingest('per_minute', $1::bytea)", &[&bomb])
        .unwrap_err();
    assert_eq!(crate::sqlstate(&err), "54000", "{err}");
    assert!(
        err.as_db_error().unwrap().message().contains("268435456"),
        "{err}"
    );
    let peak = crate::lump::backend_peak_bytes(pid);
    assert!(peak < 600 << 20, "refusing the batch took {peak} bytes");
    // The limit is a superuser's to raise, not a writer's.
    client
        .batch_execute("CREATE ROLE rollup_bomb_writer; SET ROLE rollup_bomb_writer")
        .unwrap();
    let err = client
        .batch_execute("SET collect.max_batch_bytes = '1GB'")
        .unwrap_err();
    assert_eq!(crate::sqlstate(&err), "42501", "{err}");
    client
        .batch_execute("RESET ROLE; DROP ROLE rollup_bomb_writer")
        .unwrap();
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

/// Two sessions adding tiers to one rollup at once: the second waits for the first and keeps
/// its tier (the definition is read again under the locks), so both tiers are registered,
/// filled and fed by the triggers.
#[test]
fn tiers_added_at_once_are_both_kept() {
    let db = fresh_database("tiers_at_once");
    let mut first = connect(&db);
    first
        .batch_execute(
            r#"CREATE TABLE events (at timestamptz NOT NULL, n int);
               SELECT collect.create_rollup('events_1m', 'events', 'at', metrics => '{"total": "sum(n)"}');
               INSERT INTO events VALUES ('2026-11-01 10:00', 1), ('2026-11-02 10:00', 2);"#,
        )
        .unwrap();
    first
        .batch_execute("BEGIN; SELECT collect.add_tier('events_1m', 'events_1h', '1 hour');")
        .unwrap();
    let db2 = db.clone();
    let second = thread::spawn(move || {
        connect(&db2)
            .query_one(
                "SELECT collect.add_tier('events_1m', 'events_1d', '1 day')::text",
                &[],
            )
            .map(|row| row.get::<_, String>(0))
    });
    // The second call waits on the first's locks until it commits.
    thread::sleep(std::time::Duration::from_millis(500));
    if second.is_finished() {
        panic!("the second add_tier did not wait: {:?}", second.join());
    }
    first.batch_execute("COMMIT").unwrap();
    assert_eq!(second.join().unwrap().unwrap(), "events_1d");
    first
        .batch_execute("INSERT INTO events VALUES ('2026-11-02 11:00', 4)")
        .unwrap();
    let tiers: Vec<String> = first
        .query(
            "SELECT t->>'name' FROM collect.rollup_defs d, jsonb_array_elements(d.tiers) WITH ORDINALITY x(t, o)
              WHERE d.name = 'events_1m' ORDER BY o",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tiers, ["events_1h", "events_1d"]);
    for tier in ["events_1h", "events_1d"] {
        let total: i64 = first
            .query_one(&format!("SELECT sum(total)::int8 FROM {tier}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(total, 7, "{tier}");
    }
}
