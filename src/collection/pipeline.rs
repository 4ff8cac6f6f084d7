//! Read-time reducers (Blackbird's "series of functions applied during read"), kept free of
//! Postgres: a pipeline is parsed and validated from JSON, then run over entries in append
//! order. The SQL layer supplies `now` and runs `sql` steps through a callback.
//!
//! Normalization folds a key's appended entries into its base with a pipeline. With the read
//! pipeline it must never change what `read` returns, whatever was folded when. That holds for
//! a pipeline Q with Q(Q(A) ++ B) = Q(A ++ B) (A: the folded entries, B: everything newer),
//! because then P(Q(A) ++ B) = R(Q(Q(A) ++ B)) = R(Q(A ++ B)) = P(A ++ B) for P = R ∘ Q.
//! [`Pipeline::stable_prefix`] finds the longest such Q; a level with a pipeline of its own
//! applies all of it, dropping what its steps drop (that is what expiry is for).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;

use serde_json::value::RawValue;
use serde_json::Value;

use super::json::{self, Decimal, Scalar};

/// One appended entry with the bookkeeping steps can refer to as `$seq` and `$at`. The value
/// is the entry's JSON text, never parsed into a tree (see `super::json`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: i64,
    /// Append time, microseconds since the Unix epoch.
    pub at: i64,
    pub value: Box<RawValue>,
}

impl PartialEq for Entry {
    /// Equal bookkeeping and values equal as `jsonb` compares them.
    fn eq(&self, other: &Entry) -> bool {
        self.seq == other.seq
            && self.at == other.at
            && Scalar::of(self.value.get()).group_key() == Scalar::of(other.value.get()).group_key()
    }
}

/// Which part of an entry a step looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Seq,
    At,
    /// A top-level key of an object entry.
    Key(String),
}

impl Field {
    fn parse(name: &str) -> Field {
        match name {
            "$seq" => Field::Seq,
            "$at" => Field::At,
            other => Field::Key(other.to_string()),
        }
    }

    pub fn get(&self, entry: &Entry) -> Scalar {
        match self {
            Field::Seq => Scalar::from_i64(entry.seq),
            Field::At => Scalar::from_i64(entry.at),
            Field::Key(k) => json::field(&entry.value, k),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(CompareOp, Scalar),
    In(Vec<Scalar>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    LatestBy(Field),
    /// The `n` newest entries.
    Limit(usize),
    /// The `n` entries with the largest value of a field (ties: the newer wins).
    LimitBy(usize, Field),
    OrderBy { field: Field, desc: bool },
    SumBy { key: Field, value: String, drop_zero: bool },
    /// Drops entries whose `at` field plus `ttl_us` is before now.
    Expire { ttl_us: i64, at: Field },
    Where(Vec<(Field, Condition)>),
    /// A user function `(jsonb) → jsonb` over the array of entries, run by the SQL layer.
    Sql(String),
}

/// A step that is not understood. `index` counts from 0; `step` is the step's JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub index: Option<usize>,
    pub step: String,
    pub reason: String,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "step {} {}: {}", i + 1, self.step, self.reason),
            None => write!(f, "{}: {}", self.step, self.reason),
        }
    }
}

/// Turns an interval's text into microseconds; the SQL layer asks Postgres.
pub trait IntervalParser {
    fn micros(&mut self, text: &str) -> Result<i64, String>;
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub steps: Vec<Step>,
}

fn err(index: usize, step: &Value, reason: impl Into<String>) -> PipelineError {
    PipelineError {
        index: Some(index),
        step: step.to_string(),
        reason: reason.into(),
    }
}

fn field_name(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

fn count(v: Option<&Value>) -> Option<usize> {
    v.and_then(Value::as_u64).filter(|&n| n > 0).map(|n| n as usize)
}

impl Pipeline {
    /// Parses and validates a pipeline: a JSON array of step objects.
    pub fn parse(json: &Value, intervals: &mut dyn IntervalParser) -> Result<Pipeline, PipelineError> {
        let steps = json.as_array().ok_or_else(|| PipelineError {
            index: None,
            step: json.to_string(),
            reason: "a pipeline is a JSON array of steps".into(),
        })?;
        let mut parsed = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let obj = step
                .as_object()
                .ok_or_else(|| err(i, step, "a step is a JSON object such as {\"limit\": 10}"))?;
            let allowed: &[&str];
            let s = if let Some(f) = obj.get("latest_by") {
                allowed = &["latest_by"];
                Step::LatestBy(Field::parse(&field_name(Some(f)).ok_or_else(|| {
                    err(i, step, "latest_by takes a field name")
                })?))
            } else if let Some(n) = obj.get("limit") {
                allowed = &["limit", "by"];
                let n = count(Some(n)).ok_or_else(|| err(i, step, "limit takes a positive integer"))?;
                match obj.get("by") {
                    None => Step::Limit(n),
                    Some(by) => Step::LimitBy(
                        n,
                        Field::parse(&field_name(Some(by)).ok_or_else(|| err(i, step, "by takes a field name"))?),
                    ),
                }
            } else if let Some(f) = obj.get("order_by") {
                allowed = &["order_by", "desc"];
                let field = Field::parse(&field_name(Some(f)).ok_or_else(|| err(i, step, "order_by takes a field name"))?);
                let desc = match obj.get("desc") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(err(i, step, "desc takes true or false")),
                };
                if i + 1 != steps.len() {
                    return Err(err(
                        i,
                        step,
                        "order_by must be the last step (for the n largest, use {\"limit\": n, \"by\": field})",
                    ));
                }
                Step::OrderBy { field, desc }
            } else if let Some(k) = obj.get("sum_by") {
                allowed = &["sum_by", "value", "drop_zero"];
                let key = Field::parse(&field_name(Some(k)).ok_or_else(|| err(i, step, "sum_by takes a field name"))?);
                let value = field_name(obj.get("value"))
                    .filter(|v| !v.starts_with('$'))
                    .ok_or_else(|| err(i, step, "sum_by needs \"value\": the name of the field to add up"))?;
                let drop_zero = match obj.get("drop_zero") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(err(i, step, "drop_zero takes true or false")),
                };
                Step::SumBy { key, value, drop_zero }
            } else if let Some(ttl) = obj.get("expire") {
                allowed = &["expire", "at"];
                let text = ttl
                    .as_str()
                    .ok_or_else(|| err(i, step, "expire takes an interval such as \"1 hour\""))?;
                let ttl_us = intervals
                    .micros(text)
                    .map_err(|e| err(i, step, format!("expire: {e}")))?;
                if ttl_us <= 0 {
                    return Err(err(i, step, "expire takes a positive interval"));
                }
                let at = match obj.get("at") {
                    None => Field::At,
                    Some(a) => Field::parse(&field_name(Some(a)).ok_or_else(|| err(i, step, "at takes a field name"))?),
                };
                Step::Expire { ttl_us, at }
            } else if let Some(w) = obj.get("where") {
                allowed = &["where"];
                let conds = w
                    .as_object()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| err(i, step, "where takes an object of field conditions"))?;
                let mut parsed_conds = Vec::new();
                for (name, cond) in conds {
                    parsed_conds.push((Field::parse(name), parse_condition(cond).map_err(|e| err(i, step, e))?));
                }
                Step::Where(parsed_conds)
            } else if let Some(f) = obj.get("sql") {
                allowed = &["sql"];
                Step::Sql(field_name(Some(f)).ok_or_else(|| err(i, step, "sql takes a function name such as \"myschema.myfunc\""))?)
            } else {
                return Err(err(
                    i,
                    step,
                    "unknown step (known: latest_by, limit, order_by, sum_by, expire, where, sql)",
                ));
            };
            if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(err(i, step, format!("unexpected key \"{extra}\"")));
            }
            parsed.push(s);
        }
        Ok(Pipeline { steps: parsed })
    }

    /// The longest prefix Q with Q(Q(A) ++ B) = Q(A ++ B) when every entry of B is newer than
    /// every entry of A (see the module comment). Checked against random pipelines in tests.
    pub fn stable_prefix(&self) -> Pipeline {
        #[derive(PartialEq)]
        enum Phase {
            Filters,
            Deduped,
            /// Filtered after the dedupe: a superseding entry may itself be filtered out, so a
            /// later limit would count wrongly; only more filters may follow.
            DedupedFiltered,
            Limited,
            Done,
        }
        let mut phase = Phase::Filters;
        let mut filter_fields: Vec<&Field> = Vec::new();
        let mut expires = false;
        let mut len = 0;
        for step in &self.steps {
            // Expiry removes more as time passes. A step that picks survivors among entries
            // (newest per key, newest n, sums) would then reach back to entries a fold has
            // already dropped: after an expiry, stop before such a step.
            if expires
                && matches!(step, Step::LatestBy(_) | Step::Limit(_) | Step::LimitBy(..) | Step::SumBy { .. })
            {
                break;
            }
            let next = match (&phase, step) {
                // Per-entry filters keep or drop the same entries however the input is split.
                (Phase::Filters, Step::Where(conds)) => {
                    filter_fields.extend(conds.iter().map(|(f, _)| f));
                    Phase::Filters
                }
                (Phase::Filters, Step::Expire { .. }) => {
                    expires = true;
                    Phase::Filters
                }
                // Newer entries supersede older ones: folding early loses nothing later.
                (Phase::Filters, Step::LatestBy(_)) => Phase::Deduped,
                // A filter after the dedupe: an entry it drops is superseded in B or stays dropped.
                (Phase::Deduped | Phase::DedupedFiltered, Step::Where(_)) => Phase::DedupedFiltered,
                (Phase::Deduped | Phase::DedupedFiltered, Step::Expire { .. }) => {
                    expires = true;
                    Phase::DedupedFiltered
                }
                (Phase::Filters | Phase::Deduped | Phase::Limited, Step::Limit(_)) => Phase::Limited,
                (Phase::DedupedFiltered, _) => break,
                // Top n by a field, over entries nothing later removes.
                (Phase::Filters, Step::LimitBy(..)) => Phase::Done,
                // Sums are associative; earlier filters must not look at the summed field.
                (Phase::Filters, Step::SumBy { value, .. })
                    if !filter_fields.iter().any(|f| **f == Field::Key(value.clone())) =>
                {
                    len += 1;
                    break;
                }
                // Only decides the order reads return; normalization stores append order.
                (_, Step::OrderBy { .. }) => {
                    len += 1;
                    break;
                }
                _ => break,
            };
            len += 1;
            phase = next;
            if phase == Phase::Done {
                break;
            }
        }
        Pipeline {
            steps: self.steps[..len].to_vec(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the pipeline over entries in append order. `sql` runs user functions.
    pub fn run(
        &self,
        mut entries: Vec<Entry>,
        now_us: i64,
        sql: &mut dyn FnMut(&str, Vec<Entry>) -> Result<Vec<Entry>, String>,
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
                Step::SumBy { key, value, drop_zero } => sum_by(entries, key, value, *drop_zero),
                Step::Expire { ttl_us, at } => {
                    // Entries without a readable time in that field are kept: expiry never
                    // guesses.
                    entries.retain(|e| {
                        let t = if *at == Field::At { Some(e.at) } else { instant_of(&at.get(e)) };
                        t.is_none_or(|t| t.saturating_add(*ttl_us) >= now_us)
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

fn parse_condition(cond: &Value) -> Result<Condition, String> {
    let Some(obj) = cond.as_object() else {
        return Ok(Condition::Compare(CompareOp::Eq, Scalar::of(&cond.to_string())));
    };
    if obj.len() != 1 {
        return Err(format!("condition {cond} must have exactly one operator (gt, gte, lt, lte, ne, in)"));
    }
    let (op, arg) = obj.iter().next().unwrap();
    let op = match op.as_str() {
        "gt" => CompareOp::Gt,
        "gte" => CompareOp::Gte,
        "lt" => CompareOp::Lt,
        "lte" => CompareOp::Lte,
        "ne" => CompareOp::Ne,
        "eq" => CompareOp::Eq,
        "in" => {
            return arg
                .as_array()
                .map(|a| Condition::In(a.iter().map(|v| Scalar::of(&v.to_string())).collect()))
                .ok_or_else(|| format!("in takes an array, not {arg}"))
        }
        other => return Err(format!("unknown operator \"{other}\" (known: gt, gte, lt, lte, ne, eq, in)")),
    };
    Ok(Condition::Compare(op, Scalar::of(&arg.to_string())))
}

/// A total order on field values (see [`Scalar::compare`]).
pub fn compare(a: &Scalar, b: &Scalar) -> Ordering {
    a.compare(b)
}

fn matches(v: &Scalar, cond: &Condition) -> bool {
    match cond {
        Condition::In(options) => options.iter().any(|o| v.same_type(o) && compare(v, o) == Ordering::Equal),
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
        let slot = sums.entry(group_key(&key.get(e))).or_insert((Decimal::zero(), i));
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
        Scalar::Number(n) => Some(n.to_f64() * 1e6).filter(|f| f.is_finite()).map(|f| f as i64),
        Scalar::String(s) => super::time::parse_timestamp_us(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map};

    use super::*;
    use crate::testing::XorShift;

    /// Intervals in tests: "<n> seconds" only.
    struct Seconds;
    impl IntervalParser for Seconds {
        fn micros(&mut self, text: &str) -> Result<i64, String> {
            let n: i64 = text
                .strip_suffix(" seconds")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid interval \"{text}\""))?;
            Ok(n * 1_000_000)
        }
    }

    fn pipeline(steps: Value) -> Pipeline {
        Pipeline::parse(&steps, &mut Seconds).unwrap()
    }

    fn entries(values: &[Value]) -> Vec<Entry> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Entry { seq: i as i64 + 1, at: (i as i64 + 1) * 1_000_000, value: json::raw(&v.to_string()).unwrap() })
            .collect()
    }

    fn no_sql(_: &str, _: Vec<Entry>) -> Result<Vec<Entry>, String> {
        panic!("no sql steps here")
    }

    fn run(p: &Pipeline, input: Vec<Entry>, now_us: i64) -> Vec<Value> {
        p.run(input, now_us, &mut no_sql)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(e.value.get()).unwrap())
            .collect()
    }

    #[test]
    fn segment_set_keeps_the_latest_per_segment_and_the_newest_thousand() {
        let p = pipeline(json!([{"latest_by": "segment"}, {"limit": 2}]));
        let input = entries(&[
            json!({"segment": 1, "score": 10}),
            json!({"segment": 2, "score": 20}),
            json!({"segment": 1, "score": 11}),
            json!({"segment": 3, "score": 30}),
        ]);
        assert_eq!(run(&p, input, 0), [json!({"segment": 1, "score": 11}), json!({"segment": 3, "score": 30})]);
    }

    #[test]
    fn transient_counters_sum_expire_and_limit() {
        let p = pipeline(json!([
            {"sum_by": "counter", "value": "delta", "drop_zero": true},
            {"expire": "10 seconds"},
            {"limit": 2}
        ]));
        let input = entries(&[
            json!({"counter": "a", "delta": 5}),   // at 1s
            json!({"counter": "b", "delta": 1}),   // at 2s
            json!({"counter": "a", "delta": -2}),  // at 3s
            json!({"counter": "c", "delta": 4}),   // at 4s
            json!({"counter": "c", "delta": -4}),  // at 5s: c sums to zero
            json!({"counter": "d", "delta": 7}),   // at 6s
        ]);
        // At 12.5s, b (last touched at 2s) has expired; a (3s) and d (6s) are alive.
        assert_eq!(
            run(&p, input, 12_500_000),
            [json!({"counter": "a", "delta": 3}), json!({"counter": "d", "delta": 7})]
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
            run(&pipeline(p), input.clone(), 1_800_000_000_000_000).iter().map(|v| v["n"].clone()).collect()
        };
        assert_eq!(ns(json!([{"limit": 2}])), [json!(7), json!(-1)]);
        assert_eq!(ns(json!([{"limit": 2, "by": "n"}])), [json!(3), json!(7)]);
        assert_eq!(ns(json!([{"order_by": "n"}])), [json!(-1), json!(1.5), json!(3), json!(7)]);
        assert_eq!(ns(json!([{"order_by": "n", "desc": true}])), [json!(7), json!(3), json!(1.5), json!(-1)]);
        assert_eq!(ns(json!([{"where": {"k": "x"}}])), [json!(3), json!(7)]);
        assert_eq!(ns(json!([{"where": {"n": {"gt": 1.5}}}])), [json!(3), json!(7)]);
        assert_eq!(ns(json!([{"where": {"n": {"lte": 1.5}, "k": {"ne": "z"}}}])), [json!(1.5)]);
        assert_eq!(ns(json!([{"where": {"k": {"in": ["y", "z"]}}}])), [json!(1.5), json!(-1)]);
        assert_eq!(ns(json!([{"where": {"n": {"gte": 3}}}, {"where": {"$seq": {"lt": 3}}}])), [json!(3)]);
        // Entries whose "t" is past (2026 + 1 day < now in 2027) expire; no "t": kept.
        assert_eq!(ns(json!([{"expire": "86400 seconds", "at": "t"}])), [json!(1.5), json!(7), json!(-1)]);
        assert_eq!(ns(json!([{"sum_by": "k", "value": "n"}])), [json!(1.5), json!(10), json!(-1)]);
        assert_eq!(ns(json!([{"latest_by": "k"}])), [json!(1.5), json!(7), json!(-1)]);
    }

    #[test]
    fn sums_stay_exact_for_integers() {
        let p = pipeline(json!([{"sum_by": "k", "value": "v"}]));
        let input = entries(&[json!({"k": 1, "v": 9007199254740993i64}), json!({"k": 1, "v": 1})]);
        assert_eq!(run(&p, input, 0), [json!({"k": 1, "v": 9007199254740994i64})]);
    }

    #[test]
    fn bad_pipelines_name_the_step() {
        let bad = [
            (json!({"limit": 1}), "a pipeline is a JSON array"),
            (json!([{"limit": 1}, {"frobnicate": 1}]), "step 2 {\"frobnicate\":1}: unknown step"),
            (json!([{"limit": 0}]), "positive integer"),
            (json!([{"limit": "ten"}]), "positive integer"),
            (json!([{"limit": 3, "by": 7}]), "by takes a field name"),
            (json!([{"latest_by": ""}]), "latest_by takes a field name"),
            (json!([{"latest_by": "a", "extra": 1}]), "unexpected key \"extra\""),
            (json!([{"order_by": "a"}, {"limit": 1}]), "order_by must be the last step"),
            (json!([{"sum_by": "a"}]), "sum_by needs \"value\""),
            (json!([{"expire": "soon"}]), "invalid interval"),
            (json!([{"expire": 5}]), "expire takes an interval"),
            (json!([{"where": {}}]), "where takes an object"),
            (json!([{"where": {"a": {"like": "x"}}}]), "unknown operator \"like\""),
            (json!([{"where": {"a": {"in": 3}}}]), "in takes an array"),
            (json!([{"sql": 3}]), "sql takes a function name"),
            (json!(["limit"]), "a step is a JSON object"),
        ];
        for (p, want) in bad {
            let e = Pipeline::parse(&p, &mut Seconds).unwrap_err().to_string();
            assert!(e.contains(want), "{p}: got {e:?}, want {want:?}");
        }
    }

    fn random_entry(rng: &mut XorShift, seq: i64, at: i64) -> Entry {
        let mut m = Map::new();
        m.insert("k".into(), json!(rng.below(4)));
        m.insert("v".into(), json!(rng.below(5) as i64 - 2));
        m.insert("s".into(), json!(rng.below(10)));
        if rng.below(3) > 0 {
            let t = 1_790_000_000 + rng.below(1_000) as i64;
            m.insert("t".into(), json!(t));
        }
        Entry { seq, at, value: json::raw(&Value::Object(m).to_string()).unwrap() }
    }

    fn random_step(rng: &mut XorShift) -> Value {
        let field = |rng: &mut XorShift| ["k", "v", "s", "$seq"][rng.below(4)];
        match rng.below(9) {
            0 => json!({"latest_by": field(rng)}),
            1 => json!({"limit": 1 + rng.below(6)}),
            2 => json!({"limit": 1 + rng.below(4), "by": field(rng)}),
            3 => json!({"sum_by": (["k", "s"][rng.below(2)]), "value": "v", "drop_zero": rng.below(2) == 0}),
            4 => json!({"expire": format!("{} seconds", 1 + rng.below(400)), "at": (["$at", "t"][rng.below(2)])}),
            5 => {
                let mut cond = Map::new();
                cond.insert(["gt", "lt", "ne", "gte"][rng.below(4)].into(), json!(rng.below(5) as i64 - 1));
                let mut fields = Map::new();
                fields.insert(field(rng).into(), Value::Object(cond));
                json!({ "where": fields })
            }
            6 => json!({"where": {"k": {"in": [rng.below(4), rng.below(4)]}}}),
            7 => json!({"where": {"v": {"ne": 0}}}),
            _ => json!({"order_by": field(rng), "desc": rng.below(2) == 0}),
        }
    }

    /// What normalization does with the stable prefix: fold, then keep append order.
    fn fold(q: &Pipeline, a: Vec<Entry>, now: i64) -> Vec<Entry> {
        let mut folded = q.run(a, now, &mut no_sql).unwrap();
        folded.sort_by_key(|e| e.seq);
        folded
    }

    /// The property normalization relies on, over random pipelines, inputs and splits, with
    /// normalization at one instant and the read later (expiry only moves forward).
    #[test]
    fn folding_the_stable_prefix_never_changes_what_reads_return() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut full_prefixes = 0;
        for case in 0..100_000 {
            let len = 1 + rng.below(4);
            let mut steps: Vec<Value> = (0..len).map(|_| random_step(&mut rng)).collect();
            // order_by may only come last.
            let last = steps.pop().unwrap();
            steps.retain(|s| s.get("order_by").is_none());
            steps.push(last);
            let p = pipeline(Value::Array(steps));
            let q = p.stable_prefix();
            if q.steps.len() == p.steps.len() {
                full_prefixes += 1;
            }
            let n = rng.below(24);
            let mut at = 1_790_000_000_000_000i64;
            let all: Vec<Entry> = (0..n)
                .map(|i| {
                    at += rng.below(30) as i64 * 1_000_000;
                    random_entry(&mut rng, i as i64 + 1, at)
                })
                .collect();
            let split = rng.below(n + 1);
            let folded_at = at + rng.below(200) as i64 * 1_000_000;
            let read_at = folded_at + rng.below(200) as i64 * 1_000_000;
            let (a, b) = (all[..split].to_vec(), all[split..].to_vec());
            let mut normalized = fold(&q, a, folded_at);
            normalized.extend(b);
            let expected = p.run(all.clone(), read_at, &mut no_sql).unwrap();
            let got = p.run(normalized, read_at, &mut no_sql).unwrap();
            assert_eq!(got, expected, "case {case}: pipeline {:?}, prefix {:?}, split {split}", p.steps, q.steps);
        }
        // The generator does reach pipelines that fold completely, not only trivial prefixes.
        assert!(full_prefixes > 10_000, "{full_prefixes}");
    }

    #[test]
    fn every_single_builtin_step_folds_completely() {
        for step in [
            json!({"latest_by": "k"}),
            json!({"limit": 3}),
            json!({"limit": 3, "by": "s"}),
            json!({"order_by": "s"}),
            json!({"sum_by": "k", "value": "v", "drop_zero": true}),
            json!({"expire": "60 seconds"}),
            json!({"where": {"k": 1}}),
        ] {
            let p = pipeline(json!([step]));
            assert_eq!(p.stable_prefix(), p, "{step}");
        }
        // The recipes: SegmentSet folds completely; Transient Counters folds its sums only,
        // since dropping an expired or evicted counter would change later reads.
        let segment_set = pipeline(json!([{"latest_by": "segment"}, {"limit": 1000}]));
        assert_eq!(segment_set.stable_prefix(), segment_set);
        let counters = pipeline(json!([{"sum_by": "c", "value": "d", "drop_zero": true}, {"expire": "60 seconds"}, {"limit": 1000}]));
        assert_eq!(counters.stable_prefix().steps.len(), 1);
    }
}
