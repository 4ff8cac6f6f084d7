//! The sketch SQL types `collect.hll`, `collect.quantiles`, `collect.topk` (declared in
//! sql/sketches.sql): text form `\x…` hex of the binary form, which is the sketch's own
//! versioned encoding; every input is decoded and re-encoded, so stored values are canonical
//! and `=` compares bytes.

use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

use super::expanded::{self, expanded_sketch};
use super::hll::Hll;
use super::quantiles::Quantiles;
use super::sketch::Sketch;
use super::stored::{merge_or_raise, stored};
use super::topk::TopK;
use super::wire::hash64;
use crate::errors::raise;
use crate::typeio;

fn text_in<S: Sketch>(input: &CStr) -> Vec<u8> {
    let text = input.to_string_lossy();
    let parsed = typeio::from_hex(&text).and_then(|b| S::from_bytes(&b));
    match parsed {
        Ok(sketch) => sketch.to_bytes(),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!(
                "invalid input syntax for type {}: \"{}\": {e}",
                S::SQL_NAME,
                text.chars().take(40).collect::<String>()
            ),
            Some(format!(
                "Values of {} are written as their text output, \\x followed by hex.",
                S::SQL_NAME
            )),
        ),
    }
}

fn binary_in<S: Sketch>(buf: Internal) -> Vec<u8> {
    match S::from_bytes(typeio::recv_bytes(buf)) {
        Ok(sketch) => sketch.to_bytes(),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("invalid binary {} value: {e}", S::SQL_NAME),
            None,
        ),
    }
}

fn union<S: Sketch>(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut merged: S = stored(a);
    merge_or_raise(&mut merged, &stored::<S>(b));
    merged.to_bytes()
}

/// The I/O, equality and union functions of one sketch type.
macro_rules! sketch_sql_functions {
    ($rust:ty, $in:ident, $out:ident, $recv:ident, $send:ident, $eq:ident, $union:ident) => {
        #[pg_extern(sql = false)]
        fn $in(input: &CStr) -> Vec<u8> {
            text_in::<$rust>(input)
        }
        #[pg_extern(sql = false)]
        fn $out(value: &[u8]) -> CString {
            CString::new(typeio::to_hex(value)).expect("hex has no NUL")
        }
        #[pg_extern(sql = false)]
        fn $recv(buf: Internal) -> Vec<u8> {
            binary_in::<$rust>(buf)
        }
        #[pg_extern(sql = false)]
        fn $send(value: &[u8]) -> Vec<u8> {
            value.to_vec()
        }
        #[pg_extern(sql = false)]
        fn $eq(a: &[u8], b: &[u8]) -> bool {
            a == b
        }
        #[pg_extern(sql = false)]
        fn $union(a: &[u8], b: &[u8]) -> Vec<u8> {
            union::<$rust>(a, b)
        }
    };
}

// `*_union` are the symbols of `collect.merge(a, b)` (`hll_union` until 0.3.0): released
// install scripts call them by these names.
sketch_sql_functions!(Hll, hll_in, hll_out, hll_recv, hll_send, hll_eq, hll_union);
sketch_sql_functions!(
    Quantiles,
    quantiles_in,
    quantiles_out,
    quantiles_recv,
    quantiles_send,
    quantiles_eq,
    quantiles_union
);
sketch_sql_functions!(TopK, topk_in, topk_out, topk_recv, topk_send, topk_eq, topk_union);

// ---- aggregates: the sketch type is the state (see expanded.rs) ----

expanded_sketch!(Hll);
expanded_sketch!(Quantiles);
expanded_sketch!(TopK);

fn datum_result(datum: Option<pg_sys::Datum>) -> Internal {
    Internal::from(datum)
}

/// `collect.merge(hll)`'s transition and every hll aggregate's combine function.
#[pg_extern(sql = false)]
fn hll_merge_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: declared with two arguments of the sketch's type.
    datum_result(unsafe { expanded::merge_transition::<Hll>(fcinfo) })
}

#[pg_extern(sql = false)]
fn quantiles_merge_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: declared with two arguments of the sketch's type.
    datum_result(unsafe { expanded::merge_transition::<Quantiles>(fcinfo) })
}

#[pg_extern(sql = false)]
fn topk_merge_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: declared with two arguments of the sketch's type.
    datum_result(unsafe { expanded::merge_transition::<TopK>(fcinfo) })
}

/// The type of argument `arg`: from the call expression, or, when the caller gives none (Citus
/// calls a pushed-down aggregate's transition function so), as the function declares it.
fn argument_type(fcinfo: pg_sys::FunctionCallInfo, arg: usize) -> pg_sys::Oid {
    // SAFETY: fcinfo is this call's; get_func_signature reads the catalog entry of the
    // function being called and returns its argument types.
    unsafe {
        let oid = pgrx::fcinfo::pg_getarg_type(fcinfo, arg);
        if oid != pg_sys::Oid::INVALID {
            return oid;
        }
        let mut types: *mut pg_sys::Oid = std::ptr::null_mut();
        let mut count = 0;
        pg_sys::get_func_signature((*(*fcinfo).flinfo).fn_oid, &mut types, &mut count);
        let declared = if (arg as i32) < count {
            *types.add(arg)
        } else {
            pg_sys::Oid::INVALID
        };
        if declared == pg_sys::Oid::INVALID || declared == pg_sys::ANYELEMENTOID {
            raise(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "hll_agg: the type of the values is not known in this call".into(),
                Some("Cast the values to bigint, integer, text, uuid, numeric, date or a timestamp, which hll_agg takes as such.".into()),
            );
        }
        declared
    }
}

/// The bytes a value is counted by: integers by their value (so int2, int4 and int8 agree),
/// text by its bytes, anything else by its text output.
fn hash_of(fcinfo: pg_sys::FunctionCallInfo, arg: usize) -> Option<u64> {
    // SAFETY: reading argument `arg` of a call whose argument types Postgres resolved.
    unsafe {
        let nullable = pgrx::fcinfo::pg_get_nullable_datum(fcinfo, arg);
        if nullable.isnull {
            return None;
        }
        let datum = nullable.value;
        let value_type = value_type(fcinfo, arg);
        let int = match (*value_type).oid {
            pg_sys::INT2OID => Some(i16::from_datum(datum, false).unwrap_or(0) as i64),
            pg_sys::INT4OID => Some(i32::from_datum(datum, false).unwrap_or(0) as i64),
            pg_sys::INT8OID => Some(i64::from_datum(datum, false).unwrap_or(0)),
            _ => None,
        };
        if let Some(i) = int {
            return Some(hash64(&i.to_le_bytes()));
        }
        if matches!((*value_type).oid, pg_sys::TEXTOID | pg_sys::VARCHAROID) {
            let text = <&[u8]>::from_datum(datum, false).unwrap_or_default();
            return Some(hash64(text));
        }
        let text = pg_sys::OutputFunctionCall(&mut (*value_type).output, datum);
        Some(hash64(CStr::from_ptr(text).to_bytes()))
    }
}

/// The type of a call's values and its output function, looked up on the call's first row
/// and kept with the call (in `fn_extra`, which only this function uses).
#[repr(C)]
struct ValueType {
    oid: pg_sys::Oid,
    output: pg_sys::FmgrInfo,
}

unsafe fn value_type(fcinfo: pg_sys::FunctionCallInfo, arg: usize) -> *mut ValueType {
    // SAFETY: fn_extra of this function's FmgrInfo is ours; what we keep there lives in the
    // FmgrInfo's own memory context.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if !(*flinfo).fn_extra.is_null() {
            return (*flinfo).fn_extra as *mut ValueType;
        }
        let oid = argument_type(fcinfo, arg);
        let kept =
            pg_sys::MemoryContextAllocZero((*flinfo).fn_mcxt, std::mem::size_of::<ValueType>())
                as *mut ValueType;
        (*kept).oid = oid;
        if !matches!(
            oid,
            pg_sys::INT2OID
                | pg_sys::INT4OID
                | pg_sys::INT8OID
                | pg_sys::TEXTOID
                | pg_sys::VARCHAROID
        ) {
            let mut output = pg_sys::Oid::INVALID;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(oid, &mut output, &mut varlena);
            pg_sys::fmgr_info_cxt(output, &mut (*kept).output, (*flinfo).fn_mcxt);
        }
        (*flinfo).fn_extra = kept as *mut std::ffi::c_void;
        kept
    }
}

/// An aggregate's parameter (an hll's precision, a topk's k): within `range`, else 22023.
fn parameter_in(
    aggregate: &str,
    name: &str,
    value: Option<i32>,
    range: std::ops::RangeInclusive<i32>,
    hint: Option<&str>,
) -> i32 {
    match value {
        Some(v) if range.contains(&v) => v,
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{aggregate}: {name} must be between {} and {}, not {}",
                range.start(),
                range.end(),
                other.map_or("NULL".into(), |v| v.to_string())
            ),
            hint.map(str::to_string),
        ),
    }
}

/// A parameter is the sketch's shape: every row must give the one the state was made with.
fn same_parameter(aggregate: &str, name: &str, state: u32, row: u32) {
    if state != row {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{aggregate}: {name} must be the same on every row"),
            None,
        );
    }
}

/// `hll_agg(value)` and `hll_agg(value, log2m)`: log2m is the precision, 2^log2m registers.
#[pg_extern(sql = false)]
fn hll_agg_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let hash = hash_of(fcinfo, 1);
    // SAFETY: a third argument, when declared, is an integer (or NULL).
    let precision = if unsafe { (*fcinfo).nargs } > 2 {
        let given = unsafe { pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 2) };
        parameter_in("hll_agg", "log2m", given, super::hll::MIN_PRECISION as i32..=super::hll::MAX_PRECISION as i32,
                     Some("The standard error is 1.04/sqrt(2^log2m): 2.3% at 11, 0.81% at 14 (the default), 0.41% at 16."))
            as u8
    } else {
        super::hll::DEFAULT_PRECISION
    };
    // SAFETY: argument 0 is the aggregate's state, of the sketch's type.
    datum_result(Some(unsafe {
        expanded::transition(
            fcinfo,
            || Hll::new(precision).expect("precision was checked"),
            |hll: &mut Hll| {
                same_parameter("hll_agg", "log2m", hll.precision() as u32, precision as u32);
                if let Some(h) = hash {
                    hll.add_hash(h);
                }
            },
        )
    }))
}

#[pg_extern(sql = false)]
fn quantiles_agg_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: argument 1 is a float8 (or NULL), as the aggregate declares.
    let value = unsafe { pgrx::fcinfo::pg_getarg::<f64>(fcinfo, 1) };
    // SAFETY: argument 0 is the aggregate's state, of the sketch's type.
    datum_result(Some(unsafe {
        expanded::transition(fcinfo, Quantiles::default, |q: &mut Quantiles| {
            if let Some(v) = value {
                q.add(v).unwrap_or_else(|e| {
                    raise(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        format!("quantiles_agg: {e}"),
                        Some(
                            "Filter out NaN and infinite values, or map them to a finite value."
                                .into(),
                        ),
                    )
                });
            }
        })
    }))
}

#[pg_extern(sql = false)]
fn topk_agg_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: arguments 1 and 2 are text and integer (or NULL), as the aggregate declares.
    let (value, k) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<&str>(fcinfo, 1),
            pgrx::fcinfo::pg_getarg::<i32>(fcinfo, 2),
        )
    };
    let k = parameter_in("topk_agg", "k", k, 1..=super::topk::MAX_K as i32, None) as u32;
    // SAFETY: argument 0 is the aggregate's state, of the sketch's type.
    datum_result(Some(unsafe {
        expanded::transition(
            fcinfo,
            || TopK::new(k).expect("k was checked"),
            |sketch: &mut TopK| {
                same_parameter("topk_agg", "k", sketch.k(), k);
                if let Some(v) = value {
                    sketch.add(v, 1);
                }
            },
        )
    }))
}

// ---- accessors ----

/// A NULL sketch is what an aggregate over no rows gives: it counted nothing, as
/// `count(DISTINCT …)` over no rows answers 0.
#[pg_extern(sql = false)]
fn hll_distinct_count(value: Option<&[u8]>) -> i64 {
    value.map_or(0, |v| stored::<Hll>(v).estimate().round() as i64)
}

fn check_quantile(q: f64) -> f64 {
    if !(0.0..=1.0).contains(&q) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("quantile {q} is out of range"),
            Some("Quantiles are between 0 and 1, as in 0.5 for the median or 0.99.".into()),
        );
    }
    q
}

#[pg_extern(sql = false)]
fn quantiles_quantile(value: &[u8], q: f64) -> Option<f64> {
    stored::<Quantiles>(value).quantile(check_quantile(q))
}

#[pg_extern(sql = false)]
fn quantiles_quantiles(value: &[u8], qs: Vec<Option<f64>>) -> Vec<Option<f64>> {
    let sketch = stored::<Quantiles>(value);
    qs.into_iter()
        .map(|q| q.and_then(|q| sketch.quantile(check_quantile(q))))
        .collect()
}

#[pg_extern(sql = false)]
fn quantiles_count(value: Option<&[u8]>) -> i64 {
    value.map_or(0, |v| stored::<Quantiles>(v).count() as i64)
}

#[pg_extern(sql = false)]
fn topk_top(
    value: &[u8],
    n: i32,
) -> TableIterator<'static, (name!(value, String), name!(count, i64), name!(error, i64))> {
    if n < 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("top: n must not be negative, not {n}"),
            None,
        );
    }
    let rows: Vec<_> = stored::<TopK>(value)
        .top(n as usize)
        .into_iter()
        .map(|(v, c, e)| (v, c as i64, e as i64))
        .collect();
    TableIterator::new(rows)
}
