//! Running a pipeline over entries in append order.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::{Clock, CompareOp, Condition, Entry, Field, Pipeline, SqlStep, Step};
use crate::collections::json::{self, Decimal, Scalar};

impl Pipeline {
    /// Runs the pipeline over entries in append order. `sql` runs user functions.
    pub fn run(
        &self,
        mut entries: Vec<Entry>,
        clock: &dyn Clock,
        sql: &mut SqlStep,
    ) -> Result<Vec<Entry>, String> {
        for step in &self.steps {
            entries = match step {
                Step::LatestBy(field) => latest_by(entries, field),
                Step::Limit(n) => {
                    let drop = entries.len().saturating_sub(*n);
                    entries.drain(..drop);
                    entries
                }
                Step::LimitBy(n, field) => limit_by(entries, *n, field),
                Step::OrderBy { field, desc } => {
                    entries.sort_by(|a, b| {
                        let o = compare(&field.get(a), &field.get(b)).then(a.seq.cmp(&b.seq));
                        if *desc {
                            o.reverse()
                        } else {
                            o
                        }
                    });
                    entries
                }
                Step::SumBy {
                    key,
                    value,
                    drop_zero,
                } => sum_by(entries, key, value, *drop_zero),
                Step::Expire { ago, at } => {
                    // Entries without a readable time in that field are kept: expiry never
                    // guesses.
                    let cutoff = clock.before_now(ago);
                    entries.retain(|e| {
                        let t = if *at == Field::At {
                            Some(e.at)
                        } else {
                            instant_of(&at.get(e))
                        };
                        t.is_none_or(|t| t >= cutoff)
                    });
                    entries
                }
                Step::Where(conds) => {
                    entries.retain(|e| conds.iter().all(|(f, c)| matches(&f.get(e), c)));
                    entries
                }
                Step::Sql(function) => sql(function, entries)?,
            };
        }
        Ok(entries)
    }
}

/// A total order on field values (see [`Scalar::compare`]).
pub fn compare(a: &Scalar, b: &Scalar) -> Ordering {
    a.compare(b)
}

fn matches(v: &Scalar, cond: &Condition) -> bool {
    match cond {
        Condition::In(options) => options
            .iter()
            .any(|o| v.same_type(o) && compare(v, o) == Ordering::Equal),
        Condition::Compare(op, arg) => {
            let comparable = v.same_type(arg);
            let o = compare(v, arg);
            match op {
                CompareOp::Eq => comparable && o == Ordering::Equal,
                CompareOp::Ne => !(comparable && o == Ordering::Equal),
                CompareOp::Gt => comparable && o == Ordering::Greater,
                CompareOp::Gte => comparable && o != Ordering::Less,
                CompareOp::Lt => comparable && o == Ordering::Less,
                CompareOp::Lte => comparable && o != Ordering::Greater,
            }
        }
    }
}

fn group_key(v: &Scalar) -> String {
    v.group_key()
}

fn latest_by(entries: Vec<Entry>, field: &Field) -> Vec<Entry> {
    let mut newest: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        newest.insert(group_key(&field.get(e)), i);
    }
    entries
        .into_iter()
        .enumerate()
        .filter(|(i, e)| newest.get(&group_key(&field.get(e))) == Some(i))
        .map(|(_, e)| e)
        .collect()
}

fn limit_by(entries: Vec<Entry>, n: usize, field: &Field) -> Vec<Entry> {
    if entries.len() <= n {
        return entries;
    }
    let mut ranked: Vec<(usize, Scalar, i64)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (i, field.get(e), e.seq))
        .collect();
    ranked.sort_by(|a, b| compare(&b.1, &a.1).then(b.2.cmp(&a.2)));
    let mut keep = vec![false; entries.len()];
    for (i, _, _) in ranked.into_iter().take(n) {
        keep[i] = true;
    }
    entries
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

fn sum_by(entries: Vec<Entry>, key: &Field, value: &str, drop_zero: bool) -> Vec<Entry> {
    // Exact decimal sums: numbers are numeric in jsonb, of any size and scale.
    let mut sums: HashMap<String, (Decimal, usize)> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let slot = sums
            .entry(group_key(&key.get(e)))
            .or_insert((Decimal::zero(), i));
        if let Scalar::Number(n) = json::field(&e.value, value) {
            slot.0 = slot.0.add(&n);
        }
        slot.1 = i;
    }
    let mut out = Vec::with_capacity(sums.len());
    for (i, mut e) in entries.into_iter().enumerate() {
        let (sum, newest) = &sums[&group_key(&key.get(&e))];
        if *newest != i || (drop_zero && sum.is_zero()) {
            continue;
        }
        e.value = json::with_number(&e.value, value, sum);
        out.push(e);
    }
    out
}

/// A field's value read as an instant in microseconds since the epoch: numbers are epoch
/// seconds, strings RFC 3339 / ISO 8601 timestamps such as `to_jsonb(now())` produces.
fn instant_of(v: &Scalar) -> Option<i64> {
    match v {
        Scalar::Number(n) => Some(n.to_f64() * 1e6)
            .filter(|f| f.is_finite())
            .map(|f| f as i64),
        Scalar::String(s) => crate::collections::time::parse_timestamp_us(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::testkit::*;

    #[test]
    fn segment_set_keeps_the_latest_per_segment_and_the_newest_thousand() {
        let p = pipeline(json!([{"latest_by": "segment"}, {"limit": 2}]));
        let input = entries(&[
            json!({"segment": 1, "score": 10}),
            json!({"segment": 2, "score": 20}),
            json!({"segment": 1, "score": 11}),
            json!({"segment": 3, "score": 30}),
        ]);
        assert_eq!(
            run(&p, input, 0),
            [
                json!({"segment": 1, "score": 11}),
                json!({"segment": 3, "score": 30})
            ]
        );
    }

    #[test]
    fn transient_counters_sum_expire_and_limit() {
        let p = pipeline(json!([
            {"sum_by": "counter", "value": "delta", "drop_zero": true},
            {"expire": "10 seconds"},
            {"limit": 2}
        ]));
        let input = entries(&[
            json!({"counter": "a", "delta": 5}),  // at 1s
            json!({"counter": "b", "delta": 1}),  // at 2s
            json!({"counter": "a", "delta": -2}), // at 3s
            json!({"counter": "c", "delta": 4}),  // at 4s
            json!({"counter": "c", "delta": -4}), // at 5s: c sums to zero
            json!({"counter": "d", "delta": 7}),  // at 6s
        ]);
        // At 12.5s, b (last touched at 2s) has expired; a (3s) and d (6s) are alive.
        assert_eq!(
            run(&p, input, 12_500_000),
            [
                json!({"counter": "a", "delta": 3}),
                json!({"counter": "d", "delta": 7})
            ]
        );
    }

    #[test]
    fn each_step_does_what_it_says() {
        let input = entries(&[
            json!({"k": "x", "n": 3, "t": "2026-01-01T00:00:00Z"}),
            json!({"k": "y", "n": 1.5}),
            json!({"k": "x", "n": 7}),
            json!({"k": "z", "n": -1, "t": "2030-01-01T00:00:00Z"}),
        ]);
        let ns = |p: Value| -> Vec<Value> {
            run(&pipeline(p), input.clone(), 1_800_000_000_000_000)
                .iter()
                .map(|v| v["n"].clone())
                .collect()
        };
        assert_eq!(ns(json!([{"limit": 2}])), [json!(7), json!(-1)]);
        assert_eq!(ns(json!([{"limit": 2, "by": "n"}])), [json!(3), json!(7)]);
        assert_eq!(
            ns(json!([{"order_by": "n"}])),
            [json!(-1), json!(1.5), json!(3), json!(7)]
        );
        assert_eq!(
            ns(json!([{"order_by": "n", "desc": true}])),
            [json!(7), json!(3), json!(1.5), json!(-1)]
        );
        assert_eq!(ns(json!([{"where": {"k": "x"}}])), [json!(3), json!(7)]);
        assert_eq!(
            ns(json!([{"where": {"n": {"gt": 1.5}}}])),
            [json!(3), json!(7)]
        );
        assert_eq!(
            ns(json!([{"where": {"n": {"lte": 1.5}, "k": {"ne": "z"}}}])),
            [json!(1.5)]
        );
        assert_eq!(
            ns(json!([{"where": {"k": {"in": ["y", "z"]}}}])),
            [json!(1.5), json!(-1)]
        );
        assert_eq!(
            ns(json!([{"where": {"n": {"gte": 3}}}, {"where": {"$seq": {"lt": 3}}}])),
            [json!(3)]
        );
        // Entries whose "t" is past (2026 + 1 day < now in 2027) expire; no "t": kept.
        assert_eq!(
            ns(json!([{"expire": "86400 seconds", "at": "t"}])),
            [json!(1.5), json!(7), json!(-1)]
        );
        assert_eq!(
            ns(json!([{"sum_by": "k", "value": "n"}])),
            [json!(1.5), json!(10), json!(-1)]
        );
        assert_eq!(
            ns(json!([{"latest_by": "k"}])),
            [json!(1.5), json!(7), json!(-1)]
        );
    }

    #[test]
    fn sums_stay_exact_for_integers() {
        let p = pipeline(json!([{"sum_by": "k", "value": "v"}]));
        let input = entries(&[
            json!({"k": 1, "v": 9007199254740993i64}),
            json!({"k": 1, "v": 1}),
        ]);
        assert_eq!(
            run(&p, input, 0),
            [json!({"k": 1, "v": 9007199254740994i64})]
        );
    }
}
