//! Read-time reducers (Blackbird's "series of functions applied during read"), kept free of
//! Postgres: a pipeline is parsed and validated from JSON, then run over entries in append
//! order. The SQL layer supplies the clock (PostgreSQL's own interval arithmetic) and runs
//! `sql` steps through a callback.
//!
//! Normalization folds a key's appended entries into its base with a pipeline. With the read
//! pipeline it must never change what `read` returns, whatever was folded when. That holds for
//! a pipeline Q with Q(Q(A) ++ B) = Q(A ++ B) (A: the folded entries, B: everything newer),
//! because then P(Q(A) ++ B) = R(Q(Q(A) ++ B)) = R(Q(A ++ B)) = P(A ++ B) for P = R ∘ Q.
//! [`Pipeline::foldable_prefix`] (`fold`) finds the longest such Q; a level with a pipeline of its own
//! applies all of it, dropping what its steps drop (that is what expiry is for).
//!
//! `parse` reads and validates steps, `run` applies them, `fold` finds what normalization may
//! fold.

use std::fmt;

use serde_json::value::RawValue;

use super::json::{self, Scalar};
pub use crate::interval::Interval;

mod fold;
mod parse;
mod run;

pub use run::compare;

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
    OrderBy {
        field: Field,
        desc: bool,
    },
    SumBy {
        key: Field,
        value: String,
        drop_zero: bool,
    },
    /// Drops entries whose `at` field is before now minus `ago` (calendar arithmetic: a year
    /// back is the same date a year earlier, not 360 days).
    Expire {
        ago: Interval,
        at: Field,
    },
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

/// Reads an interval's text; the SQL layer asks Postgres.
pub trait IntervalParser {
    fn parse(&mut self, text: &str) -> Result<Interval, String>;
}

/// Time as a run sees it: the instant `ago` before now, in Unix microseconds. The SQL layer
/// asks Postgres (`now() - ago` in the session's time zone, so months are calendar months and
/// days follow DST).
/// Runs a pipeline's `sql` step: the function's name and the entries it is given, to the
/// entries it returns (or its error).
pub type SqlStep<'a> = dyn FnMut(&str, Vec<Entry>) -> Result<Vec<Entry>, String> + 'a;

pub trait Clock {
    fn before_now(&self, ago: &Interval) -> i64;
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    pub steps: Vec<Step>,
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[cfg(test)]
mod testkit {
    //! What the tests of each part share.
    use serde_json::Value;

    use super::*;

    /// Intervals in tests: "<n> seconds" only.
    pub struct Seconds;
    impl IntervalParser for Seconds {
        fn parse(&mut self, text: &str) -> Result<Interval, String> {
            let n: i64 = text
                .strip_suffix(" seconds")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid interval \"{text}\""))?;
            Ok(Interval {
                months: 0,
                days: 0,
                micros: n * 1_000_000,
            })
        }
    }

    /// A test's clock: now, as Unix microseconds; tests' intervals are seconds only.
    impl Clock for i64 {
        fn before_now(&self, ago: &Interval) -> i64 {
            assert_eq!(
                (ago.months, ago.days),
                (0, 0),
                "tests' intervals are seconds"
            );
            self - ago.micros
        }
    }

    pub fn pipeline(steps: Value) -> Pipeline {
        Pipeline::parse(&steps, &mut Seconds).unwrap()
    }

    pub fn entries(values: &[Value]) -> Vec<Entry> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Entry {
                seq: i as i64 + 1,
                at: (i as i64 + 1) * 1_000_000,
                value: json::raw(&v.to_string()).unwrap(),
            })
            .collect()
    }

    pub fn no_sql(_: &str, _: Vec<Entry>) -> Result<Vec<Entry>, String> {
        panic!("no sql steps here")
    }

    pub fn run(p: &Pipeline, input: Vec<Entry>, now_us: i64) -> Vec<Value> {
        p.run(input, &now_us, &mut no_sql)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(e.value.get()).unwrap())
            .collect()
    }
}
