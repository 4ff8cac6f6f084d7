//! How a set operation reads its lists, chosen from their exact sizes. Pure.
//!
//! Merging reads every list once, in node order. Probing reads one list and looks each of its
//! nodes up in the others (one index lookup each), which is far cheaper when that list is much
//! shorter than what merging would read: FlockDB's "1M followers ∩ 1k followers".

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Intersect,
    Union,
    /// The first list without the others' nodes.
    Difference,
}

impl Op {
    pub fn parse(name: &str) -> Option<Op> {
        match name {
            "intersect" => Some(Op::Intersect),
            "union" => Some(Op::Union),
            "difference" => Some(Op::Difference),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing can be in the result.
    Empty,
    /// Read every list in node order and merge.
    Merge,
    /// Read list `scan`; keep a node when its presence in every list of `into` is `keep_found`.
    Probe {
        scan: usize,
        into: Vec<usize>,
        keep_found: bool,
    },
}

/// An index lookup costs about this many rows of a sequential merge.
const PROBE_COST: i64 = 8;

pub fn plan(op: Op, sizes: &[i64]) -> Plan {
    match op {
        Op::Union => {
            if sizes.iter().all(|&n| n == 0) {
                Plan::Empty
            } else {
                Plan::Merge
            }
        }
        Op::Intersect => {
            if sizes.is_empty() || sizes.contains(&0) {
                return Plan::Empty;
            }
            let scan = (0..sizes.len())
                .min_by_key(|&i| sizes[i])
                .expect("not empty");
            let into: Vec<usize> = (0..sizes.len()).filter(|&i| i != scan).collect();
            let merge_reads: i64 = sizes.iter().sum();
            let probe_reads = sizes[scan] + sizes[scan] * into.len() as i64 * PROBE_COST;
            if probe_reads < merge_reads {
                Plan::Probe {
                    scan,
                    into,
                    keep_found: true,
                }
            } else {
                Plan::Merge
            }
        }
        Op::Difference => {
            if sizes.first().copied().unwrap_or(0) == 0 {
                return Plan::Empty;
            }
            let into: Vec<usize> = (1..sizes.len()).collect();
            let merge_reads: i64 = sizes.iter().sum();
            let probe_reads = sizes[0] + sizes[0] * into.len() as i64 * PROBE_COST;
            if !into.is_empty() && probe_reads < merge_reads {
                Plan::Probe {
                    scan: 0,
                    into,
                    keep_found: false,
                }
            } else {
                Plan::Merge
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_list_is_probed_into_long_ones() {
        assert_eq!(
            plan(Op::Intersect, &[1_000_000, 1_000]),
            Plan::Probe {
                scan: 1,
                into: vec![0],
                keep_found: true
            }
        );
        assert_eq!(plan(Op::Intersect, &[1_000_000, 900_000]), Plan::Merge);
        assert_eq!(plan(Op::Intersect, &[5, 0, 7]), Plan::Empty);
        assert_eq!(
            plan(Op::Difference, &[1_000, 1_000_000]),
            Plan::Probe {
                scan: 0,
                into: vec![1],
                keep_found: false
            }
        );
        assert_eq!(plan(Op::Difference, &[1_000_000, 1_000]), Plan::Merge);
        assert_eq!(plan(Op::Difference, &[0, 10]), Plan::Empty);
        assert_eq!(plan(Op::Union, &[0, 0]), Plan::Empty);
        assert_eq!(plan(Op::Union, &[0, 3]), Plan::Merge);
        assert_eq!(Op::parse("xor"), None);
    }
}
