//! Relative-error quantiles (DDSketch, Masson et al., VLDB 2019): a value x > 0 goes to bucket
//! ⌈log_γ x⌉ with γ = (1 + α)/(1 − α); any quantile is then returned within α = 1% of a true
//! value of that rank. Buckets are counts, so merging adds counts: the result is the same in
//! whatever order sketches are merged, and equals the sketch of all the values at once.
//! Values whose magnitude is below 1e-9 count as zero.

use super::wire::{put_varint, unzigzag, zigzag, Reader};

pub const RELATIVE_ACCURACY: f64 = 0.01;
const MIN_MAGNITUDE: f64 = 1e-9;
const FORMAT_VERSION: u8 = 1;

/// Buckets kept as (index, count) pairs before a store turns into an array: a minute's
/// sketch of a few values would otherwise hold an array over the hundreds of buckets between
/// them.
const SPARSE_BUCKETS: usize = 64;

/// Bucket counts by index: few buckets as pairs in index order; more in one array from the
/// smallest index used to the largest, so that adding and merging cost an array access per
/// bucket. Indices stay within about ±36,000 (the range of finite floats), so an array is at
/// most a few hundred kB, and usually a few kB.
#[derive(Debug, Clone)]
enum Store {
    /// Counts that fit 32 bits: a minute's sketch holds a few dozen pairs, at 8 bytes each.
    Sparse(Vec<(i32, u32)>),
    Dense {
        offset: i32,
        counts: Vec<u64>,
    },
}

impl Default for Store {
    fn default() -> Store {
        Store::Sparse(Vec::new())
    }
}

impl Store {
    fn add(&mut self, index: i32, count: u64) {
        if let Store::Sparse(pairs) = self {
            let fits = |c: u64| u32::try_from(c).ok();
            match pairs.binary_search_by_key(&index, |p| p.0) {
                Ok(at) => {
                    if let Some(c) = u64::from(pairs[at].1).checked_add(count).and_then(fits) {
                        pairs[at].1 = c;
                        return;
                    }
                }
                Err(at) if pairs.len() < SPARSE_BUCKETS => {
                    if let Some(c) = fits(count) {
                        pairs.insert(at, (index, c));
                        return;
                    }
                }
                Err(_) => {}
            }
            self.densify(index);
        }
        if let Store::Dense { offset, counts } = self {
            if index < *offset {
                let grow = (*offset - index) as usize;
                counts.splice(0..0, std::iter::repeat_n(0, grow));
                *offset = index;
            }
            let at = (index - *offset) as usize;
            if at >= counts.len() {
                counts.resize(at + 1, 0);
            }
            counts[at] += count;
        }
    }

    /// Turns sparse pairs into an array spanning them and `index`.
    fn densify(&mut self, index: i32) {
        if let Store::Sparse(pairs) = self {
            let first = pairs.first().map_or(index, |p| p.0.min(index));
            let last = pairs.last().map_or(index, |p| p.0.max(index));
            let mut counts = vec![0; (last - first) as usize + 1];
            for &(i, c) in pairs.iter() {
                counts[(i - first) as usize] = u64::from(c);
            }
            *self = Store::Dense {
                offset: first,
                counts,
            };
        }
    }

    /// The buckets holding values, by increasing index.
    fn iter(&self) -> Buckets<'_> {
        match self {
            Store::Sparse(pairs) => Buckets::Sparse(pairs.iter()),
            Store::Dense { offset, counts } => Buckets::Dense(*offset, counts.iter().enumerate()),
        }
    }

    fn buckets(&self) -> usize {
        match self {
            Store::Sparse(pairs) => pairs.len(),
            Store::Dense { counts, .. } => counts.iter().filter(|&&c| c > 0).count(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Store::Sparse(pairs) => pairs.capacity() * 8,
            Store::Dense { counts, .. } => counts.capacity() * 8,
        }
    }
}

enum Buckets<'a> {
    Sparse(std::slice::Iter<'a, (i32, u32)>),
    Dense(i32, std::iter::Enumerate<std::slice::Iter<'a, u64>>),
}

impl Iterator for Buckets<'_> {
    type Item = (i32, u64);

    fn next(&mut self) -> Option<(i32, u64)> {
        match self {
            Buckets::Sparse(pairs) => pairs.next().map(|&(i, c)| (i, u64::from(c))),
            Buckets::Dense(offset, counts) => counts
                .find(|(_, &c)| c > 0)
                .map(|(i, &c)| (*offset + i as i32, c)),
        }
    }
}

impl DoubleEndedIterator for Buckets<'_> {
    fn next_back(&mut self) -> Option<(i32, u64)> {
        match self {
            Buckets::Sparse(pairs) => pairs.next_back().map(|&(i, c)| (i, u64::from(c))),
            Buckets::Dense(offset, counts) => counts
                .rfind(|(_, &c)| c > 0)
                .map(|(i, &c)| (*offset + i as i32, c)),
        }
    }
}

impl PartialEq for Store {
    fn eq(&self, other: &Store) -> bool {
        self.iter().eq(other.iter())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quantiles {
    count: u64,
    zero: u64,
    min: f64,
    max: f64,
    positive: Store,
    negative: Store,
}

impl Default for Quantiles {
    fn default() -> Quantiles {
        Quantiles {
            count: 0,
            zero: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            positive: Store::default(),
            negative: Store::default(),
        }
    }
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

const TOO_MANY: &str = "a quantiles sketch holds at most 18446744073709551615 values";

fn index_of(magnitude: f64) -> i32 {
    (magnitude.ln() / gamma().ln()).ceil() as i32
}

fn value_of(index: i32) -> f64 {
    2.0 * gamma().powi(index) / (gamma() + 1.0)
}

impl Quantiles {
    pub fn count(&self) -> u64 {
        self.count
    }

    /// About how much memory the sketch holds besides itself.
    pub fn heap_bytes(&self) -> usize {
        self.positive.heap_bytes() + self.negative.heap_bytes()
    }

    /// Adds a finite value; NaN and infinities are refused.
    pub fn add(&mut self, x: f64) -> Result<(), String> {
        if !x.is_finite() {
            return Err(format!("cannot add {x} to a quantiles sketch"));
        }
        self.count = self.count.checked_add(1).ok_or(TOO_MANY)?;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if x.abs() < MIN_MAGNITUDE {
            self.zero += 1;
        } else if x > 0.0 {
            self.positive.add(index_of(x), 1);
        } else {
            self.negative.add(index_of(-x), 1);
        }
        Ok(())
    }

    /// Adds `other`'s values. Every bucket's count is at most the total, so checking the
    /// totals keeps every sum in range (a value made from bytes holds at most 2^64 − 1 values).
    pub fn merge(&mut self, other: &Quantiles) -> Result<(), String> {
        self.count = self.count.checked_add(other.count).ok_or(TOO_MANY)?;
        self.zero += other.zero;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (i, c) in other.positive.iter() {
            self.positive.add(i, c);
        }
        for (i, c) in other.negative.iter() {
            self.negative.add(i, c);
        }
        Ok(())
    }

    /// The value at quantile `q` in [0, 1]; None for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let rank = (q * (self.count - 1) as f64).round() as u64;
        let mut seen = 0u64;
        // Most negative first: larger magnitude index means smaller value.
        for (i, c) in self.negative.iter().rev() {
            seen += c;
            if seen > rank {
                return Some((-value_of(i)).clamp(self.min, self.max));
            }
        }
        seen += self.zero;
        if seen > rank {
            return Some(0.0f64.clamp(self.min, self.max));
        }
        for (i, c) in self.positive.iter() {
            seen += c;
            if seen > rank {
                return Some(value_of(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Room for a minute's sketch: the header and some thirty buckets of a few bytes each.
        let mut out = Vec::with_capacity(128);
        out.push(FORMAT_VERSION);
        put_varint(&mut out, self.count);
        put_varint(&mut out, self.zero);
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        for store in [&self.positive, &self.negative] {
            put_varint(&mut out, store.buckets() as u64);
            let mut prev = 0i64;
            for (i, c) in store.iter() {
                put_varint(&mut out, zigzag(i as i64 - prev));
                put_varint(&mut out, c);
                prev = i as i64;
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Quantiles, String> {
        let mut r = Reader::versioned(bytes, FORMAT_VERSION, "quantiles")?;
        let mut q = Quantiles {
            count: r.varint()?,
            zero: r.varint()?,
            min: r.f64()?,
            max: r.f64()?,
            ..Default::default()
        };
        let mut total = q.zero;
        for negative in [false, true] {
            let n = r.count(2)?;
            let mut index = 0i64;
            let mut store = Store::default();
            for k in 0..n {
                let delta = unzigzag(r.varint()?);
                if k > 0 && delta <= 0 {
                    return Err("quantiles buckets are not in increasing order".into());
                }
                index += delta;
                // Indices of finite values only: a store is an array over the indices it spans.
                let i = i32::try_from(index)
                    .ok()
                    .filter(|i| (index_of(MIN_MAGNITUDE)..=index_of(f64::MAX)).contains(i))
                    .ok_or("bucket index out of range")?;
                let c = r.varint()?;
                if c == 0 {
                    return Err("empty quantiles bucket".into());
                }
                total = total.checked_add(c).ok_or("bucket counts overflow")?;
                store.add(i, c);
            }
            if negative {
                q.negative = store;
            } else {
                q.positive = store;
            }
        }
        r.finish()?;
        if total != q.count {
            return Err(format!(
                "buckets hold {total} values, the header says {}",
                q.count
            ));
        }
        if q.count > 0 && !(q.min.is_finite() && q.max.is_finite() && q.min <= q.max) {
            return Err("min and max are inconsistent".into());
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    #[test]
    fn bucket_indices_beyond_finite_values_are_refused() {
        let mut q = Quantiles::default();
        q.add(1.0).unwrap();
        let mut bytes = q.to_bytes();
        // One positive bucket: replace its index delta with one far beyond any float's.
        let at = bytes.len() - 3;
        assert_eq!(&bytes[at..], &[zigzag(index_of(1.0) as i64) as u8, 1, 0]);
        bytes.splice(at..at + 1, {
            let mut v = Vec::new();
            put_varint(&mut v, zigzag(2_000_000_000));
            v
        });
        assert_eq!(
            Quantiles::from_bytes(&bytes).unwrap_err(),
            "bucket index out of range"
        );
    }

    #[test]
    fn bucket_counts_past_32_bits_turn_a_store_dense_and_stay_exact() {
        let big = u64::from(u32::MAX);
        let mut store = Store::default();
        store.add(5, big);
        store.add(-3, 1);
        assert!(matches!(store, Store::Sparse(_)), "both fit 32 bits");
        store.add(5, 2);
        assert!(matches!(store, Store::Dense { .. }));
        assert_eq!(store.iter().collect::<Vec<_>>(), [(-3, 1), (5, big + 2)]);
        // A first count past 32 bits, and a new bucket's.
        let mut first = Store::default();
        first.add(7, big + 1);
        assert_eq!(first.iter().collect::<Vec<_>>(), [(7, big + 1)]);
        let mut new_bucket = Store::default();
        new_bucket.add(1, 1);
        new_bucket.add(9, big + 1);
        new_bucket.add(4, 1);
        assert_eq!(
            new_bucket.iter().collect::<Vec<_>>(),
            [(1, 1), (4, 1), (9, big + 1)]
        );
        // Through the wire: a sketch whose buckets hold such counts reads back the same.
        let mut q = Quantiles::default();
        q.add(1.0).unwrap();
        let mut many = q.clone();
        for _ in 0..33 {
            let copy = many.clone();
            many.merge(&copy).unwrap();
        }
        assert_eq!(many.count(), 1 << 33);
        assert!(matches!(many.positive, Store::Dense { .. }));
        let read = Quantiles::from_bytes(&many.to_bytes()).unwrap();
        assert_eq!(read.to_bytes(), many.to_bytes());
        assert_eq!(read.quantile(0.5), q.quantile(0.5));
    }

    fn build(values: &[f64]) -> Quantiles {
        let mut q = Quantiles::default();
        for &v in values {
            q.add(v).unwrap();
        }
        q
    }

    fn exact(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        sorted[(q * (sorted.len() - 1) as f64).round() as usize]
    }

    fn random_values(rng: &mut XorShift, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                // Latency-like: log-normal-ish spread over five decades, some negatives and zeros.
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                match rng.below(20) {
                    0 => 0.0,
                    1 => -(10f64.powf(u * 3.0)),
                    _ => 10f64.powf(u * 5.0 - 1.0),
                }
            })
            .collect()
    }

    #[test]
    fn quantiles_are_within_one_percent_of_the_true_value() {
        let mut rng = XorShift(7);
        for _ in 0..20 {
            let n = 1 + rng.below(5000);
            let values = random_values(&mut rng, n);
            let sketch = build(&values);
            for &q in &[0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let (got, want) = (sketch.quantile(q).unwrap(), exact(&values, q));
                let tolerance = RELATIVE_ACCURACY * want.abs() + 1e-9;
                assert!(
                    (got - want).abs() <= tolerance,
                    "q {q}: got {got}, want {want}"
                );
            }
        }
        assert_eq!(Quantiles::default().quantile(0.5), None);
        assert_eq!(build(&[1.0]).quantile(1.5), None);
    }

    #[test]
    fn merging_is_exact_in_any_order() {
        let mut rng = XorShift(99);
        for _ in 0..50 {
            let parts: Vec<Vec<f64>> = (0..4)
                .map(|_| {
                    let n = rng.below(300);
                    random_values(&mut rng, n)
                })
                .collect();
            let all: Vec<f64> = parts.concat();
            let mut forward = Quantiles::default();
            for p in &parts {
                forward.merge(&build(p)).unwrap();
            }
            let mut backward = Quantiles::default();
            for p in parts.iter().rev() {
                backward.merge(&build(p)).unwrap();
            }
            let mut tree = build(&parts[0]);
            tree.merge(&build(&parts[1])).unwrap();
            let mut right = build(&parts[2]);
            right.merge(&build(&parts[3])).unwrap();
            tree.merge(&right).unwrap();
            let direct = build(&all);
            assert_eq!(forward, direct);
            assert_eq!(backward, direct);
            assert_eq!(tree, direct);
            // Stores of pairs and of arrays write the same bytes.
            assert_eq!(forward.to_bytes(), direct.to_bytes());
            assert_eq!(
                Quantiles::from_bytes(&tree.to_bytes()).unwrap().to_bytes(),
                direct.to_bytes()
            );
        }
        // A few values spread over decades keep a few pairs, not an array across them.
        let few = build(&[1.0, 1e5, -1e-3]);
        assert!(few.heap_bytes() <= 2 * 4 * 16, "{}", few.heap_bytes());
    }

    #[test]
    fn bytes_round_trip_and_damage_is_an_error() {
        let mut rng = XorShift(5);
        for sketch in [
            Quantiles::default(),
            build(&[0.0]),
            build(&random_values(&mut rng, 2000)),
        ] {
            let bytes = sketch.to_bytes();
            assert_eq!(Quantiles::from_bytes(&bytes).unwrap(), sketch);
            for cut in 0..bytes.len() {
                assert!(Quantiles::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
            }
        }
        let mut bytes = build(&[1.0, 2.0]).to_bytes();
        bytes[1] = 5; // count no longer matches the buckets
        assert!(Quantiles::from_bytes(&bytes).is_err());
        assert!(build(&[]).add(f64::NAN).is_err());
        assert!(build(&[]).add(f64::INFINITY).is_err());
    }

    /// A sketch decoded from damaged bytes answers every quantile within its minimum and
    /// maximum, in order, and counts what its buckets hold.
    #[test]
    fn fuzz_damaged_sketches_are_refused_or_hold() {
        let mut rng = XorShift(11);
        let seed = build(&random_values(&mut rng, 100)).to_bytes();
        crate::sketches::sketch::fuzz::decoding(&seed, 12, 20_000, |q: &Quantiles| {
            if q.count() == 0 {
                return match q.quantile(0.5) {
                    None => Ok(()),
                    Some(v) => Err(format!("an empty sketch answered {v}")),
                };
            }
            let answers: Vec<f64> = (0..=10)
                .map(|i| q.quantile(i as f64 / 10.0).unwrap())
                .collect();
            let (min, max) = (answers[0], answers[10]);
            if !min.is_finite() || !max.is_finite() || min > max {
                return Err(format!("minimum {min}, maximum {max}"));
            }
            if answers.windows(2).any(|w| {
                !matches!(
                    w[0].partial_cmp(&w[1]),
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                )
            }) {
                return Err(format!("quantiles out of order: {answers:?}"));
            }
            Ok(())
        });
    }

    #[test]
    fn counts_past_two_to_the_64_are_an_error_not_an_overflow() {
        let mut q = Quantiles::default();
        q.add(1.0).unwrap();
        q.add(0.0).unwrap();
        let mut huge = q.clone();
        huge.count = u64::MAX - 1;
        huge.zero = u64::MAX - 2;
        let bytes = huge.to_bytes();
        let huge = Quantiles::from_bytes(&bytes).expect("a value whose counts add up is valid");
        let mut merged = huge.clone();
        assert!(merged.merge(&q).unwrap_err().contains("at most"));
        let mut full = huge.clone();
        full.add(2.0).unwrap();
        assert!(full.add(3.0).is_err(), "the next value would pass 2^64 - 1");
    }
}
