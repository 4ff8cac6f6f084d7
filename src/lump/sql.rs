//! The `collect.lump` SQL type. Declarations live in `sql/lump.sql`; these are
//! the C entry points it names. Lumps cross the boundary as their varlena bodies (`&[u8]`
//! in, `Vec<u8>` out); `jsonb` crosses as Postgres' own datums (see `crate::jsonb`).
//!
//! The entry points keep the names they had when the type was `collect.collection` (until
//! 0.3.0): a C function's symbol is `<name>_wrapper`, and the frozen install scripts of earlier
//! releases, which an update runs against this library, call them by those symbols.

use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal, PgMemoryContexts};
use serde_json::value::RawValue;

use super::format::{self, Builder, ConcatError, DecodeError, Lump, TooLarge, Trust};
use crate::errors::{raise, raise_with_detail};
use crate::jsonb::{JsonbArg, JsonbValue};
use crate::{aggstate, typeio};

const TYPE_NAME: &str = "collect.lump";

/// A stored lump as SPI reads it: its bytes, whatever the installed release names the type
/// (`registry::Vocabulary`), and without a call of its send function.
pub struct StoredLump(pub Vec<u8>);

impl FromDatum for StoredLump {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        // SAFETY: a lump is a varlena, read as bytea is (detoasted, copied).
        unsafe { Vec::<u8>::from_polymorphic_datum(datum, is_null, pg_sys::BYTEAOID) }
            .map(StoredLump)
    }
}

impl IntoDatum for StoredLump {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.into_datum()
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::BYTEAOID
    }
    /// Any varlena: callers read only columns of the lump type.
    fn is_compatible_with(other: pg_sys::Oid) -> bool {
        // SAFETY: a syscache lookup of a type that exists (SPI described the column).
        unsafe { pg_sys::get_typlen(other) == -1 }
    }
}

fn corrupted(e: DecodeError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        format!("{TYPE_NAME} value is corrupted: {e}"),
        None,
    )
}

fn too_large(e: TooLarge) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        format!("{TYPE_NAME} value would be too large: {e}"),
        Some("Split the entries over several lumps.".into()),
    )
}

/// Decodes a lump that Postgres stored for us.
pub fn decode_stored(lump: &[u8]) -> Lump {
    format::decode_between(
        lump,
        Trust::Stored,
        &mut crate::errors::check_for_interrupts,
    )
    .unwrap_or_else(|e| corrupted(e))
}

fn concat_or_raise(result: Result<Vec<u8>, ConcatError>) -> Vec<u8> {
    match result {
        Ok(lump) => lump,
        Err(ConcatError::Decode(e)) => corrupted(e),
        Err(ConcatError::TooLarge(e)) => too_large(e),
    }
}

fn push_or_raise(builder: &mut Builder, entry: &[u8]) {
    builder.push(entry).unwrap_or_else(|e| too_large(e));
}

/// Adds `value` to `builder`: each element of an array, or the value itself.
pub fn push_jsonb(builder: &mut Builder, value: &JsonbArg) {
    let text = value.to_text().to_bytes();
    if !value.is_array() {
        push_or_raise(builder, text);
        return;
    }
    // The text is Postgres' canonical output of a valid array, so splitting it cannot fail;
    // each element's raw slice is already canonical, with no re-printing of numbers.
    let elements: Vec<&RawValue> = serde_json::from_slice(text).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("could not split jsonb array output: {e}"),
            None,
        )
    });
    for element in elements {
        push_or_raise(builder, element.get().as_bytes());
    }
}

/// The JSON array text of a lump's entries, in the same form as `jsonb` output.
fn array_text(lump: &Lump) -> CString {
    let mut text = Vec::with_capacity(lump.raw_len() + lump.len() + 2);
    text.push(b'[');
    for (i, entry) in lump.entries().enumerate() {
        if i > 0 {
            text.extend_from_slice(b", ");
        }
        text.extend_from_slice(entry);
    }
    text.push(b']');
    CString::new(text).unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("{TYPE_NAME} value holds a NUL byte"),
            None,
        )
    })
}

#[pg_extern(sql = false)]
fn collection_in(input: &CStr) -> Vec<u8> {
    let parsed = JsonbValue::parse(input);
    let value = parsed.as_arg();
    if !value.is_array() {
        let shown: String = input.to_string_lossy().chars().take(60).collect();
        raise_with_detail(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("malformed {TYPE_NAME} literal: \"{shown}\""),
            "A lump is written as a JSON array of entries.".into(),
            Some(
                "Wrap a single entry in brackets, as in '[{\"a\": 1}]', or build it with \
                 collect.lump('{\"a\": 1}'::jsonb)."
                    .into(),
            ),
        );
    }
    let mut builder = Builder::new();
    push_jsonb(&mut builder, &value);
    builder.finish()
}

#[pg_extern(sql = false)]
fn collection_out(lump: &[u8]) -> CString {
    array_text(&decode_stored(lump))
}

fn invalid_binary(why: String) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        format!("invalid binary {TYPE_NAME} value: {why}"),
        Some("Binary input takes exactly the values text input makes: each entry is jsonb's own text of a jsonb value.".into()),
    )
}

/// Binary input accepts exactly what text input makes, so that whatever is stored can be
/// dumped and restored: each entry must be a value `jsonb` accepts (no `\u0000`, no lone
/// surrogate, valid UTF-8, no nesting beyond what its parser allows), written in `jsonb`'s
/// own canonical text.
#[pg_extern(sql = false)]
fn collection_recv(buf: Internal) -> Vec<u8> {
    let bytes = typeio::recv_bytes(buf);
    // Inflated a piece at a time and checked entry by entry in a context emptied after each:
    // a small value that inflates to a gigabyte costs time (which a cancel or
    // statement_timeout stops), not a gigabyte of memory.
    let mut scratch = PgMemoryContexts::new("collect.lump binary input");
    format::check_streaming(
        bytes,
        &mut crate::errors::check_for_interrupts,
        &mut |index, entry| {
            // SAFETY: what the check allocates in the scratch context is dropped with it: the
            // answer is a plain Rust value.
            let canonical = unsafe { scratch.switch_to(|_| canonical_jsonb_text(entry)) };
            // SAFETY: as above, nothing allocated there outlives this entry.
            unsafe { scratch.reset() };
            match canonical {
                Err(why) => Err(format!("entry {} is not a jsonb value: {why}", index + 1)),
                Ok(false) => Err(format!(
                    "entry {} is not in jsonb's canonical form",
                    index + 1
                )),
                Ok(true) => Ok(()),
            }
        },
    )
    .unwrap_or_else(|e| invalid_binary(e.to_string()));
    bytes.to_vec()
}

/// Whether `entry` is a value `jsonb` accepts, written in `jsonb`'s own text (Err: why not).
fn canonical_jsonb_text(entry: &[u8]) -> Result<bool, String> {
    let Ok(text) = std::str::from_utf8(entry) else {
        return Err("not valid UTF-8".into());
    };
    let owned = text.to_string();
    PgTryBuilder::new(move || {
        let parsed = JsonbValue::parse_bytes(owned.as_bytes());
        Ok(parsed.as_arg().to_text().to_bytes() == owned.as_bytes())
    })
    .catch_others(|e| match e {
        pgrx::pg_sys::panic::CaughtError::PostgresError(r)
        | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) => Err(r.message().to_string()),
        pgrx::pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
            Err(ereport.message().to_string())
        }
    })
    .execute()
}

/// The binary form is the stored lump itself: compact on the wire, no inflating to send.
#[pg_extern(sql = false)]
fn collection_send(lump: &[u8]) -> Vec<u8> {
    lump.to_vec()
}

#[pg_extern(sql = false)]
fn collection_from_jsonb(entries: JsonbArg) -> Vec<u8> {
    let mut builder = Builder::new();
    push_jsonb(&mut builder, &entries);
    builder.finish()
}

#[pg_extern(sql = false)]
fn collection_to_jsonb(lump: &[u8]) -> JsonbValue {
    JsonbValue::parse(&array_text(&decode_stored(lump)))
}

/// Walks a lump's entries, parsing one into `jsonb` per row returned.
struct EntryDatums {
    raw: Vec<u8>,
    pos: usize,
}

impl Iterator for EntryDatums {
    type Item = JsonbValue;

    fn next(&mut self) -> Option<JsonbValue> {
        let rest = self.raw.get(self.pos..).filter(|r| !r.is_empty())?;
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos += len + 1;
        Some(JsonbValue::parse_bytes(&rest[..len]))
    }
}

#[pg_extern(sql = false)]
fn collection_entries(lump: &[u8]) -> SetOfIterator<'static, JsonbValue> {
    SetOfIterator::new(EntryDatums {
        raw: decode_stored(lump).into_raw(),
        pos: 0,
    })
}

/// Reads only the header, fetching just the first bytes of a toasted value
/// (the type's storage is `external`, so TOAST slices need no decompression).
#[pg_extern(sql = false)]
fn collection_entry_count(fcinfo: pg_sys::FunctionCallInfo) -> i64 {
    // SAFETY: declared STRICT with one lump argument.
    let header = unsafe {
        let datum = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0);
        let slice =
            pg_sys::pg_detoast_datum_slice(datum.cast_mut_ptr(), 0, format::HEADER_LEN as i32);
        let len = pgrx::varlena::varsize_any_exhdr(slice);
        let data = pgrx::varlena::vardata_any(slice).cast::<u8>();
        std::slice::from_raw_parts(data, len).to_vec()
    };
    format::entry_count(&header).unwrap_or_else(|e| corrupted(e)) as i64
}

#[pg_extern(sql = false)]
fn collection_append(lump: &[u8], entries: JsonbArg) -> Vec<u8> {
    let mut extra = Builder::new();
    push_jsonb(&mut extra, &entries);
    if extra.is_empty() {
        return lump.to_vec();
    }
    concat_or_raise(format::append(lump, &extra))
}

#[pg_extern(sql = false)]
fn collection_merge(a: &[u8], b: &[u8]) -> Vec<u8> {
    concat_or_raise(format::concat(a, b))
}

// ---- lump_agg(jsonb): a parallel aggregate with an `internal` Builder state ----

#[pg_extern(sql = false)]
fn collection_agg_trans(
    mut state: Internal,
    value: Option<JsonbArg>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let builder = aggstate::state_or_init(&mut state, fcinfo, "_lump_agg_trans", Builder::new);
    match value {
        // Like jsonb_agg: a SQL NULL becomes a JSON null entry, so no row goes missing.
        None => push_or_raise(builder, b"null"),
        Some(value) => push_or_raise(builder, value.to_text().to_bytes()),
    }
    state
}

#[pg_extern(sql = false)]
fn collection_agg_combine(
    left: Internal,
    right: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    aggstate::combine(
        left,
        right,
        fcinfo,
        "_lump_agg_combine",
        |l: &mut Builder, r| l.append(r).unwrap_or_else(|e| too_large(e)),
    )
}

#[pg_extern(sql = false)]
fn collection_agg_serialize(state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Vec<u8> {
    aggstate::aggregate_context(fcinfo, "_lump_agg_serialize");
    aggstate::state_ref::<Builder>(&state)
        .expect("serialize is strict")
        .to_state_bytes()
}

#[pg_extern(sql = false)]
fn collection_agg_deserialize(
    bytes: &[u8],
    _unused: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    aggstate::aggregate_context(fcinfo, "_lump_agg_deserialize");
    let builder = Builder::from_state_bytes(bytes).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid lump_agg partial state: {e}"),
            None,
        )
    });
    aggstate::state_here(builder)
}

#[pg_extern(sql = false)]
fn collection_agg_final(state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<u8>> {
    aggstate::aggregate_context(fcinfo, "_lump_agg_final");
    aggstate::state_ref::<Builder>(&state).map(Builder::finish)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::pg_sys::panic::CaughtError;
    use pgrx::prelude::*;

    use super::*;

    /// Runs `f`, which must raise an ERROR, and returns its SQLSTATE and message.
    fn error_of(f: impl FnOnce() + std::panic::UnwindSafe) -> (PgSqlErrorCode, String) {
        PgTryBuilder::new(|| {
            f();
            panic!("expected an ERROR");
        })
        .catch_others(|e| match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => {
                (r.sql_error_code(), r.message().to_string())
            }
            CaughtError::RustPanic { ereport, .. } => {
                (ereport.sql_error_code(), ereport.message().to_string())
            }
        })
        .execute()
    }

    fn stored(literal: &str) -> Vec<u8> {
        let mut b = Builder::new();
        for e in literal.split(',') {
            b.push(e.as_bytes()).unwrap();
        }
        b.finish()
    }

    /// A damaged value on disk (its CRC or header no longer match) is reported as
    /// data_corrupted by every reader, never trusted and never a crash.
    #[pg_test]
    fn damaged_stored_values_raise_data_corrupted() {
        let good = stored("1,2,3");
        let mut crc = good.clone();
        let at = crc.len() - 8;
        crc[at] ^= 1;
        let mut count = good.clone();
        count[4] = 9;
        let truncated = good[..good.len() - 3].to_vec();
        for bad in [crc, count, truncated] {
            for reader in [
                (|b: Vec<u8>| drop(collection_out(&b))) as fn(Vec<u8>),
                |b| {
                    let _ = collection_to_jsonb(&b);
                },
                |b| {
                    collection_entries(&b).count();
                },
            ] {
                let b = bad.clone();
                let (code, message) = error_of(move || reader(b));
                assert_eq!(code, PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, "{message}");
                assert!(
                    message.starts_with("collect.lump value is corrupted"),
                    "{message}"
                );
            }
        }
        let (code, _) = error_of(|| drop(collection_merge(&good[..5], &good)));
        assert_eq!(code, PgSqlErrorCode::ERRCODE_DATA_CORRUPTED);
    }

    #[pg_test]
    fn appended_values_are_read_back_in_order() {
        let value = Spi::get_one::<String>(
            "SELECT collect.lump_append(collect.lump_append('[1]', '[2, 3]'), '{\"x\": [4]}')::text",
        );
        assert_eq!(value, Ok(Some(r#"[1, 2, 3, {"x": [4]}]"#.to_string())));
    }
}
