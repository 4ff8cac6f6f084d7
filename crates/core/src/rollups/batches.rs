//! A batch of events rolled up without rows: for a rollup that keeps no raw rows, the lines of
//! a batch are parsed here, only for the columns the rollup reads, and aggregated in memory
//! (`partials`). Pure.
//!
//! A value is taken here only where its meaning is beyond doubt (an integer written as one,
//! a float, a string for a text column, a timestamp in ISO 8601 form); for anything else the
//! whole batch is declined and goes the way of rows, where Postgres' own input functions
//! decide (and name the line that fails).

use std::borrow::Cow;

use super::partials::{Aggregator, Columns, Kind, Plan, Value};
use crate::calendar::{days_from_civil, POSTGRES_EPOCH_DAYS};
use crate::json_fields::{line, Field};

/// The partial rows of every table the rollup writes, and how many events the batch's text
/// held (one a line; blank lines skipped, as `ndjson::split` skips them); None when the batch
/// is not for this path (see the module's comment), or when its groups would hold more than
/// `memory` bytes.
pub fn aggregate(plan: &Plan, text: &str, memory: usize) -> Option<(Vec<Columns>, i64)> {
    let wanted: Vec<&str> = std::iter::once(plan.time.as_str())
        .chain(plan.dimensions.iter().map(|(name, _)| name.as_str()))
        .chain(plan.metrics.iter().map(|(_, column, _)| column.as_str()))
        .collect();
    let mut aggregator = Aggregator::new(plan);
    let mut found: Vec<Option<Field>> = vec![None; wanted.len()];
    let mut dimensions: Vec<Value> = Vec::with_capacity(plan.dimensions.len());
    let mut metrics: Vec<Value> = Vec::with_capacity(plan.metrics.len());
    let mut at = 0;
    while at < text.len() {
        let rest = &text.as_bytes()[at..];
        let blank = match rest {
            [b'\n', ..] | [b'\r'] => 1,
            [b'\r', b'\n', ..] => 2,
            _ => 0,
        };
        if blank > 0 {
            at += blank;
            continue;
        }
        found.iter_mut().for_each(|f| *f = None);
        at = line(text, at, &wanted, &mut found)?;
        let time = parse_time(found[0]?, plan.with_zone)?;
        let (dims, rest) = found[1..].split_at(plan.dimensions.len());
        dimensions.clear();
        for (field, (_, kind)) in dims.iter().zip(&plan.dimensions) {
            dimensions.push(value(*field, *kind)?);
        }
        metrics.clear();
        for (field, (_, _, kind)) in rest.iter().zip(&plan.metrics) {
            metrics.push(value(*field, *kind)?);
        }
        aggregator.add(time, &dimensions, &metrics)?;
        if aggregator.heap_bytes() > memory {
            return None;
        }
    }
    let events = aggregator.events();
    Some((aggregator.finish()?, events))
}

/// A column's value from its JSON, or None where only Postgres' input function may decide.
fn value(field: Option<Field<'_>>, kind: Kind) -> Option<Value<'_>> {
    let Some(field) = field else {
        return Some(Value::Null);
    };
    let text = field.text;
    if text == "null" {
        return Some(Value::Null);
    }
    let first = text.as_bytes()[0];
    let is_number = first == b'-' || first.is_ascii_digit();
    match kind {
        Kind::Int(min, max) => {
            // Digits only (no fraction, no exponent), accumulated negative so i64::MIN fits.
            let negative = first == b'-';
            let digits = &text.as_bytes()[usize::from(negative)..];
            if digits.is_empty() {
                return None;
            }
            let mut v: i64 = 0;
            for &d in digits {
                if !d.is_ascii_digit() {
                    return None;
                }
                v = v.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
            }
            let v = if negative { v } else { v.checked_neg()? };
            (min..=max).contains(&v).then_some(Value::Int(v))
        }
        Kind::Float4 if is_number => {
            let v: f32 = text.parse().ok()?;
            float_as_rows_have_it(text, v.is_finite().then_some(v as f64)?).map(Value::Float)
        }
        Kind::Float8 if is_number => {
            let v: f64 = text.parse().ok()?;
            float_as_rows_have_it(text, v.is_finite().then_some(v)?).map(Value::Float)
        }
        // No NUL: `json_fields` refuses `\u0000` as jsonb does.
        Kind::Text => Some(Value::Text(match field.string()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })),
        _ => None,
    }
}

/// A JSON number read as a float the way the row path reads it (jsonb's `numeric`, then the
/// float type): `numeric` has no negative zero, so `-0` is `0`; a nonzero number that rounds
/// to zero is out of the type's range there (an error), so it is not certain here (None: the
/// batch goes the way of rows, which says so).
fn float_as_rows_have_it(text: &str, v: f64) -> Option<f64> {
    if v != 0.0 {
        return Some(v);
    }
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    (!mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))).then_some(0.0)
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]]`, then for a timestamptz column a zone (`Z` or
/// `±HH[[:]MM]`) and for a timestamp column none: microseconds from 2000-01-01 (UTC, or
/// local for a timestamp). Anything else is left to Postgres.
pub(crate) fn parse_time(field: Field, with_zone: bool) -> Option<i64> {
    let text = field.string()?;
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
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
            let digits = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
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
    let days = days_from_civil(year, month, day) - POSTGRES_EPOCH_DAYS;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollups::generate::{test_rollup, Interval, Rollup};
    use crate::rollups::partials::{Cell, Thresholds};
    use std::collections::HashMap;

    const MINUTE: Interval = Interval {
        months: 0,
        days: 0,
        micros: 60_000_000,
    };

    fn raw(json: &str) -> Field<'_> {
        Field {
            text: json,
            escaped: json.contains('\\'),
        }
    }

    #[test]
    fn times_parse_as_postgres_reads_them() {
        let t = |s: &str, zone| parse_time(raw(&format!("\"{s}\"")), zone);
        assert_eq!(t("2000-01-01T00:00:00Z", true), Some(0));
        assert_eq!(t("2000-01-01 00:00:00+00", true), Some(0));
        assert_eq!(t("2000-01-01T01:30:00+01:30", true), Some(0));
        assert_eq!(t("2000-01-01T00:00:00.5Z", true), Some(500_000));
        assert_eq!(t("1999-12-31T23:59:59.999999Z", true), Some(-1));
        assert_eq!(
            t("2026-11-01 10:00", false),
            Some(
                (days_from_civil(2026, 11, 1) - POSTGRES_EPOCH_DAYS) * 86_400_000_000
                    + 36_000_000_000
            )
        );
        assert!(t("2024-02-29T00:00:00Z", true).is_some());
        for declined in [
            "2023-02-29T00:00:00Z",
            "2026-11-01T24:00:00Z",
            "2026-11-01T00:00:00",
            "2026-11-01",
            "now",
            "2026-11-01T00:00:00.1234567Z",
            "2026-11-01T00:00:60Z",
            "2026-11-01 10:00+01",
        ] {
            let zone = !declined.ends_with("+01");
            assert_eq!(t(declined, zone), None, "{declined}");
        }
        assert_eq!(parse_time(raw("12"), true), None);
    }

    #[test]
    fn values_are_taken_only_where_their_meaning_is_certain() {
        let v = |json: &str, kind| format!("{:?}", value(Some(raw(json)), kind));
        let int = Kind::of("integer").unwrap();
        assert_eq!(v("42", int), "Some(Int(42))");
        assert_eq!(v("-0", int), "Some(Int(0))");
        let big = Kind::of("bigint").unwrap();
        assert_eq!(
            v("-9223372036854775808", big),
            "Some(Int(-9223372036854775808))"
        );
        assert_eq!(
            v("9223372036854775807", big),
            "Some(Int(9223372036854775807))"
        );
        for declined in ["9223372036854775808", "-9223372036854775809", "-", "1-"] {
            assert_eq!(v(declined, big), "None", "{declined}");
        }
        for declined in ["4.0", "1e2", "\"42\"", "2147483648", "true"] {
            assert_eq!(v(declined, int), "None", "{declined}");
        }
        assert_eq!(v("null", int), "Some(Null)");
        assert_eq!(v("1e400", Kind::Float8), "None");
        assert_eq!(v("0.1", Kind::Float8), "Some(Float(0.1))");
        assert_eq!(
            value(Some(raw("\"a\\u00e9\"")), Kind::Text),
            Some(Value::Text(Cow::Owned("aé".as_bytes().to_vec())))
        );
        assert_eq!(v("\"a\\u0000\"", Kind::Text), "None");
        assert_eq!(v("12", Kind::Text), "None");
        assert!(Kind::of("numeric").is_none() && Kind::of("character varying(10)").is_none());
    }

    fn plan() -> (Rollup, Plan) {
        let columns = [
            ("at", "timestamp with time zone"),
            ("page", "text"),
            ("ms", "integer"),
            ("user_id", "bigint"),
        ];
        let metrics = [
            ("total", "sum(ms)"),
            ("users", "distinct(user_id)"),
            ("p", "quantiles(ms)"),
            ("top", "top(page, 2)"),
        ];
        let rollup = test_rollup(
            "v",
            &columns,
            &metrics,
            &["page"],
            &[MINUTE.micros, 3_600_000_000],
        );
        let types: HashMap<String, String> = columns
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let th = Thresholds {
            late_before: 0,
            keep_from: None,
        };
        let plan = Plan::new(&rollup, |c| Kind::of(types.get(c)?), &[th, th]).unwrap();
        (rollup, plan)
    }

    #[test]
    fn a_batch_rolls_up_per_table() {
        let (_, plan) = plan();
        let lines = [
            r#"{"at": "2026-11-01T00:00:10Z", "page": "a", "ms": 5, "user_id": 1, "ignored": [1, {"x": 2}]}"#,
            "",
            r#"{"at": "2026-11-01T00:00:20Z", "page": "a", "ms": 7, "user_id": 1}"#,
            r#"{"at": "2026-11-01T00:01:00Z", "page": "a", "user_id": 2}"#,
            r#"{"at": "2026-11-01T00:02:00Z", "page": null, "ms": 1}"#,
        ];
        let (tables, events) = aggregate(&plan, &lines.join("\n"), usize::MAX).unwrap();
        assert_eq!(events, 4);
        let minutes = &tables[0];
        assert_eq!(minutes[0].len(), 3, "three minute groups");
        let hours = &tables[1];
        assert_eq!(hours[0].len(), 2, "page a and page NULL in one hour");
        // Columns: bucket, page, event_count, late_events, then metrics in name order (p, top, total, users).
        let row = (0..hours[0].len())
            .find(|&i| hours[1][i] == Cell::Text("a".into()))
            .unwrap();
        assert_eq!(hours[2][row], Cell::Int(3));
        assert_eq!(
            hours[6][row],
            Cell::Int(12),
            "sum of 5 and 7, the missing ms counted as NULL"
        );
        let null_page = 1 - row;
        assert_eq!(hours[1][null_page], Cell::Null);
        assert!(
            matches!(hours[7][null_page], Cell::Bytes(_)),
            "an empty sketch, as hll_agg makes"
        );
    }

    #[test]
    fn lines_are_the_lines_ndjson_splits() {
        let (_, plan) = plan();
        let event = r#"{"at": "2026-11-01T00:00:10Z", "page": "a"}"#;
        for text in [
            format!("{event}\n\n{event}\r\n\r\n{event}\n"),
            format!("\r\n{event}\r\n{event}\r"),
            format!("{event} \r"),
        ] {
            let lines = super::super::ndjson::split(&text)
                .filter(|l| !l.is_empty())
                .count() as i64;
            assert_eq!(
                aggregate(&plan, &text, usize::MAX).map(|(_, events)| events),
                Some(lines),
                "{text:?}"
            );
        }
    }

    #[test]
    fn doubtful_batches_are_declined() {
        let (rollup, plan) = plan();
        for line in [
            r#"{"at": null, "page": "a"}"#,
            r#"{"page": "a"}"#,
            r#"[1]"#,
            r#"{"at": "2026-11-01T00:00:00Z", "ms": "5"}"#,
            "not json",
            r#"{"at": "2026-11-01T00:00:00Z", "note": "\u0000"}"#,
        ] {
            assert!(aggregate(&plan, line, usize::MAX).is_none(), "{line}");
        }
        let mut types: HashMap<String, String> = HashMap::new();
        types.insert("page".into(), "text".into());
        types.insert("ms".into(), "numeric".into());
        types.insert("user_id".into(), "bigint".into());
        let th = Thresholds {
            late_before: 0,
            keep_from: None,
        };
        assert!(
            Plan::new(&rollup, |c| Kind::of(types.get(c)?), &[th, th]).is_none(),
            "sum(numeric) is Postgres' to compute"
        );
    }

    #[test]
    fn retention_and_lateness_per_table() {
        let (rollup, _) = plan();
        let at = parse_time(raw("\"2026-11-01T00:30:00Z\""), true).unwrap();
        let types: HashMap<String, String> =
            [("page", "text"), ("ms", "integer"), ("user_id", "bigint")]
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect();
        let plan = Plan::new(
            &rollup,
            |c| Kind::of(types.get(c)?),
            &[
                Thresholds {
                    late_before: at + 1,
                    keep_from: Some(at + 1),
                },
                Thresholds {
                    late_before: at + 1,
                    keep_from: None,
                },
            ],
        )
        .unwrap();
        let (tables, events) = aggregate(
            &plan,
            r#"{"at": "2026-11-01T00:30:00Z", "page": "a"}"#,
            usize::MAX,
        )
        .unwrap();
        assert_eq!(events, 1);
        assert_eq!(tables[0][0].len(), 0, "past the minutes' retention");
        assert_eq!(tables[1][3][0], Cell::Int(1), "late in the hours");
    }

    #[test]
    fn floats_read_as_the_row_path_reads_them() {
        assert_eq!(
            float_as_rows_have_it("-0", -0.0).map(f64::to_bits),
            Some(0f64.to_bits()),
            "-0 is 0, as numeric has it"
        );
        assert_eq!(
            float_as_rows_have_it("-0.0e10", -0.0).map(f64::to_bits),
            Some(0f64.to_bits())
        );
        assert_eq!(
            float_as_rows_have_it("1e-400", 0.0),
            None,
            "an underflow is the row path's error to give"
        );
        assert_eq!(float_as_rows_have_it("-2.5", -2.5), Some(-2.5));
    }
}
