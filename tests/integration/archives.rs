//! Archives under concurrency and crashes: writers inserting while rows are archived lose
//! nothing, and a backend killed with SIGKILL mid-archive (the whole cluster restarts) loses
//! and duplicates nothing; the next call carries on.

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{connect, fresh_database};

const SETUP: &str =
    "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL, body jsonb NOT NULL);
     CREATE INDEX ON events (at);
     SELECT collect.create_archive('events_archive', 'events', 'id', 'at', lump_rows => 200);";

/// Inserts rows with increasing ids, stamped now, until told to stop; returns
/// the ids whose INSERT committed.
/// What a writer wrote: ids whose INSERT returned, and ids whose INSERT failed while the
/// cluster restarted after a kill. The latter may have committed all the same (a commit whose
/// answer was lost), so they may or may not be found afterwards, never twice.
struct Writes {
    committed: Vec<i64>,
    uncertain: Vec<i64>,
}

fn writer(db: String, first: i64, stop: Arc<AtomicBool>) -> thread::JoinHandle<Writes> {
    thread::spawn(move || {
        let mut writes = Writes {
            committed: Vec::new(),
            uncertain: Vec::new(),
        };
        let mut client = connect(&db);
        let mut id = first;
        while !stop.load(Ordering::SeqCst) {
            let ok = client.execute(
                "INSERT INTO events SELECT g, now(), jsonb_build_object('n', g, 'exact', 1e400::text::numeric)
                   FROM generate_series($1::bigint, $1 + 9) g",
                &[&id],
            );
            match ok {
                Ok(_) => writes.committed.extend(id..id + 10),
                // The cluster restarting after a kill: reconnect and go on.
                Err(_) => {
                    writes.uncertain.extend(id..id + 10);
                    loop {
                        thread::sleep(Duration::from_millis(200));
                        if let Ok(c) = std::panic::catch_unwind(|| connect(&db)) {
                            client = c;
                            break;
                        }
                    }
                }
            }
            id += 10;
        }
        writes
    })
}

/// Every id in the source and the archive, each counted once; panics on a duplicate.
fn ids_everywhere(client: &mut postgres::Client) -> HashSet<i64> {
    let rows = client
        .query(
            "SELECT id FROM events UNION ALL
             SELECT (r ->> 'id')::bigint FROM events_archive_lumps l, collect.entries(l.lump) r",
            &[],
        )
        .unwrap();
    let mut seen = HashSet::new();
    for row in rows {
        let id: i64 = row.get(0);
        assert!(
            seen.insert(id),
            "id {id} is both archived and in the source, or archived twice"
        );
    }
    seen
}

fn consistent_lumps(client: &mut postgres::Client) {
    let bad: i64 = client
        .query_one(
            "SELECT count(*) FROM events_archive_lumps
              WHERE records <> collect.entry_count(lump) OR cardinality(keys) <> records
                 OR keys <> ARRAY(SELECT (r ->> 'id')::bigint FROM collect.entries(lump) r)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(bad, 0, "a lump's keys or counts disagree with its records");
}

#[test]
fn writers_inserting_while_rows_are_archived_lose_nothing() {
    let db = fresh_database("arch_writers");
    connect(&db).batch_execute(SETUP).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| writer(db.clone(), 1 + w * 1_000_000_000, stop.clone()))
        .collect();
    let mut archiver = connect(&db);
    let mut archived = 0i64;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        archived += archiver
            .query_one("SELECT collect.archive('events_archive', '0')", &[])
            .unwrap()
            .get::<_, i64>(0);
        // Archive readers see whole lumps.
        archiver.query_one("SELECT count(*) FROM collect.archived_range('events_archive', now() - interval '1 hour', now())", &[]).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let writes: Vec<Writes> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        writes.iter().all(|w| w.uncertain.is_empty()),
        "no insert fails without a kill"
    );
    let committed: HashSet<i64> = writes.into_iter().flat_map(|w| w.committed).collect();
    assert!(archived > 1000, "only {archived} rows archived");
    let mut check = connect(&db);
    assert_eq!(ids_everywhere(&mut check), committed);
    consistent_lumps(&mut check);
}

#[test]
fn a_backend_killed_mid_archive_loses_and_duplicates_nothing() {
    let db = fresh_database("arch_kill");
    connect(&db).batch_execute(SETUP).unwrap();
    connect(&db)
        .batch_execute(
            "INSERT INTO events SELECT g, now() - interval '1 day', jsonb_build_object('n', g, 'pad', repeat('x', 200))
               FROM generate_series(1, 60000) g",
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let inserts = writer(db.clone(), 1_000_000, stop.clone());
    let mut archiver = connect(&db);
    let pid: i32 = archiver
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let outcome = Arc::new(Mutex::new(None));
    let call = {
        let outcome = outcome.clone();
        thread::spawn(move || {
            let r =
                archiver.batch_execute("CALL collect.archive_in_batches('events_archive', '0')");
            *outcome.lock().unwrap() = Some(r.is_ok());
        })
    };
    // Kill once some lumps have committed and before all have.
    let mut watcher = connect(&db);
    let mut killed = false;
    for _ in 0..4000 {
        let lumps: i64 = watcher
            .query_one("SELECT count(*) FROM events_archive_lumps", &[])
            .unwrap()
            .get(0);
        if lumps >= 5 {
            let status = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -9 {pid}");
            killed = true;
            break;
        }
        thread::sleep(Duration::from_millis(2));
    }
    call.join().unwrap();
    assert!(killed, "archiving finished before it could be killed");
    assert_eq!(
        *outcome.lock().unwrap(),
        Some(false),
        "the killed CALL must fail"
    );
    // The postmaster restarts every backend after a SIGKILL: wait for it to take connections.
    let mut check = loop {
        thread::sleep(Duration::from_millis(300));
        if let Ok(c) = std::panic::catch_unwind(|| connect(&db)) {
            break c;
        }
    };
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let writes = inserts.join().unwrap();
    let mut committed: HashSet<i64> = writes.committed.into_iter().collect();
    committed.extend(1..=60000);
    let uncertain: HashSet<i64> = writes.uncertain.into_iter().collect();
    // Every committed row once, and nothing else but rows whose commit's answer was lost.
    let exactly_committed = |found: HashSet<i64>, when: &str| {
        assert!(
            committed.is_subset(&found),
            "{when}: committed rows missing: {:?}",
            committed.difference(&found).take(10).collect::<Vec<_>>()
        );
        let extra: Vec<_> = found
            .difference(&committed)
            .filter(|id| !uncertain.contains(id))
            .take(10)
            .collect();
        assert!(extra.is_empty(), "{when}: rows nobody wrote: {extra:?}");
    };
    let (in_source, lumps): (i64, i64) = {
        let row = check
            .query_one(
                "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events_archive_lumps)",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(
        lumps >= 5 && in_source > 0,
        "killed midway: {lumps} lumps, {in_source} rows left"
    );
    exactly_committed(ids_everywhere(&mut check), "after the kill");
    consistent_lumps(&mut check);
    // The next call carries on to the end.
    check
        .batch_execute("CALL collect.archive_in_batches('events_archive', '0')")
        .unwrap();
    assert_eq!(
        check
            .query_one("SELECT count(*) FROM events", &[])
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    exactly_committed(ids_everywhere(&mut check), "after carrying on");
    consistent_lumps(&mut check);
}
