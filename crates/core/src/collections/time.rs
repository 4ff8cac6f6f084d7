//! Timestamps in entries, read without Postgres: RFC 3339 / ISO 8601 as `to_jsonb(timestamptz)`
//! writes them (`2026-11-01T10:00:00.5+01:00`), also with a space for the `T`, `Z`, or no
//! offset (UTC).

use crate::calendar::days_from_civil;

fn digits(s: &[u8], n: usize) -> Option<(i64, &[u8])> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = s[..n]
        .iter()
        .fold(0i64, |acc, d| acc * 10 + (d - b'0') as i64);
    Some((v, &s[n..]))
}

fn expect(s: &[u8], c: u8) -> Option<&[u8]> {
    (s.first() == Some(&c)).then(|| &s[1..])
}

/// Microseconds since the Unix epoch, or None if `text` is not such a timestamp.
pub fn parse_timestamp_us(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(expect(s, b'-')?, 2)?;
    let (day, s) = digits(expect(s, b'-')?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * 86_400_000_000;
    let mut s = s;
    if let Some(&sep) = s.first() {
        if sep != b'T' && sep != b' ' {
            return None;
        }
        let (hour, rest) = digits(&s[1..], 2)?;
        let (minute, rest) = digits(expect(rest, b':')?, 2)?;
        let (second, mut rest) = match expect(rest, b':') {
            Some(r) => digits(r, 2)?,
            None => (0, rest),
        };
        if hour > 24 || minute > 59 || second > 60 {
            return None;
        }
        let mut frac_us = 0i64;
        if let Some(r) = expect(rest, b'.') {
            let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            for (i, d) in r[..n].iter().enumerate().take(6) {
                frac_us += (d - b'0') as i64 * 10i64.pow(5 - i as u32);
            }
            rest = &r[n..];
        }
        micros += ((hour * 60 + minute) * 60 + second) * 1_000_000 + frac_us;
        s = rest;
    }
    match s.first() {
        None => Some(micros),
        Some(b'Z') if s.len() == 1 => Some(micros),
        Some(&sign @ (b'+' | b'-')) => {
            let (oh, rest) = digits(&s[1..], 2)?;
            let (om, rest) = match expect(rest, b':') {
                Some(r) => digits(r, 2)?,
                None if rest.len() == 2 => digits(rest, 2)?,
                None => (0, rest),
            };
            if !rest.is_empty() {
                return None;
            }
            let offset = (oh * 60 + om) * 60_000_000;
            Some(if sign == b'+' {
                micros - offset
            } else {
                micros + offset
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp_us;

    #[test]
    fn parses_postgres_and_iso_forms() {
        let base = 1_793_491_200_000_000; // 2026-11-01T00:00:00Z
        assert_eq!(parse_timestamp_us("2026-11-01T00:00:00+00:00"), Some(base));
        assert_eq!(parse_timestamp_us("2026-11-01 00:00:00+00"), Some(base));
        assert_eq!(parse_timestamp_us("2026-11-01T00:00:00Z"), Some(base));
        assert_eq!(parse_timestamp_us("2026-11-01"), Some(base));
        assert_eq!(parse_timestamp_us("2026-11-01T01:30:00+01:30"), Some(base));
        assert_eq!(parse_timestamp_us("2026-10-31T23:00:00-01:00"), Some(base));
        assert_eq!(
            parse_timestamp_us("2026-11-01T00:00:00.25Z"),
            Some(base + 250_000)
        );
        assert_eq!(parse_timestamp_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_timestamp_us("1969-12-31T23:59:59Z"), Some(-1_000_000));
        assert_eq!(
            parse_timestamp_us("2024-02-29T00:00:00Z").map(|u| u % 86_400_000_000),
            Some(0)
        );
    }

    #[test]
    fn rejects_other_text() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-11-01X",
            "2026-11-01T10",
            "2026-11-01T10:00:00.Z",
            "2026-11-01T10:00+5:00",
        ] {
            assert_eq!(parse_timestamp_us(bad), None, "{bad}");
        }
    }
}
