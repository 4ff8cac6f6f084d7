//! The C entry points of archives (declared in sql/archives.sql).

use std::cell::RefCell;
use std::collections::HashMap;
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

/// The entry at `place` (from 0) of a lump, fetching and inflating only its gzip member when
/// the lump has a member directory; its JSON text.
///
/// # Safety
/// `datum` is a non-null varlena datum of type `collect.lump`.
unsafe fn entry_at(datum: pg_sys::Datum, place: usize) -> Option<Vec<u8>> {
    // SAFETY: as the caller promises.
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
    match directory {
        Some(directory) => {
            let (range, index) = directory.locate(place, total)?;
            let member = unsafe { slice(datum, range.start, range.len()) };
            format::member_entry(&member, index, &mut crate::errors::check_for_interrupts)
                .unwrap_or_else(|e| corrupted(e.to_string()))
        }
        None => {
            // A lump written in one member: inflate it all.
            let whole = unsafe { slice(datum, 0, total) };
            let lump = crate::lump::sql::decode_stored(&whole);
            let entry = lump.entries().nth(place)?.to_vec();
            Some(entry)
        }
    }
}

fn record(entry: Vec<u8>) -> JsonbValue {
    let text =
        CString::new(entry).unwrap_or_else(|_| corrupted("an entry holds a NUL byte".into()));
    JsonbValue::parse(&text)
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
    unsafe { entry_at(datum, place) }.map(record)
}

/// The place (from 0) of `key` in a lump's keys (a one-dimensional array without NULLs of the
/// key's type): integers are compared as they are stored, other types with their default
/// btree equality, as `array_position` would.
///
/// # Safety
/// `keys` is a non-null array datum whose element type is `key_type`; `key` is of that type.
unsafe fn place_of(
    keys: pg_sys::Datum,
    key: pg_sys::Datum,
    key_type: pg_sys::Oid,
) -> Option<usize> {
    // SAFETY: as the caller promises; the detoasted copy lives in the current memory context.
    unsafe {
        let array = pg_sys::pg_detoast_datum(keys.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        // A one-dimensional array without a NULL bitmap: its length, then (MAXALIGNed) its
        // elements (ARR_DIMS and ARR_DATA_PTR of array.h).
        let header = std::mem::size_of::<pg_sys::ArrayType>();
        if (*array).ndim == 1 && (*array).dataoffset == 0 {
            let n = *((array as *const u8).add(header) as *const i32);
            let data = (array as *const u8)
                .add((header + 2 * 4).next_multiple_of(pg_sys::MAXIMUM_ALIGNOF as usize));
            let n = usize::try_from(n).ok()?;
            macro_rules! scan {
                ($t:ty) => {{
                    let wanted = key.value() as $t;
                    return std::slice::from_raw_parts(data as *const $t, n)
                        .iter()
                        .position(|k| *k == wanted);
                }};
            }
            match key_type {
                pg_sys::INT8OID => scan!(i64),
                pg_sys::INT4OID => scan!(i32),
                pg_sys::INT2OID => scan!(i16),
                _ => {}
            }
        }
        let cache = pg_sys::lookup_type_cache(key_type, pg_sys::TYPECACHE_EQ_OPR_FINFO as i32);
        if (*cache).eq_opr_finfo.fn_oid == pg_sys::InvalidOid {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
                format!("archive keys of type {key_type:?} have no equality operator"),
                None,
            );
        }
        let (mut values, mut nulls, mut count) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
        pg_sys::deconstruct_array(
            array,
            key_type,
            (*cache).typlen as i32,
            (*cache).typbyval,
            (*cache).typalign as std::ffi::c_char,
            &mut values,
            &mut nulls,
            &mut count,
        );
        let values = std::slice::from_raw_parts(values, count as usize);
        let nulls = std::slice::from_raw_parts(nulls, count as usize);
        (0..values.len()).find(|&i| {
            !nulls[i]
                && pg_sys::FunctionCall2Coll(
                    &mut (*cache).eq_opr_finfo,
                    (*cache).typcollation,
                    values[i],
                    key,
                )
                .value()
                    != 0
        })
    }
}

/// The statements `collect.archived` runs, kept for the session.
struct Kept {
    /// The archive a name resolves to, when its definition holds (`collect._archive_verify`).
    definition: pg_sys::SPIPlanPtr,
    /// The same through `collect._archive_def`, which raises the error of a name without an
    /// archive or of a definition that does not hold.
    checked: pg_sys::SPIPlanPtr,
    /// Per archive (its lumps table and key type: an archive made again under the same name
    /// has a new lumps table), the lumps whose key bounds take in a key.
    candidates: HashMap<(pg_sys::Oid, pg_sys::Oid), pg_sys::SPIPlanPtr>,
}

thread_local! {
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

const WHO: &str = "collect.archived";

/// `sql` with parameters of `types`, prepared and kept for the session.
///
/// # Safety
/// Inside SPI.
unsafe fn kept(sql: &str, types: &mut [pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    // SAFETY: as the caller promises.
    unsafe { crate::plans::kept(WHO, sql, types) }
}

/// Runs a kept plan read-only; the rows are in `SPI_tuptable`.
///
/// # Safety
/// Inside SPI, with as many values as the plan has parameters.
unsafe fn run(plan: pg_sys::SPIPlanPtr, values: &mut [pg_sys::Datum], nulls: &[u8]) -> usize {
    // SAFETY: as the caller promises.
    unsafe { crate::plans::execute(WHO, plan, values, nulls, true) as usize }
}

/// Column `column` (from 1) of row `row` of the last result; None when NULL or when there is
/// no such row.
///
/// # Safety
/// Inside SPI, after a statement that returns rows, `column` one of them.
pub(super) unsafe fn column(row: usize, column: i32) -> Option<pg_sys::Datum> {
    // SAFETY: as the caller promises.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() || row as u64 >= pg_sys::SPI_processed {
            return None;
        }
        let mut null = false;
        let datum =
            pg_sys::SPI_getbinval(*(*table).vals.add(row), (*table).tupdesc, column, &mut null);
        (!null).then_some(datum)
    }
}

/// Column `column` of row 0 of the last result, as text.
///
/// # Safety
/// As `column`, for a text column.
unsafe fn text_column(column_no: i32) -> String {
    // SAFETY: as the caller promises.
    unsafe {
        let datum = column(0, column_no).unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("{WHO}: no archive name"),
                None,
            )
        });
        let text = pg_sys::text_to_cstring(datum.cast_mut_ptr());
        std::ffi::CStr::from_ptr(text)
            .to_string_lossy()
            .into_owned()
    }
}

/// `key` (of type `from`) as a value of the archive's key type `to`, when it is one or casts
/// to one implicitly by a one-argument function or as it is (`collect._archive_key` admits
/// implicit casts); None for any other type, which `collect._archived` then reads or refuses.
///
/// # Safety
/// `key` is a non-null value of type `from`.
unsafe fn as_key_type(
    key: pg_sys::Datum,
    from: pg_sys::Oid,
    to: pg_sys::Oid,
) -> Option<pg_sys::Datum> {
    if from == to {
        return Some(key);
    }
    let mut function = pg_sys::InvalidOid;
    // SAFETY: a catalog lookup, then the cast's own function on a value of its source type.
    unsafe {
        match pg_sys::find_coercion_pathway(
            to,
            from,
            pg_sys::CoercionContext::COERCION_IMPLICIT,
            &mut function,
        ) {
            pg_sys::CoercionPathType::COERCION_PATH_RELABELTYPE => Some(key),
            pg_sys::CoercionPathType::COERCION_PATH_FUNC
                if function != pg_sys::InvalidOid && pg_sys::get_func_nargs(function) == 1 =>
            {
                Some(pg_sys::OidFunctionCall1Coll(
                    function,
                    pg_sys::InvalidOid,
                    key,
                ))
            }
            _ => None,
        }
    }
}

/// What the check of an archive's definition found.
pub(super) enum Definition {
    /// The definition holds: its key type, its lumps table (OIDs; None if not found), and the
    /// archive's schema and name.
    Holds {
        key_type: Option<pg_sys::Oid>,
        lumps: Option<pg_sys::Oid>,
        schema: String,
        name: String,
    },
    /// It was read through `collect._archive_def` (which raises unless it holds): the
    /// archive's schema and name, for the path of earlier releases.
    Checked { schema: String, name: String },
}

/// Resolves `name` (a text datum, or NULL) and checks the archive's definition, with the
/// statements the session keeps; a name without an archive, or one whose definition does not
/// hold, raises `collect._archive_def`'s error.
///
/// # Safety
/// Inside SPI; `name` is a text datum.
pub(super) unsafe fn definition(name: Option<pg_sys::Datum>) -> Definition {
    // SAFETY: as the caller promises.
    unsafe {
        let definition = KEPT.with(|k| {
            k.borrow_mut()
                .get_or_insert_with(|| Kept {
                    definition: kept(
                        "SELECT d.key_type::pg_catalog.oid, \
                         pg_catalog.to_regclass(pg_catalog.format('%I.%I', d.schema, d.name OPERATOR(pg_catalog.||) '_lumps'))::pg_catalog.oid, \
                         d.schema::pg_catalog.text, d.name \
                         FROM collect._resolve('archive', $1, '_lumps') r \
                         JOIN collect.archive_defs d ON (d.schema, d.name) OPERATOR(pg_catalog.=) (r.schema, r.object_name) \
                         WHERE collect._archive_verify(d)",
                        &mut [pg_sys::TEXTOID],
                    ),
                    checked: kept(
                        "SELECT d.schema::pg_catalog.text, d.name \
                         FROM collect._resolve('archive', $1, '_lumps') r, collect._archive_def(r.schema, r.object_name) d",
                        &mut [pg_sys::TEXTOID],
                    ),
                    candidates: HashMap::new(),
                })
                .definition
        });
        let nulls = [if name.is_some() { b' ' } else { b'n' }];
        let mut values = [name.unwrap_or(pg_sys::Datum::from(0))];
        if run(definition, &mut values, &nulls) != 1 {
            // No archive by that name, or one whose definition does not hold: the check of
            // every definition says which, as its error.
            let checked = KEPT.with(|k| k.borrow().as_ref().expect("made above").checked);
            run(checked, &mut values, &nulls);
            return Definition::Checked {
                schema: text_column(1),
                name: text_column(2),
            };
        }
        Definition::Holds {
            key_type: column(0, 1).map(|d| pg_sys::Oid::from(d.value() as u32)),
            lumps: column(0, 2).map(|d| pg_sys::Oid::from(d.value() as u32)),
            schema: text_column(3),
            name: text_column(4),
        }
    }
}

/// The statements' description of an archive (`collect._archive_spec`).
pub(super) fn archive_spec(schema: &str, name: &str) -> Archive {
    let spec = pgrx::spi::Spi::get_one_with_args::<pgrx::JsonB>(
        "SELECT collect._archive_spec(d) FROM collect.archive_defs d WHERE (d.schema, d.name) OPERATOR(pg_catalog.=) ($1::pg_catalog.name, $2)",
        &[schema.into(), name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("{WHO}: no spec"), None));
    serde_json::from_value(spec.0).unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("{WHO}: {e}"),
            None,
        )
    })
}

/// What a read by key found.
enum Read {
    Entry(Option<Vec<u8>>),
    /// A read the path of earlier releases makes (see `archived`).
    Elsewhere {
        schema: String,
        name: String,
    },
}

/// `collect.archived(name, key)` (a C function from 0.4.0): the archived record with this key,
/// or NULL. The name is resolved and the definition checked at every call, as before; then,
/// on one node and with a key of the archive's own type, the session reads the lumps whose
/// bounds take in the key with a statement it prepared once, finds the key's place among a
/// lump's keys itself and inflates only the member holding it. Any other call (a key of
/// another type, a NULL key, Citus installed) reads through `collect._archived`, the path of
/// earlier releases.
#[pg_extern(sql = false)]
fn archived(fcinfo: pg_sys::FunctionCallInfo) -> Option<JsonbValue> {
    // SAFETY: declared (text, anyelement), not STRICT: each argument is read only when it is
    // not NULL; the key's datum is used while the call lasts.
    let (name, key, key_type) = unsafe {
        (
            pgrx::fcinfo::pg_getarg_datum(fcinfo, 0),
            pgrx::fcinfo::pg_getarg_datum(fcinfo, 1),
            pg_sys::get_fn_expr_argtype((*fcinfo).flinfo, 1),
        )
    };
    // SAFETY: one SPI connection around every statement; what leaves it is copied into Rust
    // memory first.
    let read = unsafe {
        pgrx::spi::Spi::connect(|_| {
            let (def_key_type, lumps, schema, object_name) = match definition(name) {
                Definition::Holds {
                    key_type,
                    lumps,
                    schema,
                    name,
                } => (key_type, lumps, schema, name),
                Definition::Checked { schema, name } => {
                    return Read::Elsewhere { schema, name };
                }
            };
            let found =
                key.zip(lumps)
                    .zip(def_key_type)
                    .and_then(|((key, lumps), def_key_type)| {
                        Some((
                            as_key_type(key, key_type, def_key_type)?,
                            lumps,
                            def_key_type,
                        ))
                    });
            let Some((key, lumps, key_type)) = found.filter(|_| !crate::registry::citus_present())
            else {
                return Read::Elsewhere {
                    schema,
                    name: object_name,
                };
            };
            let candidates = KEPT.with(|k| {
                let mut k = k.borrow_mut();
                let k = k.as_mut().expect("made above");
                *k.candidates.entry((lumps, key_type)).or_insert_with(|| {
                    kept(
                        &archive_spec(&schema, &object_name).point_candidates_sql(),
                        &mut [key_type],
                    )
                })
            });
            let rows = run(candidates, &mut [key], b" ");
            for row in 0..rows {
                let (Some(keys), Some(lump)) = (column(row, 1), column(row, 2)) else {
                    continue;
                };
                if let Some(place) = place_of(keys, key, key_type) {
                    return Read::Entry(entry_at(lump, place));
                }
            }
            Read::Entry(None)
        })
    };
    match read {
        Read::Entry(entry) => entry.map(record),
        Read::Elsewhere { schema, name } => {
            // SAFETY: the key's datum and type are the call's own.
            let args = unsafe {
                [
                    schema.into(),
                    name.into(),
                    match key {
                        Some(key) => pgrx::datum::DatumWithOid::new(key, key_type),
                        None => pgrx::datum::DatumWithOid::null_oid(key_type),
                    },
                ]
            };
            pgrx::spi::Spi::get_one_with_args::<String>(
                "SELECT collect._archived($1::pg_catalog.name, $2, $3)::pg_catalog.text",
                &args,
            )
            .unwrap_or_else(|e| {
                raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("{WHO}: {e}"),
                    None,
                )
            })
            .map(|text| record(text.into_bytes()))
        }
    }
}
