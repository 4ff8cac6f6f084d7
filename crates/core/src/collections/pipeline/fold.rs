//! What normalization may fold early without changing what reads return (see the module
//! comment of `pipeline`).

use super::{Field, Pipeline, Step};

impl Pipeline {
    /// The longest prefix Q with Q(Q(A) ++ B) = Q(A ++ B) when every entry of B is newer than
    /// every entry of A (see the module comment). Checked against random pipelines in tests.
    pub fn foldable_prefix(&self) -> Pipeline {
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
                && matches!(
                    step,
                    Step::LatestBy(_) | Step::Limit(_) | Step::LimitBy(..) | Step::SumBy { .. }
                )
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
                (Phase::Filters | Phase::Deduped | Phase::Limited, Step::Limit(_)) => {
                    Phase::Limited
                }
                (Phase::DedupedFiltered, _) => break,
                // Top n by a field, over entries nothing later removes.
                (Phase::Filters, Step::LimitBy(..)) => Phase::Done,
                // Sums are associative; earlier filters must not look at the summed field.
                (Phase::Filters, Step::SumBy { value, .. })
                    if !filter_fields
                        .iter()
                        .any(|f| **f == Field::Key(value.clone())) =>
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
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::super::testkit::*;
    use super::super::Entry;
    use super::*;
    use crate::collections::json;
    use crate::testing::XorShift;

    fn random_entry(rng: &mut XorShift, seq: i64, at: i64) -> Entry {
        let mut m = Map::new();
        m.insert("k".into(), json!(rng.below(4)));
        m.insert("v".into(), json!(rng.below(5) as i64 - 2));
        m.insert("s".into(), json!(rng.below(10)));
        if rng.below(3) > 0 {
            let t = 1_790_000_000 + rng.below(1_000) as i64;
            m.insert("t".into(), json!(t));
        }
        Entry {
            seq,
            at,
            value: json::raw(&Value::Object(m).to_string()).unwrap(),
        }
    }

    fn random_step(rng: &mut XorShift) -> Value {
        let field = |rng: &mut XorShift| ["k", "v", "s", "$seq"][rng.below(4)];
        match rng.below(9) {
            0 => json!({"latest_by": field(rng)}),
            1 => json!({"limit": 1 + rng.below(6)}),
            2 => json!({"limit": 1 + rng.below(4), "by": field(rng)}),
            3 => {
                json!({"sum_by": (["k", "s"][rng.below(2)]), "value": "v", "drop_zero": rng.below(2) == 0})
            }
            4 => {
                json!({"expire": format!("{} seconds", 1 + rng.below(400)), "at": (["$at", "t"][rng.below(2)])})
            }
            5 => {
                let mut cond = Map::new();
                cond.insert(
                    ["gt", "lt", "ne", "gte"][rng.below(4)].into(),
                    json!(rng.below(5) as i64 - 1),
                );
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
        let mut folded = q.run(a, &now, &mut no_sql).unwrap();
        folded.sort_by_key(|e| e.seq);
        folded
    }

    /// The property normalization relies on, over random pipelines, inputs and splits, with
    /// normalization at one instant and the read later (expiry only moves forward).
    #[test]
    fn folding_the_foldable_prefix_never_changes_what_reads_return() {
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
            let q = p.foldable_prefix();
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
            let expected = p.run(all.clone(), &read_at, &mut no_sql).unwrap();
            let got = p.run(normalized, &read_at, &mut no_sql).unwrap();
            assert_eq!(
                got, expected,
                "case {case}: pipeline {:?}, prefix {:?}, split {split}",
                p.steps, q.steps
            );
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
            assert_eq!(p.foldable_prefix(), p, "{step}");
        }
        // The recipes: SegmentSet folds completely; Transient Counters folds its sums only,
        // since dropping an expired or evicted counter would change later reads.
        let segment_set = pipeline(json!([{"latest_by": "segment"}, {"limit": 1000}]));
        assert_eq!(segment_set.foldable_prefix(), segment_set);
        let counters = pipeline(
            json!([{"sum_by": "c", "value": "d", "drop_zero": true}, {"expire": "60 seconds"}, {"limit": 1000}]),
        );
        assert_eq!(counters.foldable_prefix().steps.len(), 1);
    }
}
