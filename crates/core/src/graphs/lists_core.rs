//! A node's normal edges as compact sorted blocks, for set operations. Pure.
//!
//! Set operations read whole lists; read as one index row per edge, a 1M-edge list costs 1M
//! index tuples (and as many heap visits to check the state). Kept as blocks of delta-encoded
//! ids it costs a few hundred rows. Each list is split into `STRIPES` stripes by a hash of the
//! id, so writers adding to one popular node mostly take different rows (as the counts do),
//! and two lists meet only stripe by stripe: an id's stripe is the same in every list. Within
//! a stripe, blocks cover consecutive id ranges, each keyed by its lowest bound (`lo`; the
//! first block's is `i64::MIN`), and split when their encoding outgrows `BLOCK_BYTES` (so a
//! block stays inline in its heap row, never TOASTed).

use super::sets_core::Op;

/// Stripes per list: 8 writers on one node meet on a stripe about one time in ten.
pub const STRIPES: i16 = 64;
/// A block is split beyond this many encoded bytes (under the 2 kB at which rows are TOASTed).
pub const BLOCK_BYTES: usize = 1800;
/// The bound of a stripe's first block.
pub const FIRST: i64 = i64::MIN;

/// The stripe of an id: the splitmix64 finalizer, so ids of one shape (all even, sequential)
/// still spread evenly.
pub fn stripe(id: i64) -> i16 {
    let mut z = id as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % STRIPES as u64) as i16
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Sorted, distinct ids as varints: the first as its offset from `i64::MIN`, each next one as
/// its distance from the one before.
pub fn encode(ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() * 3);
    let mut previous = FIRST;
    for &id in ids {
        put_varint(&mut out, id.wrapping_sub(previous) as u64);
        previous = id;
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Appends the ids of an encoded block to `out`.
pub fn decode_into(bytes: &[u8], out: &mut Vec<i64>) -> Result<(), Corrupt> {
    let mut previous = FIRST;
    let (mut v, mut shift) = (0u64, 0u32);
    for &b in bytes {
        if shift > 63 {
            return Err(Corrupt);
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 != 0 {
            shift += 7;
            continue;
        }
        previous = previous.wrapping_add(v as i64);
        out.push(previous);
        (v, shift) = (0, 0);
    }
    if shift != 0 {
        return Err(Corrupt);
    }
    Ok(())
}

pub fn decode(bytes: &[u8]) -> Result<Vec<i64>, Corrupt> {
    let mut out = Vec::new();
    decode_into(bytes, &mut out)?;
    Ok(out)
}

/// Where one stripe's changes go: ids to add and to remove, each sorted and distinct.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub add: Vec<i64>,
    pub remove: Vec<i64>,
}

impl Changes {
    pub fn push(&mut self, id: i64, present: bool) {
        if present {
            self.add.push(id);
        } else {
            self.remove.push(id);
        }
    }

    /// Sorts and dedups; an id both added and removed in one batch cannot happen (a batch
    /// writes each edge once), but if it did, removing wins.
    pub fn settle(&mut self) {
        self.add.sort_unstable();
        self.add.dedup();
        self.remove.sort_unstable();
        self.remove.dedup();
        let remove = &self.remove;
        self.add.retain(|id| remove.binary_search(id).is_err());
    }

    pub fn low(&self) -> i64 {
        self.add
            .first()
            .copied()
            .into_iter()
            .chain(self.remove.first().copied())
            .min()
            .unwrap_or(FIRST)
    }

    pub fn high(&self) -> i64 {
        self.add
            .last()
            .copied()
            .into_iter()
            .chain(self.remove.last().copied())
            .max()
            .unwrap_or(FIRST)
    }
}

/// What becomes of one block: its new content under its own bound (`None`: delete the block),
/// and new blocks split off it.
#[derive(Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub lo: i64,
    pub keep: Option<Vec<u8>>,
    pub split: Vec<(i64, Vec<u8>)>,
}

/// Applies `changes` to the consecutive blocks `blocks` of one stripe ((lo, ids), in lo order,
/// the first covering `changes.low()`): each block takes the changes in its range. Returns the
/// rewrites of the blocks that changed.
pub fn rewrite(blocks: &[(i64, Vec<i64>)], changes: &Changes) -> Vec<Rewrite> {
    let mut rewrites = Vec::new();
    for (i, (lo, ids)) in blocks.iter().enumerate() {
        let below = |v: &i64| blocks.get(i + 1).is_none_or(|(next, _)| *v < *next);
        let in_range = |v: &&i64| **v >= *lo && below(v);
        let add: Vec<i64> = changes.add.iter().filter(in_range).copied().collect();
        let remove: Vec<i64> = changes.remove.iter().filter(in_range).copied().collect();
        let mut next = merge(ids, &add, &remove);
        if next == *ids {
            continue;
        }
        if next.is_empty() && *lo != FIRST {
            rewrites.push(Rewrite {
                lo: *lo,
                keep: None,
                split: Vec::new(),
            });
            continue;
        }
        let mut split = Vec::new();
        let encoded = encode(&next);
        if encoded.len() > BLOCK_BYTES && next.len() > 1 {
            let pieces = encoded.len().div_ceil(BLOCK_BYTES / 2);
            let per = next.len().div_ceil(pieces);
            let rest = next.split_off(per.min(next.len()));
            for piece in rest.chunks(per) {
                split.push((piece[0], encode(piece)));
            }
            rewrites.push(Rewrite {
                lo: *lo,
                keep: Some(encode(&next)),
                split,
            });
        } else {
            rewrites.push(Rewrite {
                lo: *lo,
                keep: Some(encoded),
                split,
            });
        }
    }
    rewrites
}

/// `ids` with `add` added and `remove` removed, all sorted.
fn merge(ids: &[i64], add: &[i64], remove: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(ids.len() + add.len());
    let (mut i, mut a) = (0, 0);
    while i < ids.len() || a < add.len() {
        let take_add = i == ids.len() || (a < add.len() && add[a] < ids[i]);
        let v = if take_add {
            a += 1;
            add[a - 1]
        } else {
            if a < add.len() && add[a] == ids[i] {
                a += 1;
            }
            i += 1;
            ids[i - 1]
        };
        if remove.binary_search(&v).is_err() {
            out.push(v);
        }
    }
    out
}

/// Elements of `a` also in `b` (both sorted), galloping through the longer one.
pub fn intersect_sorted(a: &[i64], b: &[i64], emit: &mut dyn FnMut(i64)) {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() * 32 < long.len() {
        let mut rest = long;
        for &v in short {
            match rest.binary_search(&v) {
                Ok(at) => {
                    emit(v);
                    rest = &rest[at + 1..];
                }
                Err(at) => rest = &rest[at..],
            }
        }
        return;
    }
    let (mut i, mut j) = (0, 0);
    while i < short.len() && j < long.len() {
        match short[i].cmp(&long[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                emit(short[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

/// Runs `op` over one stripe of each list (each sorted), emitting in order.
pub fn combine(op: Op, mut parts: Vec<Vec<i64>>, emit: &mut dyn FnMut(i64)) {
    let Some(first) = parts.first().cloned() else {
        return;
    };
    match op {
        Op::Intersect => {
            let mut common = first;
            for other in &parts[1..] {
                let mut next = Vec::with_capacity(common.len().min(other.len()));
                intersect_sorted(&common, other, &mut |v| next.push(v));
                common = next;
            }
            common.into_iter().for_each(emit);
        }
        Op::Union => {
            let mut all = std::mem::take(&mut parts[0]);
            for other in &parts[1..] {
                all = union_sorted(&all, other);
            }
            all.into_iter().for_each(emit);
        }
        Op::Difference => {
            let mut rest = first;
            for other in &parts[1..] {
                let mut j = 0;
                rest.retain(|v| {
                    while j < other.len() && other[j] < *v {
                        j += 1;
                    }
                    j == other.len() || other[j] != *v
                });
            }
            rest.into_iter().for_each(emit);
        }
    }
}

fn union_sorted(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        out.push(x.min(y));
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks_of(rewrites: &[Rewrite], mut blocks: Vec<(i64, Vec<i64>)>) -> Vec<(i64, Vec<i64>)> {
        for r in rewrites {
            let at = blocks
                .iter()
                .position(|(lo, _)| *lo == r.lo)
                .expect("rewritten block exists");
            match &r.keep {
                Some(bytes) => blocks[at].1 = decode(bytes).unwrap(),
                None => {
                    blocks.remove(at);
                }
            }
            for (lo, bytes) in &r.split {
                blocks.push((*lo, decode(bytes).unwrap()));
            }
        }
        blocks.sort();
        blocks
    }

    #[test]
    fn encoding_round_trips_extremes() {
        let ids = vec![
            i64::MIN,
            i64::MIN + 1,
            -5,
            0,
            1,
            1 << 40,
            i64::MAX - 1,
            i64::MAX,
        ];
        assert_eq!(decode(&encode(&ids)).unwrap(), ids);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::<i64>::new());
        // Dense ids take a byte or two each.
        let dense: Vec<i64> = (1_000_000..1_001_000).collect();
        assert!(encode(&dense).len() < 1_010);
    }

    #[test]
    fn truncated_or_overlong_blocks_are_corrupt() {
        let mut bytes = encode(&[300, 1 << 50]);
        bytes.pop();
        assert_eq!(decode(&bytes), Err(Corrupt));
        assert_eq!(decode(&[0xff; 11]), Err(Corrupt));
    }

    #[test]
    fn stripes_spread_regular_ids() {
        let mut seen = [0usize; STRIPES as usize];
        for id in (0..64_000).map(|i| i * 64) {
            seen[stripe(id) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (700..1300).contains(&n)), "{seen:?}");
    }

    /// Random adds and removes applied through rewrite, batch by batch, equal a BTreeSet's;
    /// every block stays within its range and size.
    #[test]
    fn rewrites_keep_the_set_and_the_ranges() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20 {
            let spread = if round % 2 == 0 { 5_000 } else { u64::MAX };
            let mut truth = std::collections::BTreeSet::new();
            let mut blocks: Vec<(i64, Vec<i64>)> = vec![(FIRST, Vec::new())];
            for _ in 0..40 {
                let mut changes = Changes::default();
                for _ in 0..(next() % 400) {
                    let id = (next() % spread) as i64;
                    let present = next() % 3 != 0;
                    if changes.add.contains(&id) || changes.remove.contains(&id) {
                        continue;
                    }
                    changes.push(id, present);
                    if present {
                        truth.insert(id);
                    } else {
                        truth.remove(&id);
                    }
                }
                changes.settle();
                let from = blocks
                    .iter()
                    .rposition(|(lo, _)| *lo <= changes.low())
                    .unwrap();
                let to = blocks
                    .iter()
                    .rposition(|(lo, _)| *lo <= changes.high())
                    .unwrap();
                let rewrites = rewrite(&blocks[from..=to], &changes);
                blocks = blocks_of(&rewrites, blocks);
                let all: Vec<i64> = blocks.iter().flat_map(|(_, ids)| ids.clone()).collect();
                assert_eq!(all, truth.iter().copied().collect::<Vec<_>>());
                assert_eq!(blocks[0].0, FIRST);
                for (i, (lo, ids)) in blocks.iter().enumerate() {
                    assert!(encode(ids).len() <= BLOCK_BYTES || ids.len() == 1);
                    assert!(ids
                        .iter()
                        .all(|v| v >= lo && blocks.get(i + 1).is_none_or(|(n, _)| v < n)));
                }
            }
        }
    }

    #[test]
    fn combinations_equal_the_set_answers() {
        use std::collections::BTreeSet;
        let lists: Vec<Vec<i64>> = vec![
            (0..3_000).map(|i| i * 2).collect(),
            (0..2_000).map(|i| i * 3).collect(),
            vec![6, 12, 5_999],
        ];
        let sets: Vec<BTreeSet<i64>> = lists.iter().map(|l| l.iter().copied().collect()).collect();
        let run = |op, parts: Vec<Vec<i64>>| {
            let mut out = Vec::new();
            combine(op, parts, &mut |v| out.push(v));
            out
        };
        let inter: Vec<i64> = sets[0]
            .iter()
            .filter(|v| sets[1].contains(v) && sets[2].contains(v))
            .copied()
            .collect();
        assert_eq!(run(Op::Intersect, lists.clone()), inter);
        let union: Vec<i64> = sets
            .iter()
            .flatten()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(run(Op::Union, lists.clone()), union);
        let diff: Vec<i64> = sets[0]
            .iter()
            .filter(|v| !sets[1].contains(v))
            .copied()
            .collect();
        assert_eq!(run(Op::Difference, lists[..2].to_vec()), diff);
        assert_eq!(run(Op::Intersect, vec![]), Vec::<i64>::new());
    }

    #[test]
    fn intersections_equal_the_naive_one() {
        let a: Vec<i64> = (0..10_000).map(|i| i * 3).collect();
        for b in [
            (0..10_000).map(|i| i * 5).collect::<Vec<i64>>(),
            (0..100).map(|i| i * 301).collect(),
            vec![],
        ] {
            let mut got = Vec::new();
            intersect_sorted(&a, &b, &mut |v| got.push(v));
            let want: Vec<i64> = b
                .iter()
                .copied()
                .filter(|v| a.binary_search(v).is_ok())
                .collect();
            assert_eq!(got, want);
        }
    }
}
