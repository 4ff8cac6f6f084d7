//! Pipelines from JSON: every step checked, every error naming its step.

use serde_json::Value;

use super::{CompareOp, Condition, Field, IntervalParser, Pipeline, PipelineError, Step};
use crate::collections::json::Scalar;

fn err(index: usize, step: &Value, reason: impl Into<String>) -> PipelineError {
    PipelineError {
        index: Some(index),
        step: step.to_string(),
        reason: reason.into(),
    }
}

fn field_name(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn count(v: Option<&Value>) -> Option<usize> {
    v.and_then(Value::as_u64)
        .filter(|&n| n > 0)
        .map(|n| n as usize)
}

impl Pipeline {
    /// Parses and validates a pipeline: a JSON array of step objects.
    pub fn parse(
        json: &Value,
        intervals: &mut dyn IntervalParser,
    ) -> Result<Pipeline, PipelineError> {
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
                Step::LatestBy(Field::parse(
                    &field_name(Some(f))
                        .ok_or_else(|| err(i, step, "latest_by takes a field name"))?,
                ))
            } else if let Some(n) = obj.get("limit") {
                allowed = &["limit", "by"];
                let n =
                    count(Some(n)).ok_or_else(|| err(i, step, "limit takes a positive integer"))?;
                match obj.get("by") {
                    None => Step::Limit(n),
                    Some(by) => Step::LimitBy(
                        n,
                        Field::parse(
                            &field_name(Some(by))
                                .ok_or_else(|| err(i, step, "by takes a field name"))?,
                        ),
                    ),
                }
            } else if let Some(f) = obj.get("order_by") {
                allowed = &["order_by", "desc"];
                let field = Field::parse(
                    &field_name(Some(f))
                        .ok_or_else(|| err(i, step, "order_by takes a field name"))?,
                );
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
                let key = Field::parse(
                    &field_name(Some(k))
                        .ok_or_else(|| err(i, step, "sum_by takes a field name"))?,
                );
                let value = field_name(obj.get("value"))
                    .filter(|v| !v.starts_with('$'))
                    .ok_or_else(|| {
                        err(
                            i,
                            step,
                            "sum_by needs \"value\": the name of the field to add up",
                        )
                    })?;
                let drop_zero = match obj.get("drop_zero") {
                    None => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(err(i, step, "drop_zero takes true or false")),
                };
                Step::SumBy {
                    key,
                    value,
                    drop_zero,
                }
            } else if let Some(ttl) = obj.get("expire") {
                allowed = &["expire", "at"];
                let text = ttl
                    .as_str()
                    .ok_or_else(|| err(i, step, "expire takes an interval such as \"1 hour\""))?;
                let ago = intervals
                    .parse(text)
                    .map_err(|e| err(i, step, format!("expire: {e}")))?;
                if !ago.is_positive() {
                    return Err(err(
                        i,
                        step,
                        "expire takes a positive interval (no negative part)",
                    ));
                }
                let at = match obj.get("at") {
                    None => Field::At,
                    Some(a) => Field::parse(
                        &field_name(Some(a))
                            .ok_or_else(|| err(i, step, "at takes a field name"))?,
                    ),
                };
                Step::Expire { ago, at }
            } else if let Some(w) = obj.get("where") {
                allowed = &["where"];
                let conds = w
                    .as_object()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| err(i, step, "where takes an object of field conditions"))?;
                let mut parsed_conds = Vec::new();
                for (name, cond) in conds {
                    parsed_conds.push((
                        Field::parse(name),
                        parse_condition(cond).map_err(|e| err(i, step, e))?,
                    ));
                }
                Step::Where(parsed_conds)
            } else if let Some(f) = obj.get("sql") {
                allowed = &["sql"];
                Step::Sql(field_name(Some(f)).ok_or_else(|| {
                    err(
                        i,
                        step,
                        "sql takes a function name such as \"myschema.myfunc\"",
                    )
                })?)
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
}

fn parse_condition(cond: &Value) -> Result<Condition, String> {
    let Some(obj) = cond.as_object() else {
        return Ok(Condition::Compare(
            CompareOp::Eq,
            Scalar::of(&cond.to_string()),
        ));
    };
    if obj.len() != 1 {
        return Err(format!(
            "condition {cond} must have exactly one operator (gt, gte, lt, lte, ne, in)"
        ));
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
        other => {
            return Err(format!(
                "unknown operator \"{other}\" (known: gt, gte, lt, lte, ne, eq, in)"
            ))
        }
    };
    Ok(Condition::Compare(op, Scalar::of(&arg.to_string())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testkit::*;
    use super::*;

    #[test]
    fn bad_pipelines_name_the_step() {
        let bad = [
            (json!({"limit": 1}), "a pipeline is a JSON array"),
            (
                json!([{"limit": 1}, {"frobnicate": 1}]),
                "step 2 {\"frobnicate\":1}: unknown step",
            ),
            (json!([{"limit": 0}]), "positive integer"),
            (json!([{"limit": "ten"}]), "positive integer"),
            (json!([{"limit": 3, "by": 7}]), "by takes a field name"),
            (json!([{"latest_by": ""}]), "latest_by takes a field name"),
            (
                json!([{"latest_by": "a", "extra": 1}]),
                "unexpected key \"extra\"",
            ),
            (
                json!([{"order_by": "a"}, {"limit": 1}]),
                "order_by must be the last step",
            ),
            (json!([{"sum_by": "a"}]), "sum_by needs \"value\""),
            (json!([{"expire": "soon"}]), "invalid interval"),
            (json!([{"expire": 5}]), "expire takes an interval"),
            (json!([{"where": {}}]), "where takes an object"),
            (
                json!([{"where": {"a": {"like": "x"}}}]),
                "unknown operator \"like\"",
            ),
            (json!([{"where": {"a": {"in": 3}}}]), "in takes an array"),
            (json!([{"sql": 3}]), "sql takes a function name"),
            (json!(["limit"]), "a step is a JSON object"),
        ];
        for (p, want) in bad {
            let e = Pipeline::parse(&p, &mut Seconds).unwrap_err().to_string();
            assert!(e.contains(want), "{p}: got {e:?}, want {want:?}");
        }
    }
}
