//! The maintenance background worker: with `pg_collect` in `shared_preload_libraries`, a
//! launcher wakes every `collect.maintenance_naptime` seconds and, for each database in
//! `collect.maintenance_databases`, starts a worker connected to it that runs the same
//! maintenance as `CALL collect.maintain()` (sql/maintenance.sql), a transaction per step,
//! then exits. No libpq, no `pg_hba.conf` entry: workers attach to databases directly.
//!
//! Jobs run as their objects' owners (`collect._run_job_batch` switches role), not as the
//! superuser the worker connects as. `pg_terminate_backend` or shutdown stops the launcher
//! (and the database worker it waits for) cleanly; a failing job is recorded and retried by
//! the schedule, and never stops the worker.

pub use pg_collect_core::maintenance::databases;

use std::ffi::CStr;
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    SignalWakeFlags,
};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;

static DATABASES: GucSetting<Option<std::ffi::CString>> =
    GucSetting::<Option<std::ffi::CString>>::new(None);
static NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(60);
/// Batches one job may run per visit, as `collect.maintain(max_batches)`.
const MAX_BATCHES: i32 = 1000;

/// Registers the settings, and the launcher when loaded at server start.
pub fn init() {
    GucRegistry::define_string_guc(
        c"collect.maintenance_databases",
        c"Databases whose pg_collect maintenance the background worker runs (comma-separated).",
        c"Empty: the worker runs nothing. Needs pg_collect in shared_preload_libraries.",
        &DATABASES,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"collect.maintenance_naptime",
        c"Seconds between the maintenance worker's visits to each database.",
        c"",
        &NAPTIME,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    // SAFETY: reading a flag the postmaster sets while it loads preloaded libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        BackgroundWorkerBuilder::new("pg_collect maintenance launcher")
            .set_type("pg_collect maintenance")
            .set_library("pg_collect")
            .set_function("collect_maintenance_launcher")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(Duration::from_secs(60)))
            .load();
    }
}

fn configured_databases() -> Vec<String> {
    let setting = DATABASES.get();
    databases::parse(
        setting
            .as_deref()
            .map(CStr::to_string_lossy)
            .as_deref()
            .unwrap_or(""),
    )
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn collect_maintenance_launcher(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Attached to no database (as autovacuum's launcher is): it is then a backend that
    // pg_stat_activity shows and pg_terminate_backend can stop.
    BackgroundWorker::connect_worker_to_spi(None, None);
    log!("pg_collect maintenance launcher started");
    'visits: loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the launcher's main loop, outside any transaction, as autovacuum does it.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        for database in configured_databases() {
            if !visit(&database) {
                break 'visits;
            }
        }
        let naptime = Duration::from_secs(NAPTIME.get().max(1) as u64);
        if !BackgroundWorker::wait_latch(Some(naptime)) {
            break;
        }
    }
    log!("pg_collect maintenance launcher stopped");
}

/// Runs one database's maintenance in a worker of its own and waits for it; false when the
/// launcher was told to stop (the worker is then stopped too).
fn visit(database: &str) -> bool {
    // SAFETY: reading this process's pid.
    let me = unsafe { pg_sys::MyProcPid };
    let started = BackgroundWorkerBuilder::new(&format!("pg_collect maintenance of {database}"))
        .set_type("pg_collect maintenance")
        .set_library("pg_collect")
        .set_function("collect_maintenance_database")
        .enable_spi_access()
        .set_extra(database)
        .set_notify_pid(me)
        .load_dynamic();
    let Ok(worker) = started else {
        log!("pg_collect maintenance: no background worker slot free for database {database}; trying again later");
        return true;
    };
    loop {
        match worker.pid() {
            Err(BackgroundWorkerStatus::Stopped) | Err(BackgroundWorkerStatus::PostmasterDied) => {
                return true
            }
            _ => {}
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_millis(500))) {
            let _ = worker.terminate().wait_for_shutdown();
            return false;
        }
    }
}

unsafe extern "C-unwind" {
    /// Postgres's own SIGTERM handler for backends (pgrx's binding of it is a Rust wrapper).
    #[link_name = "die"]
    fn postgres_die(signal: i32);
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn collect_maintenance_database(_arg: pg_sys::Datum) {
    // SAFETY: the standard handler: SIGTERM cancels the running statement at its next
    // interrupt check and ends the process, so a step in progress is rolled back whole.
    unsafe {
        // PostgreSQL 18 names the backend's signal installer pqsignal_be.
        #[cfg(feature = "pg18")]
        pg_sys::pqsignal_be(pg_sys::SIGTERM as i32, Some(postgres_die));
        #[cfg(not(feature = "pg18"))]
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(postgres_die));
        pg_sys::BackgroundWorkerUnblockSignals();
    }
    let database = BackgroundWorker::get_extra().to_string();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    let installed = BackgroundWorker::transaction(|| {
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_collect')",
        )
    });
    if installed != Ok(Some(true)) {
        log!("pg_collect maintenance: database {database} does not have the pg_collect extension; nothing to do");
        return;
    }
    let mut ran: Vec<String> = Vec::new();
    loop {
        let claimed = BackgroundWorker::transaction(|| {
            Spi::get_three_with_args::<String, String, pgrx::datum::TimestampWithTimeZone>(
                "SELECT object, job, started FROM collect._claim_job($1)",
                &[ran.clone().into()],
            )
        });
        let (Some(object), Some(job), Some(started)) = claimed.unwrap_or((None, None, None)) else {
            break;
        };
        ran.push(format!("{object} {job}"));
        let mut batches = 0;
        let result = loop {
            let result = BackgroundWorker::transaction(|| {
                Spi::get_one_with_args::<String>(
                    &format!(
                        "SELECT {}($1, $2)",
                        crate::registry::installed_vocabulary().run_job_batch()
                    ),
                    &[object.clone().into(), job.clone().into()],
                )
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| "failed: no result".into());
            batches += 1;
            if result != "more" || batches >= MAX_BATCHES {
                break result;
            }
        };
        BackgroundWorker::transaction(|| {
            Spi::run_with_args(
                "SELECT collect._finish_job($1, $2, $3, $4, $5)",
                &[
                    object.clone().into(),
                    job.clone().into(),
                    started.into(),
                    result.clone().into(),
                    batches.into(),
                ],
            )
        })
        .unwrap_or_else(|e| panic!("recording the run of {job} of {object}: {e}"));
        log!("pg_collect maintenance: database {database}: {job} of {object}: {result} ({batches} batches)");
    }
}

/// The entry point of `collect._run_as(owner, step)` as release 0.1.0 declared it (not
/// strict): kept so that a database not yet updated still runs its jobs, now through the one
/// owner mechanism (`registry::as_owner`: a restricted operation, settings unwound). NULLs
/// answer NULL instead of reaching Rust as references.
#[pg_extern(sql = false)]
fn maintenance_run_as(owner: Option<&std::ffi::CStr>, step: Option<&str>) -> Option<bool> {
    let (owner, step) = (owner?, step?);
    let role = crate::registry::role_the_caller_may_become(owner, "run a maintenance job");
    crate::registry::as_owner(role, || Spi::get_one::<bool>(step)).unwrap_or_else(|e| {
        crate::errors::raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("running a maintenance step: {e}"),
            None,
        )
    })
}
