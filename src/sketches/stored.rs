//! Sketches read from stored values in SQL: damage is data corruption; sketches that cannot
//! be merged are the caller's error, with what to do instead.

use pgrx::PgSqlErrorCode;

use super::sketch::Sketch;
use crate::errors::raise;

/// A stored sketch: damage is data corruption.
pub fn stored<S: Sketch>(bytes: &[u8]) -> S {
    S::from_bytes(bytes).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("{} value is corrupted: {e}", S::SQL_NAME),
            None,
        )
    })
}

pub(crate) fn merge_or_raise<S: Sketch>(into: &mut S, other: &S) {
    into.merge_from(other)
        .unwrap_or_else(|e| raise_unmergeable(e))
}

/// Sketches that cannot be merged (hll sketches of two precisions), with what to do instead.
pub(crate) fn raise_unmergeable(reason: String) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        reason,
        Some(
            "Distinct counts merge only at one precision: build every sketch you merge with the same one \
             (collect.hll_agg(value, p), or distinct(col, p) in a rollup); 14 when none is given."
                .into(),
        ),
    )
}
