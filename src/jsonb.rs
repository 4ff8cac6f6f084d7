//! `jsonb` in and out of our functions without pgrx's `JsonB`, which converts through
//! `serde_json::Value` and text in both directions. Entries reach us as Postgres' own binary
//! `jsonb`, are printed once by Postgres (`JsonbToCString`) into the canonical JSON text that
//! lumps store, and are parsed back by Postgres' own `jsonb_in`.

use std::ffi::{CStr, CString};

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::datum::Datum;
use pgrx::nullable::Nullable;
use pgrx::prelude::*;
use pgrx::{direct_function_call_as_datum, pg_sys, FromDatum, IntoDatum};

/// A `jsonb` argument, detoasted, not converted.
pub struct JsonbArg(*mut pg_sys::Jsonb);

impl JsonbArg {
    fn root(&self) -> *mut pg_sys::JsonbContainer {
        // SAFETY: the pointer came from a detoasted, non-null jsonb datum.
        unsafe { std::ptr::addr_of_mut!((*self.0).root) }
    }

    fn root_header(&self) -> u32 {
        // SAFETY: as in `root`; every jsonb container starts with its header word.
        unsafe { (*self.root()).header }
    }

    /// The argument as it came, to pass on to a statement as a parameter.
    pub fn as_parameter(&self) -> pgrx::datum::DatumWithOid<'_> {
        // SAFETY: a detoasted jsonb, alive while `self` is.
        unsafe { pgrx::datum::DatumWithOid::new(pg_sys::Datum::from(self.0), pg_sys::JSONBOID) }
    }

    /// A description the SQL layer built (a spec, a key) as the struct a generator takes: 22023
    /// naming `what` when it does not fit, with `hint` where one helps.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self, what: &str, hint: Option<&str>) -> T {
        serde_json::from_slice(self.to_text().to_bytes()).unwrap_or_else(|e| {
            crate::errors::raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid {what}: {e}"),
                hint.map(str::to_string),
            )
        })
    }

    /// True for a JSON array (not a scalar, which jsonb keeps as a one-element raw array).
    pub fn is_array(&self) -> bool {
        let header = self.root_header();
        header & pg_sys::JB_FARRAY != 0 && header & pg_sys::JB_FSCALAR == 0
    }

    /// The canonical JSON text of this value (Postgres' `jsonb` output form), allocated in
    /// the current memory context.
    pub fn to_text(&self) -> &CStr {
        // SAFETY: JsonbToCString reads a valid container and returns a palloc'd C string,
        // which lives as long as the current memory context, longer than `self` is used.
        unsafe {
            let size = pgrx::varlena::varsize_any(self.0.cast()) as i32;
            CStr::from_ptr(pg_sys::JsonbToCString(
                std::ptr::null_mut(),
                self.root(),
                size,
            ))
        }
    }
}

impl FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum points to a (possibly toasted) varlena.
        let detoasted = unsafe { pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) };
        Some(JsonbArg(detoasted.cast()))
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

pgrx::impl_sql_translatable!(JsonbArg, "jsonb");

/// A `jsonb` result, already a Postgres datum.
pub struct JsonbValue(pg_sys::Datum);

impl JsonbValue {
    /// Parses JSON text with Postgres' `jsonb_in`: malformed text raises Postgres' own
    /// `22P02` error, naming the offending token.
    pub fn parse(text: &CStr) -> JsonbValue {
        // SAFETY: jsonb_in takes one cstring argument and never returns NULL.
        let datum =
            unsafe { direct_function_call_as_datum(pg_sys::jsonb_in, &[text.into_datum()]) };
        JsonbValue(datum.expect("jsonb_in returned NULL"))
    }

    /// This value seen as an argument, for code shared between both (jsonb_in's result is
    /// a plain, untoasted varlena).
    pub fn as_arg(&self) -> JsonbArg {
        JsonbArg(self.0.cast_mut_ptr())
    }

    /// Like [`JsonbValue::parse`] for text that is not NUL-terminated yet.
    /// A value serde writes (statements by name, say), as jsonb.
    pub fn serialize(value: &impl serde::Serialize) -> JsonbValue {
        JsonbValue::parse_bytes(&serde_json::to_vec(value).expect("serializes to JSON"))
    }

    pub fn parse_bytes(text: &[u8]) -> JsonbValue {
        match CString::new(text) {
            Ok(c) => JsonbValue::parse(&c),
            Err(_) => crate::errors::raise(
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                "a stored JSON entry contains a NUL byte".into(),
                None,
            ),
        }
    }
}

impl IntoDatum for JsonbValue {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl BoxRet for JsonbValue {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

pgrx::impl_sql_translatable!(JsonbValue, "jsonb");
