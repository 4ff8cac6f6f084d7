//! Entries as JSON text, read exactly. An entry is kept as the canonical text `jsonb` printed
//! for it and never becomes a tree: only the top-level field a step asks for is looked at, so
//! any nesting `jsonb` accepts passes through, and numbers are exact decimals (`jsonb` numbers
//! are `numeric`: `1e400` and 30-digit integers are valid and must not be rounded).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::json_fields;

/// An exact decimal: sign, digits and the position of the decimal point. Trailing zeros of
/// the fraction are kept, as `numeric` keeps its scale (`1.50 + 1` is `2.50`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// Integer digits without leading zeros (empty for zero).
    int: Vec<u8>,
    /// Fraction digits, as written.
    frac: Vec<u8>,
}

/// The largest exponent we expand; `numeric` itself stops far below it.
const MAX_EXPONENT: i64 = 1_000_000;

impl Decimal {
    pub fn zero() -> Decimal {
        Decimal {
            negative: false,
            int: Vec::new(),
            frac: Vec::new(),
        }
    }

    /// A JSON number (`-12.5`, `1e400`, `2E-3`); None for anything else.
    pub fn parse(text: &str) -> Option<Decimal> {
        let bytes = text.trim().as_bytes();
        let (negative, rest) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            _ => (false, bytes),
        };
        let mantissa_end = rest
            .iter()
            .position(|b| *b == b'e' || *b == b'E')
            .unwrap_or(rest.len());
        let (mantissa, exponent) = rest.split_at(mantissa_end);
        let exponent: i64 = if exponent.is_empty() {
            0
        } else {
            let e = std::str::from_utf8(&exponent[1..]).ok()?;
            let e = e.strip_prefix('+').unwrap_or(e);
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                return None;
            }
            e.parse().ok().filter(|e: &i64| e.abs() <= MAX_EXPONENT)?
        };
        let point = mantissa.iter().position(|b| *b == b'.');
        let (int, frac) = match point {
            Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
            None => (mantissa, &mantissa[..0]),
        };
        if int.is_empty()
            || !int.iter().chain(frac).all(u8::is_ascii_digit)
            || (point.is_some() && frac.is_empty())
        {
            return None;
        }
        let mut digits: Vec<u8> = int.iter().chain(frac).map(|b| b - b'0').collect();
        // Move the point by the exponent: `digits` with `point_at` integer digits.
        let mut point_at = int.len() as i64 + exponent;
        if point_at < 0 {
            let mut padded = vec![0; (-point_at) as usize];
            padded.extend(digits);
            digits = padded;
            point_at = 0;
        }
        while (digits.len() as i64) < point_at {
            digits.push(0);
        }
        let (i, f) = digits.split_at(point_at as usize);
        let mut d = Decimal {
            negative,
            int: i.to_vec(),
            frac: f.to_vec(),
        };
        d.trim_int();
        if d.is_zero() {
            d.negative = false;
        }
        Some(d)
    }

    fn trim_int(&mut self) {
        let leading = self.int.iter().take_while(|d| **d == 0).count();
        self.int.drain(..leading);
    }

    pub fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.iter().all(|d| *d == 0)
    }

    /// Digits of both aligned to the same scale: (int, frac) with frac of length `scale`.
    fn digits_at(&self, scale: usize) -> Vec<u8> {
        let mut all = self.int.clone();
        all.extend(&self.frac);
        all.extend(std::iter::repeat_n(0, scale - self.frac.len()));
        all
    }

    fn compare_magnitude(a: &Decimal, b: &Decimal) -> Ordering {
        let scale = a.frac.len().max(b.frac.len());
        let (x, y) = (a.digits_at(scale), b.digits_at(scale));
        x.len().cmp(&y.len()).then_with(|| x.cmp(&y))
    }

    /// Numeric order: `1.0` and `1.00` are equal.
    pub fn compare(&self, other: &Decimal) -> Ordering {
        if self.is_zero() && other.is_zero() {
            return Ordering::Equal;
        }
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => Decimal::compare_magnitude(self, other),
            (true, true) => Decimal::compare_magnitude(other, self),
        }
    }

    pub fn add(&self, other: &Decimal) -> Decimal {
        let scale = self.frac.len().max(other.frac.len());
        let (x, y) = (self.digits_at(scale), other.digits_at(scale));
        let width = x.len().max(y.len()) + 1;
        let pad = |v: &[u8]| {
            let mut p = vec![0u8; width - v.len()];
            p.extend_from_slice(v);
            p
        };
        let (x, y) = (pad(&x), pad(&y));
        let (negative, digits) = if self.negative == other.negative {
            let mut out = vec![0u8; width];
            let mut carry = 0;
            for i in (0..width).rev() {
                let s = x[i] + y[i] + carry;
                out[i] = s % 10;
                carry = s / 10;
            }
            (self.negative, out)
        } else {
            // Subtract the smaller magnitude from the larger.
            let (big, small, negative) = if x >= y {
                (&x, &y, self.negative)
            } else {
                (&y, &x, other.negative)
            };
            let mut out = vec![0u8; width];
            let mut borrow = 0i8;
            for i in (0..width).rev() {
                let mut d = big[i] as i8 - small[i] as i8 - borrow;
                borrow = if d < 0 { 1 } else { 0 };
                if d < 0 {
                    d += 10;
                }
                out[i] = d as u8;
            }
            (negative, out)
        };
        let (int, frac) = digits.split_at(width - scale);
        let mut d = Decimal {
            negative,
            int: int.to_vec(),
            frac: frac.to_vec(),
        };
        d.trim_int();
        if d.is_zero() {
            d.negative = false;
        }
        d
    }

    /// The value as `numeric` prints it: no exponent, the scale kept.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.int.len() + self.frac.len() + 3);
        if self.negative {
            s.push('-');
        }
        if self.int.is_empty() {
            s.push('0');
        }
        s.extend(self.int.iter().map(|d| (b'0' + d) as char));
        if !self.frac.is_empty() {
            s.push('.');
            s.extend(self.frac.iter().map(|d| (b'0' + d) as char));
        }
        s
    }

    /// The same number without trailing fraction zeros: one text per value.
    pub fn normalized_text(&self) -> String {
        let mut d = self.clone();
        while d.frac.last() == Some(&0) {
            d.frac.pop();
        }
        d.to_text()
    }

    /// Close enough for times in seconds; never used where exactness matters.
    pub fn to_f64(&self) -> f64 {
        self.to_text().parse().unwrap_or(f64::NAN)
    }
}

/// What a step sees of one field of an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(Decimal),
    String(String),
    /// An array or object, as its text with numbers normalized (so equal values, as `jsonb`
    /// compares them, have equal texts).
    Composite(String),
}

impl Scalar {
    /// Reads one JSON value's text. Text that is not JSON reads as null.
    pub fn of(raw: &str) -> Scalar {
        let raw = raw.trim();
        match raw.as_bytes().first() {
            Some(b'n') | None => Scalar::Null,
            Some(b't') => Scalar::Bool(true),
            Some(b'f') => Scalar::Bool(false),
            Some(b'"') => serde_json::from_str(raw)
                .map(Scalar::String)
                .unwrap_or(Scalar::Null),
            Some(b'[') | Some(b'{') => Scalar::Composite(normalize_numbers(raw)),
            _ => Decimal::parse(raw)
                .map(Scalar::Number)
                .unwrap_or(Scalar::Null),
        }
    }

    pub fn from_i64(n: i64) -> Scalar {
        Scalar::Number(Decimal::parse(&n.to_string()).expect("an integer is a number"))
    }

    fn rank(&self) -> u8 {
        match self {
            Scalar::Null => 0,
            Scalar::Bool(_) => 1,
            Scalar::Number(_) => 2,
            Scalar::String(_) => 3,
            Scalar::Composite(t) if t.starts_with('[') => 4,
            Scalar::Composite(_) => 5,
        }
    }

    pub fn same_type(&self, other: &Scalar) -> bool {
        self.rank() == other.rank()
    }

    /// A total order: by type (null < bool < number < string < array < object), then by value;
    /// numbers numerically, arrays and objects by their text.
    pub fn compare(&self, other: &Scalar) -> Ordering {
        match (self, other) {
            (Scalar::Number(x), Scalar::Number(y)) => x.compare(y),
            (Scalar::String(x), Scalar::String(y)) => x.cmp(y),
            (Scalar::Bool(x), Scalar::Bool(y)) => x.cmp(y),
            (Scalar::Composite(x), Scalar::Composite(y)) if self.rank() == other.rank() => x.cmp(y),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    /// A key equal for values equal as `jsonb` compares them.
    pub fn group_key(&self) -> String {
        match self {
            Scalar::Null => "n".into(),
            Scalar::Bool(b) => format!("b{b}"),
            Scalar::Number(d) => format!("d{}", d.normalized_text()),
            Scalar::String(s) => format!("s{s}"),
            Scalar::Composite(t) => format!("c{t}"),
        }
    }
}

/// `text` (valid JSON) with every number rewritten in its normalized form, outside strings.
/// A single pass with no recursion: any depth is fine.
fn normalize_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            out.push_str(&text[start..i]);
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            let number = &text[start..i];
            match Decimal::parse(number) {
                Some(d) => out.push_str(&d.normalized_text()),
                None => out.push_str(number),
            }
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else {
            let start = i;
            i += 1;
            while i < bytes.len() && !text.is_char_boundary(i) {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
    }
    out
}

/// The top-level fields of an object entry, as their JSON text (`crate::json_fields`, the one
/// reader of fields); None for any other entry.
fn fields(entry: &RawValue) -> Option<Vec<(Cow<'_, str>, &str)>> {
    json_fields::members(entry.get()).map(|all| {
        all.into_iter()
            .map(|(key, field)| (key, field.text))
            .collect()
    })
}

/// One top-level field of an entry (null if absent, or if the entry is not an object).
pub fn field(entry: &RawValue, key: &str) -> Scalar {
    fields(entry)
        .and_then(|f| {
            f.into_iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| Scalar::of(v))
        })
        .unwrap_or(Scalar::Null)
}

/// The entry with field `key` set to the number `value` (an object made if it was not one).
pub fn with_number(entry: &RawValue, key: &str, value: &Decimal) -> Box<RawValue> {
    let mut map: BTreeMap<Cow<str>, &str> = fields(entry).unwrap_or_default().into_iter().collect();
    let number = value.to_text();
    map.insert(Cow::Borrowed(key), &number);
    let members: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{v}",
                serde_json::to_string(k).expect("a key serializes")
            )
        })
        .collect();
    RawValue::from_string(format!("{{{}}}", members.join(","))).expect("members of JSON are JSON")
}

/// A JSON value's text as a raw value; None if it is not JSON.
pub fn raw(text: &str) -> Option<Box<RawValue>> {
    serde_json::from_str::<Box<RawValue>>(text).ok()
}

/// `[a, b, …]` of raw values.
pub fn array_text<'a>(values: impl Iterator<Item = &'a RawValue>) -> String {
    let mut out = String::from("[");
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(v.get());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_deeply_nested_entries_are_read_and_kept() {
        let deep = format!("{}1e400{}", "[".repeat(3000), "]".repeat(3000));
        let entry = raw(&format!(r#"{{"d": {deep}, "n": 2, "s": "\u00e9"}}"#)).unwrap();
        assert_eq!(
            field(&entry, "n"),
            Scalar::Number(Decimal::parse("2").unwrap())
        );
        assert_eq!(field(&entry, "s"), Scalar::String("é".into()));
        assert_eq!(field(&entry, "missing"), Scalar::Null);
        let summed = with_number(&entry, "n", &Decimal::parse("3.50").unwrap());
        assert_eq!(
            json_fields::members(summed.get()).map(|m| m.len()),
            Some(3),
            "every other field is kept"
        );
        assert_eq!(
            field(&summed, "n"),
            Scalar::Number(Decimal::parse("3.50").unwrap())
        );
        assert!(
            summed.get().contains(&deep),
            "the deep field's text is kept exactly"
        );
        // Not an object: becomes one with the number.
        assert_eq!(
            with_number(&raw("[1]").unwrap(), "n", &Decimal::zero()).get(),
            r#"{"n":0}"#
        );
    }

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(
            d("123456789012345678901234567890").add(&d("1")).to_text(),
            "123456789012345678901234567891"
        );
        assert_eq!(
            d("0.1000000000000000000001").add(&d("0.2")).to_text(),
            "0.3000000000000000000001"
        );
        assert_eq!(d("1.50").add(&d("1")).to_text(), "2.50");
        assert_eq!(d("-5").add(&d("3")).to_text(), "-2");
        assert_eq!(d("5").add(&d("-5")).to_text(), "0");
        assert_eq!(d("-0.5").add(&d("0.25")).to_text(), "-0.25");
        assert_eq!(
            d("1e400").add(&d("1")).to_text(),
            format!("1{}1", "0".repeat(399))
        );
        assert_eq!(d("2E-3").to_text(), "0.002");
        assert_eq!(d("-0").to_text(), "0");
        assert!(Decimal::parse("1e99999999").is_none());
        for bad in ["", "-", "1.", ".5", "1e", "abc", "1.2.3", "--1"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn decimals_compare_numerically() {
        assert_eq!(d("1.0").compare(&d("1.00")), Ordering::Equal);
        assert_eq!(d("10").compare(&d("9.99")), Ordering::Greater);
        assert_eq!(d("-10").compare(&d("-9")), Ordering::Less);
        assert_eq!(d("0").compare(&d("-0.0")), Ordering::Equal);
        assert_eq!(
            d("1e400").compare(&d("99999999999999999999")),
            Ordering::Greater
        );
        assert_eq!(
            d("123456789012345678901234567890").compare(&d("123456789012345678901234567891")),
            Ordering::Less
        );
    }

    #[test]
    fn random_sums_match_integer_arithmetic() {
        let mut rng = crate::testing::XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let a = (rng.next_u64() % 2_000_000) as i64 - 1_000_000;
            let b = (rng.next_u64() % 2_000_000) as i64 - 1_000_000;
            let (x, y) = (
                Decimal::parse(&a.to_string()).unwrap(),
                Decimal::parse(&b.to_string()).unwrap(),
            );
            assert_eq!(x.add(&y).to_text(), (a + b).to_string());
            assert_eq!(x.compare(&y), a.cmp(&b));
            // With fractions: a/100 + b/1000.
            let fa = format!(
                "{}{}.{:02}",
                if a < 0 { "-" } else { "" },
                a.abs() / 100,
                a.abs() % 100
            );
            let fb = format!(
                "{}{}.{:03}",
                if b < 0 { "-" } else { "" },
                b.abs() / 1000,
                b.abs() % 1000
            );
            let sum = a * 10 + b;
            let expected = format!(
                "{}{}.{:03}",
                if sum < 0 { "-" } else { "" },
                sum.abs() / 1000,
                sum.abs() % 1000
            );
            assert_eq!(d(&fa).add(&d(&fb)).to_text(), expected, "{fa} + {fb}");
        }
    }

    #[test]
    fn fields_of_deep_and_huge_entries() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let entry = raw(&format!(
            "{{\"a\": {deep}, \"n\": 1e400, \"s\": \"x\\\"y\"}}"
        ))
        .unwrap();
        assert_eq!(field(&entry, "n"), Scalar::Number(d("1e400")));
        assert_eq!(field(&entry, "s"), Scalar::String("x\"y".into()));
        assert!(matches!(field(&entry, "a"), Scalar::Composite(t) if t.len() == deep.len()));
        assert_eq!(field(&entry, "missing"), Scalar::Null);
        let updated = with_number(&entry, "n", &d("2"));
        assert_eq!(field(&updated, "n"), Scalar::Number(d("2")));
        assert_eq!(field(&updated, "s"), Scalar::String("x\"y".into()));
    }

    #[test]
    fn equal_values_group_together() {
        assert_eq!(Scalar::of("1.0").group_key(), Scalar::of("1").group_key());
        assert_eq!(
            Scalar::of("[1.50, {\"a\": 2.0}]").group_key(),
            Scalar::of("[1.5, {\"a\": 2}]").group_key()
        );
        assert_ne!(Scalar::of("\"1\"").group_key(), Scalar::of("1").group_key());
        assert_eq!(Scalar::of("[\"1.0\"]").group_key(), "c[\"1.0\"]");
    }
}
