//! Minute rollups kept at ingest (Druid, as Plumbr used it), declared in sql/rollups.sql with
//! metrics from `crate::sketches`. `generate` owns the metric kinds and writes every statement
//! a rollup runs; `partials` aggregates events in memory, fed by `statement` (the rows a
//! statement inserted) and `batches` (the lines of a batch, read by `json_fields`); `rawless` buffers the rows of a
//! rollup that keeps none; `ndjson` splits a batch of events (gzip-compressed NDJSON) for
//! `collect.ingest`.

pub use pg_collect_core::rollups::batches;
pub use pg_collect_core::rollups::generate;
pub use pg_collect_core::rollups::ndjson;
pub use pg_collect_core::rollups::partials;
pub mod rawless;
pub mod statement;

use std::collections::{BTreeMap, HashMap};

use pgrx::prelude::*;

use crate::errors::{no_null_elements, raise, required};
use crate::jsonb::JsonbArg;
use generate::{Correction, MetricError, Rollup};
use partials::{Kind, Plan};

pub fn init() {
    statement::init();
}

/// The metrics a user asked for (`{"name": "kind(column)"}`), checked against the source's
/// columns (`{"column": "type"}`), as `collect.rollup_defs.metrics` stores them.
#[pg_extern(sql = false)]
fn rollup_metrics(
    source: Option<&str>,
    metrics: Option<JsonbArg>,
    dimensions: Option<Vec<Option<String>>>,
    columns: Option<JsonbArg>,
) -> String {
    let (source, metrics, columns) = (
        required(source, "source"),
        required(metrics, "metrics"),
        required(columns, "columns"),
    );
    let dimensions = no_null_elements(required(dimensions, "dimensions"), "dimensions");
    let written: BTreeMap<String, serde_json::Value> = metrics.deserialize("metrics", None);
    let mut definitions = BTreeMap::new();
    for (name, value) in written {
        let Some(text) = value.as_str() else {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid metric \"{name}\": {value}"),
                Some("A metric is a string such as \"sum(duration_ms)\".".into()),
            )
        };
        definitions.insert(name, text.to_string());
    }
    let columns: BTreeMap<String, String> = columns.deserialize("columns", None);
    match generate::parse_metrics(source, &definitions, &dimensions, &columns) {
        Ok(parsed) => serde_json::to_string(&parsed).expect("metrics serialize"),
        Err(e) => {
            let (code, hint) = match &e {
                MetricError::Invalid { hint, .. } => (
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    hint.clone(),
                ),
                MetricError::UndefinedColumn(_) => (PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, None),
                MetricError::DuplicateColumn(_) => (PgSqlErrorCode::ERRCODE_DUPLICATE_COLUMN, None),
                MetricError::DatatypeMismatch(_) => {
                    (PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, None)
                }
            };
            raise(code, e.to_string(), hint)
        }
    }
}

/// `collect._rollup_create_sql(...)`: the statements that make a new rollup's tables
/// (`generate::NewTables`); `dimensions` is [{name, type}], `metrics` as `_rollup_metrics`
/// wrote them.
#[pg_extern(sql = false, immutable, parallel_safe)]
fn rollup_create_sql(
    schema: Option<&str>,
    name: Option<&str>,
    time_type: Option<&str>,
    dimensions: Option<JsonbArg>,
    metrics: Option<JsonbArg>,
    distribution_column: Option<&str>,
    comment: Option<&str>,
) -> Vec<String> {
    let (schema, name, time_type, comment) = (
        required(schema, "schema"),
        required(name, "name"),
        required(time_type, "time_type"),
        required(comment, "comment"),
    );
    let dimensions: Vec<generate::Column> =
        required(dimensions, "dimensions").deserialize("dimensions", None);
    let metrics: Vec<generate::Metric> = required(metrics, "metrics").deserialize("metrics", None);
    generate::NewTables {
        schema,
        name,
        time_type,
        dimensions: &dimensions,
        metrics: &metrics,
        distribution_column,
        comment,
    }
    .create_sql()
}

/// `collect._rollup_triggers(...)`: the triggers that keep a rollup on its source
/// (`generate::Triggers`), as {names, create}.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, immutable, parallel_safe)]
fn rollup_triggers(
    source_schema: &str,
    source_name: &str,
    schema: &str,
    name: &str,
    version: i32,
    keep_raw: bool,
    spec: &str,
) -> crate::jsonb::JsonbValue {
    let source = crate::registry::names::QualifiedName {
        schema: source_schema.into(),
        name: source_name.into(),
    };
    let triggers = generate::Triggers {
        source: &source,
        schema,
        name,
        version,
        keep_raw,
        spec,
    };
    crate::jsonb::JsonbValue::serialize(
        &serde_json::json!({"names": triggers.names(), "create": triggers.create()}),
    )
}

/// The statements of one kind for a rollup described by `spec` (`collect._rollup_spec`):
/// `ingest`, `update` / `delete` / `truncate` (marking buckets stale), `fill` (tier `index`),
/// `refresh` (table `index`), `range` (the base buckets in a time range), `backfill` (the
/// rows a new rollup's source holds already) or `retention` (table `index`). `tables` and `stale` replace the
/// rollup's own table names (a Citus worker writes the shards co-located with its own).
#[pg_extern(sql = false)]
fn rollup_sql(
    spec: Option<JsonbArg>,
    kind: Option<&str>,
    index: Option<i32>,
    tables: Option<Vec<Option<String>>>,
    stale: Option<String>,
) -> Vec<String> {
    let (spec, kind, index) = (
        required(spec, "spec"),
        required(kind, "kind"),
        required(index, "index"),
    );
    let tables = tables.map(|t| no_null_elements(t, "tables"));
    let mut rollup: Rollup = spec.deserialize("rollup spec", None);
    rollup.vocabulary = crate::registry::installed_vocabulary();
    let given = tables.as_ref().map(Vec::len);
    let targets = rollup.targets(tables, stale).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{} tables for a rollup of {}",
                given.unwrap_or(0),
                rollup.tables.len()
            ),
            None,
        )
    });
    let index = usize::try_from(index)
        .ok()
        .filter(|i| *i < rollup.tables.len())
        .unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("rollup table index {index} out of range"),
                None,
            )
        });
    match kind {
        "ingest" => rollup.ingest_statements(&targets),
        "update" => vec![rollup.mark_stale(Correction::Update, &targets)],
        "delete" => vec![rollup.mark_stale(Correction::Delete, &targets)],
        "truncate" => vec![rollup.mark_stale(Correction::Truncate, &targets)],
        "fill" => vec![rollup.tier_fill(index)],
        "refresh" => rollup.refresh(index).to_vec(),
        "range" => vec![rollup.buckets_between()],
        "backfill" => rollup.backfill(),
        "retention" => rollup.retention(index).into_iter().collect(),
        "create_tier" => rollup.create_tier(index),
        "stale_buckets" => vec![rollup.stale_buckets()],
        "clear_stale" => vec![rollup.clear_stale()],
        "newest_bucket" => vec![rollup.newest_bucket(index)],
        "any_rows" => vec![rollup.any_rows(index)],
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown rollup statement kind {other:?}"),
            None,
        ),
    }
}

/// The lines of a batch of events for `collect.ingest` (see `ndjson`).
#[pg_extern(sql = false)]
fn ndjson_lines(batch: &[u8]) -> Vec<String> {
    batch_lines(batch)
}

/// What one batch of events may inflate to: `collect.max_batch_bytes` (statement::init).
fn batch_limit() -> usize {
    statement::max_batch_bytes()
}

fn batch_lines(batch: &[u8]) -> Vec<String> {
    ndjson::lines(
        batch,
        batch_limit(),
        &mut crate::errors::check_for_interrupts,
    )
    .unwrap_or_else(|e| batch_error(e))
}

fn batch_error(e: ndjson::BatchError) -> ! {
    match e {
        ndjson::BatchError::NotGzip(why) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("events are not a valid gzip batch: {why}"),
            Some("Send newline-delimited JSON, compressed with gzip or not.".into()),
        ),
        ndjson::BatchError::TooLarge(limit) => raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("events inflate to more than {limit} bytes"),
            Some("Send them in several batches, or raise collect.max_batch_bytes (a superuser's setting, at most 1 GB).".into()),
        ),
        ndjson::BatchError::NotUtf8 { line } => raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("line {line} of the events is not UTF-8"),
            None,
        ),
    }
}

/// What `collect._rollup_ndjson_plan` says of a rollup that keeps no raw rows: its description
/// and its view's column types.
#[derive(serde::Deserialize)]
struct BatchPlan {
    spec: Rollup,
    column_types: HashMap<String, String>,
}

/// A batch plan and its thresholds, kept for the next batch while nothing can have changed
/// them: the same role and rollup, in the same transaction and subtransaction (so the lock the
/// plan took on the view is still held, and no other session can alter it), with no command
/// run since (every DDL, and every write, moves the command counter). What a statement
/// ingesting many batches (`SELECT collect.ingest(r, batch) FROM batches`) would otherwise ask for
/// again at every batch.
struct LastBatchPlan {
    key: BatchPlanKey,
    plan: std::rc::Rc<(BatchPlan, Vec<partials::Thresholds>)>,
}

#[derive(PartialEq)]
struct BatchPlanKey {
    user: pg_sys::Oid,
    transaction: u32,
    subtransaction: pg_sys::SubTransactionId,
    command: pg_sys::CommandId,
    schema: String,
    rollup: String,
}

/// This backend's local transaction id (PostgreSQL 17 moved it into `PGPROC.vxid`).
unsafe fn local_transaction_id() -> pg_sys::LocalTransactionId {
    // SAFETY: the caller is a backend with its PGPROC set up.
    unsafe {
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let id = (*pg_sys::MyProc).vxid.lxid;
        #[cfg(not(any(feature = "pg17", feature = "pg18")))]
        let id = (*pg_sys::MyProc).lxid;
        id
    }
}

impl BatchPlanKey {
    fn now(schema: &str, rollup: &str) -> BatchPlanKey {
        // SAFETY: a backend's own state, read in a transaction.
        unsafe {
            BatchPlanKey {
                user: pg_sys::GetUserId(),
                transaction: local_transaction_id(),
                subtransaction: pg_sys::GetCurrentSubTransactionId(),
                command: pg_sys::GetCurrentCommandId(false),
                schema: schema.into(),
                rollup: rollup.into(),
            }
        }
    }
}

thread_local! {
    static LAST_BATCH_PLAN: std::cell::RefCell<Option<LastBatchPlan>> = const { std::cell::RefCell::new(None) };
    /// The last batch's inflated text, kept for the next batch's (see `ndjson::inflate`).
    static BATCH_TEXT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A text buffer larger than this is not kept between batches: a backend should not hold on to
/// the memory of one huge batch.
const KEPT_BATCH_TEXT: usize = 64 << 20;

/// A batch of events rolled up without making rows (`batches`); NULL when the batch is one for
/// the row path (`collect._ingest`), which then takes it whole.
#[pg_extern(sql = false)]
fn rollup_ingest_lump(
    schema: Option<&str>,
    rollup: Option<&str>,
    batch: Option<&[u8]>,
) -> Option<i64> {
    // A rollup that is not there (no schema found for it) is for the row path to name.
    let (schema, rollup, batch) = (schema?, rollup?, batch?);
    // Taken out while in use: an error drops it, and the next batch starts a new one.
    let mut buffer = BATCH_TEXT.take();
    let events = ingest_batch(schema, rollup, batch, &mut buffer);
    if buffer.capacity() <= KEPT_BATCH_TEXT {
        BATCH_TEXT.set(buffer);
    }
    events
}

fn ingest_batch(schema: &str, rollup: &str, batch: &[u8], buffer: &mut Vec<u8>) -> Option<i64> {
    let text = ndjson::inflate(
        batch,
        batch_limit(),
        buffer,
        &mut crate::errors::check_for_interrupts,
    )
    .unwrap_or_else(|e| batch_error(e));
    // A line that is not UTF-8 is named as the row path names it.
    let text = std::str::from_utf8(text).unwrap_or_else(|_| {
        batch_lines(batch);
        unreachable!("batch_lines names the line that is not UTF-8")
    });
    let key = BatchPlanKey::now(schema, rollup);
    let cached = LAST_BATCH_PLAN.with_borrow_mut(|last| {
        last.take()
            .filter(|last| last.key == key)
            .map(|last| last.plan)
    });
    let events = Spi::connect_mut(|client| {
        let planned = match cached {
            Some(planned) => planned,
            None => {
                let plan: Option<pgrx::JsonB> = client
                    .select(
                        &format!(
                            "SELECT {}($1, $2)",
                            crate::registry::installed_vocabulary().rollup_ndjson_plan()
                        ),
                        Some(1),
                        &[schema.into(), rollup.into()],
                    )
                    .and_then(|rows| rows.first().get_one())
                    .unwrap_or_else(|e| {
                        raise(
                            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                            format!("rollup batch plan: {e}"),
                            None,
                        )
                    });
                let mut plan: BatchPlan = serde_json::from_value(plan?.0).unwrap_or_else(|e| {
                    raise(
                        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        format!("rollup batch plan: {e}"),
                        None,
                    )
                });
                plan.spec.vocabulary = crate::registry::installed_vocabulary();
                let thresholds = statement::thresholds(client, &plan.spec);
                std::rc::Rc::new((plan, thresholds))
            }
        };
        let (plan, thresholds) = &*planned;
        let utf8 = statement::text_is_utf8();
        let kind_of = |column: &str| {
            Kind::of(plan.column_types.get(column)?).filter(|k| utf8 || *k != Kind::Text)
        };
        let path = Plan::new(&plan.spec, kind_of, thresholds)?;
        let (tables, events) = batches::aggregate(&path, text, statement::work_mem())?;
        statement::merge_partials(&plan.spec, &plan.spec.own_targets(), &path, tables);
        Some((events, planned.clone()))
    });
    let (events, planned) = events?;
    // Kept only once the batch is in: an error leaves nothing behind.
    LAST_BATCH_PLAN.with_borrow_mut(|last| {
        *last = Some(LastBatchPlan {
            key: BatchPlanKey::now(schema, rollup),
            plan: planned,
        })
    });
    Some(events)
}
