//! Minute rollups kept at ingest (Druid, as Plumbr used it), declared in sql/rollups.sql with
//! metrics from `crate::sketches`. `generate` owns the metric kinds and writes every statement
//! a rollup runs; `rawless` is the in-memory path for rollups that keep no raw rows; `ndjson`
//! splits a lump of events (gzip-compressed NDJSON) for `collect.ingest`.

pub mod generate;
pub mod lumps;
pub mod ndjson;
pub mod rawless;

use std::collections::{BTreeMap, HashMap};

use pgrx::prelude::*;

use crate::errors::raise;
use crate::jsonb::JsonbArg;
use generate::{Correction, MetricError, Rollup, Targets};

fn from_jsonb<T: serde::de::DeserializeOwned>(value: &JsonbArg, what: &str) -> T {
    serde_json::from_slice(value.to_text().to_bytes())
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("invalid {what}: {e}"), None))
}

/// The metrics a user asked for (`{"name": "kind(column)"}`), checked against the source's
/// columns (`{"column": "type"}`), as `collect.rollup_defs.metrics` stores them.
#[pg_extern(sql = false)]
fn rollup_metrics(source: &str, metrics: JsonbArg, dimensions: Vec<String>, columns: JsonbArg) -> String {
    let written: BTreeMap<String, serde_json::Value> = from_jsonb(&metrics, "metrics");
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
    let columns: BTreeMap<String, String> = from_jsonb(&columns, "columns");
    match generate::parse_metrics(source, &definitions, &dimensions, &columns) {
        Ok(parsed) => serde_json::to_string(&parsed).expect("metrics serialize"),
        Err(e) => {
            let (code, hint) = match &e {
                MetricError::Invalid { hint, .. } => (PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, hint.clone()),
                MetricError::UndefinedColumn(_) => (PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN, None),
                MetricError::DuplicateColumn(_) => (PgSqlErrorCode::ERRCODE_DUPLICATE_COLUMN, None),
                MetricError::DatatypeMismatch(_) => (PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH, None),
            };
            raise(code, e.to_string(), hint)
        }
    }
}

/// The statements of one kind for a rollup described by `spec` (`collect._rollup_spec`):
/// `ingest`, `update` / `delete` / `truncate` (marking buckets stale), `fill` (tier `index`),
/// `refresh` (table `index`), `range` (the base buckets in a time range), `retention`
/// (table `index`), `thresholds` (lateness and retention per table, for `lumps`) or
/// `partials` (table `index`, merging the partial rows `lumps` makes). `tables` and `stale` replace the
/// rollup's own table names (a Citus worker writes the shards co-located with its own).
#[pg_extern(sql = false)]
fn rollup_sql(spec: JsonbArg, kind: &str, index: i32, tables: Option<Vec<String>>, stale: Option<String>) -> Vec<String> {
    let rollup: Rollup = from_jsonb(&spec, "rollup spec");
    let mut targets = rollup.own_targets();
    if let Some(tables) = tables {
        if tables.len() != targets.tables.len() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("{} tables for a rollup of {}", tables.len(), targets.tables.len()), None);
        }
        targets = Targets { tables, stale: stale.unwrap_or(targets.stale) };
    }
    let index = usize::try_from(index).ok().filter(|i| *i < rollup.tables.len()).unwrap_or_else(|| {
        raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("rollup table index {index} out of range"), None)
    });
    match kind {
        "ingest" => rollup.ingest_statements(&targets),
        "update" => vec![rollup.mark_stale(Correction::Update, &targets)],
        "delete" => vec![rollup.mark_stale(Correction::Delete, &targets)],
        "truncate" => vec![rollup.mark_stale(Correction::Truncate, &targets)],
        "fill" => vec![rollup.tier_fill(index)],
        "refresh" => rollup.refresh(index).to_vec(),
        "range" => vec![rollup.buckets_between()],
        "thresholds" => vec![rollup.thresholds()],
        "partials" => vec![rollup.upsert_partials(index)],
        "retention" => rollup.retention(index).into_iter().collect(),
        other => raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("unknown rollup statement kind {other:?}"), None),
    }
}

/// The lines of a lump of events for `collect.ingest` (see `ndjson`).
#[pg_extern(sql = false)]
fn ndjson_lines(lump: &[u8]) -> Vec<String> {
    lump_lines(lump)
}

fn lump_lines(lump: &[u8]) -> Vec<String> {
    // A text value holds at most 1 GB.
    const LIMIT: usize = (1 << 30) - 1;
    ndjson::lines(lump, LIMIT).unwrap_or_else(|e| match e {
        ndjson::LumpError::NotGzip(why) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            format!("events are not a valid gzip lump: {why}"),
            Some("Send newline-delimited JSON, compressed with gzip or not.".into()),
        ),
        ndjson::LumpError::TooLarge(limit) => raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!("events inflate to more than {limit} bytes"),
            Some("Send them in several lumps.".into()),
        ),
        ndjson::LumpError::NotUtf8 { line } => raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("line {line} of the events is not UTF-8"),
            None,
        ),
    })
}

/// The plan of `collect._rollup_lump_plan`: NULL when the rollup keeps raw rows or its view
/// has more to it than this path knows (other triggers, column defaults).
#[derive(serde::Deserialize)]
struct LumpPlan {
    spec: Rollup,
    column_types: HashMap<String, String>,
    late: Vec<i64>,
    keep: Vec<Option<i64>>,
}

/// A lump of events rolled up without making rows (`lumps`); NULL when the lump is one for
/// the row path (`collect._ingest`), which then takes it whole.
#[pg_extern(sql = false)]
fn rollup_ingest_lump(schema: &str, rollup: &str, lump: Option<&[u8]>) -> Option<i64> {
    let lines = lump_lines(lump?);
    let plan: Option<String> = Spi::get_one_with_args("SELECT collect._rollup_lump_plan($1, $2)::text", &[schema.into(), rollup.into()])
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("rollup lump plan: {e}"), None));
    let plan: LumpPlan = serde_json::from_str(&plan?)
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("rollup lump plan: {e}"), None));
    let thresholds: Vec<lumps::Thresholds> =
        plan.late.iter().zip(&plan.keep).map(|(late, keep)| lumps::Thresholds { late_before: *late, keep_from: *keep }).collect();
    let path = lumps::Plan::new(&plan.spec, &plan.column_types, &thresholds)?;
    let (tables, events) = lumps::aggregate(&path, &lines)?;
    Spi::connect_mut(|client| {
        for (index, columns) in tables.into_iter().enumerate() {
            if columns[0].is_empty() {
                continue;
            }
            let statement = plan.spec.upsert_partials(index);
            let args: Vec<pgrx::datum::DatumWithOid> = columns.into_iter().map(|c| c.into()).collect();
            client
                .update(statement.as_str(), None, &args)
                .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("rollup upsert: {e}"), None));
        }
    });
    Some(events)
}
