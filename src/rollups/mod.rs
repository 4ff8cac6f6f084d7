//! Minute rollups kept at ingest (Druid, as Plumbr used it), declared in sql/rollups.sql with
//! metrics from `crate::sketches`. `rawless` is the in-memory path for rollups that keep no
//! raw rows; `ndjson` splits a lump of events (gzip-compressed NDJSON) for `collect.ingest`.

pub mod ndjson;
pub mod rawless;

use pgrx::prelude::*;

use crate::errors::raise;

/// The lines of a lump of events for `collect.ingest` (see `ndjson`).
#[pg_extern(sql = false)]
fn ndjson_lines(lump: &[u8]) -> Vec<String> {
    // A text value holds at most 1 GB.
    const LIMIT: usize = (1 << 30) - 1;
    ndjson::lines(lump, LIMIT).unwrap_or_else(|e| match e {
        ndjson::LumpError::NotGzip(why) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("events are not a valid gzip lump: {why}"),
            Some("Send newline-delimited JSON, compressed with gzip or not.".into()),
        ),
        ndjson::LumpError::TooLarge(limit) => raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("events inflate to more than {limit} bytes"),
            Some("Send them in several lumps.".into()),
        ),
        ndjson::LumpError::NotUtf8 { line } => raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("line {line} of the events is not UTF-8"),
            None,
        ),
    })
}
