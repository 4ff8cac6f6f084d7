//! Multi-connection integration tests. `make test` starts a cluster and runs these with
//! PG_COLLECT_TEST_PORT, PG_COLLECT_DB_USER and PG_BIN set; without them they fail, not skip.

mod archives;
mod collections;
mod graphs;
mod latest;
mod lump;
mod maintenance;
mod owner_code;
mod rollups;
mod security;
mod sketches;
mod sweep;
// The pure cores' test generator, the same file: one generator for every fuzz case.
#[path = "../../crates/core/src/testing.rs"]
mod testing;

pub use testing::XorShift;

use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests with `make test`, which starts their cluster")
    })
}

pub fn port() -> String {
    env("PG_COLLECT_TEST_PORT")
}

pub fn db_user() -> String {
    env("PG_COLLECT_DB_USER")
}

pub fn pg_bin(tool: &str) -> String {
    format!("{}/{tool}", env("PG_BIN"))
}

pub fn connect(db: &str) -> Client {
    let dsn = format!(
        "host=127.0.0.1 port={} user={} dbname={db}",
        port(),
        db_user()
    );
    Client::connect(&dsn, NoTls).unwrap_or_else(|e| panic!("connecting to {dsn}: {e}"))
}

/// A new database with the extension, unique to the calling test.
pub fn fresh_database(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "it_{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    connect(&name)
        .batch_execute("CREATE EXTENSION pg_collect")
        .unwrap();
    name
}

/// A new database on the Citus cluster of `make test-citus` (PG_COLLECT_TEST_PORT is its
/// coordinator; PG_COLLECT_CITUS_WORKER_PORTS its workers), with Citus on every node, the
/// workers added, and pg_collect. Only the tests marked for Citus call this; `make test-citus`
/// runs them (`--ignored`), `make test` lists them as ignored.
pub fn fresh_citus_database(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "itc_{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let workers: Vec<String> = env("PG_COLLECT_CITUS_WORKER_PORTS")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for node in std::iter::once(port()).chain(workers.iter().cloned()) {
        let dsn = |db: &str| format!("host=127.0.0.1 port={node} user={} dbname={db}", db_user());
        let mut admin = Client::connect(&dsn("postgres"), NoTls)
            .unwrap_or_else(|e| panic!("connecting to {node}: {e}"));
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        Client::connect(&dsn(&name), NoTls)
            .unwrap()
            .batch_execute("CREATE EXTENSION citus")
            .unwrap();
    }
    let mut coordinator = connect(&name);
    coordinator
        .execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', $1::int)",
            &[&port().parse::<i32>().unwrap()],
        )
        .unwrap();
    for worker in &workers {
        coordinator
            .execute(
                "SELECT citus_add_node('127.0.0.1', $1::int)",
                &[&worker.parse::<i32>().unwrap()],
            )
            .unwrap();
    }
    coordinator
        .batch_execute("CREATE EXTENSION pg_collect")
        .unwrap();
    name
}

pub fn sqlstate(err: &postgres::Error) -> String {
    err.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {err}"))
}

/// `pg_dump -Fc` of `source` restored into a new database; returns its name.
pub fn dump_and_restore(source: &str) -> String {
    use std::process::Command;
    let dump = format!("{}/target/it-{source}.dump", env!("CARGO_MANIFEST_DIR"));
    let dumped = Command::new(pg_bin("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(),
            "-U",
            &db_user(),
            "-Fc",
            "-f",
            &dump,
            source,
        ])
        .status()
        .unwrap()
        .success();
    assert!(dumped, "pg_dump failed");
    let target = format!("{source}_restored");
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {target}"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {target}"))
        .unwrap();
    let restored = Command::new(pg_bin("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(),
            "-U",
            &db_user(),
            "-d",
            &target,
            "--exit-on-error",
            &dump,
        ])
        .status()
        .unwrap()
        .success();
    std::fs::remove_file(&dump).ok();
    assert!(restored, "pg_restore failed");
    target
}

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
