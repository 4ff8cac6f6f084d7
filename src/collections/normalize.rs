//! Normalization: folding each key's appended entries into its base lump, key by key.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgOid};

use super::pipeline::{Entry, Pipeline};
use super::sql::{
    base_entries, base_lump, definition, parse_entry, parse_pipeline, run_pipeline, spi_error,
    Definition,
};
use crate::errors::raise;
use crate::jsonb::JsonbValue;
use crate::lump::sql::StoredLump;
use crate::registry;

/// The type of `base`'s lumps, to pass lumps to SPI as that type without a cast (found by the
/// column, as the installed release may name the type otherwise: `registry::Vocabulary`).
fn lump_type_oid(base: &str) -> pg_sys::Oid {
    Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT (SELECT atttypid FROM pg_catalog.pg_attribute WHERE attrelid = $1::pg_catalog.regclass AND attname = 'entries' AND NOT attisdropped)",
        &[base.into()],
    )
    .unwrap_or_else(|e| spi_error(e))
    .unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
            format!("{base} has no entries column"),
            None,
        )
    })
}

#[derive(Default)]
struct FoldStats {
    keys: i64,
    entries_in: i64,
    entries_out: i64,
    bytes_before: i64,
    bytes_after: i64,
    keys_emptied: i64,
}

/// Folds each key's foldable pending entries into its base with `pipeline`, one key at a
/// time, with statements prepared once per pass. A key's base row stays locked until the
/// pass commits: other folds of that key wait, appends and reads never do.
fn fold_keys(
    def: &Definition,
    pipeline: &Pipeline,
    keys: &[String],
    horizon: &str,
    bound: &str,
    level: &str,
    stats: &mut FoldStats,
) {
    let lump_oid = lump_type_oid(&def.base);
    let text = PgOid::from(pg_sys::TEXTOID);
    // SAFETY: reads the transaction's start time (what now() returns); it is passed below
    // as the timestamptz it is.
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    Spi::connect_mut(|client| {
        fn prepare<'c>(
            client: &pgrx::spi::SpiClient<'c>,
            sql: &str,
            args: &[PgOid],
        ) -> pgrx::spi::PreparedStatement<'c> {
            client
                .prepare_mut(sql, args)
                .unwrap_or_else(|e| spi_error(e))
        }
        let sql = def.tables().statements(def.key_type);
        let ensure = prepare(client, &sql.ensure, &[text]);
        let lock = prepare(client, &sql.lock, &[text]);
        let take = prepare(client, &sql.take, &[text, text, text]);
        let store = prepare(
            client,
            &sql.store,
            &[
                text,
                PgOid::from(lump_oid),
                PgOid::from(pg_sys::BOOLOID),
                text,
                PgOid::from(pg_sys::TIMESTAMPTZOID),
            ],
        );
        let remove = prepare(client, &sql.remove, &[text]);

        for key in keys {
            client
                .update(&ensure, None, &[key.as_str().into()])
                .unwrap_or_else(|e| spi_error(e));
            let lump: Vec<u8> = client
                .update(&lock, None, &[key.as_str().into()])
                .unwrap_or_else(|e| spi_error(e))
                .first()
                .get_one::<StoredLump>()
                .unwrap_or_else(|e| spi_error(e))
                .map(|l| l.0)
                .unwrap_or_default();
            let mut entries = if lump.is_empty() {
                Vec::new()
            } else {
                base_entries(&lump)
            };
            let mut folded: Vec<(u64, Entry, usize)> = Vec::new();
            let rows = client
                .update(
                    &take,
                    None,
                    &[key.as_str().into(), horizon.into(), bound.into()],
                )
                .unwrap_or_else(|e| spi_error(e));
            for row in rows {
                let txn: u64 = row
                    .get::<String>(1)
                    .ok()
                    .flatten()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let seq: i64 = row.get(2).ok().flatten().unwrap_or(0);
                // Unix microseconds, computed here: Citus refuses a RETURNING clause that calls
                // anything not immutable, and extract() on a timestamptz is only stable.
                let at: i64 = row
                    .get::<TimestampWithTimeZone>(3)
                    .ok()
                    .flatten()
                    .map_or(0, |t| {
                        pg_sys::TimestampTz::from(t) + crate::calendar::POSTGRES_EPOCH_US
                    });
                let text: String = row.get(4).ok().flatten().unwrap_or_default();
                folded.push((
                    txn,
                    Entry {
                        seq,
                        at,
                        value: parse_entry(&text),
                    },
                    text.len(),
                ));
            }
            folded.sort_by_key(|(txn, e, _)| (*txn, e.seq));
            stats.keys += 1;
            stats.entries_in += (entries.len() + folded.len()) as i64;
            stats.bytes_before +=
                (lump.len() + folded.iter().map(|(_, _, n)| n).sum::<usize>()) as i64;
            entries.extend(folded.into_iter().map(|(_, e, _)| e));
            let mut result = run_pipeline(def, pipeline, entries);
            // Bases keep append order, whatever order the pipeline presents.
            result.sort_by_key(|e| e.seq);
            stats.entries_out += result.len() as i64;
            if result.is_empty() {
                stats.keys_emptied += 1;
                client
                    .update(&remove, None, &[key.as_str().into()])
                    .unwrap_or_else(|e| spi_error(e));
            } else {
                let new_lump = base_lump(&result);
                stats.bytes_after += new_lump.len() as i64;
                let changed = new_lump != lump;
                // SAFETY: the bytes are a lump, the varlena body of a collect.lump.
                let lump_arg = unsafe { DatumWithOid::new(new_lump, lump_oid) };
                client
                    .update(
                        &store,
                        None,
                        &[
                            key.as_str().into(),
                            lump_arg,
                            changed.into(),
                            level.into(),
                            unsafe { DatumWithOid::new(now, pg_sys::TIMESTAMPTZOID) },
                        ],
                    )
                    .unwrap_or_else(|e| spi_error(e));
            }
            pgrx::check_for_interrupts!();
        }
    });
}

/// Folds appended entries into each key's base with the level's pipeline (or the foldable
/// prefix of the read pipeline). Visits at most `max_keys` keys; see the SQL docs.
#[pg_extern(sql = false)]
fn collection_normalize(
    schema: Option<&str>,
    collection: Option<&str>,
    level: Option<&str>,
    all_keys: Option<bool>,
    max_keys: Option<i64>,
    pass_started: Option<TimestampWithTimeZone>,
) -> JsonbValue {
    let started = std::time::Instant::now();
    let def = definition(schema, collection);
    let collection = def.name.as_str();
    let (Some(level), Some(all_keys)) = (level, all_keys) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "level and all_keys must not be NULL".into(),
            None,
        )
    };
    if max_keys.is_some_and(|m| m < 1) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_keys must be positive, not {}", max_keys.unwrap_or(0)),
            None,
        );
    }
    // The definition's row first, as drop_collection takes it: a drop waits for this pass
    // (and a pass that starts after a drop committed finds nothing) instead of deadlocking.
    let locked = Spi::get_one_with_args::<bool>(
        "SELECT collect._lock_definition('collection', $1, $2, 'NO KEY UPDATE')",
        &[def.schema.as_str().into(), collection.into()],
    );
    if !matches!(locked, Ok(Some(true))) {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("collection \"{collection}\" does not exist"),
            None,
        );
    }
    // Folding writes the owner's tables (their triggers fire) and runs the owner's sql
    // steps: all of it as the owner, in a restricted operation, whoever asked for the pass.
    let summary = registry::as_owner(def.owner, || {
        let pipeline = match def.levels.get(level) {
            Some(steps) => parse_pipeline(steps, &format!("\"{level}\" level")),
            None => parse_pipeline(&def.read, "read").foldable_prefix(),
        };
        let horizon =
            Spi::get_one::<String>("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .unwrap_or_else(|e| spi_error(e))
                .expect("a snapshot has an xmin");
        // Keys in key order, so concurrent passes lock base rows in the same order.
        let bound = super::sql::forged_txn_bound();
        let sql = def.tables().statements(def.key_type);
        let keys_query = if all_keys {
            sql.keys_due_every
        } else {
            sql.keys_due_changed
        };
        let keys: Vec<String> = Spi::connect(|client| {
            client
                .select(
                    &keys_query,
                    None,
                    &[
                        level.into(),
                        horizon.clone().into(),
                        pass_started.into(),
                        max_keys.into(),
                        bound.clone().into(),
                    ],
                )
                .unwrap_or_else(|e| spi_error(e))
                .filter_map(|row| row.get::<String>(1).ok().flatten())
                .collect()
        });
        let mut stats = FoldStats::default();
        fold_keys(&def, &pipeline, &keys, &horizon, &bound, level, &mut stats);
        let summary = serde_json::json!({
            "collection": def.name,
            "level": level,
            "all_keys": all_keys,
            "keys_visited": stats.keys,
            "keys_emptied": stats.keys_emptied,
            "entries_in": stats.entries_in,
            "entries_out": stats.entries_out,
            "bytes_before": stats.bytes_before,
            "bytes_after": stats.bytes_after,
            "complete": max_keys.is_none_or(|m| (keys.len() as i64) < m),
            "ms": (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        });
        Spi::run_with_args(
            "UPDATE collect.collection_defs
                SET last_normalized = last_normalized || jsonb_build_object($2::text, $3::jsonb || jsonb_build_object('at', now()))
              WHERE schema = $4 AND name = $1",
            &[collection.into(), level.into(), summary.to_string().into(), def.schema.as_str().into()],
        )
        .unwrap_or_else(|e| spi_error(e));
        summary
    });
    JsonbValue::parse_bytes(summary.to_string().as_bytes())
}
