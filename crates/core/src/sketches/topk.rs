//! Heavy hitters (SpaceSaving, Metwally et al. 2005) with merges that keep the error bounds:
//! for every value reported, its true count lies in [count − error, count]. A sketch keeps
//! `capacity` counters; a value seen while all are taken replaces the smallest, inheriting
//! its count as error. Merging adds counts; a value missing from a full sketch may have been
//! evicted there, so it gains that sketch's smallest count as both count and error.
//!
//! SpaceSaving's guarantee: with m counters over n counted events, every value counted more
//! than n/m times is kept, and no error exceeds n/m. `capacity(k)` chooses m from k with room
//! for long tails (see there).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::wire::{put_varint, Reader};

/// Version 1 (before #27) carried no capacity: it was `max(4k, 64)`.
const FORMAT_VERSION: u8 = 2;
pub const MAX_K: u32 = 10_000;
const MAX_CAPACITY: u32 = 65_536;

/// The counters a sketch for the top `k` keeps: 64 per value asked for, at least 1,024 and
/// at most 65,536. With m = 1,024, a value counted more than 0.1% of the time is always kept;
/// on a year of 120,000 flights from one airport that is every aircraft flying more than
/// 117 times, with errors of at most 117 (64 counters left the top aircraft, ~270 flights
/// each, out and reported others with errors of ~1,880).
pub fn capacity(k: u32) -> u32 {
    k.saturating_mul(64).clamp(1_024, MAX_CAPACITY)
}

/// Counters by count, smallest first; ties, the largest value first.
type ByCount = BinaryHeap<Reverse<(u64, Reverse<String>)>>;

#[derive(Debug, Clone)]
pub struct TopK {
    k: u32,
    capacity: u32,
    total: u64,
    counters: HashMap<String, (u64, u64)>,
    /// The counters by count, smallest first (ties: the largest value first), built when the
    /// sketch fills. An entry may hold a count older (smaller) than its counter's: increments
    /// leave it alone, and an eviction brings it up to date when it comes out first.
    by_count: Option<ByCount>,
    /// The counted values' bytes, kept as they change: `heap_bytes` is asked after every row.
    value_bytes: usize,
    /// No counter's count exceeds it (raised as counts rise): what merges check overflow by
    /// without reading every counter.
    largest: u64,
}

impl PartialEq for TopK {
    fn eq(&self, other: &TopK) -> bool {
        (self.k, self.capacity, self.total, &self.counters)
            == (other.k, other.capacity, other.total, &other.counters)
    }
}

impl Eq for TopK {}

impl TopK {
    /// A sketch for the `k` most frequent values, with `capacity(k)` counters.
    pub fn new(k: u32) -> Result<TopK, String> {
        if k == 0 || k > MAX_K {
            return Err(format!("k must be between 1 and {MAX_K}, not {k}"));
        }
        Ok(TopK::with_capacity(k, capacity(k)))
    }

    fn with_capacity(k: u32, capacity: u32) -> TopK {
        TopK {
            k,
            capacity,
            total: 0,
            counters: HashMap::new(),
            by_count: None,
            value_bytes: 0,
            largest: 0,
        }
    }

    pub fn k(&self) -> u32 {
        self.k
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// About how much memory the sketch holds besides itself (a counter's entry in the map,
    /// and once full its place by count, which holds the value again).
    pub fn heap_bytes(&self) -> usize {
        let by_count = self.by_count.as_ref().map_or(0, |h| h.capacity() * 32);
        self.value_bytes * if self.by_count.is_some() { 2 } else { 1 }
            + self.counters.len() * 48
            + by_count
    }

    fn full(&self) -> bool {
        self.counters.len() >= self.capacity as usize
    }

    /// The heap by count, built on first use.
    fn build_by_count(&mut self) {
        let counters = &self.counters;
        self.by_count.get_or_insert_with(|| {
            counters
                .iter()
                .map(|(v, &(c, _))| Reverse((c, Reverse(v.clone()))))
                .collect()
        });
    }

    /// The smallest count, from the heap: its top brought up to date first.
    fn smallest_count(&mut self) -> u64 {
        self.build_by_count();
        let (counters, heap) = (&self.counters, self.by_count.as_mut().expect("built above"));
        loop {
            let Some(Reverse((count, Reverse(value)))) = heap.peek() else {
                return 0;
            };
            let current = counters.get(value).expect("every entry has its counter").0;
            if current == *count {
                return current;
            }
            let Reverse((_, Reverse(value))) = heap.pop().expect("peeked");
            heap.push(Reverse((current, Reverse(value))));
        }
    }

    /// Takes out the counter with the smallest count (ties: the largest value).
    fn evict_smallest(&mut self) -> (String, u64) {
        self.build_by_count();
        let (counters, heap) = (&self.counters, self.by_count.as_mut().expect("built above"));
        loop {
            let Reverse((count, Reverse(value))) = heap.pop().expect("full means non-empty");
            let current = counters.get(&value).expect("every entry has its counter").0;
            if current == count {
                self.counters.remove(&value);
                return (value, count);
            }
            heap.push(Reverse((current, Reverse(value))));
        }
    }

    pub fn add(&mut self, value: &str, weight: u64) {
        self.total = self.total.saturating_add(weight);
        if let Some(slot) = self.counters.get_mut(value) {
            slot.0 = slot.0.saturating_add(weight);
            self.largest = self.largest.max(slot.0);
            return;
        }
        self.value_bytes += value.len();
        if !self.full() {
            self.counters.insert(value.to_string(), (weight, 0));
            self.by_count = None;
            self.largest = self.largest.max(weight);
            return;
        }
        let (victim, min) = self.evict_smallest();
        self.value_bytes -= victim.len();
        let count = min.saturating_add(weight);
        self.largest = self.largest.max(count);
        self.counters.insert(value.to_string(), (count, min));
        if let Some(heap) = &mut self.by_count {
            heap.push(Reverse((count, Reverse(value.to_string()))));
        }
    }

    /// Merges `other` in. Sketches of any k and capacity merge: the result keeps the larger
    /// of each, and the bounds hold whatever each side kept.
    pub fn merge(&mut self, other: &TopK) -> Result<(), String> {
        let (our_floor, their_floor) = (self.floor(), other.floor_by_reading());
        // Counts near 2^64 cannot be added: an error, never a value that wrapped around.
        let total = self
            .total
            .checked_add(other.total)
            .ok_or_else(|| "topk counts would exceed 2^64".to_string())?;
        // In place, so checked before anything changes. A counter of ours that `other` lacks
        // gains its floor, which is 0 unless it is full: a small sketch merged into a large
        // state (the usual case) then costs only `other`'s counters.
        // Every sum is of a count or error of each side, or a floor (at most its side's
        // largest count; errors are at most their counts): when the largest counts add up,
        // none can overflow, and only otherwise is each sum checked.
        if self.largest.checked_add(other.largest).is_none() {
            self.check_merge(other, our_floor, their_floor)?;
        }
        if their_floor > 0 {
            for (v, slot) in self.counters.iter_mut() {
                if !other.counters.contains_key(v) {
                    *slot = (slot.0 + their_floor, slot.1 + their_floor);
                }
            }
        }
        self.largest = self.largest.saturating_add(their_floor);
        let theirs = other.counters.iter().map(|(v, &(c, e))| (v.as_str(), c, e));
        self.absorb(theirs, our_floor, (other.k, other.capacity, total));
        Ok(())
    }

    /// Adds the other side's counters (value, count, error) in, a counter new here at
    /// `our_floor` more, takes the larger k and capacity and the summed `total`, and sheds
    /// back to capacity. Every sum was checked not to overflow.
    fn absorb<'v>(
        &mut self,
        theirs: impl Iterator<Item = (&'v str, u64, u64)>,
        our_floor: u64,
        (k, capacity, total): (u32, u32, u64),
    ) {
        for (v, c, e) in theirs {
            match self.counters.get_mut(v) {
                Some(slot) => {
                    *slot = (slot.0 + c, slot.1 + e);
                    self.largest = self.largest.max(slot.0);
                }
                None => {
                    let count = c + our_floor;
                    self.largest = self.largest.max(count);
                    self.value_bytes += v.len();
                    self.counters.insert(v.to_string(), (count, e + our_floor));
                    if let Some(heap) = &mut self.by_count {
                        heap.push(Reverse((count, Reverse(v.to_string()))));
                    }
                }
            }
        }
        self.k = self.k.max(k);
        self.capacity = self.capacity.max(capacity);
        self.shed_to_capacity();
        self.total = total;
    }

    /// Back to capacity: the counters `top` ranks last go, smallest count first (ties: the
    /// largest value). A merge only raises counts, so the heap by count stays usable as `add`
    /// keeps it, and a state that stays full pays per merge for the other's counters only.
    fn shed_to_capacity(&mut self) {
        while self.counters.len() > self.capacity as usize {
            let (victim, _) = self.evict_smallest();
            self.value_bytes -= victim.len();
        }
    }

    /// What a counter the other side lacks is counted at: its smallest count once full,
    /// else 0.
    fn floor(&mut self) -> u64 {
        if self.full() {
            self.smallest_count()
        } else {
            0
        }
    }

    /// The same, read from every counter (for a sketch merged in, which keeps no heap).
    fn floor_by_reading(&self) -> u64 {
        if self.full() {
            self.counters.values().map(|&(c, _)| c).min().unwrap_or(0)
        } else {
            0
        }
    }

    /// Every sum `merge` would make, checked (counts near 2^64).
    fn check_merge(&self, other: &TopK, our_floor: u64, their_floor: u64) -> Result<(), String> {
        let add = |a: u64, b: u64| {
            a.checked_add(b)
                .ok_or_else(|| "topk counts would exceed 2^64".to_string())
        };
        for (v, &(c, e)) in &self.counters {
            let (oc, oe) = other
                .counters
                .get(v)
                .copied()
                .unwrap_or((their_floor, their_floor));
            add(c, oc)?;
            add(e, oe)?;
        }
        for (v, &(c, e)) in &other.counters {
            if !self.counters.contains_key(v) {
                add(c, our_floor)?;
                add(e, our_floor)?;
            }
        }
        Ok(())
    }

    /// The `n` largest counts: (value, count, error), largest first (ties by value).
    pub fn top(&self, n: usize) -> Vec<(String, u64, u64)> {
        let mut ranked: Vec<(String, u64, u64)> = self
            .counters
            .iter()
            .map(|(v, &(c, e))| (v.clone(), c, e))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(n);
        ranked
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        put_varint(&mut out, self.k as u64);
        put_varint(&mut out, self.capacity as u64);
        put_varint(&mut out, self.total);
        let ranked = self.top(self.counters.len());
        put_varint(&mut out, ranked.len() as u64);
        for (v, c, e) in ranked {
            put_varint(&mut out, v.len() as u64);
            out.extend_from_slice(v.as_bytes());
            put_varint(&mut out, c);
            put_varint(&mut out, e);
        }
        out
    }

    /// Reads this format, and version 1's (stored before #27), whose capacity was `max(4k, 64)`.
    pub fn from_bytes(bytes: &[u8]) -> Result<TopK, String> {
        let stored = Stored::read(bytes)?;
        let mut t = TopK::with_capacity(stored.k, stored.capacity);
        t.total = stored.total;
        for &(v, c, e) in &stored.counters {
            if t.counters.insert(v.to_string(), (c, e)).is_some() {
                return Err(format!("topk value {v:?} appears twice"));
            }
            t.value_bytes += v.len();
            t.largest = t.largest.max(c);
        }
        Ok(t)
    }

    /// Merges a stored sketch without decoding it into a sketch of its own: what an aggregate
    /// over stored sketches does row after row. A stored sketch that is full (its counters'
    /// floor then reaches every counter of ours it lacks) is decoded and merged as usual.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stored = Stored::read(bytes)?;
        if stored.counters.len() >= stored.capacity as usize {
            return self.merge(&TopK::from_bytes(bytes)?);
        }
        let mut seen = std::collections::HashSet::with_capacity(stored.counters.len());
        if let Some(&(v, _, _)) = stored.counters.iter().find(|&&(v, _, _)| !seen.insert(v)) {
            return Err(format!("topk value {v:?} appears twice"));
        }
        let our_floor = self.floor();
        let total = self
            .total
            .checked_add(stored.total)
            .ok_or_else(|| "topk counts would exceed 2^64".to_string())?;
        let theirs = stored
            .counters
            .iter()
            .map(|&(_, c, _)| c)
            .max()
            .unwrap_or(0);
        if self.largest.checked_add(theirs).is_none() {
            // Near 2^64: each sum checked as `merge` does.
            return self.merge(&TopK::from_bytes(bytes)?);
        }
        let (k, capacity) = (stored.k, stored.capacity);
        self.absorb(stored.counters.into_iter(), our_floor, (k, capacity, total));
        Ok(())
    }
}

/// A stored sketch read and checked, its values borrowed from the bytes.
struct Stored<'a> {
    k: u32,
    capacity: u32,
    total: u64,
    counters: Vec<(&'a str, u64, u64)>,
}

impl<'a> Stored<'a> {
    fn read(bytes: &'a [u8]) -> Result<Stored<'a>, String> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != 1 && version != FORMAT_VERSION {
            return Err(format!("unsupported topk format version {version}"));
        }
        let k = u32::try_from(r.varint()?).map_err(|_| "k out of range")?;
        if k == 0 || k > MAX_K {
            return Err(format!("k must be between 1 and {MAX_K}, not {k}"));
        }
        let capacity = if version == 1 {
            (k * 4).max(64)
        } else {
            u32::try_from(r.varint()?)
                .ok()
                .filter(|c| (k..=MAX_CAPACITY.max(4 * MAX_K)).contains(c))
                .ok_or("topk capacity out of range")?
        };
        let total = r.varint()?;
        let n = r.count(3)?;
        if n > capacity as usize {
            return Err(format!(
                "topk holds {n} counters, more than its capacity {capacity}"
            ));
        }
        let mut counters = Vec::with_capacity(n);
        let mut counted = 0u64;
        for _ in 0..n {
            let len = r.count(1)?;
            let v = std::str::from_utf8(r.bytes(len)?).map_err(|_| "topk value is not UTF-8")?;
            if v.contains('\0') {
                return Err("topk value holds a NUL byte, which text cannot".into());
            }
            let (c, e) = (r.varint()?, r.varint()?);
            if e > c {
                return Err("topk error exceeds its count".into());
            }
            counted = counted.saturating_add(c - e);
            counters.push((v, c, e));
        }
        r.finish()?;
        if counted > total {
            return Err("topk counts exceed its total".into());
        }
        Ok(Stored {
            k,
            capacity,
            total,
            counters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    /// A Zipf-like stream: value i appears about N / (i + 1) times.
    fn stream(rng: &mut XorShift, n: usize, distinct: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let i = ((distinct as f64).powf(u) - 1.0) as usize;
                format!("v{i}")
            })
            .collect()
    }

    fn exact_counts(values: &[String]) -> HashMap<String, u64> {
        let mut m = HashMap::new();
        for v in values {
            *m.entry(v.clone()).or_default() += 1;
        }
        m
    }

    fn check_bounds(sketch: &TopK, truth: &HashMap<String, u64>) {
        for (v, c, e) in sketch.top(sketch.counters.len()) {
            let t = truth.get(&v).copied().unwrap_or(0);
            assert!(
                c - e <= t && t <= c,
                "{v}: true {t} not in [{}, {c}]",
                c - e
            );
        }
    }

    #[test]
    fn counts_bound_the_truth_and_find_the_heavy_hitters() {
        let mut rng = XorShift(3);
        let values = stream(&mut rng, 50_000, 5_000);
        let truth = exact_counts(&values);
        let mut sketch = TopK::new(10).unwrap();
        for v in &values {
            sketch.add(v, 1);
        }
        check_bounds(&sketch, &truth);
        let mut true_top: Vec<(&String, &u64)> = truth.iter().collect();
        true_top.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let reported: Vec<String> = sketch.top(5).into_iter().map(|(v, _, _)| v).collect();
        for (v, _) in true_top.iter().take(5) {
            assert!(reported.contains(v), "{v} missing from {reported:?}");
        }
        assert_eq!(sketch.total(), 50_000);
    }

    #[test]
    fn merging_counts_near_the_limit_is_an_error_not_a_wraparound() {
        let mut a = TopK::new(4).unwrap();
        a.add("x", u64::MAX - 1);
        let mut b = TopK::new(4).unwrap();
        b.add("x", 5);
        assert!(a.clone().merge(&b).unwrap_err().contains("2^64"));
        let bytes = a.to_bytes();
        assert_eq!(TopK::from_bytes(&bytes).unwrap().top(1), a.top(1));
    }

    #[test]
    fn the_memory_kept_follows_the_values_through_evictions_merges_and_decoding() {
        let held = |t: &TopK| {
            let values = t.counters.keys().map(String::len).sum::<usize>();
            match &t.by_count {
                None => values + t.counters.len() * 48,
                Some(h) => {
                    let queued = h
                        .iter()
                        .map(|Reverse((_, Reverse(v)))| v.len())
                        .sum::<usize>();
                    assert_eq!(queued, values, "one entry by count per counter");
                    2 * values + t.counters.len() * 48 + h.capacity() * 32
                }
            }
        };
        let mut a = TopK::new(1).unwrap();
        for i in 0..5_000u32 {
            a.add(
                &format!("{}{i}", "v".repeat(1 + (i * 7919 % 97) as usize)),
                1,
            );
            assert_eq!(a.heap_bytes(), held(&a));
        }
        let mut b = TopK::new(1).unwrap();
        b.add("other", 3);
        b.merge(&a).unwrap();
        assert_eq!(b.heap_bytes(), held(&b));
        let decoded = TopK::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(decoded.heap_bytes(), held(&decoded));
    }

    /// The merge as first written (a new map, every counter copied and sorted): what the
    /// in-place merge must equal, counter for counter.
    fn reference_merge(a: &TopK, other: &TopK) -> TopK {
        let floor = |t: &TopK| {
            if t.full() {
                t.counters.values().map(|&(c, _)| c).min().unwrap_or(0)
            } else {
                0
            }
        };
        let (our_floor, their_floor) = (floor(a), floor(other));
        let mut merged: HashMap<String, (u64, u64)> = HashMap::new();
        for (v, &(c, e)) in &a.counters {
            let (oc, oe) = other
                .counters
                .get(v)
                .copied()
                .unwrap_or((their_floor, their_floor));
            merged.insert(v.clone(), (c + oc, e + oe));
        }
        for (v, &(c, e)) in &other.counters {
            merged
                .entry(v.clone())
                .or_insert((c + our_floor, e + our_floor));
        }
        let mut out = TopK::with_capacity(a.k.max(other.k), a.capacity.max(other.capacity));
        let mut ranked: Vec<(String, (u64, u64))> = merged.into_iter().collect();
        ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(out.capacity as usize);
        out.counters = ranked.into_iter().collect();
        out.value_bytes = out.counters.keys().map(String::len).sum();
        out.total = a.total + other.total;
        out
    }

    /// Small sketches into a large state, full ones into full ones, ties on counts at the
    /// cut, sketches of different k: the in-place merge keeps exactly the counters the
    /// reference keeps, with the same counts and errors.
    #[test]
    fn merging_in_place_equals_the_reference_merge() {
        let mut rng = XorShift(21);
        for round in 0..200 {
            let sizes = [(5, 30), (2_000, 1_500), (40_000, 3_000), (300, 5)];
            let (n_a, d_a) = sizes[round % 4];
            let (n_b, d_b) = sizes[(round / 4) % 4];
            let (k_a, k_b) = if round % 7 == 0 { (1, 20) } else { (10, 10) };
            let mut a = TopK::new(k_a).unwrap();
            let mut b = TopK::new(k_b).unwrap();
            for v in stream(&mut rng, n_a, d_a) {
                a.add(&v, 1);
            }
            for v in stream(&mut rng, n_b, d_b) {
                b.add(&v, 1 + (rng.next_u64() % 3));
            }
            // Three merges in a row: the state keeps what the first left (its heap by count).
            let mut expected = a.clone();
            for _ in 0..3 {
                expected = reference_merge(&expected, &b);
                a.merge(&b).unwrap();
                assert_eq!(a, expected, "round {round}");
                assert_eq!(a.value_bytes, expected.value_bytes, "round {round}");
                assert_eq!(a.to_bytes(), expected.to_bytes(), "round {round}");
            }
        }
    }

    /// A stored sketch merged from its bytes gives what decoding it and merging gives, and
    /// damaged bytes are refused as decoding refuses them.
    #[test]
    fn merging_stored_bytes_equals_merging_the_decoded_sketch() {
        let mut rng = XorShift(22);
        let mut by_bytes = TopK::new(10).unwrap();
        let mut decoded = TopK::new(10).unwrap();
        for round in 0..300 {
            let mut part = TopK::new(if round % 11 == 0 { 1 } else { 10 }).unwrap();
            let (n, distinct) = if round % 50 == 0 {
                (3_000, 2_000)
            } else {
                (20, 4_000)
            };
            for v in stream(&mut rng, n, distinct) {
                part.add(&v, 1);
            }
            let bytes = part.to_bytes();
            by_bytes.merge_bytes(&bytes).unwrap();
            decoded.merge(&TopK::from_bytes(&bytes).unwrap()).unwrap();
            assert_eq!(by_bytes, decoded, "round {round}");
            assert_eq!(by_bytes.value_bytes, decoded.value_bytes, "round {round}");
        }
        let mut twice = vec![FORMAT_VERSION];
        for n in [10, capacity(10) as u64, 4, 2] {
            put_varint(&mut twice, n);
        }
        for _ in 0..2 {
            twice.extend_from_slice(&[1, b'a', 2, 0]);
        }
        assert!(TopK::from_bytes(&twice).unwrap_err().contains("twice"));
        let before = by_bytes.clone();
        assert!(by_bytes.merge_bytes(&twice).unwrap_err().contains("twice"));
        assert!(by_bytes.merge_bytes(&[FORMAT_VERSION, 1]).is_err());
        assert_eq!(by_bytes, before);
    }

    /// An overflowing merge changes nothing.
    #[test]
    fn an_overflowing_merge_leaves_the_state_as_it_was() {
        let mut a = TopK::new(10).unwrap();
        a.add("x", u64::MAX - 1);
        let before = a.clone();
        let mut b = TopK::new(10).unwrap();
        b.add("x", 5);
        assert!(a.merge(&b).is_err());
        assert_eq!(a, before);
    }

    #[test]
    fn merged_sketches_keep_the_bounds() {
        let mut rng = XorShift(8);
        let parts: Vec<Vec<String>> = (0..6).map(|_| stream(&mut rng, 8_000, 3_000)).collect();
        let truth = exact_counts(&parts.concat());
        let mut merged = TopK::new(10).unwrap();
        for p in &parts {
            let mut s = TopK::new(10).unwrap();
            for v in p {
                s.add(v, 1);
            }
            merged.merge(&s).unwrap();
        }
        check_bounds(&merged, &truth);
        assert_eq!(merged.total(), 48_000);
        assert_eq!(merged.top(1)[0].0, "v0");
        assert!(TopK::new(0).is_err());
    }

    /// Sketches of different k (and so capacity) merge into the larger of each, bounds kept.
    #[test]
    fn sketches_of_different_k_merge() {
        let mut rng = XorShift(9);
        let (a_values, b_values) = (
            stream(&mut rng, 20_000, 5_000),
            stream(&mut rng, 20_000, 5_000),
        );
        let truth = exact_counts(&[a_values.clone(), b_values.clone()].concat());
        let (mut a, mut b) = (TopK::new(1).unwrap(), TopK::new(100).unwrap());
        a_values.iter().for_each(|v| a.add(v, 1));
        b_values.iter().for_each(|v| b.add(v, 1));
        a.merge(&b).unwrap();
        assert_eq!((a.k(), a.capacity()), (100, capacity(100)));
        check_bounds(&a, &truth);
    }

    /// The issue #27 case: on a long tail (4,000 aircraft at one airport, ~120,000 flights, three
    /// of them flying 270 times), the top 3 are the true top 3, each error within n/m.
    #[test]
    fn a_long_tail_keeps_its_true_top() {
        let mut rng = XorShift(21);
        let mut flights: Vec<String> = (0..3)
            .flat_map(|p| vec![format!("heavy{p}"); 270])
            .collect();
        flights.extend((0..3_997).flat_map(|p| vec![format!("N{p}"); 20 + p % 19]));
        for i in (1..flights.len()).rev() {
            flights.swap(i, rng.below(i + 1));
        }
        let mut sketch = TopK::new(3).unwrap();
        flights.iter().for_each(|v| sketch.add(v, 1));
        let bound = flights.len() as u64 / capacity(3) as u64;
        let mut top: Vec<(String, u64, u64)> = sketch.top(3);
        assert!(
            top.iter().all(|(_, _, e)| *e <= bound),
            "{top:?} past {bound}"
        );
        top.sort();
        assert_eq!(
            top.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            ["heavy0", "heavy1", "heavy2"],
            "{top:?}"
        );
        check_bounds(&sketch, &exact_counts(&flights));
    }

    /// A sketch stored before #27 (format 1, capacity max(4k, 64)) still reads, and merges with
    /// a new one keeping the bounds.
    #[test]
    fn version_one_sketches_still_read() {
        let mut old = vec![1u8];
        for n in [3u64, 10, 2] {
            put_varint(&mut old, n);
        }
        for (v, c, e) in [("a", 6u64, 1u64), ("b", 3, 0)] {
            put_varint(&mut old, v.len() as u64);
            old.extend_from_slice(v.as_bytes());
            put_varint(&mut old, c);
            put_varint(&mut old, e);
        }
        let read = TopK::from_bytes(&old).unwrap();
        // Format 2 carries a capacity, which must hold k and stay within the limit.
        for (k, capacity) in [(5u64, 4u64), (1, u64::from(MAX_CAPACITY) + 1)] {
            let mut bytes = vec![FORMAT_VERSION];
            for n in [k, capacity, 0, 0] {
                put_varint(&mut bytes, n);
            }
            assert_eq!(
                TopK::from_bytes(&bytes).unwrap_err(),
                "topk capacity out of range"
            );
        }
        assert!(TopK::from_bytes(&[3, 1, 0, 0])
            .unwrap_err()
            .contains("format version 3"));
        assert_eq!((read.k(), read.capacity(), read.total()), (3, 64, 10));
        assert_eq!(read.top(2), vec![("a".into(), 6, 1), ("b".into(), 3, 0)]);
        let mut new = TopK::new(3).unwrap();
        new.add("a", 2);
        new.merge(&read).unwrap();
        assert_eq!(new.top(1), vec![("a".into(), 8, 1)]);
    }

    #[test]
    fn bytes_round_trip_and_damage_is_an_error() {
        let mut s = TopK::new(3).unwrap();
        for v in ["a", "b", "a", "c", "ünïcode"] {
            s.add(v, 1);
        }
        let bytes = s.to_bytes();
        assert_eq!(TopK::from_bytes(&bytes).unwrap(), s);
        for cut in 0..bytes.len() {
            assert!(TopK::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }

    /// A sketch decoded from damaged bytes holds at most its capacity of values (at least
    /// k), each counted no more than the total and with an error no larger than its count,
    /// ranked largest first.
    #[test]
    fn fuzz_damaged_sketches_are_refused_or_hold() {
        let mut s = TopK::new(4).unwrap();
        for (i, v) in ["a", "b", "a", "c", "ünïcode", "d", "e", "a"]
            .iter()
            .enumerate()
        {
            s.add(v, i as u64 + 1);
        }
        crate::sketches::sketch::fuzz::decoding(&s.to_bytes(), 12, 20_000, |t: &TopK| {
            let top = t.top(usize::MAX);
            if top.len() > t.capacity as usize || t.k > t.capacity {
                return Err(format!(
                    "{} values held, k {}, capacity {}",
                    top.len(),
                    t.k,
                    t.capacity
                ));
            }
            if let Some((v, c, e)) = top.iter().find(|(_, c, e)| e > c || *c > t.total) {
                return Err(format!("{v:?}: count {c}, error {e}, total {}", t.total));
            }
            if top.windows(2).any(|w| w[0].1 < w[1].1) {
                return Err(format!("not ranked: {top:?}"));
            }
            Ok(())
        });
    }
}
