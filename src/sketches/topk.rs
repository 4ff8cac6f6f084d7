//! Heavy hitters (SpaceSaving, Metwally et al. 2005) with merges that keep the error bounds:
//! for every value reported, its true count lies in [count − error, count]. A sketch keeps
//! `capacity` counters; a value seen while all are taken replaces the smallest, inheriting
//! its count as error. Merging adds counts; a value missing from a full sketch may have been
//! evicted there, so it gains that sketch's smallest count as both count and error.

use std::collections::HashMap;

use super::wire::{put_varint, Reader};

const FORMAT_VERSION: u8 = 1;
pub const MAX_K: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopK {
    k: u32,
    capacity: u32,
    total: u64,
    counters: HashMap<String, (u64, u64)>,
    /// The counted values' bytes, kept as they change: `heap_bytes` is asked after every row.
    value_bytes: usize,
}

impl TopK {
    /// A sketch for the `k` most frequent values, tracking more counters than `k` so the
    /// top `k` are reported with small errors.
    pub fn new(k: u32) -> Result<TopK, String> {
        if k == 0 || k > MAX_K {
            return Err(format!("k must be between 1 and {MAX_K}, not {k}"));
        }
        Ok(TopK {
            k,
            capacity: (k * 4).max(64),
            total: 0,
            counters: HashMap::new(),
            value_bytes: 0,
        })
    }

    pub fn k(&self) -> u32 {
        self.k
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// About how much memory the sketch holds besides itself.
    pub fn heap_bytes(&self) -> usize {
        self.value_bytes + self.counters.len() * 48
    }

    fn smallest(&self) -> Option<(&String, u64)> {
        self.counters
            .iter()
            .map(|(v, &(c, _))| (v, c))
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
    }

    fn full(&self) -> bool {
        self.counters.len() >= self.capacity as usize
    }

    pub fn add(&mut self, value: &str, weight: u64) {
        self.total = self.total.saturating_add(weight);
        if let Some(slot) = self.counters.get_mut(value) {
            slot.0 = slot.0.saturating_add(weight);
            return;
        }
        self.value_bytes += value.len();
        if !self.full() {
            self.counters.insert(value.to_string(), (weight, 0));
            return;
        }
        let (victim, min) = self
            .smallest()
            .map(|(v, c)| (v.clone(), c))
            .expect("full means non-empty");
        self.value_bytes -= victim.len();
        self.counters.remove(&victim);
        self.counters
            .insert(value.to_string(), (min.saturating_add(weight), min));
    }

    pub fn merge(&mut self, other: &TopK) -> Result<(), String> {
        if self.k != other.k {
            return Err(format!(
                "cannot merge topk sketches of k {} and {}",
                self.k, other.k
            ));
        }
        let our_floor = if self.full() {
            self.smallest().map_or(0, |(_, c)| c)
        } else {
            0
        };
        let their_floor = if other.full() {
            other.smallest().map_or(0, |(_, c)| c)
        } else {
            0
        };
        // Counts near 2^64 cannot be added: an error, never a value that wrapped around.
        let overflow = || "topk counts would exceed 2^64".to_string();
        let add = |a: u64, b: u64| a.checked_add(b).ok_or_else(overflow);
        let total = add(self.total, other.total)?;
        let mut merged: HashMap<String, (u64, u64)> = HashMap::new();
        for (v, &(c, e)) in &self.counters {
            let (oc, oe) = other
                .counters
                .get(v)
                .copied()
                .unwrap_or((their_floor, their_floor));
            merged.insert(v.clone(), (add(c, oc)?, add(e, oe)?));
        }
        for (v, &(c, e)) in &other.counters {
            if !merged.contains_key(v) {
                merged.insert(v.clone(), (add(c, our_floor)?, add(e, our_floor)?));
            }
        }
        let mut ranked: Vec<(String, (u64, u64))> = merged.into_iter().collect();
        ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(self.capacity as usize);
        self.counters = ranked.into_iter().collect();
        self.value_bytes = self.counters.keys().map(String::len).sum();
        self.total = total;
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

    pub fn from_bytes(bytes: &[u8]) -> Result<TopK, String> {
        let mut r = Reader::versioned(bytes, FORMAT_VERSION, "topk")?;
        let k = u32::try_from(r.varint()?).map_err(|_| "k out of range")?;
        let mut t = TopK::new(k)?;
        t.total = r.varint()?;
        let n = r.count(3)?;
        if n > t.capacity as usize {
            return Err(format!(
                "topk holds {n} counters, more than its capacity {}",
                t.capacity
            ));
        }
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
            if t.counters.insert(v.to_string(), (c, e)).is_some() {
                return Err(format!("topk value {v:?} appears twice"));
            }
            t.value_bytes += v.len();
        }
        r.finish()?;
        if counted > t.total {
            return Err("topk counts exceed its total".into());
        }
        Ok(t)
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
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
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
        let held =
            |t: &TopK| t.counters.keys().map(String::len).sum::<usize>() + t.counters.len() * 48;
        let mut a = TopK::new(1).unwrap();
        for i in 0..500u32 {
            a.add(&"v".repeat(1 + (i * 7919 % 97) as usize), 1);
            assert_eq!(a.heap_bytes(), held(&a));
        }
        let mut b = TopK::new(1).unwrap();
        b.add("other", 3);
        b.merge(&a).unwrap();
        assert_eq!(b.heap_bytes(), held(&b));
        let decoded = TopK::from_bytes(&b.to_bytes()).unwrap();
        assert_eq!(decoded.heap_bytes(), held(&decoded));
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
        assert!(TopK::new(10)
            .unwrap()
            .merge(&TopK::new(5).unwrap())
            .is_err());
        assert!(TopK::new(0).is_err());
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
        let mut rng = XorShift(12);
        for _ in 0..20_000 {
            let mut v = bytes.clone();
            let i = rng.below(v.len());
            v[i] = rng.next() as u8;
            let _ = TopK::from_bytes(&v);
        }
    }
}
