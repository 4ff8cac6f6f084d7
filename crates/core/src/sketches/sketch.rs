//! The one interface every sketch offers the SQL layer (`sql`, `expanded`, `stored`): pure,
//! like the sketches themselves.

use super::hll::Hll;
use super::quantiles::Quantiles;
use super::topk::TopK;

/// What the SQL layer needs of a sketch: its SQL type's name, its encoding, and merging.
pub trait Sketch: Sized + Clone {
    const SQL_NAME: &'static str;
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
    fn merge_from(&mut self, other: &Self) -> Result<(), String>;
    /// Merges a stored sketch; types that can read one without decoding it override this.
    fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.merge_from(&Self::from_bytes(bytes)?)
    }
}

impl Sketch for Hll {
    const SQL_NAME: &'static str = "collect.hll";
    fn to_bytes(&self) -> Vec<u8> {
        Hll::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Hll::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other)
    }
    fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        Hll::merge_bytes(self, bytes)
    }
}

impl Sketch for Quantiles {
    const SQL_NAME: &'static str = "collect.quantiles";
    fn to_bytes(&self) -> Vec<u8> {
        Quantiles::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Quantiles::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other)
    }
}

impl Sketch for TopK {
    const SQL_NAME: &'static str = "collect.topk";
    fn to_bytes(&self) -> Vec<u8> {
        TopK::to_bytes(self)
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        TopK::from_bytes(bytes)
    }
    fn merge_from(&mut self, other: &Self) -> Result<(), String> {
        self.merge(other)
    }
    fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), String> {
        TopK::merge_bytes(self, bytes)
    }
}

/// Fuzzing a sketch's decoder: damaged encodings are refused or decode to a sketch that holds.
#[cfg(test)]
pub(crate) mod fuzz {
    use std::fmt::Debug;

    use super::Sketch;
    use crate::testing::XorShift;

    /// Damages `seed` (a valid encoding) `rounds` times — a byte changed, sometimes the rest
    /// cut off — and decodes each. Every sketch that decodes must encode canonically (its
    /// bytes decode to an equal sketch, which encodes to the same bytes), merge with itself
    /// or refuse cleanly, and pass `holds` (its readings are sane); some damage must be
    /// refused and some accepted, or the fuzz tested nothing. Returns (accepted, refused).
    pub fn decoding<S: Sketch + PartialEq + Debug>(
        seed: &[u8],
        rng_seed: u64,
        rounds: usize,
        holds: impl Fn(&S) -> Result<(), String>,
    ) -> (usize, usize) {
        let mut rng = XorShift(rng_seed);
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..rounds {
            let mut bytes = seed.to_vec();
            let at = rng.below(bytes.len());
            bytes[at] = rng.next_u64() as u8;
            if rng.below(4) == 0 {
                bytes.truncate(rng.below(bytes.len() + 1));
            }
            let Ok(sketch) = S::from_bytes(&bytes) else {
                refused += 1;
                continue;
            };
            accepted += 1;
            let encoded = sketch.to_bytes();
            let again = S::from_bytes(&encoded)
                .unwrap_or_else(|e| panic!("round {round}: its own encoding is refused: {e}"));
            assert_eq!(again, sketch, "round {round}: {bytes:?}");
            assert_eq!(again.to_bytes(), encoded, "round {round}: not canonical");
            holds(&sketch).unwrap_or_else(|e| panic!("round {round}: {e}: {sketch:?}"));
            let mut doubled = sketch.clone();
            if doubled.merge_from(&sketch).is_ok() {
                let merged = S::from_bytes(&doubled.to_bytes())
                    .unwrap_or_else(|e| panic!("round {round}: a merge encodes badly: {e}"));
                holds(&merged).unwrap_or_else(|e| panic!("round {round}, merged: {e}"));
            }
        }
        assert!(
            accepted > 0,
            "no damaged encoding decoded: nothing was checked"
        );
        assert!(
            refused > 0,
            "every damaged encoding decoded: damage is not detected"
        );
        (accepted, refused)
    }
}
