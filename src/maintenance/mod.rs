//! The maintenance background worker: with `pg_collect` in `shared_preload_libraries`, a
//! launcher wakes every `collect.maintenance_naptime` seconds and, for each database in
//! `collect.maintenance_databases`, starts a worker connected to it that runs the same
//! maintenance as `CALL collect.maintain()` (sql/maintenance.sql) — that very procedure, a transaction
//! per batch — then exits. No libpq, no `pg_hba.conf` entry: workers attach to databases directly.
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
    // The one job loop there is: the procedure pg_cron calls, which commits after every
    // batch. A procedure may commit only when called at top level, so it runs in a portal
    // as a client's statement does (every release has it, under this name).
    call_at_top_level(c"CALL collect.maintain()");
}

/// Runs one statement as `exec_simple_query` runs a client's: in a transaction of its own,
/// through an unnamed portal at top level, so that a procedure it calls may commit. An error
/// ends the worker (the launcher starts a new one at its next visit).
fn call_at_top_level(statement: &CStr) {
    // SAFETY: called from a background worker connected to a database, outside any
    // transaction; the calls are those of exec_simple_query, in its order, and an ERROR
    // unwinds through pgrx's guard to the worker's exit.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        let parsed = pg_sys::pg_parse_query(statement.as_ptr());
        assert!(!parsed.is_null() && (*parsed).length == 1, "one statement");
        let raw = (*(*parsed).elements).ptr_value as *mut pg_sys::RawStmt;
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        let analyzed = pg_sys::pg_analyze_and_rewrite_fixedparams(
            raw,
            statement.as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
        );
        let planned = pg_sys::pg_plan_queries(
            analyzed,
            statement.as_ptr(),
            pg_sys::CURSOR_OPT_PARALLEL_OK as i32,
            std::ptr::null_mut(),
        );
        pg_sys::PopActiveSnapshot();
        let portal = pg_sys::CreatePortal(c"".as_ptr(), true, true);
        (*portal).visible = false;
        pg_sys::PortalDefineQuery(
            portal,
            std::ptr::null(),
            statement.as_ptr(),
            pg_sys::CreateCommandTag((*raw).stmt),
            planned,
            std::ptr::null_mut(),
        );
        pg_sys::PortalStart(portal, std::ptr::null_mut(), 0, std::ptr::null_mut());
        let discard = pg_sys::CreateDestReceiver(pg_sys::CommandDest::DestNone);
        let mut completion = pg_sys::QueryCompletion::default();
        #[cfg(not(feature = "pg18"))]
        pg_sys::PortalRun(
            portal,
            std::ffi::c_long::MAX,
            true,
            true,
            discard,
            discard,
            &mut completion,
        );
        #[cfg(feature = "pg18")]
        pg_sys::PortalRun(
            portal,
            std::ffi::c_long::MAX,
            true,
            discard,
            discard,
            &mut completion,
        );
        pg_sys::PortalDrop(portal, false);
        pg_sys::CommitTransactionCommand();
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
