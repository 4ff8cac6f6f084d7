//! A lump of events rolled up without rows: for a rollup that keeps no raw rows, the lines of
//! a lump are parsed here, only for the columns the rollup reads, and aggregated into one
//! partial row per bucket and dimension combination of each table; the SQL layer then merges
//! those few rows with the generated upsert (`Rollup::upsert_partials`). Pure.
//!
//! Exactness first: a value is taken here only where its meaning is beyond doubt (an integer
//! written as one, a float, a string for a text column, a timestamp in ISO 8601 form); for
//! anything else the whole lump is declined and goes the way of rows, where Postgres' own
//! input functions decide (and name the line that fails). Every partial equals what the
//! row path's aggregates compute over the same rows: sums as Postgres sums them, sketches fed
//! the same hashes and values in the same order.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::value::RawValue;

use super::generate::{Interval, MetricKind, Rollup};
use crate::sketches::hll::Hll;
use crate::sketches::quantiles::Quantiles;
use crate::sketches::topk::TopK;
use crate::sketches::wire::hash64;

/// Microseconds from Postgres' epoch (2000-01-01) to the bucket origin, 2000-01-03.
const ORIGIN: i64 = 2 * 86_400_000_000;

/// How a column's values are read from JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer type, with its range.
    Int(i64, i64),
    Float4,
    Float8,
    Text,
}

impl Kind {
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
}

/// One table's thresholds, in microseconds from 2000-01-01 (in the time column's own terms):
/// rows binned before `late_before` are late; rows binned before `keep_from` are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub late_before: i64,
    pub keep_from: Option<i64>,
}

/// What rolling up a lump needs, when the rollup's columns allow it.
#[derive(Debug, Clone)]
pub struct Plan {
    time: String,
    with_zone: bool,
    dimensions: Vec<(String, Kind)>,
    metrics: Vec<(MetricKind, String, Kind)>,
    tables: Vec<(i64, Thresholds)>,
}

impl Plan {
    /// None when some column of the rollup is of a type or metric this path does not take.
    pub fn new(rollup: &Rollup, column_types: &HashMap<String, String>, thresholds: &[Thresholds]) -> Option<Plan> {
        let with_zone = match rollup.time_type.as_str() {
            "timestamp with time zone" => true,
            "timestamp without time zone" => false,
            _ => return None,
        };
        let kind_of = |column: &str| column_types.get(column).and_then(|t| Kind::of(t));
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
                    MetricKind::Sum | MetricKind::Min | MetricKind::Max | MetricKind::Quantiles => kind != Kind::Text,
                    MetricKind::Distinct(_) | MetricKind::Top(_) => matches!(kind, Kind::Int(..) | Kind::Text),
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
        Some(Plan { time: rollup.time_column.clone(), with_zone, dimensions, metrics, tables })
    }
}

fn stride(granularity: &Interval) -> Option<i64> {
    if granularity.months != 0 {
        return None;
    }
    let micros = i64::from(granularity.days).checked_mul(86_400_000_000)?.checked_add(granularity.micros)?;
    (micros > 0).then_some(micros)
}

/// Postgres' date_bin, on microseconds.
fn bin(time: i64, stride: i64) -> i64 {
    let diff = time - ORIGIN;
    let mut delta = diff - diff % stride;
    if diff < 0 && diff % stride != 0 {
        delta -= stride;
    }
    ORIGIN + delta
}

/// A value as it groups: floats by their bits with -0 as 0 (Postgres' equality).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyPart {
    Null,
    Int(i64),
    Float(u64),
    Text(String),
}

#[derive(Debug, Clone)]
enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
}

/// One metric's running state, as the row path's aggregate keeps it.
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
            MetricKind::Distinct(p) => Partial::Distinct(Hll::new(p).expect("precision was checked")),
            MetricKind::Quantiles => Partial::Quantiles(Quantiles::default()),
            MetricKind::Top(k) => Partial::Top(TopK::new(k).expect("k was checked")),
        }
    }

    /// None when the value overflows what the row path would compute (it then errors).
    fn add(&mut self, value: &Value) -> Option<()> {
        match (self, value) {
            (_, Value::Null) => {}
            (Partial::SumInt(s), Value::Int(v)) => *s = Some(s.unwrap_or(0) + *v as i128),
            (Partial::SumFloat4(s), Value::Float(v)) => *s = Some(s.unwrap_or(0.0) + *v as f32),
            (Partial::SumFloat8(s), Value::Float(v)) => *s = Some(s.unwrap_or(0.0) + v),
            (Partial::MinInt(m), Value::Int(v)) => *m = Some(m.map_or(*v, |m| m.min(*v))),
            (Partial::MaxInt(m), Value::Int(v)) => *m = Some(m.map_or(*v, |m| m.max(*v))),
            (Partial::MinFloat(m), Value::Float(v)) => *m = Some(m.map_or(*v, |m| m.min(*v))),
            (Partial::MaxFloat(m), Value::Float(v)) => *m = Some(m.map_or(*v, |m| m.max(*v))),
            (Partial::Distinct(h), Value::Int(v)) => h.add_hash(hash64(&v.to_le_bytes())),
            (Partial::Distinct(h), Value::Text(t)) => h.add_hash(hash64(t.as_bytes())),
            (Partial::Quantiles(q), Value::Int(v)) => q.add(*v as f64).ok()?,
            (Partial::Quantiles(q), Value::Float(v)) => q.add(*v).ok()?,
            (Partial::Top(t), Value::Int(v)) => t.add(&v.to_string(), 1),
            (Partial::Top(t), Value::Text(s)) => t.add(s, 1),
            _ => return None,
        }
        Some(())
    }

    /// The value as the SQL layer passes it: text its column type reads back exactly.
    fn text(&self, sum_type_is_bigint: bool) -> Option<Option<String>> {
        let hex = |bytes: Vec<u8>| {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut s = String::with_capacity(2 + 2 * bytes.len());
            s.push_str("\\x");
            for b in bytes {
                s.push(DIGITS[usize::from(b >> 4)] as char);
                s.push(DIGITS[usize::from(b & 15)] as char);
            }
            s
        };
        Some(match self {
            Partial::SumInt(s) => match s {
                Some(v) if sum_type_is_bigint && i64::try_from(*v).is_err() => return None,
                other => other.map(|v| v.to_string()),
            },
            // sum(real) adds in real; the rollup's column is double precision.
            Partial::SumFloat4(s) => s.map(|v| float8_text(f64::from(v))),
            Partial::SumFloat8(s) | Partial::MinFloat(s) | Partial::MaxFloat(s) => s.map(float8_text),
            Partial::MinInt(m) | Partial::MaxInt(m) => m.map(|v| v.to_string()),
            Partial::Distinct(h) => Some(hex(h.to_bytes())),
            Partial::Quantiles(q) => Some(hex(q.to_bytes())),
            Partial::Top(t) => Some(hex(t.to_bytes())),
        })
    }
}

fn float8_text(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    format!("{v:e}")
}

#[derive(Debug, Clone)]
struct Group {
    events: i64,
    late: i64,
    partials: Vec<Partial>,
}

/// One table's partial rows, column by column, as text (NULL as None): the bucket (in
/// microseconds from 2000-01-01), the dimensions, event_count, late_events, the metrics.
pub type Columns = Vec<Vec<Option<String>>>;

/// The partial rows of every table the rollup writes, and how many events the lump held;
/// None when the lump is not for this path (see the module's comment).
pub fn aggregate<S: AsRef<str>>(plan: &Plan, lines: &[S]) -> Option<(Vec<Columns>, i64)> {
    let mut groups: Vec<HashMap<(i64, Vec<KeyPart>), Group>> = vec![HashMap::new(); plan.tables.len()];
    let mut events = 0i64;
    for line in lines {
        let line = line.as_ref();
        if line.is_empty() {
            continue;
        }
        let object: HashMap<Cow<str>, &RawValue> = serde_json::from_str(line).ok()?;
        let time = parse_time(object.get(plan.time.as_str()).copied()?, plan.with_zone)?;
        let dims = plan
            .dimensions
            .iter()
            .map(|(name, kind)| value(object.get(name.as_str()).copied(), *kind).map(|v| key_part(&v)))
            .collect::<Option<Vec<_>>>()?;
        let values = plan
            .metrics
            .iter()
            .map(|(_, column, kind)| value(object.get(column.as_str()).copied(), *kind))
            .collect::<Option<Vec<_>>>()?;
        events += 1;
        for ((stride, thresholds), table) in plan.tables.iter().zip(groups.iter_mut()) {
            let bucket = bin(time, *stride);
            if thresholds.keep_from.is_some_and(|from| bucket < from) {
                continue;
            }
            let group = table.entry((bucket, dims.clone())).or_insert_with(|| Group {
                events: 0,
                late: 0,
                partials: plan.metrics.iter().map(|(m, _, k)| Partial::new(*m, *k)).collect(),
            });
            group.events += 1;
            if bucket < thresholds.late_before {
                group.late += 1;
            }
            for (partial, v) in group.partials.iter_mut().zip(&values) {
                partial.add(v)?;
            }
        }
    }
    let columns = groups
        .into_iter()
        .map(|table| {
            let width = 3 + plan.dimensions.len() + plan.metrics.len();
            let mut columns: Columns = vec![Vec::with_capacity(table.len()); width];
            for ((bucket, dims), group) in table {
                let mut row: Vec<Option<String>> = Vec::with_capacity(width);
                row.push(Some(time_text(bucket, plan.with_zone)));
                row.extend(dims.iter().map(key_text));
                row.push(Some(group.events.to_string()));
                row.push(Some(group.late.to_string()));
                for (partial, (_, _, kind)) in group.partials.iter().zip(&plan.metrics) {
                    // sum(smallint) and sum(integer) are bigint; sum(bigint) is numeric.
                    row.push(partial.text(matches!(kind, Kind::Int(_, max) if *max < i64::MAX))?);
                }
                for (column, cell) in columns.iter_mut().zip(row) {
                    column.push(cell);
                }
            }
            Some(columns)
        })
        .collect::<Option<Vec<_>>>()?;
    Some((columns, events))
}

fn key_part(value: &Value) -> KeyPart {
    match value {
        Value::Null => KeyPart::Null,
        Value::Int(i) => KeyPart::Int(*i),
        Value::Float(f) => KeyPart::Float(if *f == 0.0 { 0 } else { f.to_bits() }),
        Value::Text(t) => KeyPart::Text(t.to_string()),
    }
}

fn key_text(part: &KeyPart) -> Option<String> {
    match part {
        KeyPart::Null => None,
        KeyPart::Int(i) => Some(i.to_string()),
        KeyPart::Float(bits) => Some(float8_text(f64::from_bits(*bits))),
        KeyPart::Text(t) => Some(t.clone()),
    }
}

/// A column's value from its JSON, or None where only Postgres' input function may decide.
fn value<'a>(raw: Option<&'a RawValue>, kind: Kind) -> Option<Value<'a>> {
    let Some(raw) = raw else { return Some(Value::Null) };
    let text = raw.get();
    if text == "null" {
        return Some(Value::Null);
    }
    let first = text.as_bytes()[0];
    let is_number = first == b'-' || first.is_ascii_digit();
    match kind {
        Kind::Int(min, max) => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            if !is_number || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let v: i64 = text.parse().ok()?;
            (min..=max).contains(&v).then_some(Value::Int(v))
        }
        Kind::Float4 if is_number => {
            let v: f32 = text.parse().ok()?;
            v.is_finite().then_some(Value::Float(v as f64))
        }
        Kind::Float8 if is_number => {
            let v: f64 = text.parse().ok()?;
            v.is_finite().then_some(Value::Float(v))
        }
        Kind::Text if first == b'"' => {
            let s: Cow<'a, str> = serde_json::from_str(text).ok()?;
            (!s.contains('\0')).then_some(Value::Text(s))
        }
        _ => None,
    }
}

/// Microseconds from 2000-01-01 as a timestamp's text (`+00` for a timestamptz).
fn time_text(micros: i64, with_zone: bool) -> String {
    let days = micros.div_euclid(86_400_000_000) + days_from_civil(2000, 1, 1);
    let of_day = micros.rem_euclid(86_400_000_000);
    let (year, month, day) = civil_from_days(days);
    let (s, us) = (of_day / 1_000_000, of_day % 1_000_000);
    let era = if year < 1 { " BC" } else { "" };
    let year = if year < 1 { 1 - year } else { year };
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{us:06}{}{era}", s / 3600, s / 60 % 60, s % 60, if with_zone { "+00" } else { "" })
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days from 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]`, then for a timestamptz column a zone (`Z` or
/// `±HH[[:]MM]`) and for a timestamp column none: microseconds from 2000-01-01 (UTC, or
/// local for a timestamp). Anything else is left to Postgres.
fn parse_time(raw: &RawValue, with_zone: bool) -> Option<i64> {
    let text: &str = serde_json::from_str(raw.get()).ok()?;
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    let mut micros = 0;
    if b.get(at) == Some(&b':') {
        second = num(at + 1, 2)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 6 {
                return None;
            }
            micros = num(at + 1, digits)? * 10i64.pow(6 - digits as u32);
            at += 1 + digits;
        }
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1 || day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let zone = &b[at..];
    let offset = if !with_zone {
        if !zone.is_empty() {
            return None;
        }
        0
    } else if zone == b"Z" || zone == b"z" {
        0
    } else {
        let sign = match zone.first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let hours = num(at + 1, 2)?;
        let minutes = match zone.len() {
            3 => 0,
            5 => num(at + 3, 2)?,
            6 if zone[3] == b':' => num(at + 4, 2)?,
            _ => return None,
        };
        if hours > 15 || minutes > 59 {
            return None;
        }
        sign * (hours * 3600 + minutes * 60)
    };
    let days = days_from_civil(year, month, day) - days_from_civil(2000, 1, 1);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::names::QualifiedName;
    use crate::rollups::generate::{parse_metrics, Table};
    use std::collections::BTreeMap;

    const MINUTE: Interval = Interval { months: 0, days: 0, micros: 60_000_000 };

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn times_parse_as_postgres_reads_them() {
        let t = |s: &str, zone| parse_time(&raw(&format!("\"{s}\"")), zone);
        assert_eq!(t("2000-01-01T00:00:00Z", true), Some(0));
        assert_eq!(t("2000-01-01 00:00:00+00", true), Some(0));
        assert_eq!(t("2000-01-01T01:30:00+01:30", true), Some(0));
        assert_eq!(t("2000-01-01T00:00:00.5Z", true), Some(500_000));
        assert_eq!(t("1999-12-31T23:59:59.999999Z", true), Some(-1));
        assert_eq!(t("2026-11-01 10:00", false), Some((days_from_civil(2026, 11, 1) - 10957) * 86_400_000_000 + 36_000_000_000));
        assert_eq!(t("2024-02-29T00:00:00Z", true).is_some(), true);
        for declined in ["2023-02-29T00:00:00Z", "2026-11-01T24:00:00Z", "2026-11-01T00:00:00", "2026-11-01", "now",
                         "2026-11-01T00:00:00.1234567Z", "2026-11-01T00:00:60Z", "2026-11-01 10:00+01"] {
            let zone = !declined.ends_with("+01");
            assert_eq!(t(declined, zone), None, "{declined}");
        }
        assert_eq!(parse_time(&raw("12"), true), None);
    }

    #[test]
    fn times_print_back() {
        assert_eq!(time_text(0, true), "2000-01-01 00:00:00.000000+00");
        assert_eq!(time_text(-1, false), "1999-12-31 23:59:59.999999");
        let at = parse_time(&raw("\"2026-11-01T10:20:30.5Z\""), true).unwrap();
        assert_eq!(time_text(at, true), "2026-11-01 10:20:30.500000+00");
        for days in [-800_000, -1, 0, 59, 60, 365 * 400, 2_900_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn bins_match_date_bin() {
        assert_eq!(bin(ORIGIN + 59_999_999, 60_000_000), ORIGIN);
        assert_eq!(bin(ORIGIN - 1, 60_000_000), ORIGIN - 60_000_000);
        assert_eq!(bin(ORIGIN - 60_000_000, 60_000_000), ORIGIN - 60_000_000);
    }

    #[test]
    fn values_are_taken_only_where_their_meaning_is_certain() {
        let v = |json: &str, kind| format!("{:?}", value(Some(&raw(json)), kind));
        let int = Kind::of("integer").unwrap();
        assert_eq!(v("42", int), "Some(Int(42))");
        assert_eq!(v("-0", int), "Some(Int(0))");
        for declined in ["4.0", "1e2", "\"42\"", "2147483648", "true"] {
            assert_eq!(v(declined, int), "None", "{declined}");
        }
        assert_eq!(v("null", int), "Some(Null)");
        assert_eq!(v("1e400", Kind::Float8), "None");
        assert_eq!(v("0.1", Kind::Float8), "Some(Float(0.1))");
        assert_eq!(v("\"a\\u00e9\"", Kind::Text), "Some(Text(\"aé\"))");
        assert_eq!(v("\"a\\u0000\"", Kind::Text), "None");
        assert_eq!(v("12", Kind::Text), "None");
        assert!(Kind::of("numeric").is_none() && Kind::of("character varying(10)").is_none());
    }

    fn plan() -> (Rollup, Plan) {
        let columns: BTreeMap<String, String> = [("at", "timestamp with time zone"), ("page", "text"), ("ms", "integer"), ("user_id", "bigint")]
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        let metrics: BTreeMap<String, String> = [("total", "sum(ms)"), ("users", "distinct(user_id)"), ("p", "quantiles(ms)"), ("top", "top(page, 2)")]
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        let name = |n: &str| QualifiedName { schema: "s".into(), name: n.into() };
        let rollup = Rollup {
            source: name("v"),
            time_column: "at".into(),
            time_type: "timestamp with time zone".into(),
            dimensions: vec!["page".into()],
            metrics: parse_metrics("s.v", &metrics, &["page".into()], &columns).unwrap(),
            tables: vec![
                Table { table: name("m"), granularity: MINUTE, keep: None },
                Table { table: name("h"), granularity: Interval { months: 0, days: 0, micros: 3_600_000_000 }, keep: None },
            ],
            stale: name("m_stale"),
            stale_key: None,
            dimension_types: vec!["text".into()],
        };
        let types: HashMap<String, String> = columns.into_iter().collect();
        let th = Thresholds { late_before: 0, keep_from: None };
        let plan = Plan::new(&rollup, &types, &[th, th]).unwrap();
        (rollup, plan)
    }

    #[test]
    fn a_lump_rolls_up_per_table() {
        let (_, plan) = plan();
        let lines = [
            r#"{"at": "2026-11-01T00:00:10Z", "page": "a", "ms": 5, "user_id": 1, "ignored": [1, {"x": 2}]}"#,
            "",
            r#"{"at": "2026-11-01T00:00:20Z", "page": "a", "ms": 7, "user_id": 1}"#,
            r#"{"at": "2026-11-01T00:01:00Z", "page": "a", "user_id": 2}"#,
            r#"{"at": "2026-11-01T00:02:00Z", "page": null, "ms": 1}"#,
        ];
        let (tables, events) = aggregate(&plan, &lines).unwrap();
        assert_eq!(events, 4);
        let minutes = &tables[0];
        assert_eq!(minutes[0].len(), 3, "three minute groups");
        let hours = &tables[1];
        assert_eq!(hours[0].len(), 2, "page a and page NULL in one hour");
        // Columns: bucket, page, event_count, late_events, then metrics in name order (p, top, total, users).
        let row = (0..hours[0].len()).find(|&i| hours[1][i].as_deref() == Some("a")).unwrap();
        assert_eq!(hours[2][row].as_deref(), Some("3"));
        assert_eq!(hours[6][row].as_deref(), Some("12"), "sum of 5 and 7, the missing ms counted as NULL");
        let null_page = 1 - row;
        assert_eq!(hours[1][null_page], None);
        assert_eq!(hours[7][null_page].as_deref().map(|s| s.starts_with("\\x")), Some(true), "an empty sketch, as hll_agg makes");
    }

    #[test]
    fn doubtful_lumps_are_declined() {
        let (rollup, plan) = plan();
        for line in [r#"{"at": null, "page": "a"}"#, r#"{"page": "a"}"#, r#"[1]"#, r#"{"at": "2026-11-01T00:00:00Z", "ms": "5"}"#, "not json"] {
            assert!(aggregate(&plan, &[line]).is_none(), "{line}");
        }
        let mut types: HashMap<String, String> = HashMap::new();
        types.insert("page".into(), "text".into());
        types.insert("ms".into(), "numeric".into());
        types.insert("user_id".into(), "bigint".into());
        let th = Thresholds { late_before: 0, keep_from: None };
        assert!(Plan::new(&rollup, &types, &[th, th]).is_none(), "sum(numeric) is Postgres' to compute");
    }

    #[test]
    fn retention_and_lateness_per_table() {
        let (rollup, _) = plan();
        let at = parse_time(&raw("\"2026-11-01T00:30:00Z\""), true).unwrap();
        let types: HashMap<String, String> =
            [("page", "text"), ("ms", "integer"), ("user_id", "bigint")].into_iter().map(|(a, b)| (a.into(), b.into())).collect();
        let plan = Plan::new(&rollup, &types, &[
            Thresholds { late_before: at + 1, keep_from: Some(at + 1) },
            Thresholds { late_before: at + 1, keep_from: None },
        ]).unwrap();
        let (tables, events) = aggregate(&plan, &[r#"{"at": "2026-11-01T00:30:00Z", "page": "a"}"#]).unwrap();
        assert_eq!(events, 1);
        assert_eq!(tables[0][0].len(), 0, "past the minutes' retention");
        assert_eq!(tables[1][3][0].as_deref(), Some("1"), "late in the hours");
    }
}
