//! The sketch SQL types `collect.hll`, `collect.quantiles`, `collect.topk` (declared in
//! sql/sketches.sql): text form `\x…` hex of the binary form, which is the sketch's own
//! versioned encoding; every input is decoded and re-encoded, so stored values are canonical
//! and `=` compares bytes.

use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal};

use super::hll::Hll;
use super::quantiles::Quantiles;
use super::topk::TopK;
use super::wire::hash64;
use crate::aggstate;
use crate::errors::raise;
use crate::typeio;

/// What the SQL layer needs of a sketch.
pub trait Sketch: Sized + Clone {
    const SQL_NAME: &'static str;
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
    fn merge_from(&mut self, other: &Self) -> Result<(), String>;
}

impl Sketch for Hll {
    const SQL_NAME: &'static str = "collect.hll";
    fn to_bytes(&self) -> Vec<u8> {
        Hll::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Hll::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other)
    }
}

impl Sketch for Quantiles {
    const SQL_NAME: &'static str = "collect.quantiles";
    fn to_bytes(&self) -> Vec<u8> {
        Quantiles::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Quantiles::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other);
        Ok(())
    }
}

impl Sketch for TopK {
    const SQL_NAME: &'static str = "collect.topk";
    fn to_bytes(&self) -> Vec<u8> {
        TopK::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        TopK::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other)
    }
}

/// A stored sketch: damage is data corruption.
pub fn stored<S: Sketch>(bytes: &[u8]) -> S {
    S::from_bytes(bytes).unwrap_or_else(|e| {
        raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("{} value is corrupted: {e}", S::SQL_NAME), None)
    })
}

fn merge_or_raise<S: Sketch>(into: &mut S, other: &S) {
    into.merge_from(other).unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e, None))
}

fn text_in<S: Sketch>(input: &CStr) -> Vec<u8> {
    let text = input.to_string_lossy();
    let parsed = typeio::from_hex(&text).and_then(|b| S::from_bytes(&b));
    match parsed {
        Ok(sketch) => sketch.to_bytes(),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {}: \"{}\": {e}", S::SQL_NAME, text.chars().take(40).collect::<String>()),
            Some(format!("Values of {} are written as their text output, \\x followed by hex.", S::SQL_NAME)),
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

sketch_sql_functions!(Hll, hll_in, hll_out, hll_recv, hll_send, hll_eq, hll_union);
sketch_sql_functions!(Quantiles, quantiles_in, quantiles_out, quantiles_recv, quantiles_send, quantiles_eq, quantiles_union);
sketch_sql_functions!(TopK, topk_in, topk_out, topk_recv, topk_send, topk_eq, topk_union);

// ---- aggregates that build sketches: internal states, parallel safe ----

fn combine_sketches<S: Sketch>(left: Internal, right: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    aggstate::combine(left, right, fcinfo, S::SQL_NAME, |l: &mut S, r| merge_or_raise(l, r))
}

fn serialize_sketch<S: Sketch>(state: Internal) -> Vec<u8> {
    aggstate::state_ref::<S>(&state).expect("serialize is strict").to_bytes()
}

fn deserialize_sketch<S: Sketch>(bytes: &[u8]) -> Internal {
    let sketch = S::from_bytes(bytes).unwrap_or_else(|e| {
        raise(PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION, format!("invalid {} partial state: {e}", S::SQL_NAME), None)
    });
    aggstate::state_here(sketch)
}

fn final_sketch<S: Sketch>(state: Internal) -> Option<Vec<u8>> {
    aggstate::state_ref::<S>(&state).map(S::to_bytes)
}

macro_rules! sketch_aggregate_support {
    ($rust:ty, $combine:ident, $serialize:ident, $deserialize:ident, $final:ident) => {
        #[pg_extern(sql = false)]
        fn $combine(left: Internal, right: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
            combine_sketches::<$rust>(left, right, fcinfo)
        }
        // Every function taking `internal` checks it is called by an aggregate: called from
        // SQL, its argument could be any pointer (see aggstate::aggregate_context).
        #[pg_extern(sql = false)]
        fn $serialize(state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Vec<u8> {
            aggstate::aggregate_context(fcinfo, stringify!($serialize));
            serialize_sketch::<$rust>(state)
        }
        #[pg_extern(sql = false)]
        fn $deserialize(bytes: &[u8], _unused: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
            aggstate::aggregate_context(fcinfo, stringify!($deserialize));
            deserialize_sketch::<$rust>(bytes)
        }
        #[pg_extern(sql = false)]
        fn $final(state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<u8>> {
            aggstate::aggregate_context(fcinfo, stringify!($final));
            final_sketch::<$rust>(state)
        }
    };
}

sketch_aggregate_support!(Hll, hll_agg_combine, hll_agg_serialize, hll_agg_deserialize, hll_agg_final);
sketch_aggregate_support!(Quantiles, quantiles_agg_combine, quantiles_agg_serialize, quantiles_agg_deserialize, quantiles_agg_final);
sketch_aggregate_support!(TopK, topk_agg_combine, topk_agg_serialize, topk_agg_deserialize, topk_agg_final);

/// The transition function of `collect.merge(hll)`. Called by an aggregate on a dense state,
/// it merges in place (the state belongs to the aggregate); otherwise it is `hll_union`.
#[pg_extern(sql = false)]
fn hll_merge_trans(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: a STRICT function of two collect.hll arguments; the state is detoasted into a
    // plain 4-byte-header varlena (the same pointer when it already is one, as an aggregate's
    // own state is), and only modified in place when an aggregate owns it.
    unsafe {
        let state = pg_sys::pg_detoast_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0).cast_mut_ptr());
        let other = <&[u8]>::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 1), false).unwrap_or_default();
        // Plain aggregates only: a window aggregate may still hand out the state it returned.
        let in_aggregate = pg_sys::AggCheckCallContext(fcinfo, std::ptr::null_mut()) == pg_sys::AGG_CONTEXT_AGGREGATE as i32;
        if in_aggregate {
            let len = pgrx::varsize_any_exhdr(state);
            let bytes = std::slice::from_raw_parts_mut(pgrx::vardata_any(state) as *mut u8, len);
            match super::hll::merge_into_stored_dense(bytes, other) {
                Ok(true) => return Internal::from(Some(pg_sys::Datum::from(state))),
                // Not dense, or an input the usual path reports with the right SQLSTATE.
                Ok(false) | Err(_) => {}
            }
        }
        let state_bytes = std::slice::from_raw_parts(pgrx::vardata_any(state) as *const u8, pgrx::varsize_any_exhdr(state));
        let merged = union::<Hll>(state_bytes, other);
        Internal::from(merged.into_datum())
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
        let oid = pgrx::fcinfo::pg_getarg_type(fcinfo, arg);
        let int = match oid {
            pg_sys::INT2OID => Some(i16::from_datum(datum, false).unwrap_or(0) as i64),
            pg_sys::INT4OID => Some(i32::from_datum(datum, false).unwrap_or(0) as i64),
            pg_sys::INT8OID => Some(i64::from_datum(datum, false).unwrap_or(0)),
            _ => None,
        };
        if let Some(i) = int {
            return Some(hash64(&i.to_le_bytes()));
        }
        if oid == pg_sys::TEXTOID || oid == pg_sys::VARCHAROID {
            let text = <&[u8]>::from_datum(datum, false).unwrap_or_default();
            return Some(hash64(text));
        }
        let mut output: pg_sys::Oid = pg_sys::Oid::INVALID;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(oid, &mut output, &mut varlena);
        let text = pg_sys::OidOutputFunctionCall(output, datum);
        Some(hash64(CStr::from_ptr(text).to_bytes()))
    }
}

#[pg_extern(sql = false)]
fn hll_agg_trans(mut state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let hash = hash_of(fcinfo, 1);
    let hll = aggstate::state_or_init(&mut state, fcinfo, "hll_agg", Hll::default);
    if let Some(h) = hash {
        hll.add_hash(h);
    }
    state
}

#[pg_extern(sql = false)]
fn quantiles_agg_trans(mut state: Internal, value: Option<f64>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let q = aggstate::state_or_init(&mut state, fcinfo, "quantiles_agg", Quantiles::default);
    if let Some(v) = value {
        q.add(v).unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("quantiles_agg: {e}"),
                Some("Filter out NaN and infinite values, or map them to a finite value.".into()),
            )
        });
    }
    state
}

#[pg_extern(sql = false)]
fn topk_agg_trans(mut state: Internal, value: Option<&str>, k: Option<i32>, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let k = match k {
        Some(k) if k >= 1 && k as u32 <= super::topk::MAX_K => k as u32,
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("topk_agg: k must be between 1 and {}, not {}", super::topk::MAX_K, other.map_or("NULL".into(), |k| k.to_string())),
            None,
        ),
    };
    let sketch = aggstate::state_or_init(&mut state, fcinfo, "topk_agg", || TopK::new(k).expect("k was checked"));
    if sketch.k() != k {
        raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "topk_agg: k must be the same on every row".into(), None);
    }
    if let Some(v) = value {
        sketch.add(v, 1);
    }
    state
}

// ---- accessors ----

#[pg_extern(sql = false)]
fn hll_distinct_count(value: &[u8]) -> i64 {
    stored::<Hll>(value).estimate().round() as i64
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
    qs.into_iter().map(|q| q.and_then(|q| sketch.quantile(check_quantile(q)))).collect()
}

#[pg_extern(sql = false)]
fn quantiles_count(value: &[u8]) -> i64 {
    stored::<Quantiles>(value).count() as i64
}

#[pg_extern(sql = false)]
fn topk_top(
    value: &[u8],
    n: i32,
) -> TableIterator<'static, (name!(value, String), name!(count, i64), name!(error, i64))> {
    if n < 0 {
        raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("top: n must not be negative, not {n}"), None);
    }
    let rows: Vec<_> = stored::<TopK>(value)
        .top(n as usize)
        .into_iter()
        .map(|(v, c, e)| (v, c as i64, e as i64))
        .collect();
    TableIterator::new(rows)
}
