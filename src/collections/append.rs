//! Appends of one entry (`collect.append`, C functions from 0.5.0): an append is one small
//! insert, so what surrounds it has to cost less than the insert. The name is resolved from
//! the syscaches, and the definition checked and the entry inserted by one statement the
//! session prepared once; nothing is planned per call.

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::generate::Tables;
use super::sql::{definition, key_type_name, spi_error};
use crate::errors::raise;
use crate::jsonb::JsonbArg;
use crate::registry;

thread_local! {
    /// Per pending table, type the key comes in and type of the key column, the checked
    /// insert of one entry.
    static APPENDS: crate::plans::Session<(pg_sys::Oid, pg_sys::Oid, pg_sys::Oid)> =
        crate::plans::Session::new("collect.append");
}

/// Appends `entry` under `key` (of type `key_type`, one of the overloads'); its seq.
fn append<K: pgrx::IntoDatum + Clone>(
    collection: Option<&str>,
    key: Option<K>,
    key_type: pg_sys::Oid,
    entry: Option<JsonbArg>,
) -> i64 {
    let (schema, name) = registry::resolve("collection", collection, Some("_pending"));
    let (Some(key), Some(entry)) = (key, entry) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "collect.append needs a collection, a key and an entry, not NULL".into(),
            Some("To append a JSON null, pass 'null'::jsonb.".into()),
        )
    };
    if let Some(seq) = schema
        .as_deref()
        .filter(|_| !registry::citus_present())
        .and_then(|schema| inserted(schema, &name, key.clone().into(), key_type, &entry))
    {
        return seq;
    }
    // No collection by that name, one whose definition does not hold (the definition's check
    // raises their errors), or one the statement above does not serve: on Citus, whose
    // distributed tables take the earlier path's one-shot insert, or with a key column
    // altered to another type.
    let def = definition(schema.as_deref(), Some(&name));
    Spi::get_one_with_args::<i64>(
        "SELECT collect._append($1::pg_catalog.name, $2, $3::pg_catalog.text, $4)",
        &[
            def.schema.as_str().into(),
            def.name.as_str().into(),
            key.into(),
            entry.as_parameter(),
        ],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_default()
}

/// The seq of the entry appended by the statement the session keeps for the collection's
/// pending table, when the table is there, its key column of a key type, and the definition
/// holds; None otherwise, and nothing written.
fn inserted(
    schema: &str,
    name: &str,
    key: DatumWithOid<'_>,
    key_type: pg_sys::Oid,
    entry: &JsonbArg,
) -> Option<i64> {
    let pending = registry::relation(schema, &format!("{name}_pending"))?;
    // SAFETY: syscache lookups of a relation's column; a miss gives InvalidAttrNumber or
    // InvalidOid.
    let column_type = unsafe {
        let attnum = pg_sys::get_attnum(pending, c"key".as_ptr());
        if attnum == pg_sys::InvalidAttrNumber as i16 {
            return None;
        }
        pg_sys::get_atttype(pending, attnum)
    };
    let column_type_name = key_type_name(column_type)?;
    Spi::connect_mut(|client| {
        let insert = APPENDS.with(|kept| {
            kept.statement(
                client,
                (pending, key_type, column_type),
                &[key_type, pg_sys::JSONBOID, pg_sys::TEXTOID, pg_sys::TEXTOID],
                true,
                || Tables::of(schema, name).append_sql(column_type_name, key_type != column_type),
            )
        });
        client
            .update(
                insert.as_ref(),
                Some(1),
                &[key, entry.as_parameter(), schema.into(), name.into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .next()
            .map(|row| row.get::<i64>(1).ok().flatten().unwrap_or_default())
    })
}

#[pg_extern(sql = false)]
fn collection_append_text(
    collection: Option<&str>,
    key: Option<&str>,
    entry: Option<JsonbArg>,
) -> i64 {
    append(collection, key, pg_sys::TEXTOID, entry)
}

#[pg_extern(sql = false)]
fn collection_append_bigint(
    collection: Option<&str>,
    key: Option<i64>,
    entry: Option<JsonbArg>,
) -> i64 {
    append(collection, key, pg_sys::INT8OID, entry)
}

#[pg_extern(sql = false)]
fn collection_append_uuid(
    collection: Option<&str>,
    key: Option<pgrx::Uuid>,
    entry: Option<JsonbArg>,
) -> i64 {
    append(collection, key, pg_sys::UUIDOID, entry)
}
