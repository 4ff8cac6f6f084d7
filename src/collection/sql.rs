//! The SQL layer of collections: reads and folds in Rust, over tables that
//! `collect.create_collection` (sql/collections.sql) creates. Declarations are in that file.
//!
//! Storage of a collection `c` in the creator's schema:
//! - `c_pending(key, txn xid8, seq, at, entry)`: one small row per append.
//! - `c_base(key, entries collect.collection, updated_at, levels)`: the folded lump per key;
//!   its entries are `[seq, at_us, entry]` triples, in append order.
//!
//! Append order is (txn, seq): the appending transaction's id, then the sequence. A fold takes
//! only rows of transactions older than every transaction running when it started, so every
//! row left pending sorts after every folded one, and reads are `base ++ pending`.

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB, PgOid};
use serde_json::value::RawValue;
use serde_json::Value;

use super::json;
use super::pipeline::{Entry, IntervalParser, Pipeline};
use crate::errors::{raise, raise_with_detail};
use crate::jsonb::JsonbValue;
use crate::lump::collection_type::decode_stored;
use crate::lump::format::Builder;
use crate::registry::{self, ident};

/// Microseconds between the Unix epoch and Postgres' (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

fn spi_error(e: pgrx::spi::SpiError) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("SPI: {e}"), None)
}

/// Postgres' own interval parser; a bad interval becomes a pipeline error, not an abort.
struct PgIntervals;

impl IntervalParser for PgIntervals {
    fn micros(&mut self, text: &str) -> Result<i64, String> {
        let owned = text.to_string();
        let owned_for_error = text.to_string();
        PgTryBuilder::new(move || {
            let c = std::ffi::CString::new(owned).map_err(|_| "interval contains a NUL byte".to_string())?;
            // SAFETY: interval_in(cstring, oid, int4) returns a palloc'd Interval.
            let datum = unsafe {
                pgrx::direct_function_call_as_datum(
                    pg_sys::interval_in,
                    &[c.as_c_str().into_datum(), pg_sys::Oid::INVALID.into_datum(), (-1i32).into_datum()],
                )
            }
            .ok_or("interval_in returned NULL")?;
            let iv = unsafe { &*datum.cast_mut_ptr::<pg_sys::Interval>() };
            const DAY_US: i64 = 86_400_000_000;
            (iv.month as i64 * 30)
                .checked_mul(DAY_US)
                .and_then(|us| us.checked_add(iv.day as i64 * DAY_US))
                .and_then(|us| us.checked_add(iv.time))
                .ok_or_else(|| format!("interval \"{owned_for_error}\" is out of range"))
        })
        .catch_others(|e| match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => Err(r.message().to_string()),
            CaughtError::RustPanic { ereport, .. } => Err(ereport.message().to_string()),
        })
        .execute()
    }
}

fn parse_pipeline(json: &Value, what: &str) -> Pipeline {
    Pipeline::parse(json, &mut PgIntervals).unwrap_or_else(|e| {
        raise_with_detail(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid {what} pipeline: {e}"),
            format!("The pipeline was: {json}"),
            Some(
                "Steps are objects such as {\"latest_by\": \"f\"}, {\"limit\": 10}, {\"limit\": 10, \"by\": \"f\"}, \
                 {\"order_by\": \"f\", \"desc\": true}, {\"sum_by\": \"k\", \"value\": \"v\"}, \
                 {\"expire\": \"1 hour\"}, {\"where\": {\"f\": 1}}, {\"sql\": \"schema.function\"}."
                    .into(),
            ),
        )
    })
}

/// A `sql` step's function, which must take and return jsonb: its qualified, quoted name and
/// its OID. Resolved with search_path pinned (see sql/collections.sql), so a name that is not
/// schema-qualified finds only built-in functions.
fn resolve_sql_step(function: &str) -> (String, pg_sys::Oid) {
    let found = Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT pg_catalog.format('%I.%I', n.nspname, p.proname), p.oid
                   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                  WHERE p.oid = pg_catalog.to_regprocedure($1 || '(pg_catalog.jsonb)')
                    AND p.prorettype = 'pg_catalog.jsonb'::pg_catalog.regtype AND p.prokind = 'f'",
                Some(1),
                &[function.into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        rows.into_iter().next().map(|row| {
            (row.get::<String>(1).ok().flatten().unwrap_or_default(), row.get::<pg_sys::Oid>(2).ok().flatten().unwrap_or_default())
        })
    });
    found.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("sql step function {function}(jsonb) returning jsonb does not exist"),
            Some(
                "A sql step names a function, qualified with its schema (\"myschema.myfunc\"), that takes the entries \
                 as a jsonb array and returns the new array."
                    .into(),
            ),
        )
    })
}

/// `steps` with each sql step's function replaced by its qualified name; checks that the
/// caller, who will own the collection and whose privileges its steps run with, may call it.
fn qualify_sql_steps(steps: &Value) -> Value {
    let mut steps = steps.clone();
    if let Some(array) = steps.as_array_mut() {
        for step in array {
            let Some(Value::String(function)) = step.get("sql") else { continue };
            let (qualified, oid) = resolve_sql_step(function);
            let allowed = Spi::get_one_with_args::<bool>("SELECT pg_catalog.has_function_privilege($1, 'EXECUTE')", &[oid.into()])
                .unwrap_or_else(|e| spi_error(e))
                .unwrap_or(false);
            if !allowed {
                raise(
                    PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("permission denied for function {qualified}"),
                    Some("sql steps run with the privileges of the collection's owner: its creator.".into()),
                );
            }
            step["sql"] = Value::String(qualified);
        }
    }
    steps
}

/// Validates a read pipeline and a map of level pipelines (raises 22023 / 42883 / 42501);
/// returns them as `{"read": …, "normalize": …}` with sql steps' functions qualified.
#[pg_extern(sql = false)]
fn collection_validate(read: JsonB, normalize: Option<JsonB>) -> JsonB {
    parse_pipeline(&read.0, "read");
    let mut checked = serde_json::Map::new();
    checked.insert("read".into(), qualify_sql_steps(&read.0));
    if let Some(JsonB(levels)) = normalize {
        let Some(levels) = levels.as_object() else {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid normalize levels: {levels}"),
                Some("normalize maps level names to pipelines, as in {\"daily\": [...], \"weekly\": [...]}.".into()),
            )
        };
        let mut qualified = serde_json::Map::new();
        for (level, steps) in levels {
            parse_pipeline(steps, &format!("\"{level}\" level"));
            qualified.insert(level.clone(), qualify_sql_steps(steps));
        }
        checked.insert("normalize".into(), Value::Object(qualified));
    }
    JsonB(Value::Object(checked))
}

/// What the registry says of a collection, checked against the catalogs by
/// `collect._collection_def`.
struct Definition {
    schema: String,
    name: String,
    key_type: String,
    read: Value,
    levels: Value,
    /// Whose privileges sql steps run with.
    owner: pg_sys::Oid,
    pending: String,
    base: String,
}

fn definition(schema: Option<&str>, name: Option<&str>) -> Definition {
    let Some(name) = name else {
        raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "collection name must not be NULL".into(), None)
    };
    let found = Spi::connect(|client| {
        let rows = client
            .select(
                r#"SELECT d.key_type::pg_catalog.text, d.read, coalesce(d."normalize", '{}'), r.oid, d.schema::pg_catalog.text
                     FROM collect._collection_def($1, $2) d JOIN pg_catalog.pg_roles r ON r.rolname = d.owner"#,
                Some(1),
                &[schema.into(), name.into()],
            )
            .unwrap_or_else(|e| spi_error(e));
        rows.into_iter().next().map(|row| {
            let schema: String = row.get(5).ok().flatten().unwrap_or_default();
            Definition {
                pending: format!("{}.{}", ident(&schema), ident(&format!("{name}_pending"))),
                base: format!("{}.{}", ident(&schema), ident(&format!("{name}_base"))),
                schema,
                name: name.to_string(),
                key_type: row.get(1).ok().flatten().unwrap_or_default(),
                read: row.get::<JsonB>(2).ok().flatten().map(|j| j.0).unwrap_or_default(),
                levels: row.get::<JsonB>(3).ok().flatten().map(|j| j.0).unwrap_or_default(),
                owner: row.get(4).ok().flatten().unwrap_or_default(),
            }
        })
    });
    found.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("collection \"{name}\" has no owner role"),
            None,
        )
    })
}

fn now_unix_us() -> i64 {
    // SAFETY: reads the current transaction's start time.
    (unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }) + PG_EPOCH_OFFSET_US
}

fn parse_entry(text: &str) -> Box<RawValue> {
    json::raw(text).unwrap_or_else(|| {
        raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, "a stored collection entry is not JSON".into(), None)
    })
}

/// Base lump lines are `[seq, at_us, entry]`.
fn base_entries(lump: &[u8]) -> Vec<Entry> {
    decode_stored(lump)
        .entries()
        .map(|line| {
            let (seq, at, value): (i64, i64, Box<RawValue>) = serde_json::from_slice(line).unwrap_or_else(|e| {
                raise(PgSqlErrorCode::ERRCODE_DATA_CORRUPTED, format!("collection base entry is malformed: {e}"), None)
            });
            Entry { seq, at, value }
        })
        .collect()
}

fn base_lump(entries: &[Entry]) -> Vec<u8> {
    let mut builder = Builder::new();
    for e in entries {
        let line = serde_json::to_vec(&(e.seq, e.at, &e.value)).expect("serializing JSON cannot fail");
        builder.push(&line).unwrap_or_else(|e| {
            raise(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, format!("collection base too large: {e}"), None)
        });
    }
    builder.finish()
}

/// Runs a pipeline. `sql` steps call the user's function with the privileges of the
/// collection's owner, whoever reads or normalizes: a collection is like a view.
fn run_pipeline(def: &Definition, pipeline: &Pipeline, entries: Vec<Entry>) -> Vec<Entry> {
    let mut call_sql = |function: &str, input: Vec<Entry>| -> Result<Vec<Entry>, String> {
        let array = json::array_text(input.iter().map(|e| e.value.as_ref()));
        let result = registry::as_owner(def.owner, || {
            let (routine, _) = resolve_sql_step(function);
            Spi::get_one_with_args::<String>(
                &format!("SELECT {routine}($1::pg_catalog.jsonb)::pg_catalog.text"),
                &[array.into()],
            )
        })
        .map_err(|e| e.to_string())?;
        let values: Vec<Box<RawValue>> = match result {
            None => Vec::new(),
            Some(t) if t == "null" => Vec::new(),
            Some(t) => serde_json::from_str(&t).map_err(|_| {
                format!("{function} returned {}, not a JSON array", t.chars().take(60).collect::<String>())
            })?,
        };
        // Returned entries keep the order given; they take the newest input's time and seqs
        // just below the newest input's, so they still sort before anything appended later.
        let (top_seq, top_at) = input.iter().map(|e| (e.seq, e.at)).max().unwrap_or((0, 0));
        let n = values.len() as i64;
        Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, value)| Entry { seq: top_seq - (n - 1 - i as i64), at: top_at, value })
            .collect())
    };
    pipeline.run(entries, now_unix_us(), &mut call_sql).unwrap_or_else(|e| {
        raise(PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION, format!("sql step failed: {e}"), None)
    })
}

fn entries_json(entries: &[Entry]) -> JsonbValue {
    JsonbValue::parse_bytes(json::array_text(entries.iter().map(|e| e.value.as_ref())).as_bytes())
}

/// Base and pending entries of some keys, read in one statement (one snapshot: a fold that
/// commits meanwhile cannot make an entry appear twice or not at all).
fn stored_entries(def: &Definition, keys: &[String]) -> Vec<(String, Vec<Entry>)> {
    let query = format!(
        "SELECT key::text, 0 AS part, NULL::xid8 AS txn, NULL::bigint AS seq, NULL::bigint AS at_us,
                collect.collection_send(entries) AS lump, NULL::text AS entry
           FROM {base} WHERE key = ANY($1::{kt}[])
         UNION ALL
         SELECT key::text, 1, txn, seq, (extract(epoch FROM at) * 1000000)::bigint, NULL, entry::text
           FROM {pending} WHERE key = ANY($1::{kt}[])
         ORDER BY 1, 2, 3, 4",
        base = def.base,
        pending = def.pending,
        kt = def.key_type,
    );
    let mut out: Vec<(String, Vec<Entry>)> = Vec::new();
    Spi::connect(|client| {
        let rows = client
            .select(&query, None, &[keys.to_vec().into()])
            .unwrap_or_else(|e| spi_error(e));
        for row in rows {
            let key: String = row.get(1).ok().flatten().unwrap_or_default();
            if out.last().map(|(k, _)| k != &key).unwrap_or(true) {
                out.push((key.clone(), Vec::new()));
            }
            let list = &mut out.last_mut().unwrap().1;
            let part: i32 = row.get(2).ok().flatten().unwrap_or(0);
            if part == 0 {
                let lump: Vec<u8> = row.get(6).ok().flatten().unwrap_or_default();
                list.extend(base_entries(&lump));
            } else {
                let seq: i64 = row.get(4).ok().flatten().unwrap_or(0);
                let at: i64 = row.get(5).ok().flatten().unwrap_or(0);
                let entry: String = row.get(7).ok().flatten().unwrap_or_default();
                list.push(Entry { seq, at, value: parse_entry(&entry) });
            }
        }
    });
    out
}

#[pg_extern(sql = false)]
fn collection_read(schema: Option<&str>, collection: Option<&str>, key: Option<&str>) -> Option<JsonbValue> {
    let def = definition(schema, collection);
    let key = key?;
    let read = parse_pipeline(&def.read, "read");
    let entries = stored_entries(&def, &[key.to_string()]).pop().map(|(_, e)| e).unwrap_or_default();
    Some(entries_json(&run_pipeline(&def, &read, entries)))
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
        &format!(
            "SELECT coalesce(array_agg(k::{kt}::text ORDER BY o), '{{}}') FROM unnest($1::text[]) WITH ORDINALITY AS u(k, o)",
            kt = def.key_type
        ),
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
            let entries = k.as_ref().and_then(|k| found.get(k).cloned()).unwrap_or_default();
            (k, entries_json(&run_pipeline(&def, &read, entries)))
        })
        .collect();
    TableIterator::new(rows)
}

/// The OID of `collect.collection`, to pass lumps to SPI as that type without a cast.
fn collection_type_oid() -> pg_sys::Oid {
    Spi::get_one::<pg_sys::Oid>("SELECT 'collect.collection'::regtype::oid")
        .unwrap_or_else(|e| spi_error(e))
        .expect("collect.collection exists")
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
fn fold_keys(def: &Definition, pipeline: &Pipeline, keys: &[String], horizon: &str, level: &str, stats: &mut FoldStats) {
    let (base, pending, kt) = (&def.base, &def.pending, &def.key_type);
    let text = PgOid::from(pg_sys::TEXTOID);
    let lump_oid = collection_type_oid();
    Spi::connect_mut(|client| {
        fn prepare<'c>(client: &pgrx::spi::SpiClient<'c>, sql: String, args: &[PgOid]) -> pgrx::spi::PreparedStatement<'c> {
            client.prepare_mut(sql.as_str(), args).unwrap_or_else(|e| spi_error(e))
        }
        let ensure = prepare(
            client,
            format!("INSERT INTO {base} (key, entries, updated_at) VALUES ($1::{kt}, '[]', now()) ON CONFLICT (key) DO NOTHING"),
            &[text],
        );
        let lock = prepare(
            client,
            format!("SELECT collect.collection_send(entries) FROM {base} WHERE key = $1::{kt} FOR UPDATE"),
            &[text],
        );
        let take = prepare(
            client,
            format!(
                "DELETE FROM {pending} WHERE key = $1::{kt} AND txn < $2::xid8
                 RETURNING txn::text, seq, (extract(epoch FROM at) * 1000000)::bigint, entry::text"
            ),
            &[text, text],
        );
        let store = prepare(
            client,
            format!(
                "UPDATE {base} SET entries = $2,
                    updated_at = CASE WHEN $3 THEN now() ELSE updated_at END,
                    levels = levels || jsonb_build_object($4::text, now())
                  WHERE key = $1::{kt}"
            ),
            &[text, PgOid::from(lump_oid), PgOid::from(pg_sys::BOOLOID), text],
        );
        let remove = prepare(client, format!("DELETE FROM {base} WHERE key = $1::{kt}"), &[text]);

        for key in keys {
            client.update(&ensure, None, &[key.as_str().into()]).unwrap_or_else(|e| spi_error(e));
            let lump: Vec<u8> = client
                .update(&lock, None, &[key.as_str().into()])
                .unwrap_or_else(|e| spi_error(e))
                .first()
                .get_one::<Vec<u8>>()
                .unwrap_or_else(|e| spi_error(e))
                .unwrap_or_default();
            let mut entries = if lump.is_empty() { Vec::new() } else { base_entries(&lump) };
            let mut folded: Vec<(u64, Entry, usize)> = Vec::new();
            let rows = client
                .update(&take, None, &[key.as_str().into(), horizon.into()])
                .unwrap_or_else(|e| spi_error(e));
            for row in rows {
                let txn: u64 = row.get::<String>(1).ok().flatten().and_then(|t| t.parse().ok()).unwrap_or(0);
                let seq: i64 = row.get(2).ok().flatten().unwrap_or(0);
                let at: i64 = row.get(3).ok().flatten().unwrap_or(0);
                let text: String = row.get(4).ok().flatten().unwrap_or_default();
                folded.push((txn, Entry { seq, at, value: parse_entry(&text) }, text.len()));
            }
            folded.sort_by_key(|(txn, e, _)| (*txn, e.seq));
            stats.keys += 1;
            stats.entries_in += (entries.len() + folded.len()) as i64;
            stats.bytes_before += (lump.len() + folded.iter().map(|(_, _, n)| n).sum::<usize>()) as i64;
            entries.extend(folded.into_iter().map(|(_, e, _)| e));
            let mut result = run_pipeline(def, pipeline, entries);
            // Bases keep append order, whatever order the pipeline presents.
            result.sort_by_key(|e| e.seq);
            stats.entries_out += result.len() as i64;
            if result.is_empty() {
                stats.keys_emptied += 1;
                client.update(&remove, None, &[key.as_str().into()]).unwrap_or_else(|e| spi_error(e));
            } else {
                let new_lump = base_lump(&result);
                stats.bytes_after += new_lump.len() as i64;
                let changed = new_lump != lump;
                // SAFETY: the bytes are a lump, the varlena body of a collect.collection.
                let lump_arg = unsafe { DatumWithOid::new(new_lump, lump_oid) };
                client
                    .update(&store, None, &[key.as_str().into(), lump_arg, changed.into(), level.into()])
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
) -> JsonB {
    let started = std::time::Instant::now();
    let def = definition(schema, collection);
    let collection = def.name.as_str();
    let (Some(level), Some(all_keys)) = (level, all_keys) else {
        raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "level and all_keys must not be NULL".into(), None)
    };
    if max_keys.is_some_and(|m| m < 1) {
        raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("max_keys must be positive, not {}", max_keys.unwrap_or(0)), None);
    }
    // The definition's row first, as drop_collection takes it: a drop waits for this pass
    // (and a pass that starts after a drop committed finds nothing) instead of deadlocking.
    let locked = Spi::get_one_with_args::<bool>(
        "SELECT true FROM collect.collection_defs WHERE schema = $1 AND name = $2 FOR NO KEY UPDATE",
        &[def.schema.as_str().into(), collection.into()],
    );
    if !matches!(locked, Ok(Some(true))) {
        raise(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("collection \"{collection}\" does not exist"), None);
    }
    let pipeline = match def.levels.get(level) {
        Some(steps) => parse_pipeline(steps, &format!("\"{level}\" level")),
        None => parse_pipeline(&def.read, "read").stable_prefix(),
    };
    let horizon = Spi::get_one::<String>("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
        .unwrap_or_else(|e| spi_error(e))
        .expect("a snapshot has an xmin");
    let (base, pending) = (&def.base, &def.pending);
    // Keys in key order, so concurrent passes lock base rows in the same order.
    let keys_query = if all_keys {
        format!(
            "SELECT k FROM (SELECT key::text AS k, key FROM {base}
                             WHERE coalesce((levels->>$1)::timestamptz, '-infinity') < coalesce($3, now())
                            UNION
                            SELECT key::text, key FROM {pending} WHERE txn < $2::xid8) s
              ORDER BY key LIMIT $4"
        )
    } else {
        format!(
            "SELECT k FROM (SELECT key::text AS k, key FROM {base}
                             WHERE updated_at > coalesce((levels->>$1)::timestamptz, '-infinity')
                            UNION
                            SELECT key::text, key FROM {pending} WHERE txn < $2::xid8) s
              ORDER BY key LIMIT $4"
        )
    };
    let keys: Vec<String> = Spi::connect(|client| {
        client
            .select(
                &keys_query,
                None,
                &[level.into(), horizon.clone().into(), pass_started.into(), max_keys.into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .filter_map(|row| row.get::<String>(1).ok().flatten())
            .collect()
    });
    let mut stats = FoldStats::default();
    fold_keys(&def, &pipeline, &keys, &horizon, level, &mut stats);
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
        &[collection.into(), level.into(), JsonB(summary.clone()).into(), def.schema.as_str().into()],
    )
    .unwrap_or_else(|e| spi_error(e));
    JsonB(summary)
}
