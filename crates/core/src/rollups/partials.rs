//! Events aggregated in memory into one partial row per bucket and dimension combination of
//! each table a rollup writes; the SQL layer merges those few rows into the tables with the
//! generated upsert (`Rollup::upsert_partials`). Two paths feed it: the rows one statement
//! inserted (`statement`, read from its transition table or buffer) and the lines of a batch
//! (`batches`, parsed from JSON). Pure.
//!
//! Exactness first: every partial equals what the SQL aggregates compute over the same rows in
//! the same order (sums as Postgres sums, min and max as Postgres orders floats, sketches fed
//! the same hashes and values in the same order; a group keeps the dimension values of its
//! first row, as hash aggregation does). Where Postgres would raise an error (an overflowing
//! sum, a time whose bucket is out of range, a value a sketch refuses) the aggregator answers
//! None, and the caller leaves the events to SQL, which raises it.

use std::borrow::Cow;

use super::generate::{Interval, MetricKind, Rollup};
use crate::sketches::hll::Hll;
use crate::sketches::quantiles::Quantiles;
use crate::sketches::topk::TopK;
use crate::sketches::wire::hash64;

/// Microseconds from Postgres' epoch (2000-01-01) to the bucket origin, 2000-01-03.
const ORIGIN: i64 = 2 * 86_400_000_000;
/// The range of finite timestamps, in microseconds from 2000-01-01 (MIN_TIMESTAMP and
/// END_TIMESTAMP in Postgres' datatype/timestamp.h).
const TIMESTAMPS: std::ops::Range<i64> = -211_813_488_000_000_000..9_223_371_331_200_000_000;

/// How a column's values are read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer type, with its range.
    Int(i64, i64),
    Float4,
    Float8,
    Text,
}

impl Kind {
    /// The kind of a column of this type, as `format_type` writes it without a type modifier.
    pub fn of(type_name: &str) -> Option<Kind> {
        Some(match type_name {
            "smallint" => Kind::Int(i16::MIN as i64, i16::MAX as i64),
            "integer" => Kind::Int(i32::MIN as i64, i32::MAX as i64),
            "bigint" => Kind::Int(i64::MIN, i64::MAX),
            "real" => Kind::Float4,
            "double precision" => Kind::Float8,
            "text" | "character varying" => Kind::Text,
            _ => return None,
        })
    }

    /// The type a partial row's text is read as.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Int(_, max) if max == i16::MAX as i64 => "pg_catalog.int2",
            Kind::Int(_, max) if max == i32::MAX as i64 => "pg_catalog.int4",
            Kind::Int(..) => "pg_catalog.int8",
            Kind::Float4 => "pg_catalog.float4",
            Kind::Float8 => "pg_catalog.float8",
            Kind::Text => "pg_catalog.text",
        }
    }
}

/// One table's thresholds, in microseconds from 2000-01-01 (in the time column's own terms):
/// rows binned before `late_before` are late; rows binned before `keep_from` are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub late_before: i64,
    pub keep_from: Option<i64>,
}

/// What aggregating events in memory needs, when the rollup's columns allow it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub time: String,
    pub with_zone: bool,
    pub dimensions: Vec<(String, Kind)>,
    pub metrics: Vec<(MetricKind, String, Kind)>,
    tables: Vec<(i64, Thresholds)>,
}

impl Plan {
    /// None when some column of the rollup is of a type or metric this path does not take;
    /// `kind_of` gives a source column's kind (None for any other type).
    pub fn new(
        rollup: &Rollup,
        kind_of: impl Fn(&str) -> Option<Kind>,
        thresholds: &[Thresholds],
    ) -> Option<Plan> {
        let with_zone = match rollup.time_type.as_str() {
            "timestamp with time zone" => true,
            "timestamp without time zone" => false,
            _ => return None,
        };
        let dimensions = rollup
            .dimensions
            .iter()
            .map(|d| Some((d.clone(), kind_of(d)?)))
            .collect::<Option<Vec<_>>>()?;
        let metrics = rollup
            .metrics
            .iter()
            .map(|m| {
                let kind = kind_of(&m.column)?;
                let metric = m.kind();
                let taken = match metric {
                    MetricKind::Sum | MetricKind::Min | MetricKind::Max | MetricKind::Quantiles => {
                        kind != Kind::Text
                    }
                    MetricKind::Distinct(_) | MetricKind::Top(_) => {
                        matches!(kind, Kind::Int(..) | Kind::Text)
                    }
                };
                taken.then(|| (metric, m.column.clone(), kind))
            })
            .collect::<Option<Vec<_>>>()?;
        if thresholds.len() != rollup.tables.len() {
            return None;
        }
        let tables = rollup
            .tables
            .iter()
            .zip(thresholds)
            .map(|(t, th)| Some((stride(&t.granularity)?, *th)))
            .collect::<Option<Vec<_>>>()?;
        Some(Plan {
            time: rollup.time_column.clone(),
            with_zone,
            dimensions,
            metrics,
            tables,
        })
    }

    /// How each column of the partial rows is passed to SQL (see `Columns`).
    pub fn wires(&self) -> Vec<Wire> {
        let dimension = |kind: &Kind| match kind {
            Kind::Int(..) => Wire::Int8,
            Kind::Float4 | Kind::Float8 => Wire::Float8,
            Kind::Text => Wire::Text,
        };
        std::iter::once(Wire::Time)
            .chain(self.dimensions.iter().map(|(_, k)| dimension(k)))
            .chain([Wire::Int8, Wire::Int8])
            .chain(self.metrics.iter().map(|(m, _, k)| Partial::wire(*m, *k)))
            .collect()
    }
}

fn stride(granularity: &Interval) -> Option<i64> {
    if granularity.months != 0 {
        return None;
    }
    let micros = i64::from(granularity.days)
        .checked_mul(86_400_000_000)?
        .checked_add(granularity.micros)?;
    (micros > 0).then_some(micros)
}

/// Postgres' date_bin on microseconds; None where it raises an error.
fn bin(time: i64, stride: i64) -> Option<i64> {
    if !TIMESTAMPS.contains(&time) {
        return None;
    }
    let diff = time.checked_sub(ORIGIN)?;
    let mut delta = diff - diff % stride;
    if diff < 0 && diff % stride != 0 {
        delta = delta.checked_sub(stride)?;
    }
    let bucket = ORIGIN.checked_add(delta)?;
    TIMESTAMPS.contains(&bucket).then_some(bucket)
}

/// One column's value in one event. Text is its bytes (UTF-8: `Plan::new`'s caller
/// declines text otherwise), checked to be UTF-8 only where it is kept as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(Cow<'a, [u8]>),
}

/// Postgres' float ordering: NaN equals NaN and is greater than any other value; -0 equals 0.
fn float_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
    }
}

/// Float addition as float4pl and float8pl do it: an infinite sum of finite terms is an error.
fn float_sum<F: Copy + std::ops::Add<Output = F> + Into<f64>>(sum: Option<F>, v: F) -> Option<F> {
    let Some(s) = sum else { return Some(v) };
    let total = s + v;
    (!total.into().is_infinite() || s.into().is_infinite() || v.into().is_infinite())
        .then_some(total)
}

/// One metric's running state, as the SQL aggregate keeps it.
#[derive(Debug, Clone)]
enum Partial {
    SumInt(Option<i128>),
    SumFloat4(Option<f32>),
    SumFloat8(Option<f64>),
    MinInt(Option<i64>),
    MaxInt(Option<i64>),
    MinFloat(Option<f64>),
    MaxFloat(Option<f64>),
    Distinct(Hll),
    Quantiles(Quantiles),
    Top(TopK),
}

impl Partial {
    fn new(metric: MetricKind, kind: Kind) -> Partial {
        let int = matches!(kind, Kind::Int(..));
        match metric {
            MetricKind::Sum if int => Partial::SumInt(None),
            MetricKind::Sum if kind == Kind::Float4 => Partial::SumFloat4(None),
            MetricKind::Sum => Partial::SumFloat8(None),
            MetricKind::Min if int => Partial::MinInt(None),
            MetricKind::Max if int => Partial::MaxInt(None),
            MetricKind::Min => Partial::MinFloat(None),
            MetricKind::Max => Partial::MaxFloat(None),
            MetricKind::Distinct(p) => {
                Partial::Distinct(Hll::new(p).expect("precision was checked"))
            }
            MetricKind::Quantiles => Partial::Quantiles(Quantiles::default()),
            MetricKind::Top(k) => Partial::Top(TopK::new(k).expect("k was checked")),
        }
    }

    /// None where the SQL aggregate raises an error.
    fn add(&mut self, value: &Value) -> Option<()> {
        use std::cmp::Ordering::{Greater, Less};
        match (self, value) {
            (_, Value::Null) => {}
            (Partial::SumInt(s), Value::Int(v)) => *s = Some(s.unwrap_or(0) + *v as i128),
            // A real's sum adds in real.
            (Partial::SumFloat4(s), Value::Float(v)) => *s = Some(float_sum(*s, *v as f32)?),
            (Partial::SumFloat8(s), Value::Float(v)) => *s = Some(float_sum(*s, *v)?),
            (Partial::MinInt(m), Value::Int(v)) => *m = Some(m.map_or(*v, |m| m.min(*v))),
            (Partial::MaxInt(m), Value::Int(v)) => *m = Some(m.map_or(*v, |m| m.max(*v))),
            // float8smaller and float8larger: the kept value stays only if strictly smaller (larger).
            (Partial::MinFloat(m), Value::Float(v)) => {
                *m = Some(m.filter(|m| float_cmp(*m, *v) == Less).unwrap_or(*v))
            }
            (Partial::MaxFloat(m), Value::Float(v)) => {
                *m = Some(m.filter(|m| float_cmp(*m, *v) == Greater).unwrap_or(*v))
            }
            (Partial::Distinct(h), Value::Int(v)) => h.add_hash(hash64(&v.to_le_bytes())),
            (Partial::Distinct(h), Value::Text(t)) => h.add_hash(hash64(t)),
            (Partial::Quantiles(q), Value::Int(v)) => q.add(*v as f64).ok()?,
            (Partial::Quantiles(q), Value::Float(v)) => q.add(*v).ok()?,
            (Partial::Top(t), Value::Int(v)) => t.add(&v.to_string(), 1),
            (Partial::Top(t), Value::Text(s)) => t.add(std::str::from_utf8(s).ok()?, 1),
            _ => return None,
        }
        Some(())
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Partial::Distinct(h) => h.heap_bytes(),
            Partial::Quantiles(q) => q.heap_bytes(),
            Partial::Top(t) => t.heap_bytes(),
            _ => 0,
        }
    }

    /// The value as the SQL layer receives it (see `Wire`).
    fn cell(&self, sum_type_is_bigint: bool) -> Option<Cell> {
        let or_null = |v: Option<Cell>| v.unwrap_or(Cell::Null);
        Some(match self {
            Partial::SumInt(s) => or_null(match s {
                Some(v) if sum_type_is_bigint => Some(Cell::Int(i64::try_from(*v).ok()?)),
                other => other.map(|v| Cell::Text(v.to_string())),
            }),
            // sum(real) adds in real; the rollup's column is double precision.
            Partial::SumFloat4(s) => or_null(s.map(|v| Cell::Float(f64::from(v)))),
            Partial::SumFloat8(s) | Partial::MinFloat(s) | Partial::MaxFloat(s) => {
                or_null(s.map(Cell::Float))
            }
            Partial::MinInt(m) | Partial::MaxInt(m) => or_null(m.map(Cell::Int)),
            Partial::Distinct(h) => Cell::Bytes(h.to_bytes()),
            Partial::Quantiles(q) => Cell::Bytes(q.to_bytes()),
            Partial::Top(t) => Cell::Bytes(t.to_bytes()),
        })
    }

    /// How this metric's values travel.
    fn wire(metric: MetricKind, kind: Kind) -> Wire {
        match (metric, kind) {
            (MetricKind::Sum, Kind::Int(_, max)) if max == i64::MAX => Wire::Text,
            (MetricKind::Sum | MetricKind::Min | MetricKind::Max, Kind::Int(..)) => Wire::Int8,
            (MetricKind::Sum | MetricKind::Min | MetricKind::Max, _) => Wire::Float8,
            (MetricKind::Distinct(_), _) => Wire::Sketch("collect.hll"),
            (MetricKind::Quantiles, _) => Wire::Sketch("collect.quantiles"),
            (MetricKind::Top(_), _) => Wire::Sketch("collect.topk"),
        }
    }
}

/// One value of a partial row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    /// An integer, or a time in microseconds from 2000-01-01.
    Int(i64),
    Float(f64),
    Text(String),
    /// A sketch's encoding.
    Bytes(Vec<u8>),
}

/// How a column of partial rows is passed to SQL: as an array of this element type, cast
/// there to the column's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wire {
    /// The time column's own type.
    Time,
    Int8,
    Float8,
    Text,
    /// A sketch type, by its qualified name.
    Sketch(&'static str),
}

/// A group of events: one partial row. Its key and its first event's dimensions sit in its
/// table's arenas, its partials in the table's run of partials.
#[derive(Debug, Clone)]
struct Group {
    hash: u64,
    bucket: i64,
    key: std::ops::Range<usize>,
    first: std::ops::Range<usize>,
    events: i64,
    late: i64,
}

/// One table's groups, found by their key's bytes (the bucket, then each dimension tagged).
/// Everything a group holds but its sketches lives in a few vectors shared by all groups: a
/// minute's group sees a few dozen events, and an allocation per group and field cost more
/// than aggregating them.
#[derive(Default)]
struct Groups {
    /// Open addressing with linear probing: a group's position plus one, or 0 for a free slot.
    /// Never more than half full.
    slots: Vec<usize>,
    groups: Vec<Group>,
    /// `metrics` partials per group, in the groups' order.
    partials: Vec<Partial>,
    keys: Vec<u8>,
    /// Each group's first event's dimensions, as they came (the key holds them as compared).
    firsts: Vec<u8>,
}

impl Groups {
    /// The group with this key, or the free slot where it would go.
    fn find(&self, hash: u64, key: &[u8]) -> Result<usize, usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut slot = hash as usize & mask;
        loop {
            match self.slots.get(slot) {
                None | Some(0) => return Err(slot),
                Some(&at) => {
                    let group = &self.groups[at - 1];
                    if group.hash == hash && self.keys[group.key.clone()] == *key {
                        return Ok(at - 1);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Makes room for one more group: doubles the slots when they would be half full.
    fn reserve_one(&mut self) {
        if (self.groups.len() + 1) * 2 <= self.slots.len() {
            return;
        }
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        let mask = size - 1;
        for (at, group) in self.groups.iter().enumerate() {
            let mut slot = group.hash as usize & mask;
            while self.slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = at + 1;
        }
    }

    /// What the groups take: the vectors' lengths, not their capacities, since the pages a
    /// large vector reserved ahead stay untouched, and so unallocated, until it grows into them.
    fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<usize>()
            + self.groups.len() * std::mem::size_of::<Group>()
            + self.partials.len() * std::mem::size_of::<Partial>()
            + self.keys.len()
            + self.firsts.len()
    }
}

/// Appends a dimension's value to a key or a first event's dimensions: a tag, then the value.
/// `as_compared` writes floats as Postgres compares them (-0 as 0, every NaN as one).
fn encode(value: &Value, as_compared: bool, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(0),
        Value::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            let bits = if !as_compared {
                f.to_bits()
            } else if *f == 0.0 {
                0
            } else if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            };
            out.push(2);
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Text(t) => {
            out.push(3);
            out.extend_from_slice(&(t.len() as u64).to_le_bytes());
            out.extend_from_slice(t);
        }
    }
}

/// The cells of dimensions `encode` wrote; None where text is not UTF-8.
fn decode(mut bytes: &[u8]) -> Option<Vec<Cell>> {
    let mut cells = Vec::new();
    let eight = |bytes: &mut &[u8]| {
        let (word, rest) = bytes.split_at(8);
        *bytes = rest;
        u64::from_le_bytes(word.try_into().expect("eight bytes"))
    };
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        cells.push(match tag {
            0 => Cell::Null,
            1 => Cell::Int(eight(&mut bytes) as i64),
            2 => Cell::Float(f64::from_bits(eight(&mut bytes))),
            _ => {
                let length = eight(&mut bytes) as usize;
                let (text, rest) = bytes.split_at(length);
                bytes = rest;
                Cell::Text(String::from_utf8(text.to_vec()).ok()?)
            }
        });
    }
    Some(cells)
}

/// One table's partial rows, column by column: the bucket, the dimensions, event_count,
/// late_events, the metrics (as `Plan::wires` says).
pub type Columns = Vec<Vec<Cell>>;

/// Events aggregated per table, bucket and dimension combination.
pub struct Aggregator<'p> {
    plan: &'p Plan,
    tables: Vec<Groups>,
    events: i64,
    key: Vec<u8>,
    /// About how much memory the groups hold, kept up to date as they grow.
    bytes: usize,
}

impl<'p> Aggregator<'p> {
    pub fn new(plan: &'p Plan) -> Aggregator<'p> {
        Aggregator {
            plan,
            tables: plan.tables.iter().map(|_| Groups::default()).collect(),
            events: 0,
            key: Vec::new(),
            bytes: 0,
        }
    }

    pub fn events(&self) -> i64 {
        self.events
    }

    /// Adds one event: its time in microseconds from 2000-01-01, its dimensions' and metric
    /// columns' values in the plan's order. None where SQL would raise an error.
    pub fn add(&mut self, time: i64, dimensions: &[Value], metrics: &[Value]) -> Option<()> {
        self.key.clear();
        self.key.extend_from_slice(&[0; 8]);
        for value in dimensions {
            encode(value, true, &mut self.key);
        }
        let plan = self.plan;
        let width = plan.metrics.len();
        for ((stride, thresholds), table) in plan.tables.iter().zip(self.tables.iter_mut()) {
            let bucket = bin(time, *stride)?;
            if thresholds.keep_from.is_some_and(|from| bucket < from) {
                continue;
            }
            self.key[..8].copy_from_slice(&bucket.to_le_bytes());
            let hash = hash64(&self.key);
            let at = match table.find(hash, &self.key) {
                Ok(at) => at,
                Err(_) => {
                    let before = table.heap_bytes();
                    table.reserve_one();
                    let slot = table.find(hash, &self.key).expect_err("a new key");
                    let key = table.keys.len()..table.keys.len() + self.key.len();
                    table.keys.extend_from_slice(&self.key);
                    let first = table.firsts.len();
                    for value in dimensions {
                        encode(value, false, &mut table.firsts);
                    }
                    table.groups.push(Group {
                        hash,
                        bucket,
                        key,
                        first: first..table.firsts.len(),
                        events: 0,
                        late: 0,
                    });
                    table
                        .partials
                        .extend(plan.metrics.iter().map(|(m, _, k)| Partial::new(*m, *k)));
                    table.slots[slot] = table.groups.len();
                    self.bytes = (self.bytes + table.heap_bytes()).saturating_sub(before);
                    table.groups.len() - 1
                }
            };
            let group = &mut table.groups[at];
            group.events += 1;
            if bucket < thresholds.late_before {
                group.late += 1;
            }
            let partials = &mut table.partials[at * width..(at + 1) * width];
            for (partial, v) in partials.iter_mut().zip(metrics) {
                let before = partial.heap_bytes();
                partial.add(v)?;
                self.bytes = (self.bytes + partial.heap_bytes()).saturating_sub(before);
            }
        }
        self.events += 1;
        Some(())
    }

    /// About how much memory the groups hold.
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// The partial rows of every table; None where SQL would raise an error.
    pub fn finish(self) -> Option<Vec<Columns>> {
        let plan = self.plan;
        let width = plan.metrics.len();
        self.tables
            .into_iter()
            .map(|table| {
                let mut columns: Columns =
                    vec![Vec::with_capacity(table.groups.len()); 3 + plan.dimensions.len() + width];
                for (at, group) in table.groups.iter().enumerate() {
                    let mut cells = columns.iter_mut();
                    let mut put = |cell: Cell| cells.next().expect("a column per cell").push(cell);
                    put(Cell::Int(group.bucket));
                    decode(&table.firsts[group.first.clone()])?
                        .into_iter()
                        .for_each(&mut put);
                    put(Cell::Int(group.events));
                    put(Cell::Int(group.late));
                    let partials = &table.partials[at * width..(at + 1) * width];
                    for (partial, (_, _, kind)) in partials.iter().zip(&plan.metrics) {
                        // sum(smallint) and sum(integer) are bigint; sum(bigint) is numeric.
                        put(partial.cell(matches!(kind, Kind::Int(_, max) if *max < i64::MAX))?);
                    }
                }
                Some(columns)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollups::generate::test_rollup;
    use std::collections::BTreeMap;

    #[test]
    fn bins_match_date_bin() {
        assert_eq!(bin(ORIGIN + 59_999_999, 60_000_000), Some(ORIGIN));
        assert_eq!(bin(ORIGIN - 1, 60_000_000), Some(ORIGIN - 60_000_000));
        assert_eq!(
            bin(ORIGIN - 60_000_000, 60_000_000),
            Some(ORIGIN - 60_000_000)
        );
        // date_bin raises an error for a bucket before the first timestamp; infinities are not binned here.
        assert_eq!(bin(TIMESTAMPS.start, 86_400_000_000 * 5), None);
        assert_eq!(
            bin(TIMESTAMPS.start, 86_400_000_000 * 7),
            Some(TIMESTAMPS.start)
        );
        assert_eq!(bin(i64::MAX, 60_000_000), None);
        assert_eq!(bin(i64::MIN, 60_000_000), None);
    }

    #[test]
    fn floats_order_and_add_as_postgres_does() {
        use std::cmp::Ordering::*;
        assert_eq!(float_cmp(f64::NAN, f64::INFINITY), Greater);
        assert_eq!(float_cmp(f64::NAN, -f64::NAN), Equal);
        assert_eq!(float_cmp(-0.0, 0.0), Equal);
        let mut min = Partial::MinFloat(None);
        let mut max = Partial::MaxFloat(None);
        for v in [-0.0, 0.0, f64::NAN, 1.0] {
            min.add(&Value::Float(v)).unwrap();
            max.add(&Value::Float(v)).unwrap();
        }
        // float8smaller(-0, 0) is 0 (not strictly smaller, so the new value).
        assert_eq!(min.cell(false), Some(Cell::Float(0.0)));
        assert!(matches!(min.cell(false), Some(Cell::Float(z)) if z.is_sign_positive()));
        assert!(matches!(max.cell(false), Some(Cell::Float(n)) if n.is_nan()));
        let mut sum = Partial::SumFloat8(None);
        sum.add(&Value::Float(f64::MAX)).unwrap();
        assert!(
            sum.add(&Value::Float(f64::MAX)).is_none(),
            "float8pl: an overflow is an error"
        );
        let mut sum = Partial::SumFloat8(None);
        sum.add(&Value::Float(f64::INFINITY)).unwrap();
        sum.add(&Value::Float(1.0)).unwrap();
        assert_eq!(
            sum.cell(false),
            Some(Cell::Float(f64::INFINITY)),
            "an infinite term is no overflow"
        );
        let mut sum = Partial::SumFloat4(None);
        sum.add(&Value::Float(f64::from(f32::MAX))).unwrap();
        assert!(
            sum.add(&Value::Float(f64::from(f32::MAX))).is_none(),
            "float4pl adds in real"
        );
        let mut sum = Partial::SumInt(None);
        sum.add(&Value::Int(i64::MAX)).unwrap();
        sum.add(&Value::Int(1)).unwrap();
        assert_eq!(
            sum.cell(true),
            None,
            "a bigint sum that overflows is an error"
        );
        assert_eq!(
            sum.cell(false),
            Some(Cell::Text("9223372036854775808".into())),
            "sum(bigint) is numeric"
        );
        assert!(Partial::Quantiles(Quantiles::default())
            .add(&Value::Float(f64::NAN))
            .is_none());
    }

    fn rollup() -> (Rollup, Plan) {
        let columns = [
            ("at", "timestamp with time zone"),
            ("page", "text"),
            ("w", "double precision"),
            ("ms", "integer"),
            ("user_id", "bigint"),
        ];
        let metrics = [("total", "sum(ms)"), ("users", "distinct(user_id)")];
        let rollup = test_rollup("t", &columns, &metrics, &["page", "w"], &[60_000_000]);
        let columns: BTreeMap<String, String> = columns
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let plan = Plan::new(
            &rollup,
            |c| Kind::of(columns.get(c)?),
            &[Thresholds {
                late_before: 0,
                keep_from: None,
            }],
        )
        .unwrap();
        (rollup, plan)
    }

    #[test]
    fn groups_keep_their_first_dimensions_and_compare_as_postgres() {
        let (_, plan) = rollup();
        let mut a = Aggregator::new(&plan);
        let page = |p: &'static str| Value::Text(Cow::Borrowed(p.as_bytes()));
        for (w, ms) in [(-0.0, 1), (0.0, 2), (f64::NAN, 3), (-f64::NAN, 4)] {
            a.add(
                ORIGIN,
                &[page("a"), Value::Float(w)],
                &[Value::Int(ms), Value::Int(7)],
            )
            .unwrap();
        }
        a.add(
            ORIGIN + 1,
            &[Value::Null, Value::Null],
            &[Value::Null, Value::Null],
        )
        .unwrap();
        assert_eq!(a.events(), 5);
        assert!(a.heap_bytes() >= 3 * std::mem::size_of::<Group>());
        assert_eq!(
            plan.wires(),
            [
                Wire::Time,
                Wire::Text,
                Wire::Float8,
                Wire::Int8,
                Wire::Int8,
                Wire::Int8,
                Wire::Sketch("collect.hll")
            ]
        );
        let tables = a.finish().unwrap();
        let minutes = &tables[0];
        // bucket, page, w, event_count, late_events, total, users
        assert!(
            matches!(minutes[2][..], [Cell::Float(z), Cell::Float(n), Cell::Null] if z.is_sign_negative() && n.is_nan()),
            "-0 and 0 group as one, under the first: {:?}",
            minutes[2]
        );
        assert_eq!(minutes[3], [Cell::Int(2), Cell::Int(2), Cell::Int(1)]);
        assert_eq!(minutes[5], [Cell::Int(3), Cell::Int(7), Cell::Null]);
        assert!(
            matches!(&minutes[6][2], Cell::Bytes(b) if *b == Hll::new(14).unwrap().to_bytes()),
            "an empty sketch, as hll_agg makes"
        );
    }

    #[test]
    fn groups_are_found_again_as_their_index_grows() {
        let (_, plan) = rollup();
        let mut a = Aggregator::new(&plan);
        let pages: Vec<String> = (0..5000).map(|i| format!("page {i}")).collect();
        // Each group twice, the second time after every other group, in another minute each
        // thousand pages (so keys differ by bucket too).
        for round in 0..2 {
            for (i, page) in pages.iter().enumerate() {
                let minute = ORIGIN + (i as i64 / 1000) * 60_000_000;
                a.add(
                    minute,
                    &[
                        Value::Text(Cow::Borrowed(page.as_bytes())),
                        Value::Float(i as f64),
                    ],
                    &[Value::Int(round + 1), Value::Int(i as i64)],
                )
                .unwrap();
            }
        }
        assert_eq!(a.events(), 10_000);
        let tables = a.finish().unwrap();
        let minutes = &tables[0];
        assert_eq!(minutes[0].len(), 5000, "one group a page");
        for (i, page) in pages.iter().enumerate() {
            // In the order the groups were made, each with its page, both events and sum 1 + 2.
            assert_eq!(
                minutes[0][i],
                Cell::Int(ORIGIN + (i as i64 / 1000) * 60_000_000)
            );
            assert_eq!(minutes[1][i], Cell::Text(page.clone()));
            assert_eq!(minutes[2][i], Cell::Float(i as f64));
            assert_eq!(minutes[3][i], Cell::Int(2));
            assert_eq!(minutes[5][i], Cell::Int(3));
        }
    }

    #[test]
    fn errors_of_sql_are_left_to_sql() {
        let (_, plan) = rollup();
        let mut a = Aggregator::new(&plan);
        a.add(
            0,
            &[Value::Text(Cow::Borrowed(&[0xff])), Value::Null],
            &[Value::Null, Value::Null],
        )
        .unwrap();
        assert!(a.finish().is_none(), "a dimension that is not UTF-8");
        let (_, plan) = rollup();
        let mut a = Aggregator::new(&plan);
        assert!(
            a.add(
                i64::MAX,
                &[Value::Null, Value::Null],
                &[Value::Null, Value::Null]
            )
            .is_none(),
            "infinity"
        );
        let mut a = Aggregator::new(&plan);
        assert!(
            a.add(
                0,
                &[Value::Null, Value::Null],
                &[Value::Float(1.0), Value::Null]
            )
            .is_none(),
            "a value of another kind"
        );
    }
}
