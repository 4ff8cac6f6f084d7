//! Reads: a key's base and pending entries in one snapshot, through the read pipeline.

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::pipeline::Entry;
use super::sql::{
    base_entries, definition, entries_json, parse_entry, parse_pipeline, run_pipeline, spi_error,
    Definition,
};
use crate::jsonb::JsonbValue;
use crate::lump::sql::StoredLump;

thread_local! {
    /// Per pending table and key type, the read of some keys' stored entries.
    static STORED_ENTRIES: crate::plans::Session<(pg_sys::Oid, &'static str)> =
        crate::plans::Session::new("collect.read");
}

/// Base and pending entries of some keys, read in one statement (one snapshot: a fold that
/// commits meanwhile cannot make an entry appear twice or not at all). On Citus a statement
/// over keys of several shards runs as several queries, each with its own snapshot, so each
/// key is read on its own there: one query routed to the shard holding it.
fn stored_entries(def: &Definition, keys: &[String]) -> Vec<(String, Vec<Entry>)> {
    if keys.len() > 1 && distributed(def) {
        return keys
            .iter()
            .flat_map(|k| stored_entries(def, std::slice::from_ref(k)))
            .collect();
    }
    let bound = super::sql::forged_txn_bound();
    let mut out: Vec<(String, Vec<Entry>)> = Vec::new();
    Spi::connect(|client| {
        let args = [keys.to_vec().into(), bound.into()];
        let query = || def.tables().stored_entries_sql(def.key_type);
        let rows = if crate::registry::citus_present() {
            // Citus routes a statement by the keys it is planned with: planned at each read.
            client.select(query().as_str(), None, &args)
        } else {
            let kept = STORED_ENTRIES.with(|kept| {
                kept.statement(
                    client,
                    (def.pending_oid, def.key_type),
                    &[pg_sys::TEXTARRAYOID, pg_sys::TEXTOID],
                    false,
                    query,
                )
            });
            client.select(kept.as_ref(), None, &args)
        }
        .unwrap_or_else(|e| spi_error(e));
        for row in rows {
            let key: String = row.get(1).ok().flatten().unwrap_or_default();
            if out.last().map(|(k, _)| k != &key).unwrap_or(true) {
                out.push((key.clone(), Vec::new()));
            }
            let list = &mut out.last_mut().unwrap().1;
            let part: i32 = row.get(2).ok().flatten().unwrap_or(0);
            if part == 0 {
                let lump: Vec<u8> = row
                    .get::<StoredLump>(6)
                    .ok()
                    .flatten()
                    .map(|l| l.0)
                    .unwrap_or_default();
                list.extend(base_entries(&lump));
            } else {
                let seq: i64 = row.get(4).ok().flatten().unwrap_or(0);
                let at: i64 = row.get(5).ok().flatten().unwrap_or(0);
                let entry: String = row.get(7).ok().flatten().unwrap_or_default();
                list.push(Entry {
                    seq,
                    at,
                    value: parse_entry(&entry),
                });
            }
        }
    });
    out
}

/// On Citus, whether the collection's tables are distributed (asked only by reads of several
/// keys, which need to know).
fn distributed(def: &Definition) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT collect._distribution_column(pg_catalog.format('%I.%I', $1, $2)::pg_catalog.regclass) IS NOT NULL",
        &[def.schema.as_str().into(), format!("{}_pending", def.name).into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or(false)
}

/// The key's entries after the read pipeline.
fn read_key(def: &Definition, key: String) -> JsonbValue {
    let read = parse_pipeline(&def.read, "read");
    let entries = stored_entries(def, &[key])
        .pop()
        .map(|(_, e)| e)
        .unwrap_or_default();
    entries_json(&run_pipeline(def, &read, entries))
}

/// `collect._read(schema, collection, key)`, the read of releases before 0.5.0 (and of
/// databases not yet updated).
#[pg_extern(sql = false)]
fn collection_read(
    schema: Option<&str>,
    collection: Option<&str>,
    key: Option<&str>,
) -> Option<JsonbValue> {
    let def = definition(schema, collection);
    Some(read_key(&def, key?.to_string()))
}

/// `collect.read(collection, key)` (C functions from 0.5.0, STRICT; SQL around `_resolve` and
/// `_read` before): the name resolved from the syscaches and the key read with statements the
/// session prepared once, so that a read of a small key costs little more than its rows.
/// Keys travel as their type's text, as the stored rows print them.
fn read_named(collection: &str, key: String) -> JsonbValue {
    let (schema, name) = crate::registry::resolve("collection", Some(collection), Some("_pending"));
    read_key(&definition(schema.as_deref(), Some(&name)), key)
}

#[pg_extern(sql = false)]
fn collection_read_text(collection: &str, key: &str) -> JsonbValue {
    read_named(collection, key.to_string())
}

#[pg_extern(sql = false)]
fn collection_read_bigint(collection: &str, key: i64) -> JsonbValue {
    read_named(collection, key.to_string())
}

#[pg_extern(sql = false)]
fn collection_read_uuid(collection: &str, key: pgrx::Uuid) -> JsonbValue {
    read_named(collection, key.to_string())
}

#[pg_extern(sql = false)]
fn collection_read_many(
    schema: Option<&str>,
    collection: Option<&str>,
    keys: Option<Vec<Option<String>>>,
) -> TableIterator<'static, (name!(key, Option<String>), name!(entries, JsonbValue))> {
    let def = definition(schema, collection);
    let keys = keys.unwrap_or_default();
    let read = parse_pipeline(&def.read, "read");
    // Keys in their type's canonical text, as the stored rows print them.
    let keys: Vec<Option<String>> = Spi::get_one_with_args::<Vec<Option<String>>>(
        &def.tables().statements(def.key_type).canonical_keys,
        &[keys.into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_default();
    let wanted: Vec<String> = keys.iter().flatten().cloned().collect();
    let found: std::collections::HashMap<String, Vec<Entry>> =
        stored_entries(&def, &wanted).into_iter().collect();
    // Keys keep the order asked for; a key never written reads as [].
    let rows: Vec<_> = keys
        .into_iter()
        .map(|k| {
            // Many keys make a long call: a cancel or statement_timeout stops it.
            crate::errors::check_for_interrupts();
            let entries = k
                .as_ref()
                .and_then(|k| found.get(k).cloned())
                .unwrap_or_default();
            (k, entries_json(&run_pipeline(&def, &read, entries)))
        })
        .collect();
    TableIterator::new(rows)
}
