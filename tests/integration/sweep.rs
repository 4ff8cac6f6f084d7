//! The NULL-and-extremes sweep: every function, aggregate and procedure of schema `collect`,
//! listed from `pg_proc` at test time (so a new one is swept without anyone remembering to),
//! called by a login role that is not a superuser with NULLs, empty values and the extremes
//! of each argument's type. Any answer is fine but three: a backend that ends (a crash ends
//! every session of the cluster), SQLSTATE XX000 (an internal error a user can reach), and a
//! call that outlives its `statement_timeout`. The sweep also holds each routine to its
//! declaration (strictness through the NULL calls; volatility and parallel safety through
//! `declaration_drift`).

use std::time::{Duration, Instant};

use postgres::Client;

use crate::{connect, fresh_database, sqlstate};
use crate::{connect_as, drop_roles};

/// One object of every capability, all named `x` in the sweeper's schema `x` (the ordinary
/// text value): calls then get past "does not exist" into the code behind it. Made again
/// before each routine, since a routine may drop them.
const OBJECTS: &str = "
    CREATE TABLE IF NOT EXISTS x.src (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), x text, n int);
    CREATE TABLE IF NOT EXISTS x.parent (id bigint PRIMARY KEY);
    CREATE TABLE IF NOT EXISTS x.child (id bigint PRIMARY KEY, parent_id bigint, at timestamptz, n int);
    INSERT INTO x.src VALUES (1, now() - interval '1 day', 'x', 1), (2, now(), 'y', 2) ON CONFLICT DO NOTHING;
    INSERT INTO x.parent VALUES (1) ON CONFLICT DO NOTHING;
    DO $$ BEGIN
        IF to_regclass('x.x_pending') IS NULL THEN PERFORM collect.create_collection('x.x', 'text', '[]', '{\"daily\": []}'); END IF;
        IF to_regclass('x.x') IS NULL THEN PERFORM collect.create_rollup('x.x', 'x.src', 'at', '{x}', '{\"n\": \"sum(n)\"}'); END IF;
        IF to_regclass('x.x_out') IS NULL THEN PERFORM collect.create_graph('x.x'); END IF;
        IF to_regclass('x.x_lumps') IS NULL THEN PERFORM collect.create_archive('x.x', 'x.src', 'id', 'at'); END IF;
        IF NOT EXISTS (SELECT FROM collect.latest_defs WHERE schema = 'x') THEN
            PERFORM collect.create_latest('x.parent', 'x.child', 'parent_id', 'at', '{n}');
        END IF;
        PERFORM collect.append('x.x', 'x', '{\"x\": 1}');
        PERFORM collect.edge_add('x.x', 1, 2);
    END $$;";

/// The timeout every swept call runs under, and how much longer a call may take to answer it.
const TIMEOUT: Duration = Duration::from_secs(3);
const GRACE: Duration = Duration::from_secs(5);

/// Values of a type, as SQL expressions: the first is an ordinary one (what the other
/// arguments take while one argument tries its extremes), the rest are extremes. NULL is
/// always tried too.
fn values(type_name: &str) -> Vec<String> {
    let v = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let deep =
        |open: &str, close: &str, n: usize| format!("'{}1{}'", open.repeat(n), close.repeat(n));
    let big_text = "repeat('x', 1000000)".to_string();
    match type_name {
        "smallint" => v(&["1", "0", "-1", "32767", "-32768"]),
        "integer" => v(&["1", "0", "-1", "2147483647", "-2147483648"]),
        "bigint" => v(&[
            "1",
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
        ]),
        "double precision" | "real" => v(&[
            "1",
            "0",
            "'-0'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "1e300",
            "-1e300",
        ]),
        "numeric" => v(&[
            "1",
            "'NaN'",
            "'1e1000'",
            "'-1e1000'",
            "0.000000000000000000001",
        ]),
        "boolean" => v(&["true", "false"]),
        "text" | "name" | "character varying" | "cstring" => {
            let mut all = v(&[
                "'x'",
                "''",
                "' '",
                "'a.b.c'",
                "'\"'",
                "'pg_catalog.pg_class'",
                "'collect.collection_defs'",
                "'{}'",
                "'[]'",
                "'1'",
            ]);
            all.push(big_text);
            all
        }
        "jsonb" | "json" => {
            let mut all = v(&[
                "'{}'",
                "'[]'",
                "'null'",
                "'1e400'",
                "'-0'",
                "'\"\"'",
                "'[{}]'",
                "'[null]'",
                "'{\"\": null}'",
                "'{\"sql\": \"pg_catalog.now\"}'",
                "'[{\"expire\": \"-178000000 years\"}]'",
                "'[{\"sum_by\": \"a\"}]'",
            ]);
            all.push(deep("[", "]", 5000));
            all.push(deep("{\"a\":", "}", 3000));
            all.push(format!("jsonb_build_array({big_text})"));
            all.push("(SELECT jsonb_agg(g) FROM generate_series(1, 100000) g)".into());
            all
        }
        "interval" => v(&[
            "'1 minute'",
            "'0'",
            "'-1 day'",
            "'178000000 years'",
            "'-178000000 years'",
            "'1 microsecond'",
        ]),
        "timestamp with time zone" | "timestamp without time zone" | "date" => v(&[
            "'2026-11-01'",
            "'infinity'",
            "'-infinity'",
            "'4713-01-01 BC'",
            "'294276-12-31'",
        ]),
        "regclass" => v(&[
            "'x.src'",
            "'x.parent'",
            "'pg_catalog.pg_class'",
            "'collect.collection_defs'",
            "'collect.job_schedules'",
            "0",
        ]),
        "regproc" | "regprocedure" => v(&["'pg_catalog.now'::regproc", "0"]),
        "oid" => v(&["1", "0", "4294967295"]),
        "bytea" => v(&[
            "''",
            "'\\x1f8b'",
            "'\\x1f8b0800000000000003'",
            "'\\xffffffffffffffff'",
            "'\\x00000000000000000000000000000000'",
        ]),
        "text[]" | "name[]" => v(&[
            "'{x}'",
            "'{}'",
            "'{NULL}'",
            "array_fill('x'::text, ARRAY[100000])",
        ]),
        "bigint[]" | "integer[]" => v(&[
            "'{1}'",
            "'{}'",
            "'{NULL}'",
            "'{-9223372036854775808}'",
            "(SELECT array_agg(g) FROM generate_series(1, 100000) g)",
        ]),
        "jsonb[]" => v(&["'{}'", "ARRAY['null'::jsonb]", "ARRAY[NULL::jsonb]"]),
        "double precision[]" => v(&["'{0.5}'", "'{}'", "'{NaN}'", "'{-1}'", "'{2}'", "'{NULL}'"]),
        "collect.lump" => v(&[
            "'[{\"a\": 1}]'",
            "'[]'",
            "collect.lump((SELECT jsonb_agg(g) FROM generate_series(1, 10000) g))",
        ]),
        "collect.hll" => v(&[
            "collect.hll_agg(1::bigint)",
            "(SELECT collect.hll_agg(g) FROM generate_series(1, 100000) g)",
        ]),
        "collect.quantiles" => v(&[
            "collect.quantiles_agg(1::float8)",
            "collect.quantiles_agg('Infinity'::float8)",
        ]),
        "collect.topk" => v(&[
            "collect.topk_agg('a'::text)",
            "(SELECT collect.topk_agg(g::text) FROM generate_series(1, 10000) g)",
        ]),
        "anyelement" => v(&["1", "'x'::text", "'{}'::jsonb"]),
        "anyarray" => v(&["'{1}'::int[]", "'{}'::int[]"]),
        _ => Vec::new(),
    }
}

struct Routine {
    signature: String,
    name: String,
    kind: String,
    arg_types: Vec<String>,
    /// `provolatile` and `proparallel`, as declared.
    volatility: String,
    parallel: String,
}

fn routines(client: &mut Client) -> Vec<Routine> {
    client
        .query(
            "SELECT p.oid::regprocedure::text, quote_ident(p.proname), p.prokind::text,
                    coalesce((SELECT array_agg(format_type(t, NULL) ORDER BY i)
                                FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i)), '{}'),
                    p.provolatile::text, p.proparallel::text
               FROM pg_proc p
              WHERE p.pronamespace = 'collect'::regnamespace
                AND has_function_privilege(p.oid, 'EXECUTE')
              ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| Routine {
            signature: r.get(0),
            name: r.get(1),
            kind: r.get(2),
            arg_types: r.get(3),
            volatility: r.get(4),
            parallel: r.get(5),
        })
        .collect()
}

/// The statement calling `routine` with `args` (SQL expressions, cast to their types).
fn call_sql(routine: &Routine, args: &[String]) -> String {
    let typed: Vec<String> = args
        .iter()
        .zip(&routine.arg_types)
        .map(|(a, t)| format!("({a})::{t}"))
        .collect();
    match routine.kind.as_str() {
        "p" => format!("CALL collect.{}({})", routine.name, typed.join(", ")),
        "a" => {
            let columns: Vec<String> = (0..typed.len()).map(|i| format!("v.c{i}")).collect();
            let select: Vec<String> = typed
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{a} AS c{i}"))
                .collect();
            format!(
                "SELECT collect.{}({}) FROM (SELECT {} FROM generate_series(1, 3)) v",
                routine.name,
                columns.join(", "),
                select.join(", ")
            )
        }
        _ => format!("SELECT collect.{}({})", routine.name, typed.join(", ")),
    }
}

fn ordinary_args(routine: &Routine) -> Vec<String> {
    routine
        .arg_types
        .iter()
        .map(|t| {
            values(t)
                .into_iter()
                .next()
                .unwrap_or_else(|| "NULL".into())
        })
        .collect()
}

/// Every call to make of `routine`: all NULLs, then each argument through its type's values
/// (NULL among them) while the others hold their ordinary value.
fn calls(routine: &Routine) -> Vec<String> {
    let n = routine.arg_types.len();
    let mut out = vec![call_sql(routine, &vec!["NULL".to_string(); n])];
    let ordinary = ordinary_args(routine);
    if n > 0 {
        out.push(call_sql(routine, &ordinary));
    }
    for (i, t) in routine.arg_types.iter().enumerate() {
        for value in values(t)
            .into_iter()
            .skip(1)
            .chain(std::iter::once("NULL".to_string()))
        {
            let mut args = ordinary.clone();
            args[i] = value;
            out.push(call_sql(routine, &args));
        }
    }
    out
}

/// What a routine's declaration promises, checked by running its ordinary call where the
/// promise is enforced: an IMMUTABLE or STABLE one in a read-only transaction (a write is
/// 25006, or 0A000 from a SQL function), a PARALLEL SAFE one in a parallel worker (what a worker may not do is 25000). The
/// declarations are written by hand in sql/ beside the Rust: this is what keeps them honest.
fn declaration_drift(session: &mut Client, routine: &Routine) -> Vec<String> {
    if routine.kind == "p" {
        return Vec::new();
    }
    let call = call_sql(routine, &ordinary_args(routine));
    let mut found = Vec::new();
    let mut attempt =
        |setup: &str, teardown: &str, wrong: &dyn Fn(&str, &str) -> bool, promise: &str| {
            session.batch_execute(setup).unwrap();
            if let Err(e) = session.batch_execute(&call) {
                let (code, message) = e.as_db_error().map_or((String::new(), e.to_string()), |d| {
                    (d.code().code().to_string(), d.message().to_string())
                });
                if wrong(&code, &message) {
                    found.push(format!(
                        "{}: declared {promise}, but: {code} {message}\n    {}",
                        routine.signature,
                        truncate(&call)
                    ));
                }
            }
            session.batch_execute(teardown).unwrap();
        };
    if routine.volatility != "v" {
        let promise = if routine.volatility == "i" {
            "IMMUTABLE"
        } else {
            "STABLE"
        };
        // (PostgreSQL itself refuses a write in a non-volatile SQL or PL/pgSQL function, 0A000.)
        let writes = |code: &str, message: &str| {
            code == "25006" || (code == "0A000" && message.contains("non-volatile function"))
        };
        attempt("BEGIN READ ONLY", "ROLLBACK", &writes, promise);
    }
    if routine.parallel == "s" {
        attempt(
            // PostgreSQL 16 renamed force_parallel_mode to debug_parallel_query.
            "BEGIN; SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000 \
             THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', true); \
             SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0",
            "ROLLBACK",
            &|code, message| code == "25000" && message.contains("parallel"),
            "PARALLEL SAFE",
        );
    }
    found
}

enum Outcome {
    Answered,
    Failed(String),
}

fn run_one(db: &str, role: &str, client: &mut Option<Client>, sql: &str) -> Outcome {
    let session = client.get_or_insert_with(|| connect_as(db, role));
    let started = Instant::now();
    let result = session.batch_execute(sql);
    let took = started.elapsed();
    if took > TIMEOUT + GRACE {
        return Outcome::Failed(format!("took {took:?}, past statement_timeout {TIMEOUT:?}"));
    }
    match result {
        Ok(()) => Outcome::Answered,
        Err(e) if e.code().is_some() => {
            let code = sqlstate(&e);
            if code == "XX000" {
                Outcome::Failed(format!(
                    "XX000: {}",
                    e.as_db_error()
                        .map_or(e.to_string(), |d| d.message().to_string())
                ))
            } else {
                Outcome::Answered
            }
        }
        Err(e) => {
            // No SQLSTATE: the connection is gone (a backend that ended, or a cluster that
            // restarted after one did).
            *client = None;
            wait_for_server();
            Outcome::Failed(format!("the backend ended: {e}"))
        }
    }
}

fn wait_for_server() {
    for _ in 0..60 {
        if std::panic::catch_unwind(|| connect("postgres")).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn every_collect_routine_survives_nulls_and_extremes_from_a_login_role() {
    let db = fresh_database("sweep");
    let role = format!("{db}_sweeper");
    connect(&db)
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT CREATE ON SCHEMA public TO {role}; CREATE SCHEMA x AUTHORIZATION {role};
             ALTER ROLE {role} SET statement_timeout = '{}ms'; ALTER ROLE {role} SET search_path = x, public;",
            TIMEOUT.as_millis()
        ))
        .unwrap();
    let mut session = Some(connect_as(&db, &role));
    let listed = routines(session.as_mut().unwrap());
    assert!(
        listed.len() > 100,
        "the sweep found only {} routines: is the listing right?",
        listed.len()
    );
    let mut failures = Vec::new();
    let mut made = 0;
    for routine in &listed {
        let setup = session
            .get_or_insert_with(|| connect_as(&db, &role))
            .batch_execute(OBJECTS);
        setup.unwrap_or_else(|e| {
            panic!(
                "making the sweep's objects before {}: {e}",
                routine.signature
            )
        });
        for sql in calls(routine) {
            made += 1;
            if let Outcome::Failed(why) = run_one(&db, &role, &mut session, &sql) {
                failures.push(format!(
                    "{}: {why}\n    {}",
                    routine.signature,
                    truncate(&sql)
                ));
            }
        }
        let checked = session.get_or_insert_with(|| connect_as(&db, &role));
        failures.extend(declaration_drift(checked, routine));
    }
    // A bystander's view: the server is up and answers.
    let alive: i32 = connect("postgres")
        .query_one("SELECT 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(alive, 1);
    drop(session);
    drop_roles(&db, &[&role]);
    assert!(
        failures.is_empty(),
        "{} of {made} calls over {} routines failed:\n{}",
        failures.len(),
        listed.len(),
        failures.join("\n")
    );
}

fn truncate(sql: &str) -> String {
    if sql.len() > 300 {
        format!(
            "{}…",
            &sql[..sql
                .char_indices()
                .take_while(|(i, _)| *i < 300)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8())]
        )
    } else {
        sql.to_string()
    }
}
