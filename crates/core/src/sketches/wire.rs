//! Byte encoding shared by the sketches: LEB128 varints and a reader that never panics, so
//! a damaged value is an error, not a crash.

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads what the `put_*` functions wrote; every method fails on short or malformed input.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// A reader past the leading format-version byte, which must be `version`.
    pub fn versioned(bytes: &'a [u8], version: u8, what: &str) -> Result<Reader<'a>, String> {
        let mut r = Reader::new(bytes);
        let found = r.u8()?;
        if found != version {
            return Err(format!("unsupported {what} format version {found}"));
        }
        Ok(r)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.pos).ok_or("value ends early")?;
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    pub fn f64(&mut self) -> Result<f64, String> {
        let end = self.pos + 8;
        let b = self.bytes.get(self.pos..end).ok_or("value ends early")?;
        self.pos = end;
        Ok(f64::from_le_bytes(b.try_into().unwrap()))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflows")?;
        let b = self.bytes.get(self.pos..end).ok_or("value ends early")?;
        self.pos = end;
        Ok(b)
    }

    /// A count that must fit in what is left (each item takes at least `min_item_bytes`).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, String> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes.max(1) as u64) > left {
            return Err(format!("count {n} exceeds the value's length"));
        }
        Ok(n as usize)
    }

    pub fn finish(&self) -> Result<(), String> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.bytes.len() - self.pos))
        }
    }
}

/// A stable 64-bit hash (MurmurHash64A): sketches are stored, so the hash of a value must
/// never change between builds or platforms (std's hashers promise neither).
pub fn hash64(data: &[u8]) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let seed: u64 = 0x5bd1_e995_1234_5678;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut t = [0u8; 8];
        t[..tail.len()].copy_from_slice(tail);
        h ^= u64::from_le_bytes(t);
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut out, v);
        }
        let mut r = Reader::new(&out);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        r.finish().unwrap();
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert!(Reader::new(&[0x80, 0x80]).varint().is_err());
        assert!(Reader::new(&[5]).count(1).is_err());
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: a change here would silently corrupt every stored sketch.
        let got: Vec<u64> = [&b""[..], b"a", b"12345678", b"hello world"]
            .iter()
            .map(|d| hash64(d))
            .collect();
        assert_eq!(
            got,
            [
                3815068455017819796,
                16778011285406106614,
                4991816635507653425,
                1401541874497210074
            ]
        );
    }
}
