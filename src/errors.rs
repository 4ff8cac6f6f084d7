//! Raising Postgres errors with a SQLSTATE, a message naming the culprit, and a hint.
//! A `#[pg_extern]` returning `Err` would raise SQLSTATE 22000 and a panic XX000: neither
//! tells a user what went wrong, so every error we raise goes through here.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

pub fn raise(code: PgSqlErrorCode, message: String, hint: Option<String>) -> ! {
    let mut report = ErrorReport::new(code, message, "pg_collect");
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

pub fn raise_with_detail(
    code: PgSqlErrorCode,
    message: String,
    detail: String,
    hint: Option<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message, "pg_collect").set_detail(detail);
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
