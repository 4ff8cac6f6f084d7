//! Another role's code runs as that role, in a security-restricted operation with its settings
//! unwound, whoever sets it off: a superuser normalizing, running maintenance (CALL and the
//! background worker) or reading a collection. The cases are the ones issue #26 found.

use crate::{connect, sqlstate};
use crate::{connect_as, drop_roles, two_roles};

/// A trigger function of mallory's that tries what a role would try with a superuser's
/// session: become superuser, plant a temporary view over a catalog view, leave settings and
/// a session lock.
pub(crate) fn plant_grab(mallory: &str) -> String {
    format!(
        "CREATE TABLE mallory.seen (what text);
         CREATE FUNCTION mallory.grab() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN
             INSERT INTO mallory.seen VALUES ('ran as ' || current_user);
             BEGIN EXECUTE 'ALTER ROLE {mallory} SUPERUSER';
             EXCEPTION WHEN OTHERS THEN INSERT INTO mallory.seen VALUES ('alter role: ' || SQLSTATE); END;
             BEGIN EXECUTE 'CREATE TEMP VIEW pg_stat_activity AS SELECT 1 AS pid';
             EXCEPTION WHEN OTHERS THEN INSERT INTO mallory.seen VALUES ('temp view: ' || SQLSTATE); END;
             PERFORM set_config('extra_float_digits', '-15', false);
             PERFORM set_config('TimeZone', 'Pacific/Kiritimati', false);
             PERFORM pg_advisory_lock(4242);
             RETURN NULL;
         END $f$;"
    )
}

pub(crate) fn seen(client: &mut postgres::Client) -> Vec<String> {
    client
        .query("SELECT DISTINCT what FROM mallory.seen ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// What a session shows after others' code ran in it: its own settings, no temporary view, no
/// advisory lock.
fn session_untouched(admin: &mut postgres::Client) {
    let (digits, zone, temp_views): (String, String, i64) = {
        let row = admin
            .query_one(
                "SELECT current_setting('extra_float_digits'), current_setting('TimeZone'),
                        (SELECT count(*) FROM pg_class WHERE relname = 'pg_stat_activity' AND relpersistence = 't')",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        digits, "1",
        "a setting made by another role's code outlived it"
    );
    assert_ne!(
        zone, "Pacific/Kiritimati",
        "a setting made by another role's code outlived it"
    );
    assert_eq!(
        temp_views, 0,
        "another role's code left a temporary object in the session"
    );
    assert_eq!(
        advisory_locks_held(admin),
        Vec::<String>::new(),
        "another role's code left a lock in the session"
    );
}

#[test]
fn a_superuser_normalizing_a_roles_collection_runs_its_triggers_as_that_role() {
    let (db, alice, mallory) = two_roles("ownernorm");
    let mut m = connect_as(&db, &mallory);
    m.batch_execute(&plant_grab(&mallory)).unwrap();
    m.batch_execute(
        "SELECT collect.create_collection('mallory.inbox', 'text', '[]', '{\"daily\": []}');
         CREATE TRIGGER grab AFTER INSERT OR UPDATE OR DELETE ON mallory.inbox_base FOR EACH STATEMENT EXECUTE FUNCTION mallory.grab();
         SELECT collect.append('mallory.inbox', 'k', '{\"n\": 1}');",
    )
    .unwrap();
    let mut admin = connect(&db);
    admin
        .batch_execute("SELECT collect.normalize('mallory.inbox', 'daily', true)")
        .unwrap();
    assert_eq!(
        seen(&mut m),
        vec![
            "alter role: 42501".to_string(),
            format!("ran as {mallory}"),
            "temp view: 42501".into()
        ]
    );
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = $1",
            &[&mallory],
        )
        .unwrap()
        .get(0);
    assert!(
        !superuser,
        "mallory's trigger made her superuser through the DBA's normalize"
    );
    session_untouched(&mut admin);
    // A role that is not the owner does not normalize (nor run the owner's code) at all.
    let err = connect_as(&db, &alice)
        .batch_execute("SELECT collect.normalize('mallory.inbox', 'daily', true)")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    drop((m, admin));
    drop_roles(&db, &[&alice, &mallory]);
}

/// Two due jobs, mallory's first (an archive whose source has her `grab` trigger), then
/// alice's (an archive of a float whose exact value shows the settings it was stored under).
/// Returns their sessions.
pub(crate) fn jobs_of_mallory_then_alice(
    db: &str,
    alice: &str,
    mallory: &str,
) -> (postgres::Client, postgres::Client) {
    let mut m = connect_as(db, mallory);
    m.batch_execute(&plant_grab(mallory)).unwrap();
    m.batch_execute(
        "CREATE TABLE mallory.junk (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO mallory.junk VALUES (1, now() - interval '2 days');
         CREATE TRIGGER grab AFTER DELETE ON mallory.junk FOR EACH STATEMENT EXECUTE FUNCTION mallory.grab();
         SELECT collect.create_archive('mallory.junk_archive', 'mallory.junk', 'id', 'at', archive_after => '1 day');
         SELECT collect.schedule('mallory.junk_archive', 'archive', '1 hour', start_at => now() - interval '1 hour');",
    )
    .unwrap();
    let mut a = connect_as(db, alice);
    a.batch_execute(
        "CREATE TABLE alice.readings (id bigint PRIMARY KEY, at timestamptz NOT NULL, value double precision);
         INSERT INTO alice.readings VALUES (1, now() - interval '2 days', 3.141592653589793);
         SELECT collect.create_archive('alice.readings_archive', 'alice.readings', 'id', 'at', archive_after => '1 day');
         SELECT collect.schedule('alice.readings_archive', 'archive', '1 hour');",
    )
    .unwrap();
    (m, a)
}

/// After `jobs_of_mallory_then_alice` ran: mallory's code ran as mallory and could neither
/// escalate nor plant a temporary view, the session that ran it (a CALL's or the worker's) holds
/// no lock of hers, and alice's value was archived exactly.
pub(crate) fn assert_jobs_sandboxed(
    m: &mut postgres::Client,
    a: &mut postgres::Client,
    mallory: &str,
) {
    assert_eq!(
        seen(m),
        vec![
            "alter role: 42501".to_string(),
            format!("ran as {mallory}"),
            "temp view: 42501".into()
        ]
    );
    let kept: i64 = a
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        kept, 0,
        "mallory's job left a session lock in the session that ran it"
    );
    let value: String = a
        .query_one(
            "SELECT collect.archived('alice.readings_archive', 1::bigint)->>'value'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        value, "3.141592653589793",
        "mallory's job changed how the next job stored alice's value"
    );
}

#[test]
fn a_job_leaves_nothing_behind_for_the_next_job_or_the_session_that_ran_it() {
    let (db, alice, mallory) = two_roles("ownerjobs");
    let (mut m, mut a) = jobs_of_mallory_then_alice(&db, &alice, &mallory);
    let mut admin = connect(&db);
    admin.batch_execute("CALL collect.maintain()").unwrap();
    assert_jobs_sandboxed(&mut m, &mut a, &mallory);
    session_untouched(&mut admin);
    drop((m, a, admin));
    drop_roles(&db, &[&alice, &mallory]);
}

fn advisory_locks_held(session: &mut impl postgres::GenericClient) -> Vec<String> {
    session
        .query(
            "SELECT objid::text || ' ' || mode FROM pg_locks
              WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn a_read_step_leaves_no_setting_or_lock_in_the_readers_session() {
    let (db, alice, mallory) = two_roles("ownerread");
    let mut a = connect_as(&db, &alice);
    a.batch_execute(&format!(
        "CREATE FUNCTION alice.leaky(entries jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$
         BEGIN
             PERFORM set_config('default_transaction_read_only', 'on', false);
             PERFORM set_config('TimeZone', 'Pacific/Kiritimati', false);
             PERFORM set_config('extra_float_digits', '-15', false);
             PERFORM pg_advisory_lock(42), pg_advisory_lock_shared(42), pg_advisory_xact_lock(43), pg_advisory_lock(7);
             RETURN entries;
         END $f$;
         CREATE FUNCTION alice.locks_then_fails(entries jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$
         BEGIN
             PERFORM pg_advisory_lock(44);
             RAISE EXCEPTION 'step failed';
         END $f$;
         SELECT collect.create_collection('alice.feed', 'text', '[{{\"sql\": \"alice.leaky\"}}]');
         SELECT collect.append('alice.feed', 'k', '{{\"n\": 1}}');
         SELECT collect.create_collection('alice.failing', 'text', '[{{\"sql\": \"alice.locks_then_fails\"}}]');
         SELECT collect.append('alice.failing', 'k', '{{\"n\": 1}}');
         GRANT USAGE ON SCHEMA alice TO {mallory};
         GRANT SELECT ON alice.feed_pending, alice.feed_base, alice.failing_pending, alice.failing_base TO {mallory};"
    ))
    .unwrap();
    for reader in [&mallory, &alice] {
        let mut r = connect_as(&db, reader);
        // The reader's own session lock, which the step takes again: it stays the reader's.
        r.batch_execute("SELECT pg_advisory_lock(7)").unwrap();
        let read: String = r
            .query_one("SELECT collect.read('alice.feed', 'k')::text", &[])
            .unwrap()
            .get(0);
        let failed = r
            .query_one("SELECT collect.read('alice.failing', 'k')::text", &[])
            .unwrap_err();
        let message = failed
            .as_db_error()
            .map(|e| e.message().to_string())
            .unwrap_or_default();
        assert!(message.contains("step failed"), "{failed:?}");
        assert_eq!(
            advisory_locks_held(&mut r),
            vec!["7 ExclusiveLock"],
            "{reader}'s session kept a read step's locks"
        );
        let mut in_transaction = r.transaction().unwrap();
        in_transaction
            .query_one("SELECT collect.read('alice.feed', 'k')", &[])
            .unwrap();
        let held = advisory_locks_held(&mut in_transaction);
        assert_eq!(
            held,
            vec!["43 ExclusiveLock", "7 ExclusiveLock"],
            "a step's transaction lock lasts the transaction"
        );
        in_transaction.commit().unwrap();
        assert_eq!(read, "[{\"n\": 1}]");
        let (read_only, digits): (String, String) = {
            let row = r.query_one("SELECT current_setting('default_transaction_read_only'), current_setting('extra_float_digits')", &[]).unwrap();
            (row.get(0), row.get(1))
        };
        assert_eq!(
            (read_only.as_str(), digits.as_str()),
            ("off", "1"),
            "{reader}'s session kept a read step's settings"
        );
        r.batch_execute("CREATE TABLE IF NOT EXISTS public.still_writable (x int)")
            .unwrap();
    }
    drop(a);
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn a_failed_jobs_message_is_its_owners_to_read() {
    let (db, alice, mallory) = two_roles("ownerresult");
    let mut a = connect_as(&db, &alice);
    a.batch_execute(
        "CREATE TABLE alice.readings (id bigint PRIMARY KEY, at timestamptz NOT NULL);
         INSERT INTO alice.readings VALUES (1, now() - interval '2 days');
         CREATE TABLE alice.secrets (secret text);
         INSERT INTO alice.secrets VALUES ('the launch code is 0000');
         CREATE FUNCTION alice.refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
         BEGIN RAISE EXCEPTION 'cannot archive: %', (SELECT secret FROM alice.secrets); END $f$;
         CREATE TRIGGER refuse AFTER DELETE ON alice.readings FOR EACH STATEMENT EXECUTE FUNCTION alice.refuse();
         SELECT collect.create_archive('alice.readings_archive', 'alice.readings', 'id', 'at', archive_after => '1 day');
         SELECT collect.schedule('alice.readings_archive', 'archive', '1 hour');",
    )
    .unwrap();
    connect(&db)
        .batch_execute("CALL collect.maintain()")
        .unwrap();
    let owner_sees: String = a
        .query_one("SELECT last_result FROM collect.jobs WHERE scheduled", &[])
        .unwrap()
        .get(0);
    assert!(
        owner_sees.contains("the launch code is 0000"),
        "{owner_sees}"
    );
    let mut m = connect_as(&db, &mallory);
    let (result, run): (String, String) = {
        let row = m
            .query_one("SELECT j.last_result, r.result FROM collect.jobs j JOIN collect.job_runs r USING (object, job)", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(result, "failed: P0001 (the message is for the job's owner)");
    assert_eq!(run, result);
    let rows: i64 = m
        .query_one("SELECT count(*) FROM collect.job_schedules", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 0,
        "another role's schedule rows (with their messages) are not mallory's to read"
    );
    drop((a, m));
    drop_roles(&db, &[&alice, &mallory]);
}

#[test]
fn listing_definitions_runs_no_roles_code_as_the_reader() {
    let (db, alice, mallory) = two_roles("ownerviews");
    let mut m = connect_as(&db, &mallory);
    // Mallory swaps her collection's base table for a view over a function of hers, and lets
    // everybody read it: the figures of collect.collections would run her function.
    m.batch_execute(
        "CREATE TABLE mallory.seen (who text);
         GRANT INSERT ON mallory.seen TO PUBLIC;
         GRANT USAGE ON SCHEMA mallory TO PUBLIC;
         SELECT collect.create_collection('mallory.feed');
         CREATE FUNCTION mallory.spy() RETURNS bigint LANGUAGE plpgsql AS $f$
         BEGIN INSERT INTO mallory.seen VALUES (current_user); RETURN 1; END $f$;
         GRANT EXECUTE ON FUNCTION mallory.spy() TO PUBLIC;
         DROP TABLE mallory.feed_base;
         CREATE VIEW mallory.feed_base AS SELECT 'k'::text AS key, NULL::collect.lump AS entries WHERE mallory.spy() = 1;
         GRANT SELECT ON mallory.feed_base, mallory.feed_pending TO PUBLIC;",
    )
    .unwrap();
    for reader in [alice.clone(), crate::db_user()] {
        let mut r = if reader == alice {
            connect_as(&db, &alice)
        } else {
            connect(&db)
        };
        r.query("SELECT * FROM collect.collections", &[]).unwrap();
    }
    let who: Vec<String> = m
        .query("SELECT DISTINCT who FROM mallory.seen ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        who.iter().all(|w| w == &mallory),
        "mallory's function ran as {who:?} while they listed collections"
    );
    drop(m);
    drop_roles(&db, &[&alice, &mallory]);
}
