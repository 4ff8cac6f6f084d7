//! Generated statements prepared through SPI and kept for the session: a rollup's upserts and
//! a latest copy's insert path run the same few statements at every write, and planning one
//! costs as much as running it. Postgres' plan cache replans a kept plan when a table it names
//! changes, and privileges are checked at each execution, so one plan serves every role.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::errors::raise;

/// How a statement's parameters are planned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Planning {
    /// Postgres chooses (custom plans for the first runs, then generic if no worse).
    Usual,
    /// Always generic: the parameters are arrays whose contents do not change the plan.
    Generic,
}

fn failed(who: &str, what: &str, rc: i32) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("{who}: {what} failed ({rc})"),
        None,
    )
}

/// `sql` prepared with parameters of `types`, for as long as the SPI call (see `keep`).
///
/// # Safety
/// Inside SPI.
pub unsafe fn prepare(
    who: &str,
    sql: &str,
    types: &mut [pg_sys::Oid],
    planning: Planning,
) -> pg_sys::SPIPlanPtr {
    let text = std::ffi::CString::new(sql).expect("generated SQL has no NUL");
    let options = match planning {
        Planning::Usual => 0,
        Planning::Generic => pg_sys::CURSOR_OPT_GENERIC_PLAN as i32,
    };
    // SAFETY: inside SPI, with `types.len()` parameter types.
    let plan = unsafe {
        pg_sys::SPI_prepare_cursor(
            text.as_ptr(),
            types.len() as i32,
            types.as_mut_ptr(),
            options,
        )
    };
    if plan.is_null() {
        // SAFETY: SPI_result is set by the failed call.
        failed(who, "SPI_prepare", unsafe { pg_sys::SPI_result });
    }
    plan
}

/// Moves `plan` out of the SPI call's memory, into the cache's, for the rest of the session.
///
/// # Safety
/// Inside SPI, with a plan `prepare` made.
pub unsafe fn keep(who: &str, plan: pg_sys::SPIPlanPtr) -> pg_sys::SPIPlanPtr {
    // SAFETY: a plan of this SPI call.
    let rc = unsafe { pg_sys::SPI_keepplan(plan) };
    if rc != 0 {
        failed(who, "SPI_keepplan", rc);
    }
    plan
}

/// `sql` prepared with parameters of `types` and kept for the session (`prepare`, `keep`).
///
/// # Safety
/// Inside SPI.
pub unsafe fn kept(who: &str, sql: &str, types: &mut [pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    // SAFETY: as the caller promises.
    unsafe { keep(who, prepare(who, sql, types, Planning::Usual)) }
}

/// Runs a plan with `values` (`nulls`: b'n' where NULL, b' ' elsewhere); returns how many rows
/// it processed (those returned are in `SPI_tuptable`).
///
/// # Safety
/// Inside SPI, with as many values as the plan has parameters, each of its type.
pub unsafe fn execute(
    who: &str,
    plan: pg_sys::SPIPlanPtr,
    values: &mut [pg_sys::Datum],
    nulls: &[u8],
    read_only: bool,
) -> u64 {
    // SAFETY: as the caller promises.
    unsafe {
        let rc = pg_sys::SPI_execute_plan(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr() as *const std::ffi::c_char,
            read_only,
            0,
        );
        if rc < 0 {
            failed(who, "SPI_execute_plan", rc);
        }
        pg_sys::SPI_processed
    }
}

/// Statements a capability prepares once per session and keeps, by what they depend on (a
/// table's OID, a key type): the plan cache replans one whose tables change, and a table made
/// again under the same name has a new OID, so a new statement.
pub struct Session<K> {
    who: &'static str,
    statements:
        std::cell::RefCell<std::collections::HashMap<K, std::rc::Rc<OwnedPreparedStatement>>>,
}

pub use pgrx::spi::OwnedPreparedStatement;

impl<K: std::hash::Hash + Eq> Session<K> {
    pub fn new(who: &'static str) -> Self {
        Session {
            who,
            statements: Default::default(),
        }
    }

    /// The statement kept under `key`, prepared from `sql()` with parameters of `types` at
    /// the first use (`mutating`: it writes).
    pub fn statement(
        &self,
        client: &pgrx::spi::SpiClient<'_>,
        key: K,
        types: &[pg_sys::Oid],
        mutating: bool,
        sql: impl FnOnce() -> String,
    ) -> std::rc::Rc<OwnedPreparedStatement> {
        if let Some(kept) = self.statements.borrow().get(&key) {
            return kept.clone();
        }
        let sql = sql();
        let types: Vec<pgrx::PgOid> = types.iter().map(|&t| pgrx::PgOid::from(t)).collect();
        let prepared = if mutating {
            client.prepare_mut(sql.as_str(), &types)
        } else {
            client.prepare(sql.as_str(), &types)
        }
        .unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("{}: {e}", self.who),
                None,
            )
        });
        let kept = std::rc::Rc::new(prepared.keep());
        self.statements.borrow_mut().insert(key, kept.clone());
        kept
    }
}
