//! Collections under concurrency: appends, reads and normalization at once; interrupted
//! batch normalization; dump and restore.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::{connect, connect_as, drop_roles, fresh_database, sqlstate, two_roles};

fn entries_of(
    client: &mut postgres::Client,
    collection: &str,
    key: &str,
) -> Vec<serde_json::Value> {
    let text: String = client
        .query_one("SELECT collect.read($1, $2)::text", &[&collection, &key])
        .unwrap()
        .get(0);
    serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap()
}

#[test]
fn appends_during_normalization_are_neither_lost_nor_folded_twice() {
    let db = fresh_database("coll_concurrent");
    connect(&db)
        .batch_execute("SELECT collect.create_collection('events')")
        .unwrap();
    const CLIENTS: i64 = 6;
    const APPENDS: i64 = 250;
    const KEYS: i64 = 4;
    let done = Arc::new(AtomicBool::new(false));

    let appenders: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let db = db.clone();
            thread::spawn(move || {
                let mut client = connect(&db);
                for n in 0..APPENDS {
                    let key = format!("k{}", n % KEYS);
                    // Some appends ride in multi-statement transactions, some alone.
                    if n % 10 == 0 {
                        let mut tx = client.transaction().unwrap();
                        tx.execute(
                            "SELECT collect.append('events', $1, jsonb_build_object('c', $2::int8, 'n', $3::int8))",
                            &[&key, &c, &n],
                        )
                        .unwrap();
                        thread::sleep(Duration::from_millis(2));
                        tx.commit().unwrap();
                    } else {
                        client
                            .execute(
                                "SELECT collect.append('events', $1, jsonb_build_object('c', $2::int8, 'n', $3::int8))",
                                &[&key, &c, &n],
                            )
                            .unwrap();
                    }
                }
            })
        })
        .collect();

    let normalizer = {
        let (db, done) = (db.clone(), done.clone());
        thread::spawn(move || {
            let mut client = connect(&db);
            let mut passes = 0;
            while !done.load(Ordering::SeqCst) {
                client
                    .execute("SELECT collect.normalize('events')", &[])
                    .unwrap();
                passes += 1;
            }
            passes
        })
    };

    let reader = {
        let (db, done) = (db.clone(), done.clone());
        thread::spawn(move || {
            let mut client = connect(&db);
            let mut last_len = vec![0usize; KEYS as usize];
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) {
                for k in 0..KEYS {
                    let entries = entries_of(&mut client, "events", &format!("k{k}"));
                    let unique: HashSet<String> = entries.iter().map(|e| e.to_string()).collect();
                    assert_eq!(unique.len(), entries.len(), "a read saw an entry twice");
                    assert!(
                        entries.len() >= last_len[k as usize],
                        "a read lost entries a previous read saw"
                    );
                    last_len[k as usize] = entries.len();
                    reads += 1;
                }
            }
            reads
        })
    };

    for a in appenders {
        a.join().expect("appender failed");
    }
    done.store(true, Ordering::SeqCst);
    let passes = normalizer.join().expect("normalizer failed");
    let reads = reader.join().expect("reader failed");
    assert!(
        passes > 1 && reads > 1,
        "normalizer ran {passes} passes, reader {reads} reads"
    );

    let mut client = connect(&db);
    client
        .execute("SELECT collect.normalize('events')", &[])
        .unwrap();
    let mut total = 0;
    for k in 0..KEYS {
        let entries = entries_of(&mut client, "events", &format!("k{k}"));
        let mut seen = HashSet::new();
        let mut last_n = vec![-1i64; CLIENTS as usize];
        for e in &entries {
            let (c, n) = (e["c"].as_i64().unwrap(), e["n"].as_i64().unwrap());
            assert!(seen.insert((c, n)), "entry {e} folded twice");
            assert!(
                n > last_n[c as usize],
                "client {c}'s entries out of order at {e}"
            );
            last_n[c as usize] = n;
            assert_eq!(n % KEYS, k, "entry {e} under the wrong key");
        }
        total += entries.len() as i64;
    }
    assert_eq!(total, CLIENTS * APPENDS, "every entry is accounted for");
    // A pass folds only entries of transactions that ended before it began (an autovacuum
    // ANALYZE running meanwhile holds that horizon back): later passes take the rest.
    let mut pending: i64 = -1;
    for _ in 0..50 {
        client
            .execute("SELECT collect.normalize('events')", &[])
            .unwrap();
        pending = client
            .query_one("SELECT count(*) FROM events_pending", &[])
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        pending, 0,
        "normalization folds everything once appends stop"
    );
}

#[test]
fn interrupted_batch_normalization_resumes_without_loss() {
    let db = fresh_database("coll_batches");
    let mut setup = connect(&db);
    setup
        .batch_execute(
            "SELECT collect.create_collection('views', 'bigint', '[{\"latest_by\": \"page\"}]');
             INSERT INTO views_pending (key, entry)
             SELECT k, jsonb_build_object('page', p) FROM generate_series(1, 3000) k, generate_series(1, 3) p;",
        )
        .unwrap();
    let expected: i64 = 3000 * 3;

    let mut worker = connect(&db);
    let pid: i32 = worker
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let call = thread::spawn(move || {
        worker.batch_execute("CALL collect.normalize_in_batches('views', 'daily', false, 10)")
    });
    // Cancel once some batches have committed and before all have.
    let mut watcher = connect(&db);
    let mut cancelled = false;
    for _ in 0..2000 {
        let left: i64 = watcher
            .query_one("SELECT count(DISTINCT key) FROM views_pending", &[])
            .unwrap()
            .get(0);
        if left < 3000 && left > 0 {
            watcher
                .execute("SELECT pg_cancel_backend($1)", &[&pid])
                .unwrap();
            cancelled = true;
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let outcome = call.join().unwrap();
    assert!(
        cancelled,
        "the pass finished before it could be interrupted"
    );
    let err = outcome.expect_err("the cancelled CALL must fail");
    assert_eq!(sqlstate(&err), "57014", "{err}");

    let count_all = |c: &mut postgres::Client| -> (i64, i64, i64) {
        let row = c
            .query_one(
                "SELECT (SELECT count(*) FROM views_pending),
                        (SELECT coalesce(sum(collect.entry_count(entries)), 0)::bigint FROM views_base),
                        (SELECT sum(jsonb_array_length(entries)) FROM collect.read_many('views', (SELECT array_agg(g) FROM generate_series(1, 3000) g)))::bigint",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    let (pending, folded, readable) = count_all(&mut watcher);
    assert!(
        pending > 0 && folded > 0,
        "interrupted midway: {pending} pending, {folded} folded"
    );
    assert_eq!(
        pending + folded,
        expected,
        "nothing lost or doubled by the interruption"
    );
    assert_eq!(readable, expected);

    watcher
        .batch_execute("CALL collect.normalize_in_batches('views', 'daily', false, 500)")
        .unwrap();
    let (pending, folded, readable) = count_all(&mut watcher);
    assert_eq!((pending, folded, readable), (0, expected, expected));
}

#[test]
fn collections_survive_pg_dump_and_pg_restore() {
    let source = fresh_database("coll_dump");
    let mut src = connect(&source);
    src.batch_execute(
        r#"SELECT collect.create_collection('segment_sets', 'bigint', '[{"latest_by": "segment"}, {"limit": 2}]');
           SELECT collect.append_many('segment_sets', 1, '[{"segment": "a"}, {"segment": "b"}, {"segment": "a", "v": 2}]');
           SELECT collect.normalize('segment_sets');
           SELECT collect.append('segment_sets', 1, '{"segment": "c"}');"#,
    )
    .unwrap();
    let before: String = src
        .query_one("SELECT collect.read('segment_sets', 1)::text", &[])
        .unwrap()
        .get(0);
    let target = crate::dump_and_restore(&source);
    let mut dst = connect(&target);
    let after: String = dst
        .query_one("SELECT collect.read('segment_sets', 1)::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    // The restored collection keeps working: appends continue the sequence.
    dst.batch_execute("SELECT collect.append('segment_sets', 1, '{\"segment\": \"d\"}'); SELECT collect.normalize('segment_sets')")
        .unwrap();
    let latest: String = dst
        .query_one("SELECT collect.read('segment_sets', 1)::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(latest, r#"[{"segment": "c"}, {"segment": "d"}]"#);
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
