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

/// Honours a pending cancel, `statement_timeout` or termination (as CHECK_FOR_INTERRUPTS), for
/// long loops of our own: inflating, scanning.
pub fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

/// An argument that must not be NULL: its value, or 22004 naming it. For the entry points
/// that are not STRICT because some of their arguments may be NULL.
pub fn required<T>(value: Option<T>, name: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
            None,
        )
    })
}

/// An array argument whose elements must not be NULL: its elements, or 22004 naming it.
pub fn no_null_elements<T>(values: Vec<Option<T>>, name: &str) -> Vec<T> {
    values
        .into_iter()
        .map(|v| {
            v.unwrap_or_else(|| {
                raise(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    format!("{name} must not contain NULL"),
                    None,
                )
            })
        })
        .collect()
}
