//! Scheduled maintenance across sessions: a job never runs twice at once; jobs run as their
//! owner and only for callers who may; pg_cron and the background worker run the same
//! maintenance (the test cluster preloads pg_cron and pg_collect).

use std::thread;
use std::time::{Duration, Instant};

use crate::{connect, fresh_database, sqlstate};
use crate::{connect_as, drop_roles, two_roles};

/// An archive job over `schema.readings` that is due now: 300 rows older than a day.
fn due_archive_job(schema: &str) -> String {
    format!(
        "CREATE TABLE {schema}.readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, value numeric);
         INSERT INTO {schema}.readings SELECT g, now() - interval '2 days', g FROM generate_series(1, 300) g;
         SELECT collect.create_archive('{schema}.readings_archive', '{schema}.readings', 'id', 'at', lump_rows => 100,
                                       archive_after => '1 day');
         SELECT collect.schedule('{schema}.readings_archive', 'archive', '1 hour');"
    )
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_job_never_runs_twice_at_once() {
    let db = fresh_database("maint_once");
    let mut setup = connect(&db);
    setup.batch_execute(&due_archive_job("public")).unwrap();
    // Each batch takes a second: the first caller is still on it when the second arrives.
    setup
        .batch_execute(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$;
             CREATE TRIGGER slow AFTER DELETE ON readings FOR EACH STATEMENT EXECUTE FUNCTION slow();",
        )
        .unwrap();
    let first = {
        let db = db.clone();
        thread::spawn(move || {
            connect(&db)
                .batch_execute("CALL collect.maintain()")
                .unwrap()
        })
    };
    let mut second = connect(&db);
    wait_for(
        "the first caller to hold the job",
        Duration::from_secs(10),
        || {
            second
                .query_one("SELECT running FROM collect.jobs WHERE scheduled", &[])
                .unwrap()
                .get::<_, bool>(0)
        },
    );
    let started = Instant::now();
    second.batch_execute("CALL collect.maintain()").unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the second caller waited for the job"
    );
    first.join().unwrap();
    let (runs, batches, rows_left): (i64, i32, i64) = {
        let row = second
            .query_one("SELECT (SELECT count(*) FROM collect.job_runs), (SELECT batches FROM collect.job_runs), (SELECT count(*) FROM readings)", &[])
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        (runs, batches, rows_left),
        (1, 4, 0),
        "one run: three full lumps, then an empty batch"
    );
    assert!(!second
        .query_one("SELECT running FROM collect.jobs WHERE scheduled", &[])
        .unwrap()
        .get::<_, bool>(0));
}

#[test]
fn jobs_run_as_their_owner_and_only_for_callers_who_may() {
    let (db, alice, mallory) = two_roles("maint_roles");
    let mut a = connect_as(&db, &alice);
    a.batch_execute(&due_archive_job("alice")).unwrap();
    a.batch_execute(
        "CREATE TABLE alice.audit (who name);
         CREATE FUNCTION alice.audit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO alice.audit VALUES (current_user); RETURN NULL; END $$;
         CREATE TRIGGER audit AFTER DELETE ON alice.readings FOR EACH STATEMENT EXECUTE FUNCTION alice.audit();",
    )
    .unwrap();
    let mut m = connect_as(&db, &mallory);
    // Mallory can neither reschedule nor unschedule alice's job, nor run it.
    let err = m
        .query_one(
            "SELECT collect.schedule('alice.readings_archive', 'archive', '1 second')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let err = m
        .query_one(
            "SELECT collect.unschedule('alice.readings_archive', 'archive')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let err = m
        .execute("INSERT INTO collect.job_schedules (object, job, every, owner, next_run) VALUES ('alice.readings_archive', 'archive', '1 second', $1, now())", &[&alice])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    m.batch_execute("CALL collect.maintain()").unwrap();
    let last_started: Option<std::time::SystemTime> = a
        .query_one("SELECT last_started FROM collect.jobs WHERE scheduled", &[])
        .unwrap()
        .get(0);
    assert_eq!(last_started, None, "mallory's maintain() ran alice's job");
    // A superuser's maintain() (pg_cron's, say) runs it, as alice.
    connect(&db)
        .batch_execute("CALL collect.maintain()")
        .unwrap();
    let who: Vec<String> = a
        .query("SELECT DISTINCT who::text FROM alice.audit", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(who, vec![alice.clone()]);
    let left: i64 = a
        .query_one("SELECT count(*) FROM alice.readings", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // Nor does mallory run a step as alice directly.
    let err = m
        .query_one("SELECT collect._as_owner($1, 'SELECT true')", &[&alice])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    // Alice's code, run by a superuser's maintain(), cannot switch back to the superuser: the
    // job fails and alice stays what she was.
    a.batch_execute(&format!(
        "CREATE FUNCTION alice.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RESET ROLE; ALTER ROLE {alice} SUPERUSER; RETURN NULL; END $$;
         CREATE TRIGGER escalate AFTER DELETE ON alice.readings FOR EACH STATEMENT EXECUTE FUNCTION alice.escalate();
         INSERT INTO alice.readings SELECT g, now() - interval '2 days', g FROM generate_series(1, 10) g;
         UPDATE collect.job_schedules SET next_run = now() - interval '1 second';"
    ))
    .unwrap();
    connect(&db)
        .batch_execute("CALL collect.maintain()")
        .unwrap();
    let (result, superuser): (String, bool) = {
        let row = a.query_one("SELECT last_result, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) FROM collect.jobs WHERE scheduled", &[]).unwrap();
        (row.get(0), row.get(1))
    };
    assert!(!superuser, "alice's trigger made her a superuser");
    assert!(
        result.starts_with("failed:") && result.contains("role"),
        "{result}"
    );
    drop((a, m));
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn pg_cron_runs_maintain() {
    // pg_cron runs in the database named by cron.database_name: postgres, on the test cluster.
    let mut admin = connect("postgres");
    admin
        .batch_execute(
            "DROP EXTENSION IF EXISTS pg_collect CASCADE; DROP TABLE IF EXISTS public.readings, public.readings_archive_lumps;
             CREATE EXTENSION IF NOT EXISTS pg_cron; CREATE EXTENSION pg_collect;",
        )
        .unwrap();
    admin.batch_execute(&due_archive_job("public")).unwrap();
    admin
        .batch_execute("SELECT cron.schedule('pg_collect', '* * * * *', 'CALL collect.maintain()')")
        .unwrap();
    // Minute granularity: the first run is at the next whole minute.
    wait_for(
        "pg_cron to run collect.maintain()",
        Duration::from_secs(130),
        || {
            admin
                .query_one(
                    "SELECT last_result IS NOT NULL FROM collect.jobs WHERE scheduled",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0)
        },
    );
    let (result, left): (String, i64) = {
        let row = admin
            .query_one(
                "SELECT last_result, (SELECT count(*) FROM public.readings) FROM collect.jobs WHERE scheduled",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(result.starts_with("ok"), "{result}");
    assert_eq!(left, 0);
    wait_for("pg_cron to record the run", Duration::from_secs(10), || {
        admin
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'succeeded') > 0 FROM cron.job_run_details",
                &[],
            )
            .unwrap()
            .get::<_, bool>(0)
    });
    admin
        .batch_execute(
            "SELECT cron.unschedule('pg_collect'); DROP EXTENSION pg_cron;
             DROP EXTENSION pg_collect CASCADE; DROP TABLE public.readings;",
        )
        .unwrap();
}

#[test]
fn the_background_worker_runs_due_jobs_survives_failures_and_stops_cleanly() {
    let db = fresh_database("maint_worker");
    let mut setup = connect(&db);
    setup.batch_execute(&due_archive_job("public")).unwrap();
    // A second job that fails: its source refuses deletes.
    setup
        .batch_execute(
            "CREATE SCHEMA broken;
             CREATE TABLE broken.readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, value numeric);
             INSERT INTO broken.readings SELECT g, now() - interval '2 days', g FROM generate_series(1, 10) g;
             CREATE FUNCTION broken.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse BEFORE DELETE ON broken.readings FOR EACH ROW EXECUTE FUNCTION broken.refuse();
             SELECT collect.create_archive('broken.readings_archive', 'broken.readings', 'id', 'at', archive_after => '1 day');
             SELECT collect.schedule('broken.readings_archive', 'archive', '1 hour');",
        )
        .unwrap();
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM SET collect.maintenance_databases = '{db}'"
        ))
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for(
        "the worker to run both jobs",
        Duration::from_secs(30),
        || {
            setup
                .query_one(
                    "SELECT count(*) = 2 FROM collect.jobs WHERE scheduled AND last_result IS NOT NULL",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0)
        },
    );
    let results: Vec<(String, String, i32)> = setup
        .query(
            "SELECT object, last_result, failures FROM collect.jobs WHERE scheduled ORDER BY object",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(results[0].0, "broken.readings_archive");
    assert!(
        results[0].1.starts_with("failed: P0001 refused") && results[0].2 == 1,
        "{results:?}"
    );
    assert!(results[1].1.starts_with("ok"), "{results:?}");
    let left: i64 = setup
        .query_one("SELECT count(*) FROM public.readings", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // pg_terminate_backend stops the launcher, which does not come back.
    let launcher: i32 = admin
        .query_one("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_collect maintenance' AND datname IS NULL", &[])
        .unwrap()
        .get(0);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&launcher])
        .unwrap();
    wait_for("the launcher to stop", Duration::from_secs(10), || {
        admin
            .query_one("SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'pg_collect maintenance'", &[])
            .unwrap()
            .get::<_, bool>(0)
    });
    // scripts/cluster.sh logs to server.log in the data directory.
    let data_directory: String = admin
        .query_one("SELECT current_setting('data_directory')", &[])
        .unwrap()
        .get(0);
    let log = std::fs::read_to_string(format!("{data_directory}/server.log")).unwrap_or_default();
    assert!(
        log.contains("pg_collect maintenance launcher stopped"),
        "the launcher did not log its stop"
    );
    assert!(
        log.contains(&format!(
            "database {db}: archive of public.readings_archive: done"
        )),
        "the worker did not log its run"
    );
    admin
        .batch_execute("ALTER SYSTEM RESET collect.maintenance_databases")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
}

/// Issue #26: one role's jobs cannot stop, delay or fail another role's.
#[test]
fn one_roles_jobs_cannot_hold_back_another_roles() {
    let (db, alice, mallory) = two_roles("jobfair");
    let mut m = connect_as(&db, &mallory);
    // Three due jobs of mallory's, each of whose batches sleeps well past the job timeout.
    for i in 1..=3 {
        m.batch_execute(&format!(
            "CREATE TABLE mallory.t{i} (id bigint PRIMARY KEY, at timestamptz NOT NULL);
             INSERT INTO mallory.t{i} VALUES (1, now() - interval '2 days');
             CREATE FUNCTION mallory.slow{i}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $f$;
             CREATE TRIGGER slow AFTER DELETE ON mallory.t{i} FOR EACH STATEMENT EXECUTE FUNCTION mallory.slow{i}();
             SELECT collect.create_archive('mallory.t{i}_archive', 'mallory.t{i}', 'id', 'at', archive_after => '1 day');
             SELECT collect.schedule('mallory.t{i}_archive', 'archive', '1 hour', start_at => now() - interval '{i} hours');"
        ))
        .unwrap();
    }
    let mut a = connect_as(&db, &alice);
    a.batch_execute(&format!(
        "{}\nUPDATE collect.job_schedules SET next_run = now();",
        due_archive_job("alice")
    ))
    .unwrap();
    // Mallory takes the advisory lock alice's job had under the old hashed keys, and tries to
    // read the key it has now.
    m.batch_execute("SELECT pg_advisory_lock(hashtext('pg_collect maintenance'), hashtext('alice.readings_archive archive'))").unwrap();
    let keys_seen: i64 = m
        .query_one(
            "SELECT count(lock_key) FROM collect.job_schedules WHERE object LIKE 'alice.%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(keys_seen, 0, "mallory can read alice's job lock key");
    let mut admin = connect(&db);
    admin
        .batch_execute("SET collect.job_timeout = '300ms'")
        .unwrap();
    let started = Instant::now();
    admin.batch_execute("CALL collect.maintain()").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the job timeout did not bound mallory's batches: {:?}",
        started.elapsed()
    );
    // Alice's job ran, second: after mallory's oldest job, before her others (owners take turns).
    let left: i64 = a
        .query_one("SELECT count(*) FROM alice.readings", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "alice's job did not run");
    let order: Vec<String> = admin
        .query(
            "SELECT object FROM collect.jobs WHERE scheduled ORDER BY last_started",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        order[..2],
        [
            "mallory.t3_archive".to_string(),
            "alice.readings_archive".to_string()
        ],
        "{order:?}"
    );
    let failed: Vec<String> = admin
        .query(
            "SELECT last_result FROM collect.jobs WHERE scheduled AND owner = $1",
            &[&mallory],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        failed.iter().all(|r| r.starts_with("failed: 57014")),
        "{failed:?}"
    );
    // The session's own statement_timeout (none here) is back after the jobs.
    let timeout: String = admin
        .query_one("SHOW statement_timeout", &[])
        .unwrap()
        .get(0);
    assert_eq!(timeout, "0");
    admin.batch_execute("SELECT pg_sleep(0.5)").unwrap();
    drop((m, a, admin));
    drop_roles(&db, &[&alice, &mallory]);
}

/// Issue #26, through the background worker: a job of mallory's that sets settings and tries
/// to escalate runs as mallory, sandboxed, and the worker's next job (alice's) archives her
/// values exactly. (Named to run before the test that stops the launcher.)
#[test]
fn a_job_run_by_the_background_worker_leaves_nothing_for_the_next_job() {
    use crate::owner_code::{assert_jobs_sandboxed, jobs_of_mallory_then_alice};
    let (db, alice, mallory) = two_roles("workerjobs");
    let (mut m, mut a) = jobs_of_mallory_then_alice(&db, &alice, &mallory);
    let mut admin = connect("postgres");
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM SET collect.maintenance_databases = '{db}'"
        ))
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for(
        "the worker to run both jobs",
        Duration::from_secs(30),
        || {
            connect(&db)
                .query_one(
                    "SELECT count(*) = 2 FROM collect.jobs WHERE scheduled AND last_result IS NOT NULL",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0)
        },
    );
    admin
        .batch_execute("ALTER SYSTEM RESET collect.maintenance_databases")
        .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").unwrap();
    assert_jobs_sandboxed(&mut m, &mut a, &mallory);
    drop((m, a));
    drop_roles(&db, &[&alice, &mallory]);
}
