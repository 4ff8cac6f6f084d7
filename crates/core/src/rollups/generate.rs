//! A rollup's metrics and the SQL that keeps its tables. Pure: it parses what a user wrote
//! and writes text from names the SQL layer has checked against the catalogs.
//!
//! Every metric kind is one `MetricKind`: how it is written, what column type it needs and
//! makes, how it aggregates raw rows, how two partial rows merge on conflict, and how finer
//! rows re-aggregate into a coarser tier. Nothing else lists the kinds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::registry::names::{ident, literal, qualified, QualifiedName, Vocabulary};

/// The columns every rollup table has besides its dimensions and metrics.
pub const FIXED_COLUMNS: [&str; 3] = ["bucket", "event_count", "late_events"];

const PRECISION: std::ops::RangeInclusive<u8> = 4..=18;
const DEFAULT_PRECISION: u8 = 14;
const TOP_K: std::ops::RangeInclusive<u32> = 1..=10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Sum,
    Min,
    Max,
    /// Distinct count, an hll sketch of this precision.
    Distinct(u8),
    Quantiles,
    /// The k most frequent values.
    Top(u32),
}

/// Why a metric cannot be made; the SQL layer turns each into its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricError {
    /// 22023: not one of the forms, or a parameter out of range.
    Invalid {
        message: String,
        hint: Option<String>,
    },
    /// 42703: the column does not exist in the source.
    UndefinedColumn(String),
    /// 42701: the name is taken by another rollup column.
    DuplicateColumn(String),
    /// 42804: the column's type cannot be aggregated this way.
    DatatypeMismatch(String),
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::Invalid { message, .. } => f.write_str(message),
            MetricError::UndefinedColumn(m)
            | MetricError::DuplicateColumn(m)
            | MetricError::DatatypeMismatch(m) => f.write_str(m),
        }
    }
}

const FORMS_HINT: &str =
    "Metrics are sum(col), min(col), max(col), distinct(col) or distinct(col, precision), quantiles(col) or top(col, k).";

const NUMBERS: [&str; 6] = [
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "real",
    "double precision",
];

/// One metric of a rollup, as `collect.rollup_defs.metrics` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub kind: String,
    pub column: String,
    #[serde(default)]
    pub k: Option<u32>,
    #[serde(default)]
    pub precision: Option<u8>,
    /// The rollup column's type, as `format_type` writes it.
    #[serde(rename = "type")]
    pub column_type: String,
}

impl MetricKind {
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Sum => "sum",
            MetricKind::Min => "min",
            MetricKind::Max => "max",
            MetricKind::Distinct(_) => "distinct",
            MetricKind::Quantiles => "quantiles",
            MetricKind::Top(_) => "top",
        }
    }

    /// `kind(column)` or `kind(column, n)`, with the parameter checked.
    pub fn parse(metric: &str, definition: &str) -> Result<(MetricKind, String), MetricError> {
        let invalid = || MetricError::Invalid {
            message: format!("invalid metric \"{metric}\": {definition:?}"),
            hint: Some(FORMS_HINT.into()),
        };
        let text = definition.trim();
        let open = text.find('(').ok_or_else(invalid)?;
        let kind = text[..open].trim_end();
        let inner = text[open + 1..].strip_suffix(')').ok_or_else(invalid)?;
        let mut parts = inner.split(',').map(str::trim);
        let column = parts
            .next()
            .filter(|c| is_plain_identifier(c))
            .ok_or_else(invalid)?
            .to_string();
        let parameter = parts.next();
        if parts.next().is_some()
            || parameter.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid());
        }
        let number = |p: &str| {
            p.trim_start_matches('0').parse::<u64>().unwrap_or(
                if p.trim_start_matches('0').is_empty() {
                    0
                } else {
                    u64::MAX
                },
            )
        };
        let kind = match (kind, parameter) {
            ("sum", None) => MetricKind::Sum,
            ("min", None) => MetricKind::Min,
            ("max", None) => MetricKind::Max,
            ("quantiles", None) => MetricKind::Quantiles,
            ("distinct", None) => MetricKind::Distinct(DEFAULT_PRECISION),
            ("distinct", Some(p)) => match u8::try_from(number(p)) {
                Ok(p) if PRECISION.contains(&p) => MetricKind::Distinct(p),
                _ => {
                    return Err(MetricError::Invalid {
                        message: format!("metric \"{metric}\": precision must be between 4 and 18, not {p}"),
                        hint: Some("The standard error is 1.04/sqrt(2^precision): 2.3% at 11, 0.81% at 14 (the default), 0.41% at 16.".into()),
                    })
                }
            },
            ("top", Some(k)) => match u32::try_from(number(k)) {
                Ok(k) if TOP_K.contains(&k) => MetricKind::Top(k),
                _ => {
                    return Err(MetricError::Invalid {
                        message: format!("metric \"{metric}\": k must be between 1 and 10000, not {k}"),
                        hint: None,
                    })
                }
            },
            _ => return Err(invalid()),
        };
        Ok((kind, column))
    }

    /// The rollup column's type for a source column of `source_type` (as `format_type`
    /// writes it).
    pub fn column_type(
        self,
        metric: &str,
        column: &str,
        source_type: &str,
    ) -> Result<String, MetricError> {
        let needs_number = matches!(self, MetricKind::Sum | MetricKind::Quantiles);
        if needs_number && !NUMBERS.contains(&source_type) {
            return Err(MetricError::DatatypeMismatch(format!(
                "metric \"{metric}\" needs a number, but column \"{column}\" is {source_type}"
            )));
        }
        Ok(match self {
            // Wide enough that a sum does not overflow where its column would not.
            MetricKind::Sum => match source_type {
                "smallint" | "integer" => "bigint",
                "bigint" => "numeric",
                "real" => "double precision",
                other => other,
            }
            .to_string(),
            MetricKind::Min | MetricKind::Max => source_type.to_string(),
            MetricKind::Distinct(_) => "collect.hll".into(),
            MetricKind::Quantiles => "collect.quantiles".into(),
            MetricKind::Top(_) => "collect.topk".into(),
        })
    }

    /// The aggregate over raw rows.
    fn aggregate(self, column: &str) -> String {
        let c = ident(column);
        match self {
            MetricKind::Sum => format!("pg_catalog.sum({c})"),
            MetricKind::Min => format!("pg_catalog.min({c})"),
            MetricKind::Max => format!("pg_catalog.max({c})"),
            MetricKind::Distinct(p) => format!("collect.hll_agg({c}, {p})"),
            MetricKind::Quantiles => format!("collect.quantiles_agg({c}::pg_catalog.float8)"),
            MetricKind::Top(k) => format!("collect.topk_agg({c}::pg_catalog.text, {k})"),
        }
    }

    /// The stored value `r.name` merged with a new partial row's `excluded.name`; either
    /// may be NULL (a bucket whose rows all had NULL in the column).
    fn merge_on_conflict(self, name: &str, vocabulary: Vocabulary) -> String {
        let n = ident(name);
        let merged = |sketch: &str| {
            let merge = vocabulary.sketch_merge(sketch);
            format!("coalesce({merge}(r.{n}, excluded.{n}), r.{n}, excluded.{n})")
        };
        match self {
            MetricKind::Sum => format!("coalesce(r.{n} + excluded.{n}, r.{n}, excluded.{n})"),
            MetricKind::Min => format!("least(r.{n}, excluded.{n})"),
            MetricKind::Max => format!("greatest(r.{n}, excluded.{n})"),
            MetricKind::Distinct(_) => merged("hll"),
            MetricKind::Quantiles => merged("quantiles"),
            MetricKind::Top(_) => merged("topk"),
        }
    }

    /// Finer rollup rows aggregated into one coarser row.
    fn reaggregate(self, name: &str) -> String {
        let n = ident(name);
        match self {
            MetricKind::Sum => format!("pg_catalog.sum({n})"),
            MetricKind::Min => format!("pg_catalog.min({n})"),
            MetricKind::Max => format!("pg_catalog.max({n})"),
            MetricKind::Distinct(_) | MetricKind::Quantiles | MetricKind::Top(_) => {
                format!("collect.merge({n})")
            }
        }
    }
}

fn is_plain_identifier(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Metric {
    pub fn kind(&self) -> MetricKind {
        match self.kind.as_str() {
            "sum" => MetricKind::Sum,
            "min" => MetricKind::Min,
            "max" => MetricKind::Max,
            "distinct" => MetricKind::Distinct(self.precision.unwrap_or(DEFAULT_PRECISION)),
            "quantiles" => MetricKind::Quantiles,
            _ => MetricKind::Top(self.k.unwrap_or(10)),
        }
    }
}

/// The metrics `{"name": "kind(column)", …}` of a rollup over `source` (named in errors),
/// whose columns (name to type) are `columns`, checked, in name order.
pub fn parse_metrics(
    source: &str,
    metrics: &BTreeMap<String, String>,
    dimensions: &[String],
    columns: &BTreeMap<String, String>,
) -> Result<Vec<Metric>, MetricError> {
    metrics
        .iter()
        .map(|(name, definition)| {
            let (kind, column) = MetricKind::parse(name, definition)?;
            if name.is_empty() || name.len() > 63 {
                return Err(MetricError::Invalid {
                    message: format!("invalid metric name {}", literal(name)),
                    hint: Some("A metric's name is its column's name: 1 to 63 bytes.".into()),
                });
            }
            if FIXED_COLUMNS.contains(&name.as_str()) || dimensions.contains(name) {
                return Err(MetricError::DuplicateColumn(format!(
                    "metric name \"{name}\" clashes with another rollup column"
                )));
            }
            let source_type = columns.get(&column).ok_or_else(|| {
                MetricError::UndefinedColumn(format!(
                    "column \"{column}\" of metric \"{name}\" does not exist in {source}"
                ))
            })?;
            Ok(Metric {
                name: name.clone(),
                kind: kind.name().into(),
                column_type: kind.column_type(name, &column, source_type)?,
                column,
                k: match kind {
                    MetricKind::Top(k) => Some(k),
                    _ => None,
                },
                precision: match kind {
                    MetricKind::Distinct(p) if definition.contains(',') => Some(p),
                    _ => None,
                },
            })
        })
        .collect()
}

pub use crate::interval::Interval;

/// One table the rollup writes: the rollup table itself, or a tier.
#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub table: QualifiedName,
    pub granularity: Interval,
    pub keep: Option<Interval>,
}

/// A rollup, as the SQL layer describes it (`collect._rollup_spec`).
#[derive(Debug, Clone, Deserialize)]
pub struct Rollup {
    pub source: QualifiedName,
    pub time_column: String,
    /// `timestamp with time zone` or `timestamp without time zone`.
    pub time_type: String,
    pub dimensions: Vec<String>,
    pub metrics: Vec<Metric>,
    /// The rollup table first, then its tiers, finest first.
    pub tables: Vec<Table>,
    pub stale: QualifiedName,
    /// On Citus, the stale table also holds the distribution column, so that it can be
    /// co-located with the source.
    #[serde(default)]
    pub stale_key: Option<String>,
    /// The names of the release installed where the statements run (set by the SQL layer).
    #[serde(skip)]
    pub vocabulary: Vocabulary,
}

/// The tables a statement writes, quoted and qualified: the rollup's own, or on a Citus
/// worker the shards co-located with the shard a trigger fired on.
#[derive(Debug, Clone)]
pub struct Targets {
    pub tables: Vec<String>,
    pub stale: String,
}

/// Statement kinds that change raw rows after ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    Update,
    Delete,
    Truncate,
}

impl Rollup {
    pub fn own_targets(&self) -> Targets {
        Targets {
            tables: self.tables.iter().map(|t| t.table.sql()).collect(),
            stale: self.stale.sql(),
        }
    }

    /// The tables a statement writes: the rollup's own, or (on a Citus worker) `tables` and
    /// `stale`, one for each of the rollup's; None when their number is not the rollup's.
    pub fn targets(&self, tables: Option<Vec<String>>, stale: Option<String>) -> Option<Targets> {
        let own = self.own_targets();
        match tables {
            None => Some(own),
            Some(tables) if tables.len() == own.tables.len() => Some(Targets {
                tables,
                stale: stale.unwrap_or(own.stale),
            }),
            Some(_) => None,
        }
    }

    /// Buckets are aligned to one origin, so every tier's buckets nest in the coarser ones.
    /// A `timestamp` column gets an origin of its own type: binning it against a
    /// timestamptz would depend on the session's time zone.
    fn origin(&self) -> &'static str {
        if self.time_type == "timestamp without time zone" {
            "'2000-01-03 00:00:00'::pg_catalog.timestamp"
        } else {
            "collect._bucket_origin()"
        }
    }

    fn bucket_of(&self, value: &str, granularity: &Interval) -> String {
        format!(
            "pg_catalog.date_bin({}, {value}, {})",
            granularity.sql(),
            self.origin()
        )
    }

    fn now_bucket(&self, granularity: &Interval) -> String {
        let now = if self.time_type == "timestamp without time zone" {
            "LOCALTIMESTAMP"
        } else {
            "pg_catalog.now()"
        };
        self.bucket_of(now, granularity)
    }

    fn dimension_list(&self, prefix: &str) -> String {
        self.dimensions
            .iter()
            .map(|d| format!("{prefix}{}", ident(d)))
            .collect()
    }

    fn metric_names(&self) -> String {
        self.metrics
            .iter()
            .map(|m| format!(", {}", ident(&m.name)))
            .collect()
    }

    /// What ON CONFLICT sets besides the counts: each metric merged.
    fn conflict_merges(&self) -> String {
        self.metrics
            .iter()
            .map(|m| {
                format!(
                    ",\n       {} = {}",
                    ident(&m.name),
                    m.kind().merge_on_conflict(&m.name, self.vocabulary)
                )
            })
            .collect()
    }

    /// `1, 2, …`: the bucket and every dimension.
    fn group_positions(&self) -> String {
        (1..=1 + self.dimensions.len())
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Merges rows (`rows`, optionally filtered) into table `index` of the rollup, written as
    /// `target`. A rebuild from raw rows counts no late events: nothing arrives then.
    pub fn upsert(
        &self,
        index: usize,
        target: &str,
        rows: &str,
        filter: Option<&str>,
        count_late: bool,
    ) -> String {
        let table = &self.tables[index];
        let bucket = self.bucket_of(&ident(&self.time_column), &table.granularity);
        let mut conditions: Vec<String> = filter.map(str::to_string).into_iter().collect();
        if let Some(keep) = &table.keep {
            conditions.push(format!(
                "{bucket} >= {} - {}",
                self.now_bucket(&table.granularity),
                keep.sql()
            ));
        }
        let late = if count_late {
            format!(
                "pg_catalog.count(*) FILTER (WHERE {bucket} < {} - {})",
                self.now_bucket(&table.granularity),
                table.granularity.sql()
            )
        } else {
            "0".into()
        };
        let aggregates: String = self
            .metrics
            .iter()
            .map(|m| format!(", {}", m.kind().aggregate(&m.column)))
            .collect();
        let merges = self.conflict_merges();
        let groups = self.group_positions();
        format!(
            "INSERT INTO {target} AS r (bucket{dims}, event_count, late_events{names})\n\
             SELECT {bucket}{dims}, pg_catalog.count(*), {late}{aggregates}\n  FROM {rows}{where_}\n \
             GROUP BY {groups} ORDER BY {groups}\n\
             ON CONFLICT (bucket{dims}) DO UPDATE SET\n       \
             event_count = r.event_count + excluded.event_count,\n       \
             late_events = r.late_events + excluded.late_events{merges}",
            dims = self.dimension_list(", "),
            names = self.metric_names(),
            where_ = if conditions.is_empty() { String::new() } else { format!("\n WHERE {}", conditions.join(" AND ")) },
        )
    }

    /// What one statement's inserted rows (the transition table `new_rows`) do: a check that
    /// none lacks a time, then one upsert per table, finest first.
    pub fn ingest_statements(&self, targets: &Targets) -> Vec<String> {
        let mut statements = vec![self.no_null_times("new_rows")];
        statements.extend(
            targets
                .tables
                .iter()
                .enumerate()
                .map(|(i, target)| self.upsert(i, target, "new_rows", None, true)),
        );
        statements
    }

    /// Refuses `rows` (a statement's rows, or the source) when one has no time.
    fn no_null_times(&self, rows: &str) -> String {
        format!(
            "SELECT collect._rollup_no_null_times(pg_catalog.count(*), pg_catalog.format('%I.%I', {}, {}), {}) FROM {rows} WHERE {} IS NULL",
            literal(&self.source.schema),
            literal(&self.source.name),
            literal(&self.time_column),
            ident(&self.time_column)
        )
    }

    /// Rolls up the rows the source holds already into the rollup table (a new rollup has no
    /// tiers yet); none of them counts as late.
    pub fn backfill(&self) -> Vec<String> {
        let source = self.source.sql();
        vec![
            self.no_null_times(&source),
            self.upsert(0, &self.tables[0].table.sql(), &source, None, false),
        ]
    }

    /// Marks the buckets a correction touched stale (sums and sketches cannot be un-added).
    pub fn mark_stale(&self, correction: Correction, targets: &Targets) -> String {
        let bucket = self.bucket_of(&ident(&self.time_column), &self.tables[0].granularity);
        let time = ident(&self.time_column);
        let (key_column, key) = match &self.stale_key {
            Some(k) => (format!(", {}", ident(k)), format!(", {}", ident(k))),
            None => (String::new(), String::new()),
        };
        let rows = match correction {
            // Every bucket of every table: a tier may keep buckets whose minutes retention
            // has dropped, and they count rows that are gone too. A tier's bucket is also a
            // base bucket (granularities are multiples, on one origin), so refresh finds it.
            Correction::Truncate => targets
                .tables
                .iter()
                .map(|table| format!("SELECT bucket{key} FROM {table}"))
                .collect::<Vec<_>>()
                .join(" UNION "),
            Correction::Delete => format!("SELECT DISTINCT {bucket}{key} FROM old_rows WHERE {time} IS NOT NULL"),
            Correction::Update => format!(
                "SELECT b{key} FROM (SELECT {bucket} AS b{key} FROM old_rows UNION SELECT {bucket}{key} FROM new_rows) s WHERE b IS NOT NULL"
            ),
        };
        format!(
            "INSERT INTO {} (bucket{key_column}) {rows} ON CONFLICT DO NOTHING",
            targets.stale
        )
    }

    /// Fills tier `index` from the rollup table.
    pub fn tier_fill(&self, index: usize) -> String {
        let tier = &self.tables[index];
        let reaggregates: String = self
            .metrics
            .iter()
            .map(|m| format!(", {}", m.kind().reaggregate(&m.name)))
            .collect();
        format!(
            "INSERT INTO {} (bucket{dims}, event_count, late_events{names})\n\
             SELECT {}{dims}, pg_catalog.sum(event_count), pg_catalog.sum(late_events){reaggregates}\n  FROM {}\n \
             GROUP BY {}",
            tier.table.sql(),
            self.bucket_of("bucket", &tier.granularity),
            self.tables[0].table.sql(),
            self.group_positions(),
            dims = self.dimension_list(", "),
            names = self.metric_names(),
        )
    }

    /// Recomputes, from the source, every bucket of table `index` that holds one of the base
    /// buckets `$1` (text, cast to the bucket's type): deletes them, then rebuilds them.
    pub fn refresh(&self, index: usize) -> [String; 2] {
        let table = &self.tables[index];
        let buckets = format!(
            "(SELECT DISTINCT {} FROM pg_catalog.unnest($1::{}[]) b)",
            self.bucket_of("b", &table.granularity),
            self.time_type
        );
        let time = ident(&self.time_column);
        [
            format!(
                "DELETE FROM {} WHERE bucket IN {buckets}",
                table.table.sql()
            ),
            self.upsert(
                index,
                &table.table.sql(),
                &self.source.sql(),
                Some(&format!(
                    "{} IN {buckets}",
                    self.bucket_of(&time, &table.granularity)
                )),
                false,
            ),
        ]
    }

    /// The base buckets (as text) that hold raw rows with times in [`$1`, `$2`) or rows of
    /// the rollup table there.
    pub fn buckets_between(&self) -> String {
        let table = &self.tables[0];
        let time = ident(&self.time_column);
        format!(
            "SELECT pg_catalog.array_agg(DISTINCT b::pg_catalog.text) FROM (\n\
             SELECT {} AS b FROM {} WHERE {time} >= $1 AND {time} < $2\n\
             UNION ALL SELECT bucket FROM {} WHERE bucket >= {} AND bucket < $2) s",
            self.bucket_of(&time, &table.granularity),
            self.source.sql(),
            table.table.sql(),
            self.bucket_of(&format!("$1::{}", self.time_type), &table.granularity),
        )
    }

    /// Merges partial rows, given column by column as arrays `$1`, `$2`, … of element types
    /// `wires` (bucket, dimensions, event_count, late_events, metrics; see `partials`), into
    /// `target` (one of the rollup's tables), each cast to its column's type (the dimensions'
    /// are `dimension_types`).
    pub fn upsert_partials(
        &self,
        target: &str,
        dimension_types: &[&str],
        wires: &[&str],
    ) -> String {
        let types: Vec<String> = std::iter::once(self.time_type.clone())
            .chain(dimension_types.iter().map(|t| t.to_string()))
            .chain(["bigint".to_string(), "bigint".to_string()])
            .chain(self.metrics.iter().map(|m| m.column_type.clone()))
            .collect();
        // Unnested in the select list, where the arrays are read in step as ROWS FROM would,
        // without first copying every row into a tuplestore (a fifth of the upsert).
        let columns: Vec<String> = wires
            .iter()
            .zip(&types)
            .enumerate()
            .map(|(i, (w, t))| format!("pg_catalog.unnest(${}::{w}[])::{t}", i + 1))
            .collect();
        let merges = self.conflict_merges();
        let groups = self.group_positions();
        format!(
            "INSERT INTO {} AS r (bucket{dims}, event_count, late_events{names_})\n\
             SELECT {}\n \
             ORDER BY {groups}\n\
             ON CONFLICT (bucket{dims}) DO UPDATE SET\n       \
             event_count = r.event_count + excluded.event_count,\n       \
             late_events = r.late_events + excluded.late_events{merges}",
            target,
            columns.join(",\n       "),
            dims = self.dimension_list(", "),
            names_ = self.metric_names(),
        )
    }

    /// Per table, as microseconds from 2000-01-01 in the time column's terms: before which
    /// bucket a row is late, and (NULL without retention) from which bucket rows are kept.
    pub fn thresholds(&self) -> String {
        let base = if self.time_type == "timestamp without time zone" {
            "'2000-01-01 00:00:00'::pg_catalog.timestamp"
        } else {
            "'2000-01-01 00:00:00+00'::pg_catalog.timestamptz"
        };
        let micros =
            |at: String| format!("(extract(epoch FROM {at} - {base}) * 1000000)::pg_catalog.int8");
        let late: Vec<String> = self
            .tables
            .iter()
            .map(|t| {
                micros(format!(
                    "{} - {}",
                    self.now_bucket(&t.granularity),
                    t.granularity.sql()
                ))
            })
            .collect();
        let keep: Vec<String> = self
            .tables
            .iter()
            .map(|t| match &t.keep {
                Some(k) => micros(format!("{} - {}", self.now_bucket(&t.granularity), k.sql())),
                None => "NULL::pg_catalog.int8".into(),
            })
            .collect();
        format!(
            "SELECT ARRAY[{}], ARRAY[{}]",
            late.join(", "),
            keep.join(", ")
        )
    }

    /// Deletes rows of table `index` past its retention.
    /// Tier `index` (just added to the definition), made: the rollup table's columns and
    /// its unique index over bucket and dimensions.
    pub fn create_tier(&self, index: usize) -> Vec<String> {
        let tier = self.tables[index].table.sql();
        let keys: String = self
            .dimensions
            .iter()
            .map(|d| format!(", {}", ident(d)))
            .collect();
        vec![
            format!("CREATE TABLE {tier} (LIKE {})", self.tables[0].table.sql()),
            format!("CREATE UNIQUE INDEX ON {tier} (bucket{keys}) NULLS NOT DISTINCT"),
        ]
    }

    /// The base buckets marked stale, as text.
    pub fn stale_buckets(&self) -> String {
        format!(
            "SELECT pg_catalog.array_agg(DISTINCT bucket::pg_catalog.text) FROM {}",
            self.stale.sql()
        )
    }

    /// $1 buckets (as text): no longer stale, rebuilt.
    pub fn clear_stale(&self) -> String {
        format!(
            "DELETE FROM {} WHERE bucket = ANY ($1::pg_catalog.text[]::{}[])",
            self.stale.sql(),
            self.time_type
        )
    }

    /// Table `index`'s newest bucket, as text (NULL when empty).
    pub fn newest_bucket(&self, index: usize) -> String {
        format!(
            "SELECT pg_catalog.max(bucket)::pg_catalog.text FROM {}",
            self.tables[index].table.sql()
        )
    }

    /// Whether table `index` holds any row (`SELECT 1`: Citus plans no empty target list
    /// over a distributed table).
    pub fn any_rows(&self, index: usize) -> String {
        format!(
            "SELECT EXISTS (SELECT 1 FROM {})",
            self.tables[index].table.sql()
        )
    }

    pub fn retention(&self, index: usize) -> Option<String> {
        let table = &self.tables[index];
        let keep = table.keep.as_ref()?;
        Some(format!(
            "DELETE FROM {} WHERE bucket < {} - {}",
            table.table.sql(),
            self.now_bucket(&table.granularity),
            keep.sql()
        ))
    }
}

/// A column of a new rollup table: its name and type, as `format_type` writes the type.
#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: String,
}

/// What `collect.create_rollup` makes: the rollup table in `schema` (bucket, dimensions,
/// counts, metrics; one row per bucket and dimension values, NULLs included), its stale
/// table (the buckets `refresh_rollup` recomputes; on Citus it holds the distribution column
/// too, to be co-located with the source) and its comment.
pub struct NewTables<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    pub time_type: &'a str,
    pub dimensions: &'a [Column],
    pub metrics: &'a [Metric],
    pub distribution_column: Option<&'a str>,
    pub comment: &'a str,
}

impl NewTables<'_> {
    pub fn create_sql(&self) -> Vec<String> {
        let rollup = qualified(self.schema, self.name);
        let stale = qualified(self.schema, &format!("{}_stale", self.name));
        let mut columns = vec![format!("bucket {} NOT NULL", self.time_type)];
        columns.extend(
            self.dimensions
                .iter()
                .map(|d| format!("{} {}", ident(&d.name), d.column_type)),
        );
        columns.push("event_count bigint NOT NULL".into());
        columns.push("late_events bigint NOT NULL".into());
        columns.extend(
            self.metrics
                .iter()
                .map(|m| format!("{} {}", ident(&m.name), m.column_type)),
        );
        let keys: String = self
            .dimensions
            .iter()
            .map(|d| format!(", {}", ident(&d.name)))
            .collect();
        let distributed = self
            .distribution_column
            .and_then(|c| self.dimensions.iter().find(|d| d.name == c));
        let (stale_column, stale_key) = match distributed {
            Some(d) => (
                format!("{} {}, ", ident(&d.name), d.column_type),
                format!(", {}", ident(&d.name)),
            ),
            None => (String::new(), String::new()),
        };
        vec![
            format!("CREATE TABLE {rollup} ({})", columns.join(", ")),
            format!("CREATE UNIQUE INDEX ON {rollup} (bucket{keys}) NULLS NOT DISTINCT"),
            format!(
                "CREATE TABLE {stale} (bucket {}, {stale_column}marked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket{stale_key}))",
                self.time_type
            ),
            format!("COMMENT ON TABLE {rollup} IS {}", literal(self.comment)),
        ]
    }
}

/// The triggers that keep a rollup of name `name` (in `schema`) on its source.
pub struct Triggers<'a> {
    pub source: &'a QualifiedName,
    pub schema: &'a str,
    pub name: &'a str,
    /// The definition's version, which the ingest triggers check against the registry.
    pub version: i32,
    /// Whether the source keeps its rows (a table) or buffers them (a view that keeps none).
    pub keep_raw: bool,
    /// The rollup's description (`collect._rollup_spec`), which a trigger on a Citus shard
    /// needs, where the registry is not.
    pub spec: &'a str,
}

impl Triggers<'_> {
    const SUFFIXES: [&'static str; 6] = [
        "_ingest",
        "_begin",
        "_buffer",
        "_update",
        "_delete",
        "_truncate",
    ];

    /// Every trigger a rollup of this name makes, of either kind: what dropping it removes.
    pub fn names(&self) -> Vec<String> {
        Self::SUFFIXES
            .iter()
            .map(|s| format!("{}{s}", self.name))
            .collect()
    }

    /// The CREATE TRIGGER statements.
    pub fn create(&self) -> Vec<String> {
        let source = self.source.sql();
        let trigger = |suffix: &str| ident(&format!("{}{suffix}", self.name));
        let (schema, name) = (literal(self.schema), literal(self.name));
        let version = literal(&self.version.to_string());
        if !self.keep_raw {
            // Rows are buffered in memory per statement and rolled up; none is stored.
            return vec![
                format!(
                    "CREATE TRIGGER {} BEFORE INSERT ON {source} FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_begin({schema}, {name})",
                    trigger("_begin")
                ),
                format!(
                    "CREATE TRIGGER {} INSTEAD OF INSERT ON {source} FOR EACH ROW EXECUTE FUNCTION collect._rollup_buffer_row({schema}, {name})",
                    trigger("_buffer")
                ),
                format!(
                    "CREATE TRIGGER {} AFTER INSERT ON {source} FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_flush({schema}, {name}, {version})",
                    trigger("_ingest")
                ),
            ];
        }
        let args = format!("{schema}, {name}, {version}, {}", literal(self.spec));
        vec![
            format!(
                "CREATE TRIGGER {} AFTER INSERT ON {source} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest({args})",
                trigger("_ingest")
            ),
            format!(
                "CREATE TRIGGER {} AFTER UPDATE ON {source} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale({args})",
                trigger("_update")
            ),
            format!(
                "CREATE TRIGGER {} AFTER DELETE ON {source} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale({args})",
                trigger("_delete")
            ),
            format!(
                "CREATE TRIGGER {} AFTER TRUNCATE ON {source} FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_mark_stale({args})",
                trigger("_truncate")
            ),
        ]
    }
}

/// A rollup for tests: of source `s.source` with `columns` (name, type), the metrics
/// (name, definition) and dimensions given, and one table per granularity (`s.m`, `s.t1`, …).
#[cfg(test)]
pub(crate) fn test_rollup(
    source: &str,
    columns: &[(&str, &str)],
    metrics: &[(&str, &str)],
    dimensions: &[&str],
    granularities_micros: &[i64],
) -> Rollup {
    let name = |n: &str| QualifiedName {
        schema: "s".into(),
        name: n.into(),
    };
    let columns: BTreeMap<String, String> = columns
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let metrics: BTreeMap<String, String> = metrics
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let dimensions: Vec<String> = dimensions.iter().map(|d| d.to_string()).collect();
    Rollup {
        source: name(source),
        time_column: "at".into(),
        time_type: "timestamp with time zone".into(),
        metrics: parse_metrics(&format!("s.{source}"), &metrics, &dimensions, &columns).unwrap(),
        dimensions,
        tables: granularities_micros
            .iter()
            .enumerate()
            .map(|(i, &micros)| Table {
                table: name(&if i == 0 {
                    "m".to_string()
                } else {
                    format!("t{i}")
                }),
                granularity: Interval {
                    months: 0,
                    days: 0,
                    micros,
                },
                keep: None,
            })
            .collect(),
        stale: name("m_stale"),
        stale_key: None,
        vocabulary: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_tables_quote_names_and_key_the_stale_table_on_citus() {
        let columns = |pairs: &[(&str, &str)]| -> Vec<Column> {
            pairs
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    column_type: t.to_string(),
                })
                .collect()
        };
        let dimensions = columns(&[("page", "text"), ("tenant id", "bigint")]);
        let metrics = test_rollup(
            "e",
            &[("at", "timestamp with time zone"), ("ms", "integer")],
            &[("total", "sum(ms)")],
            &[],
            &[60_000_000],
        )
        .metrics;
        let tables = |distribution_column| NewTables {
            schema: "app",
            name: "e_1m",
            time_type: "timestamp with time zone",
            dimensions: &dimensions,
            metrics: &metrics,
            distribution_column,
            comment: "Rollup of app.e per 00:01:00 (pg_collect)",
        };
        let local = tables(None).create_sql();
        assert_eq!(
            local[0],
            "CREATE TABLE \"app\".\"e_1m\" (bucket timestamp with time zone NOT NULL, \"page\" text, \"tenant id\" bigint, \
             event_count bigint NOT NULL, late_events bigint NOT NULL, \"total\" bigint)"
        );
        assert_eq!(local[1], "CREATE UNIQUE INDEX ON \"app\".\"e_1m\" (bucket, \"page\", \"tenant id\") NULLS NOT DISTINCT");
        assert!(local[2]
            .ends_with("marked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket))"));
        let citus = tables(Some("tenant id")).create_sql();
        assert_eq!(
            citus[2],
            "CREATE TABLE \"app\".\"e_1m_stale\" (bucket timestamp with time zone, \"tenant id\" bigint, \
             marked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (bucket, \"tenant id\"))"
        );
        assert_eq!(
            local[3],
            "COMMENT ON TABLE \"app\".\"e_1m\" IS 'Rollup of app.e per 00:01:00 (pg_collect)'"
        );
    }
    #[test]
    fn triggers_quote_every_name_and_carry_the_spec() {
        let source = QualifiedName {
            schema: "app".into(),
            name: "odd \"events\"".into(),
        };
        let triggers = |keep_raw| Triggers {
            source: &source,
            schema: "app",
            name: "e's_1m",
            version: 3,
            keep_raw,
            spec: "{\"a\": \"it's\"}",
        };
        let kept = triggers(true).create();
        assert_eq!(kept.len(), 4);
        assert_eq!(
            kept[0],
            "CREATE TRIGGER \"e's_1m_ingest\" AFTER INSERT ON \"app\".\"odd \"\"events\"\"\" REFERENCING NEW TABLE AS new_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION collect._rollup_ingest('app', 'e''s_1m', '3', '{\"a\": \"it''s\"}')"
        );
        assert!(
            kept[3].contains("AFTER TRUNCATE")
                && kept[3].contains("_rollup_mark_stale('app', 'e''s_1m', '3', ")
        );
        let buffered = triggers(false).create();
        assert_eq!(buffered.len(), 3);
        assert!(
            buffered[1].contains("INSTEAD OF INSERT")
                && buffered[1].ends_with("_rollup_buffer_row('app', 'e''s_1m')")
        );
        assert!(buffered[2].ends_with("collect._rollup_flush('app', 'e''s_1m', '3')"));
        // Dropping finds every one of either kind by name.
        let names = triggers(true).names();
        for made in kept.iter().chain(&buffered) {
            let name = made.split('"').nth(1).unwrap();
            assert!(names.contains(&name.to_string()), "{name}");
        }
    }

    use super::*;

    fn columns() -> BTreeMap<String, String> {
        [
            ("ms", "integer"),
            ("big", "bigint"),
            ("user_id", "text"),
            ("page", "text"),
            ("at", "timestamp with time zone"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    fn metrics(pairs: &[(&str, &str)]) -> Result<Vec<Metric>, MetricError> {
        let m = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        parse_metrics("app.events", &m, &["page".to_string()], &columns())
    }

    const MINUTE: Interval = Interval {
        months: 0,
        days: 0,
        micros: 60_000_000,
    };
    const HOUR: Interval = Interval {
        months: 0,
        days: 0,
        micros: 3_600_000_000,
    };

    fn rollup(stale_key: Option<&str>) -> Rollup {
        let name = |n: &str| QualifiedName {
            schema: "app".into(),
            name: n.into(),
        };
        Rollup {
            source: name("events"),
            time_column: "at".into(),
            time_type: "timestamp with time zone".into(),
            dimensions: vec!["page".into()],
            metrics: metrics(&[
                ("total", "sum(ms)"),
                ("users", "distinct(user_id, 11)"),
                ("top", "top(page, 5)"),
            ])
            .unwrap(),
            tables: vec![
                Table {
                    table: name("per_minute"),
                    granularity: MINUTE,
                    keep: None,
                },
                Table {
                    table: name("per_hour"),
                    granularity: HOUR,
                    keep: Some(Interval {
                        months: 1,
                        days: 0,
                        micros: 0,
                    }),
                },
            ],
            stale: name("per_minute_stale"),
            stale_key: stale_key.map(str::to_string),
            vocabulary: Default::default(),
        }
    }

    #[test]
    fn every_kind_parses_with_its_limits() {
        let parsed = |d: &str| MetricKind::parse("m", d);
        assert_eq!(parsed("sum(ms)"), Ok((MetricKind::Sum, "ms".into())));
        assert_eq!(
            parsed(" distinct ( user_id , 011 ) "),
            Ok((MetricKind::Distinct(11), "user_id".into()))
        );
        assert_eq!(
            parsed("distinct(user_id)"),
            Ok((MetricKind::Distinct(14), "user_id".into()))
        );
        assert_eq!(
            parsed("top(page, 10000)"),
            Ok((MetricKind::Top(10000), "page".into()))
        );
        for bad in [
            "sum(ms, 3)",
            "top(page)",
            "avg(ms)",
            "sum(m s)",
            "sum(\"ms\")",
            "sum(ms",
            "sum()",
            "top(page, -1)",
            "top(page, 1e3)",
        ] {
            assert!(
                matches!(parsed(bad), Err(MetricError::Invalid { .. })),
                "{bad}"
            );
        }
        for out_of_range in [
            "distinct(u, 3)",
            "distinct(u, 19)",
            "distinct(u, 99999999999999999999999)",
            "top(p, 0)",
            "top(p, 10001)",
        ] {
            let Err(MetricError::Invalid { message, .. }) = parsed(out_of_range) else {
                panic!("{out_of_range}")
            };
            assert!(message.contains("must be between"), "{message}");
        }
    }

    #[test]
    fn metric_columns_are_checked_and_widened() {
        let m = metrics(&[
            ("a", "sum(ms)"),
            ("b", "sum(big)"),
            ("c", "max(page)"),
            ("d", "quantiles(ms)"),
        ])
        .unwrap();
        let types: Vec<&str> = m.iter().map(|m| m.column_type.as_str()).collect();
        assert_eq!(types, ["bigint", "numeric", "text", "collect.quantiles"]);
        assert!(matches!(
            metrics(&[("a", "sum(page)")]),
            Err(MetricError::DatatypeMismatch(_))
        ));
        assert!(matches!(
            metrics(&[("a", "sum(nope)")]),
            Err(MetricError::UndefinedColumn(_))
        ));
        assert!(matches!(
            metrics(&[("page", "sum(ms)")]),
            Err(MetricError::DuplicateColumn(_))
        ));
        assert!(matches!(
            metrics(&[("bucket", "sum(ms)")]),
            Err(MetricError::DuplicateColumn(_))
        ));
        assert!(matches!(
            metrics(&[("", "sum(ms)")]),
            Err(MetricError::Invalid { .. })
        ));
        // Stored precision only where the user wrote one.
        let m = metrics(&[("a", "distinct(user_id)"), ("b", "distinct(user_id, 12)")]).unwrap();
        assert_eq!((m[0].precision, m[1].precision), (None, Some(12)));
        assert_eq!(m[1].kind(), MetricKind::Distinct(12));
    }

    #[test]
    fn ingest_upserts_every_table_qualified() {
        let r = rollup(None);
        let statements = r.ingest_statements(&r.own_targets());
        assert_eq!(statements.len(), 3);
        assert!(statements[0].contains("collect._rollup_no_null_times(pg_catalog.count(*), pg_catalog.format('%I.%I', 'app', 'events'), 'at')"), "{}", statements[0]);
        let minute = &statements[1];
        assert!(minute.starts_with("INSERT INTO \"app\".\"per_minute\" AS r (bucket, \"page\", event_count, late_events, \"top\", \"total\", \"users\")"), "{minute}");
        assert!(minute.contains("collect.hll_agg(\"user_id\", 11)"));
        assert!(minute.contains("collect.topk_agg(\"page\"::pg_catalog.text, 5)"));
        assert!(minute.contains("ON CONFLICT (bucket, \"page\") DO UPDATE"));
        assert!(minute.contains("\"users\" = coalesce(collect.merge(r.\"users\", excluded.\"users\"), r.\"users\", excluded.\"users\")"));
        assert!(
            !minute.contains("\n WHERE"),
            "no retention, no filter: {minute}"
        );
        let hour = &statements[2];
        assert!(hour.contains("pg_catalog.date_bin('0 mons 0 days 3600000000 microseconds'::pg_catalog.interval, \"at\", collect._bucket_origin())"));
        assert!(
            hour.contains("WHERE pg_catalog.date_bin(")
                && hour.contains(" - '1 mons 0 days 0 microseconds'::pg_catalog.interval"),
            "{hour}"
        );
        // Shard names replace the rollup's own.
        let shards = Targets {
            tables: vec![
                "\"app\".\"per_minute_7\"".into(),
                "\"app\".\"per_hour_8\"".into(),
            ],
            stale: "x".into(),
        };
        assert!(
            r.ingest_statements(&shards)[2].starts_with("INSERT INTO \"app\".\"per_hour_8\" AS r")
        );
    }

    #[test]
    fn timestamp_columns_bin_against_an_origin_of_their_type() {
        let mut r = rollup(None);
        r.time_type = "timestamp without time zone".into();
        let s = r.upsert(1, "t", "new_rows", None, true);
        assert!(
            s.contains("'2000-01-03 00:00:00'::pg_catalog.timestamp")
                && s.contains("LOCALTIMESTAMP"),
            "{s}"
        );
        assert!(!s.contains("_bucket_origin") && !s.contains("now()"), "{s}");
    }

    #[test]
    fn a_backfill_refuses_rows_without_time_then_rolls_up_the_whole_source() {
        let [check, fill] = <[String; 2]>::try_from(rollup(None).backfill()).unwrap();
        assert_eq!(
            check,
            "SELECT collect._rollup_no_null_times(pg_catalog.count(*), pg_catalog.format('%I.%I', 'app', 'events'), 'at') \
             FROM \"app\".\"events\" WHERE \"at\" IS NULL"
        );
        assert!(
            fill.starts_with("INSERT INTO \"app\".\"per_minute\" AS r (bucket")
                && fill.contains("FROM \"app\".\"events\"\n")
                && fill.contains(", pg_catalog.count(*), 0")
                && fill.contains("ON CONFLICT (bucket"),
            "{fill}"
        );
    }

    #[test]
    fn corrections_mark_buckets_stale() {
        let r = rollup(None);
        let t = r.own_targets();
        assert_eq!(
            r.mark_stale(Correction::Truncate, &t),
            "INSERT INTO \"app\".\"per_minute_stale\" (bucket) SELECT bucket FROM \"app\".\"per_minute\" \
             UNION SELECT bucket FROM \"app\".\"per_hour\" ON CONFLICT DO NOTHING"
        );
        assert!(r
            .mark_stale(Correction::Delete, &t)
            .contains("FROM old_rows WHERE \"at\" IS NOT NULL"));
        let update = r.mark_stale(Correction::Update, &t);
        assert!(
            update.contains("old_rows UNION")
                && update
                    .starts_with("INSERT INTO \"app\".\"per_minute_stale\" (bucket) SELECT b FROM")
        );
        let citus = rollup(Some("page"));
        assert!(citus.mark_stale(Correction::Update, &t).starts_with(
            "INSERT INTO \"app\".\"per_minute_stale\" (bucket, \"page\") SELECT b, \"page\" FROM"
        ));
    }

    #[test]
    fn tiers_refresh_and_retention() {
        let r = rollup(None);
        let fill = r.tier_fill(1);
        assert!(fill.starts_with("INSERT INTO \"app\".\"per_hour\" (bucket, \"page\", event_count, late_events, \"top\", \"total\", \"users\")"));
        assert!(
            fill.contains("collect.merge(\"users\")")
                && fill.contains("pg_catalog.sum(\"total\")")
                && fill.contains("GROUP BY 1, 2")
        );
        let [delete, rebuild] = r.refresh(1);
        assert!(
            delete.contains("pg_catalog.unnest($1::timestamp with time zone[])"),
            "{delete}"
        );
        assert!(
            rebuild.contains("FROM \"app\".\"events\"") && rebuild.contains(", 0, "),
            "{rebuild}"
        );
        let wires = [
            "timestamp with time zone",
            "pg_catalog.text",
            "pg_catalog.int8",
            "pg_catalog.int8",
            "collect.topk",
            "pg_catalog.int8",
            "collect.hll",
        ];
        let partials = r.upsert_partials(&r.tables[1].table.sql(), &["pg_catalog.text"], &wires);
        assert!(!partials.contains("ROWS FROM"), "{partials}");
        assert!(partials.contains("SELECT pg_catalog.unnest($1::timestamp with time zone[])::timestamp with time zone,\n       pg_catalog.unnest($2::pg_catalog.text[])::pg_catalog.text,\n       pg_catalog.unnest($3::pg_catalog.int8[])::bigint,\n       pg_catalog.unnest($4::pg_catalog.int8[])::bigint,\n       pg_catalog.unnest($5::collect.topk[])::collect.topk,\n       pg_catalog.unnest($6::pg_catalog.int8[])::bigint,\n       pg_catalog.unnest($7::collect.hll[])::collect.hll\n ORDER BY 1, 2\n"), "{partials}");
        assert!(
            partials.starts_with("INSERT INTO \"app\".\"per_hour\" AS r")
                && partials.contains("ORDER BY 1, 2")
        );
        let thresholds = r.thresholds();
        assert!(
            thresholds.contains("NULL::pg_catalog.int8")
                && thresholds.contains("'1 mons 0 days 0 microseconds'"),
            "{thresholds}"
        );
        let range = r.buckets_between();
        assert!(
            range.contains("FROM \"app\".\"events\" WHERE \"at\" >= $1 AND \"at\" < $2")
                && range.contains("FROM \"app\".\"per_minute\" WHERE bucket >="),
            "{range}"
        );
        assert_eq!(r.retention(0), None);
        assert!(r
            .retention(1)
            .unwrap()
            .starts_with("DELETE FROM \"app\".\"per_hour\" WHERE bucket < pg_catalog.date_bin("));
    }
}
