//! Graphs across connections: writes in any order, many writers on one node, paging while the
//! list changes.

use std::collections::HashSet;
use std::thread;

use crate::{connect, fresh_database, XorShift};

/// Runs `clients` connections at once, each handing its number, connection and generator to
/// `work`; fails if any fails (a deadlock shows here).
fn run_clients(
    db: &str,
    clients: u64,
    work: impl Fn(u64, &mut postgres::Client, &mut XorShift) + Send + Sync + 'static,
) {
    let work = std::sync::Arc::new(work);
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let (db, work) = (db.to_string(), work.clone());
            thread::spawn(move || work(client, &mut connect(&db), &mut XorShift(1 + client * 7919)))
        })
        .collect();
    for h in handles {
        h.join().expect("a client failed");
    }
}

/// Every stored fact of the graph agrees with its edges (`collect.check_graph`): the
/// backward with the forward edges, the counts, the compact lists and their blocks' bounds.
fn assert_consistent(c: &mut postgres::Client, graph: &str) {
    for row in c
        .query(
            "SELECT part, mismatches FROM collect.check_graph($1)",
            &[&graph],
        )
        .unwrap()
    {
        let (part, mismatches): (String, i64) = (row.get(0), row.get(1));
        assert_eq!(mismatches, 0, "{graph}: {part} differ from the edges");
    }
}

/// The same random writes (add, remove, negate, with positions or not, repeated), applied in
/// a different order to each of four graphs by four connections at once: every graph ends
/// with the same edges, states, positions and counts.
#[test]
fn any_order_of_arrival_ends_in_the_same_graph() {
    let db = fresh_database("graph_order");
    let mut setup = connect(&db);
    let mut rng = XorShift(0xfeed_beef_1234_5678);
    let mut writes: Vec<String> = Vec::new();
    for _ in 0..400 {
        let (s, d) = (rng.below(6), rng.below(6));
        let at = format!(
            "'2026-11-01'::timestamptz + {} * interval '1 second'",
            rng.below(50)
        );
        writes.push(match rng.below(4) {
            0 => format!("SELECT collect.edge_add(GRAPH, {s}, {d}, at => {at})"),
            1 => format!(
                "SELECT collect.edge_add(GRAPH, {s}, {d}, {}, at => {at})",
                rng.below(1000)
            ),
            2 => format!("SELECT collect.edge_remove(GRAPH, {s}, {d}, at => {at})"),
            _ => format!("SELECT collect.edge_negate(GRAPH, {s}, {d}, at => {at})"),
        });
    }
    for g in 0..4 {
        setup
            .batch_execute(&format!("SELECT collect.create_graph('g{g}')"))
            .unwrap();
    }
    let handles: Vec<_> = (0..4)
        .map(|g| {
            let mut order = writes.clone();
            let mut rng = XorShift(1000 + g as u64);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            // Repeat a tenth of the writes, as retried deliveries would.
            let again: Vec<String> = order.iter().step_by(10).cloned().collect();
            order.extend(again);
            let db = db.clone();
            thread::spawn(move || {
                let mut c = connect(&db);
                for w in order {
                    c.batch_execute(&w.replace("GRAPH", &format!("'g{g}'")))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a writer failed");
    }
    let snapshot = |g: usize, setup: &mut postgres::Client| -> (String, String, String) {
        let row = setup
            .query_one(
                &format!(
                    "SELECT (SELECT string_agg(format('%s>%s:%s@%s', source, destination, state, position), ',' ORDER BY source, destination) FROM g{g}_out),
                            (SELECT string_agg(format('%s<%s:%s@%s', destination, source, state, position), ',' ORDER BY destination, source) FROM g{g}_in),
                            (SELECT string_agg(format('%s%s%s=%s', node, direction, state, n), ',' ORDER BY node, direction, state)
                               FROM (SELECT node, direction, state, sum(n) AS n FROM g{g}_counts GROUP BY 1, 2, 3 HAVING sum(n) <> 0) c)"
                ),
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    let first = snapshot(0, &mut setup);
    for g in 1..4 {
        assert_eq!(snapshot(g, &mut setup), first, "graph g{g} differs from g0");
    }
    for g in 0..4 {
        assert_consistent(&mut setup, &format!("g{g}"));
    }
}

/// Eight clients add and remove followers of one node at once: its counts stay exact, and
/// the writers spread over several count rows instead of queuing on one.
#[test]
fn many_writers_on_one_popular_node_keep_its_count_exact() {
    let db = fresh_database("graph_hot");
    connect(&db)
        .batch_execute("SELECT collect.create_graph('follows')")
        .unwrap();
    run_clients(&db, 8, |client, c, rng| {
        for i in 0..300 {
            let follower = (client * 1000 + rng.below(200) as u64) as i64;
            let sql = if i % 3 == 2 {
                format!("SELECT collect.edge_remove('follows', {follower}, 1)")
            } else {
                format!("SELECT collect.edge_add('follows', {follower}, 1)")
            };
            c.batch_execute(&sql).unwrap();
        }
    });
    let mut c = connect(&db);
    let row = c
        .query_one(
            "SELECT collect.edge_count('follows', 1, 'in'), (SELECT count(*) FROM follows_in WHERE destination = 1 AND state = 0),
                    collect.edge_count('follows', 1, 'in', 'removed'), (SELECT count(*) FROM follows_in WHERE destination = 1 AND state = 1),
                    (SELECT count(DISTINCT slot) FROM follows_counts WHERE node = 1 AND direction = 'i')",
            &[],
        )
        .unwrap();
    let (counted, actual): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(counted, actual);
    assert!(actual > 0);
    assert_eq!(row.get::<_, i64>(2), row.get::<_, i64>(3));
    assert!(row.get::<_, i64>(4) > 1, "all writers used one count row");
    assert_consistent(&mut c, "follows");
}

/// Paging through a list while other clients add and remove edges never returns an edge
/// twice, and returns every edge that was there all along.
#[test]
fn paging_while_the_list_changes_never_repeats_an_edge() {
    let db = fresh_database("graph_paging");
    let mut c = connect(&db);
    c.batch_execute(
        "SELECT collect.create_graph('follows');
         SELECT collect.edge_add_many('follows', 1, ARRAY(SELECT g FROM generate_series(1, 5000) g),
                                      ARRAY(SELECT g FROM generate_series(1, 5000) g));",
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let (db, stop, written) = (db.clone(), stop.clone(), written.clone());
        thread::spawn(move || {
            let mut w = connect(&db);
            let mut rng = XorShift(5);
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
                // New edges (new positions, at the front), and removals and re-adds of the
                // edges numbered above 2500 only.
                let sql = match rng.below(3) {
                    0 => format!("SELECT collect.edge_add('follows', 1, {})", 100_000 + n),
                    1 => format!(
                        "SELECT collect.edge_remove('follows', 1, {})",
                        2501 + rng.below(2500)
                    ),
                    _ => format!(
                        "SELECT collect.edge_add('follows', 1, {})",
                        2501 + rng.below(2500)
                    ),
                };
                w.batch_execute(&sql).unwrap();
                n += 1;
                written.store(n, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    while written.load(std::sync::atomic::Ordering::Relaxed) < 100 {
        thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<i64> = None;
    let mut pages = 0;
    loop {
        let rows = c
            .query("SELECT node, cursor FROM collect.edges('follows', 1, page_size => 23, cursor => $1)", &[&cursor])
            .unwrap();
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let node: i64 = r.get(0);
            assert!(seen.insert(node), "edge {node} came back twice");
        }
        cursor = Some(rows.last().unwrap().get(1));
        pages += 1;
        // The list changes between every two pages, however fast this machine pages.
        let before = written.load(std::sync::atomic::Ordering::Relaxed);
        while written.load(std::sync::atomic::Ordering::Relaxed) == before && !writer.is_finished()
        {
            thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let written_while_paging = written.load(std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        pages > 200 && written_while_paging > 200,
        "{pages} pages, {written_while_paging} writes: no overlap"
    );
    for stable in 1..=2500 {
        assert!(seen.contains(&stable), "edge {stable} was never returned");
    }
}

/// Bulk writes (set-based) racing with each other and with single writes over the same edges:
/// no edge counted twice, no deadlock, forward and backward lists equal.
#[test]
fn overlapping_bulk_and_single_writes_keep_counts_exact() {
    let db = fresh_database("graph_bulk");
    connect(&db)
        .batch_execute("SELECT collect.create_graph('follows')")
        .unwrap();
    run_clients(&db, 6, |client, c, rng| {
        for round in 0..20 {
            let sql = if client % 2 == 0 {
                let start = rng.below(400);
                format!(
                    "SELECT collect.edge_add_pairs('follows', ARRAY(SELECT g % 7 FROM generate_series({start}, {start} + 299) g),
                                                    ARRAY(SELECT g FROM generate_series({start}, {start} + 299) g))"
                )
            } else if round % 3 == 0 {
                format!(
                    "SELECT collect.edge_remove_pairs('follows', ARRAY[{}], ARRAY[{}])",
                    rng.below(7),
                    rng.below(700)
                )
            } else {
                format!(
                    "SELECT collect.edge_add('follows', {}, {})",
                    rng.below(7),
                    rng.below(700)
                )
            };
            c.batch_execute(&sql).unwrap();
        }
    });
    let mut c = connect(&db);
    assert_consistent(&mut c, "follows");
    let edges: i64 = c
        .query_one("SELECT count(*) FROM follows_out", &[])
        .unwrap()
        .get(0);
    assert!(edges > 300);
}

/// Writers fill one node's list with sparse ids, in bulk and one by one, so its blocks split
/// while others add and remove; readers meanwhile intersect it with another list, each time
/// in a REPEATABLE READ transaction that also asks SQL: the two answers are always equal.
#[test]
fn blocks_split_under_concurrent_writers_and_readers() {
    let db = fresh_database("graph_split");
    let mut setup = connect(&db);
    setup
        .batch_execute(
            "SELECT collect.create_graph('follows');
             SELECT collect.edge_add_pairs('follows', ARRAY(SELECT g::bigint * 400000000000000 FROM generate_series(1, 3000) g),
                                           array_fill(2::bigint, ARRAY[3000]))",
        )
        .unwrap();
    run_clients(&db, 8, |client, c, rng| {
        for round in 0..40 {
            if client >= 6 {
                let mut t = c
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .start()
                    .unwrap();
                let row = t
                    .query_one(
                        "SELECT collect.edge_intersect_count('follows', '{1, 2}', 'in'),
                                (SELECT count(*) FROM (SELECT source FROM follows_in WHERE destination = 1 AND state = 0
                                                       INTERSECT SELECT source FROM follows_in WHERE destination = 2 AND state = 0) i)",
                        &[],
                    )
                    .unwrap();
                assert_eq!(
                    row.get::<_, i64>(0),
                    row.get::<_, i64>(1),
                    "round {round}: the lists and the edges disagree"
                );
                t.commit().unwrap();
                continue;
            }
            let sql = if round % 4 == 0 {
                format!(
                    "SELECT collect.edge_remove('follows', {}, 1)",
                    (1 + rng.below(20000)) * 400_000_000_000_000
                )
            } else if client % 2 == 0 {
                let base = rng.below(20000);
                format!(
                    "SELECT collect.edge_add_pairs('follows', ARRAY(SELECT (1 + ({base} + g * 37) % 20000)::bigint * 400000000000000
                                                                     + CASE WHEN g % 2 = 0 THEN {client} ELSE 0 END
                                                                FROM generate_series(1, 400) g),
                                                   array_fill(1::bigint, ARRAY[400]))"
                )
            } else {
                format!(
                    "SELECT collect.edge_add('follows', {}, 1)",
                    (1 + rng.below(20000)) * 400_000_000_000_000 + rng.below(5)
                )
            };
            c.batch_execute(&sql).unwrap();
        }
    });
    let mut c = connect(&db);
    assert_consistent(&mut c, "follows");
    let blocks: i64 = c
        .query_one("SELECT count(*) FROM follows_lists WHERE node = 1 AND direction = 'i' AND lo > -9223372036854775808", &[])
        .unwrap()
        .get(0);
    assert!(blocks > 0, "no block was split");
}
