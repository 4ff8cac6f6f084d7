//! The SQL layer of collections: what reads (`read`) and folds (`normalize`) share — the
//! checked definition, pipelines parsed with Postgres' intervals, `sql` steps run as the
//! owner, and the stored forms of entries. Declarations are in sql/collections.sql.
//!
//! Storage of a collection `c` in the creator's schema:
//! - `c_pending(key, txn xid8, seq, at, entry)`: one small row per append.
//! - `c_base(key, entries collect.lump, updated_at, levels)`: the folded lump per key;
//!   its entries are `[seq, at_us, entry]` triples, in append order.
//!
//! Append order is (txn, seq): the appending transaction's id, then the sequence. A fold takes
//! only rows of transactions older than every transaction running when it started, so every
//! row left pending sorts after every folded one, and reads are `base ++ pending`.

/// The `txn` from which a pending row cannot be a real transaction's: this node's next
/// transaction id plus 2^31, far more than can be assigned while a statement starts (so no
/// row committed meanwhile is taken for forged). Computed on the node whose ids fill `txn`
/// (on Citus the coordinator; a worker's ids are a sequence of their own), and passed to the
/// statements as a parameter.
pub(super) fn forged_txn_bound() -> String {
    // SAFETY: reads the shared next transaction id under its lock (what pg_current_snapshot's
    // xmax is read from).
    let next = unsafe { pg_sys::ReadNextFullTransactionId() }.value;
    next.saturating_add(1 << 31).to_string()
}

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use serde_json::value::RawValue;
use serde_json::Value;

use super::generate::Tables;
use super::json;
use super::pipeline::{Clock, Entry, Interval, IntervalParser, Pipeline};
use crate::errors::{raise, raise_with_detail};
use crate::jsonb::{JsonbArg, JsonbValue};
use crate::lump::format::Builder;
use crate::lump::sql::decode_stored;
use crate::registry;

pub(super) fn spi_error(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI: {e}"),
        None,
    )
}

/// Postgres' own interval parser; a bad interval becomes a pipeline error, not an abort.
struct PgIntervals;

impl IntervalParser for PgIntervals {
    fn parse(&mut self, text: &str) -> Result<Interval, String> {
        let owned = text.to_string();
        PgTryBuilder::new(move || {
            let c = std::ffi::CString::new(owned)
                .map_err(|_| "interval contains a NUL byte".to_string())?;
            // SAFETY: interval_in(cstring, oid, int4) returns a palloc'd Interval.
            let datum = unsafe {
                pgrx::direct_function_call_as_datum(
                    pg_sys::interval_in,
                    &[
                        c.as_c_str().into_datum(),
                        pg_sys::Oid::INVALID.into_datum(),
                        (-1i32).into_datum(),
                    ],
                )
            }
            .ok_or("interval_in returned NULL")?;
            let iv = unsafe { &*datum.cast_mut_ptr::<pg_sys::Interval>() };
            Ok(Interval {
                months: iv.month,
                days: iv.day,
                micros: iv.time,
            })
        })
        .catch_others(|e| match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => {
                Err(r.message().to_string())
            }
            CaughtError::RustPanic { ereport, .. } => Err(ereport.message().to_string()),
        })
        .execute()
    }
}

/// `at - ago` by PostgreSQL's own arithmetic (`timestamptz - interval`, in the session's time
/// zone: a month back is a calendar month, a day back keeps the wall-clock time across DST).
/// Raises 22008 when the result is out of range.
fn instant_before(at: pg_sys::TimestampTz, ago: &Interval) -> pg_sys::TimestampTz {
    let mut interval = pg_sys::Interval {
        time: ago.micros,
        day: ago.days,
        month: ago.months,
    };
    // SAFETY: timestamptz_mi_interval(timestamptz, interval) with a pointer to a live Interval.
    let before = unsafe {
        pgrx::direct_function_call::<pg_sys::TimestampTz>(
            pg_sys::timestamptz_mi_interval,
            &[
                at.into_datum(),
                Some(pg_sys::Datum::from(std::ptr::addr_of_mut!(interval))),
            ],
        )
    };
    before.expect("timestamptz_mi_interval answers a time")
}

/// Now is the transaction's start, what `now()` answers.
struct TransactionClock;

impl Clock for TransactionClock {
    fn before_now(&self, ago: &Interval) -> i64 {
        // SAFETY: reads the current transaction's start time.
        let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
        // An age reaching back past the first representable time expires nothing.
        PgTryBuilder::new(|| instant_before(now, ago) + crate::calendar::POSTGRES_EPOCH_US)
            .catch_when(PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW, |_| {
                i64::MIN
            })
            .execute()
    }
}

pub(super) fn parse_pipeline(json: &Value, what: &str) -> Pipeline {
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
    // The levels column is `normalize` before 0.3.0: this library also serves a database that
    // has not run ALTER EXTENSION pg_collect UPDATE yet.
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
            (
                row.get::<String>(1).ok().flatten().unwrap_or_default(),
                row.get::<pg_sys::Oid>(2).ok().flatten().unwrap_or_default(),
            )
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
            let Some(Value::String(function)) = step.get("sql") else {
                continue;
            };
            let (qualified, oid) = resolve_sql_step(function);
            let allowed = Spi::get_one_with_args::<bool>(
                "SELECT pg_catalog.has_function_privilege($1, 'EXECUTE')",
                &[oid.into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .unwrap_or(false);
            if !allowed {
                raise(
                    PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    format!("permission denied for function {qualified}"),
                    Some(
                        "sql steps run with the privileges of the collection's owner: its creator."
                            .into(),
                    ),
                );
            }
            step["sql"] = Value::String(qualified);
        }
    }
    steps
}

/// Validates a read pipeline and a map of level pipelines (raises 22023 / 42883 / 42501);
/// returns them as `{"read": …, "normalization": …}` with sql steps' functions qualified.
/// `collect._collection_create_sql(schema, name, key_type)`: the statements that make a new
/// collection's tables (`generate::Tables`); NULL for a key type there is not.
#[pg_extern(sql = false, immutable, parallel_safe)]
fn collection_create_sql(schema: &str, name: &str, key_type: &str) -> Option<Vec<String>> {
    Tables::of(schema, name).create_sql(name, key_type)
}

#[pg_extern(sql = false)]
fn collection_validate(read: Option<JsonbArg>, normalize: Option<JsonbArg>) -> JsonbValue {
    let read = json_of(&crate::errors::required(read, "read pipeline"));
    parse_pipeline(&read, "read");
    let mut checked = serde_json::Map::new();
    checked.insert("read".into(), qualify_sql_steps(&read));
    if let Some(levels) = normalize.as_ref().map(json_of) {
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
        checked.insert("normalization".into(), Value::Object(qualified));
    }
    JsonbValue::parse_bytes(Value::Object(checked).to_string().as_bytes())
}

/// A definition's JSON (pipelines, levels), which is small: as a serde value. jsonb's output
/// is JSON, so the one way this fails is nesting deeper than a pipeline ever needs.
fn json_of(value: &JsonbArg) -> Value {
    value.deserialize(
        "pipeline",
        Some("A pipeline is an array of steps such as {\"latest_by\": \"id\"}; it nests at most 127 levels."),
    )
}

fn json_column(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// What the registry says of a collection, checked against the catalogs as
/// `collect._collection_def` checks it.
pub(super) struct Definition {
    pub(super) schema: String,
    pub(super) name: String,
    /// One of `generate::KEY_TYPES`, as the registry prints it.
    pub(super) key_type: &'static str,
    pub(super) read: Value,
    pub(super) levels: Value,
    /// Whose privileges sql steps run with.
    pub(super) owner: pg_sys::Oid,
    pub(super) pending: String,
    pub(super) base: String,
    /// The pending table's OID: what a session's statements on the collection are kept by.
    pub(super) pending_oid: pg_sys::Oid,
}

impl Definition {
    pub(super) fn tables(&self) -> Tables {
        Tables {
            pending: self.pending.clone(),
            base: self.base.clone(),
        }
    }
}

/// The two statements that read a definition, kept for the session: every call of every
/// collection function reads one.
#[derive(Hash, PartialEq, Eq)]
enum DefinitionStatement {
    /// The definition, when it holds (`collect._collection_verify`), with its levels column
    /// as the installed release names it (`normalize` before 0.3.0).
    Found { levels_column: &'static str },
    /// The same through `collect._collection_def`, which raises the error of a name without a
    /// collection or of a definition that does not hold.
    Checked,
}

thread_local! {
    static DEFINITION: crate::plans::Session<DefinitionStatement> =
        crate::plans::Session::new("collection definition");
}

/// Every name and operator qualified: run under the caller's search_path by `collect.read` and
/// `collect.append`. The owner's OID, the pending table's and the key type's name are found by
/// the caller from the syscaches, not joined here (a join with pg_roles is most of the cost).
fn definition_found_sql(levels_column: &str) -> String {
    format!(
        "SELECT d.key_type::pg_catalog.oid, d.read::pg_catalog.text, d.{levels_column}::pg_catalog.text,
                d.owner::pg_catalog.text, d.schema::pg_catalog.text
           FROM collect.collection_defs d
          WHERE (d.schema, d.name) OPERATOR(pg_catalog.=) ($1::pg_catalog.name, $2) AND collect._collection_verify(d)"
    )
}

const DEFINITION_CHECKED: &str = "SELECT FROM collect._collection_def($1::pg_catalog.name, $2)";

pub(super) fn definition(schema: Option<&str>, name: Option<&str>) -> Definition {
    let Some(name) = name else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "collection name must not be NULL".into(),
            None,
        )
    };
    let levels_column = match registry::installed_vocabulary() {
        registry::Vocabulary::Before0_3 => "\"normalize\"",
        registry::Vocabulary::Current => "normalization",
    };
    let types = [pg_sys::TEXTOID, pg_sys::TEXTOID];
    let found = Spi::connect(|client| {
        let args = [schema.into(), name.into()];
        let found = DEFINITION.with(|kept| {
            kept.statement(
                client,
                DefinitionStatement::Found { levels_column },
                &types,
                false,
                || definition_found_sql(levels_column),
            )
        });
        let rows = client
            .select(found.as_ref(), Some(1), &args)
            .unwrap_or_else(|e| spi_error(e));
        let row = rows.into_iter().next();
        if row.is_none() {
            // No collection by that name, or one whose definition does not hold: the check of
            // every definition says which, as its error.
            let checked = DEFINITION.with(|kept| {
                kept.statement(client, DefinitionStatement::Checked, &types, false, || {
                    DEFINITION_CHECKED.to_string()
                })
            });
            client
                .select(checked.as_ref(), Some(1), &args)
                .unwrap_or_else(|e| spi_error(e));
        }
        row.map(|row| {
            let schema: String = row.get(5).ok().flatten().unwrap_or_default();
            let owner: String = row.get(4).ok().flatten().unwrap_or_default();
            let key_type_oid: pg_sys::Oid = row.get(1).ok().flatten().unwrap_or_default();
            (
                schema,
                owner,
                key_type_oid,
                json_column(row.get(2).ok().flatten()),
                json_column(row.get(3).ok().flatten()),
            )
        })
    });
    // The verify function has just found both tables owned by the owner.
    let owner_and_pending = found.as_ref().and_then(|(schema, owner, ..)| {
        Some((
            registry::role(owner)?,
            registry::relation(schema, &format!("{name}_pending"))?,
        ))
    });
    let (Some((schema, _, key_type_oid, read, levels)), Some((owner, pending_oid))) =
        (found, owner_and_pending)
    else {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("collection \"{name}\" has no owner role"),
            None,
        )
    };
    // The verify function admits only the key types there are.
    let Some(key_type) = key_type_name(key_type_oid) else {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("collection \"{name}\" has a key type that is not text, bigint or uuid"),
            None,
        )
    };
    let Tables { pending, base } = Tables::of(&schema, name);
    Definition {
        pending,
        base,
        schema,
        name: name.to_string(),
        key_type,
        read,
        levels,
        owner,
        pending_oid,
    }
}

/// A key type (`generate::KEY_TYPES`) as the registry prints it, from its OID; None for any
/// other type.
pub(super) fn key_type_name(key_type: pg_sys::Oid) -> Option<&'static str> {
    match key_type {
        pg_sys::TEXTOID => Some("text"),
        pg_sys::INT8OID => Some("bigint"),
        pg_sys::UUIDOID => Some("uuid"),
        _ => None,
    }
}

pub(super) fn parse_entry(text: &str) -> Box<RawValue> {
    json::raw(text).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "a stored collection entry is not JSON".into(),
            None,
        )
    })
}

/// Base lump lines are `[seq, at_us, entry]`.
pub(super) fn base_entries(lump: &[u8]) -> Vec<Entry> {
    decode_stored(lump)
        .entries()
        .map(|line| {
            let (seq, at, value): (i64, i64, Box<RawValue>) = serde_json::from_slice(line)
                .unwrap_or_else(|e| {
                    raise(
                        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                        format!("collection base entry is malformed: {e}"),
                        None,
                    )
                });
            Entry { seq, at, value }
        })
        .collect()
}

pub(super) fn base_lump(entries: &[Entry]) -> Vec<u8> {
    let mut builder = Builder::new();
    for e in entries {
        let line =
            serde_json::to_vec(&(e.seq, e.at, &e.value)).expect("serializing JSON cannot fail");
        builder.push(&line).unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!("collection base too large: {e}"),
                None,
            )
        });
    }
    builder.finish()
}

/// Runs a pipeline. `sql` steps call the user's function with the privileges of the
/// collection's owner, whoever reads or normalizes: a collection is like a view.
pub(super) fn run_pipeline(
    def: &Definition,
    pipeline: &Pipeline,
    entries: Vec<Entry>,
) -> Vec<Entry> {
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
                format!(
                    "{function} returned {}, not a JSON array",
                    t.chars().take(60).collect::<String>()
                )
            })?,
        };
        // Returned entries keep the order given; they take the newest input's time and seqs
        // just below the newest input's, so they still sort before anything appended later.
        let (top_seq, top_at) = input.iter().map(|e| (e.seq, e.at)).max().unwrap_or((0, 0));
        let n = values.len() as i64;
        Ok(values
            .into_iter()
            .enumerate()
            .map(|(i, value)| Entry {
                seq: top_seq - (n - 1 - i as i64),
                at: top_at,
                value,
            })
            .collect())
    };
    pipeline
        .run(entries, &TransactionClock, &mut call_sql)
        .unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                format!("sql step failed: {e}"),
                None,
            )
        })
}

pub(super) fn entries_json(entries: &[Entry]) -> JsonbValue {
    JsonbValue::parse_bytes(json::array_text(entries.iter().map(|e| e.value.as_ref())).as_bytes())
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::{pg_test, Spi};

    use super::*;

    fn at(text: &str) -> pg_sys::TimestampTz {
        Spi::get_one::<i64>(&format!(
            "SELECT ((extract(epoch FROM '{text}'::timestamptz) - 946684800) * 1000000)::int8"
        ))
        .unwrap()
        .unwrap()
    }

    /// Expiry reaches back by the calendar, as `now() - interval` does: a year is the same date
    /// a year before (366 days over a leap day), a month ends at the month's end, and a day
    /// back keeps the local time across a DST change.
    #[pg_test]
    fn intervals_reach_back_by_the_calendar() {
        Spi::run("SET TimeZone = 'America/New_York'").unwrap();
        let iv = |months, days, micros| Interval {
            months,
            days,
            micros,
        };
        for (from, ago, expected) in [
            ("2024-03-01 00:00", iv(12, 0, 0), "2023-03-01 00:00"),
            ("2024-02-29 12:00", iv(12, 0, 0), "2023-02-28 12:00"),
            ("2024-03-31 08:00", iv(1, 0, 0), "2024-02-29 08:00"),
            ("2026-03-08 12:00", iv(0, 1, 0), "2026-03-07 12:00"),
            (
                "2026-03-08 12:00",
                iv(0, 0, 86_400_000_000),
                "2026-03-07 11:00",
            ),
        ] {
            assert_eq!(
                instant_before(at(from), &ago),
                at(expected),
                "{from} - {ago:?}"
            );
        }
        assert_eq!(
            at("2024-03-01 00:00") - at("2023-03-01 00:00"),
            366 * 86_400_000_000
        );
    }
}
