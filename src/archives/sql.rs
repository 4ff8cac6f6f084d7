//! The C entry points of archives (declared in sql/archives.sql).

use std::ffi::CString;

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

use super::generate::Archive;
use crate::aggstate;
use crate::errors::raise;
use crate::jsonb::{JsonbArg, JsonbValue};
use crate::lump::format::{self, Builder, DIRECTORY_PROBE, MEMBER_RAW_BYTES};

fn spec(spec: &JsonbArg) -> Archive {
    let mut archive: Archive = spec.deserialize("archive spec", None);
    archive.vocabulary = crate::registry::installed_vocabulary();
    archive
}

/// The DDL of an archive's lumps table.
#[pg_extern(sql = false)]
fn archive_create_sql(archive: JsonbArg) -> Vec<String> {
    spec(&archive).create_sql()
}

/// `collect._archive_statements(spec)`: an archive's statements, by name.
#[pg_extern(sql = false)]
fn archive_statements(archive: JsonbArg) -> JsonbValue {
    crate::jsonb::JsonbValue::serialize(&spec(&archive).statements())
}

/// The same by position, as `collect._archive_sql(spec)` of releases before 0.3.0 returns them.
#[pg_extern(sql = false)]
fn archive_sql(archive: JsonbArg) -> Vec<String> {
    spec(&archive).statements().in_release_order()
}

/// The final function of `collect._archive_pack(jsonb)`: the gathered records as a lump
/// written in members behind a directory (the state is `lump_agg`'s).
#[pg_extern(sql = false)]
fn archive_pack_final(state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<u8>> {
    aggstate::aggregate_context(fcinfo, "archive_pack_final");
    aggstate::state_ref::<Builder>(&state).map(|b| b.finish_in_members(MEMBER_RAW_BYTES))
}

fn corrupted(why: String) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        format!("archive lump is corrupted: {why}"),
        None,
    )
}

/// `length` bytes from `offset` of a (possibly toasted) varlena: for a lump stored out of
/// line uncompressed (`STORAGE external`), only the TOAST chunks holding them are read.
///
/// # Safety
/// `datum` is a non-null varlena datum.
unsafe fn slice(datum: pg_sys::Datum, offset: usize, length: usize) -> Vec<u8> {
    unsafe {
        let part =
            pg_sys::pg_detoast_datum_slice(datum.cast_mut_ptr(), offset as i32, length as i32);
        let bytes = std::slice::from_raw_parts(
            pgrx::vardata_any(part) as *const u8,
            pgrx::varsize_any_exhdr(part),
        );
        bytes.to_vec()
    }
}

/// `collect._archive_record(lump, place)`: the entry at `place` (from 0), fetching and
/// inflating only its gzip member when the lump has a member directory.
#[pg_extern(sql = false)]
fn archive_record(fcinfo: pg_sys::FunctionCallInfo) -> Option<JsonbValue> {
    // SAFETY: declared STRICT (collect.lump, integer): argument 0 is a non-null varlena.
    let (datum, place) = unsafe {
        (
            pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0),
            pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 1)?,
        )
    };
    let place = usize::try_from(place).ok()?;
    // SAFETY: as above.
    let total = unsafe { pg_sys::toast_raw_datum_size(datum) } - pg_sys::VARHDRSZ;
    let probe = unsafe { slice(datum, 0, DIRECTORY_PROBE.min(total)) };
    let directory = format::directory_len(&probe).and_then(|len| {
        let prefix = if len <= probe.len() {
            probe.clone()
        } else {
            unsafe { slice(datum, 0, len.min(total)) }
        };
        format::directory(&prefix)
    });
    let entry = match directory {
        Some(directory) => {
            let (range, index) = directory.locate(place, total)?;
            let member = unsafe { slice(datum, range.start, range.len()) };
            let mut entries =
                format::member_entries(&member, &mut crate::errors::check_for_interrupts)
                    .unwrap_or_else(|e| corrupted(e.to_string()));
            if index >= entries.len() {
                return None;
            }
            entries.swap_remove(index)
        }
        None => {
            // A lump written in one member: inflate it all.
            let whole = unsafe { slice(datum, 0, total) };
            let lump = crate::lump::sql::decode_stored(&whole);
            let entry = lump.entries().nth(place)?.to_vec();
            entry
        }
    };
    let text =
        CString::new(entry).unwrap_or_else(|_| corrupted("an entry holds a NUL byte".into()));
    Some(JsonbValue::parse(&text))
}
