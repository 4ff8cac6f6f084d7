//! The one reader of a JSON object's top-level fields, in one pass over its bytes: the text is
//! checked to be one JSON object (RFC 8259, and nothing jsonb refuses: no `\u0000`, no
//! unpaired surrogate) and each member's value is kept as its text. Strings are decoded only
//! where a wanted one holds escapes. Pure.
//!
//! `line` reads the fields a rollup wants from one line of a batch of events; a batch whose
//! line is refused there goes the way of rows, where jsonb's own parser decides and names the
//! line, so it may refuse more than jsonb (nesting deeper than `DEPTH`) but never accepts what
//! jsonb refuses. `members` reads every field of a value jsonb printed (a collection's
//! entry), at any depth.

use std::borrow::Cow;

/// A wanted key's value as the line writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    /// The value's JSON text: a string with its quotes, a number, `null`, an object...
    pub text: &'a str,
    /// Whether a string holds escapes (and so must be decoded).
    pub escaped: bool,
}

impl<'a> Field<'a> {
    /// The content of a string value, decoded; None for any other value.
    pub fn string(&self) -> Option<Cow<'a, str>> {
        let inner = self.text.strip_prefix('"')?.strip_suffix('"')?;
        if !self.escaped {
            return Some(Cow::Borrowed(inner));
        }
        unescape(inner).map(Cow::Owned)
    }
}

/// The bytes that end a run of a string's plain text: a quote, a backslash, a control
/// character (which JSON allows only escaped).
const ENDS_PLAIN_TEXT: [bool; 256] = {
    let mut ends = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        ends[c] = true;
        c += 1;
    }
    ends[b'"' as usize] = true;
    ends[b'\\' as usize] = true;
    ends
};

/// How many bytes of `bytes` are plain text before the first byte that ends it
/// (`ENDS_PLAIN_TEXT`); None when none does. Eight bytes are looked at a time: in each word,
/// the lowest byte that a test flags is one that matches (a borrow only flags bytes above a
/// match), so the lowest flag of the three tests is the first byte that ends the text.
fn plain_text(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let ends = zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if ends != 0 {
            return Some(at + ends.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&c| ENDS_PLAIN_TEXT[usize::from(c)])
        .map(|p| at + p)
}

/// Objects and arrays nested deeper than this in a batch's line are left to jsonb.
const DEPTH: usize = 256;

/// Reads the line of `text` that starts at `at` as one JSON object, setting `found[i]` to the
/// value of the key `wanted[i]` wherever the line has it; the offset past the line's end (its
/// newline, or the text's end). None when the line is not one JSON object that jsonb accepts.
/// Every byte of a line is read here, so batches are not split into lines beforehand.
pub fn line<'a>(
    text: &'a str,
    at: usize,
    wanted: &[&str],
    found: &mut [Option<Field<'a>>],
) -> Option<usize> {
    object(text, at, DEPTH, |key, field| {
        // A column may be read more than once (a dimension that a metric counts too).
        for (slot, name) in found.iter_mut().zip(wanted) {
            // Keys are short: a loop beats a call to memcmp.
            if name.len() == key.len() && name.bytes().zip(key.bytes()).all(|(a, b)| a == b) {
                *slot = Some(field);
            }
        }
    })
}

/// Every member of `text`, one JSON object as jsonb prints it (nothing after it), in order;
/// None when it is not one object.
pub fn members(text: &str) -> Option<Vec<(Cow<'_, str>, Field<'_>)>> {
    let mut all = Vec::new();
    let end = object(text, 0, usize::MAX, |key, field| all.push((key, field)))?;
    (end == text.len()).then_some(all)
}

/// Reads the object that starts at `at` in `text`, handing each member to `each` (duplicate
/// keys as often as they stand); the offset past its line (its newline, or the text's end).
fn object<'a>(
    text: &'a str,
    at: usize,
    max_depth: usize,
    mut each: impl FnMut(Cow<'a, str>, Field<'a>),
) -> Option<usize> {
    let mut s = Scanner {
        b: text.as_bytes(),
        at,
        max_depth,
    };
    s.space();
    s.expect(b'{')?;
    s.space();
    if !s.take(b'}') {
        loop {
            let key_start = s.at;
            let key_escaped = s.string()?;
            let key = &text[key_start + 1..s.at - 1];
            s.space();
            s.expect(b':')?;
            s.space();
            let start = s.at;
            let escaped = s.value()?;
            let field = Field {
                text: &text[start..s.at],
                escaped,
            };
            let key: Cow<str> = if key_escaped {
                Cow::Owned(unescape(key)?)
            } else {
                Cow::Borrowed(key)
            };
            each(key, field);
            s.space();
            if s.take(b',') {
                s.space();
                continue;
            }
            s.expect(b'}')?;
            break;
        }
    }
    s.space();
    match s.peek() {
        None => Some(s.at),
        Some(b'\n') => Some(s.at + 1),
        Some(_) => None,
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    at: usize,
    /// Deeper objects and arrays are refused.
    max_depth: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn take(&mut self, c: u8) -> bool {
        let taken = self.peek() == Some(c);
        self.at += usize::from(taken);
        taken
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.take(c).then_some(())
    }

    /// JSON's white space but the newline, which ends a line.
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// One value; for a string, whether it holds escapes.
    fn value(&mut self) -> Option<bool> {
        match self.peek()? {
            b'"' => self.string(),
            b'{' | b'[' => self.nested().map(|_| false),
            _ => self.scalar().map(|_| false),
        }
    }

    /// A number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Option<()> {
        let literal: &[u8] = match self.peek()? {
            b't' => b"true",
            b'f' => b"false",
            b'n' => b"null",
            _ => return self.number(),
        };
        self.b[self.at..]
            .starts_with(literal)
            .then(|| self.at += literal.len())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<()> {
        self.take(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.take(b'.') {
            self.some_digits()?;
        }
        if self.take(b'e') || self.take(b'E') {
            let _ = self.take(b'+') || self.take(b'-');
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A string, from its opening quote to past its closing one; whether it holds escapes.
    fn string(&mut self) -> Option<bool> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            // Bytes past ASCII belong to UTF-8 the caller has checked.
            let rest = &self.b[self.at..];
            let plain = plain_text(rest)?;
            self.at += plain + 1;
            match rest[plain] {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// After a backslash: one escape, checked as jsonb decodes it.
    fn escape(&mut self) -> Option<()> {
        let c = self.peek()?;
        self.at += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0 => None,
                    0xD800..=0xDBFF => {
                        self.expect(b'\\')?;
                        self.expect(b'u')?;
                        matches!(self.hex4()?, 0xDC00..=0xDFFF).then_some(())
                    }
                    0xDC00..=0xDFFF => None,
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.b.get(self.at..self.at + 4)?).ok()?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// An object or an array, with everything in it.
    fn nested(&mut self) -> Option<()> {
        // The closers of the open objects and arrays: the first DEPTH on the stack, deeper
        // ones (a value jsonb printed may nest as deep as it likes) in `deeper`.
        let mut closers = [0u8; DEPTH];
        let mut deeper: Vec<u8> = Vec::new();
        let mut depth = 0;
        loop {
            // At a value.
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    if depth == self.max_depth {
                        return None;
                    }
                    self.at += 1;
                    self.space();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if !self.take(close) {
                        match closers.get_mut(depth) {
                            Some(slot) => *slot = close,
                            None => deeper.push(close),
                        }
                        depth += 1;
                        if close == b'}' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                _ => self.scalar()?,
            }
            // After a value: close what ends here, up to the next value.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.space();
                let close = match closers.get(depth - 1) {
                    Some(&close) => close,
                    None => *deeper.last()?,
                };
                if self.take(b',') {
                    self.space();
                    if close == b'}' {
                        self.member_key()?;
                    }
                    break;
                }
                self.expect(close)?;
                if depth > DEPTH {
                    deeper.pop();
                }
                depth -= 1;
            }
        }
    }

    /// A key and its colon, up to the member's value.
    fn member_key(&mut self) -> Option<()> {
        self.string()?;
        self.space();
        self.expect(b':')?;
        self.space();
        Some(())
    }
}

/// A string's content with its escapes decoded (checked already by `Scanner::string`); None
/// for what jsonb refuses.
fn unescape(inner: &str) -> Option<String> {
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = rest.as_bytes().get(at + 1)?;
        rest = &rest[at + 2..];
        let decoded = match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = u32::from_str_radix(rest.get(..4)?, 16).ok()?;
                rest = &rest[4..];
                if unit == 0 {
                    return None;
                }
                if (0xD800..0xDC00).contains(&unit) {
                    let low = u32::from_str_radix(rest.strip_prefix("\\u")?.get(..4)?, 16).ok()?;
                    rest = &rest[6..];
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low.checked_sub(0xDC00)?))?
                } else {
                    char::from_u32(unit)?
                }
            }
            _ => return None,
        };
        out.push(decoded);
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_values_at_any_depth_and_lines_stop_at_depth() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        for n in [1, DEPTH - 1, DEPTH, DEPTH + 1, 5000] {
            let text = format!(r#"{{"a":{},"b":"x\ny","c":2}}"#, deep(n));
            let all = members(&text).expect("one object");
            let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_ref()).collect();
            assert_eq!(keys, ["a", "b", "c"], "depth {n}");
            assert_eq!(all[0].1.text, deep(n));
            assert_eq!(all[1].1.string().as_deref(), Some("x\ny"));
            assert_eq!(all[2].1.text, "2");
            let mut found = [None];
            let read = line(&text, 0, &["c"], &mut found);
            assert_eq!(
                read.is_some(),
                n <= DEPTH,
                "a batch's line nests at most DEPTH deep (depth {n})"
            );
        }
        // Not one object: another value, or anything after it.
        for text in [r#"[1]"#, r#"{"a":1} x"#, r#"{"a":1"#, r#""s""#] {
            assert!(members(text).is_none(), "{text}");
        }
        // An unbalanced deep value is refused, not read past its end.
        assert!(members(&format!(r#"{{"a":{}}}"#, "[".repeat(300))).is_none());
    }

    fn scan<'a>(text: &'a str, wanted: &[&str]) -> Option<Vec<Option<&'a str>>> {
        let mut found = vec![None; wanted.len()];
        (line(text, 0, wanted, &mut found)? == text.len()).then_some(())?;
        Some(found.iter().map(|f| f.map(|f| f.text)).collect())
    }

    /// Lines jsonb accepts and rejects; serde_json agrees on each but where noted.
    const ACCEPTED: &[&str] = &[
        r#"{}"#,
        r#" { "a" : 1 } "#,
        "{\t\"a\":\r 1}\r",
        r#"{"a": -0, "b": 0.5, "c": 1e400, "d": -12.5E-3, "e": 1E+2}"#,
        r#"{"a": true, "b": false, "c": null, "d": "", "e": []}"#,
        r#"{"a": {"b": [1, {"c": [[], {}]}, "x\"y"], "d": {}}}"#,
        r#"{"a": "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
        r#"{"é": "ü", "a": "日本"}"#,
        r#"{"a": 1, "a": 2}"#,
    ];
    const REJECTED: &[&str] = &[
        "",
        "[1]",
        "1",
        r#""a""#,
        r#"{"a": 1"#,
        r#"{"a" 1}"#,
        r#"{"a": 1,}"#,
        r#"{,"a": 1}"#,
        r#"{"a": 01}"#,
        r#"{"a": 1.}"#,
        r#"{"a": .5}"#,
        r#"{"a": 1e}"#,
        r#"{"a": +1}"#,
        r#"{"a": -}"#,
        r#"{"a": tru}"#,
        r#"{"a": nul}"#,
        r#"{"a": NaN}"#,
        r#"{"a": [1,]}"#,
        r#"{"a": [1 2]}"#,
        r#"{"a": {"b"}}"#,
        r#"{"a": {"b": 1,}}"#,
        r#"{"a": [}"#,
        r#"{"a": ]}"#,
        r#"{a: 1}"#,
        r#"{'a': 1}"#,
        r#"{"a": "\x"}"#,
        r#"{"a": "\u12"}"#,
        r#"{"a": "\u12G4"}"#,
        "{\"a\": \"tab\tinside\"}",
        r#"{"a": 1} {}"#,
        r#"{"a": 1} x"#,
    ];
    /// Valid JSON that jsonb refuses: serde_json accepts some of these.
    const REFUSED_BY_JSONB: &[&str] = &[
        r#"{"a": "\u0000"}"#,
        r#"{"x": [{"y": "\u0000"}], "a": 1}"#,
        r#"{"\u0000": 1}"#,
        r#"{"a": "\ud83d"}"#,
        r#"{"a": "\ude00"}"#,
        r#"{"a": "\ud83d\u0041"}"#,
        r#"{"x": ["\udc00"]}"#,
    ];

    #[test]
    fn lines_are_json_objects_as_jsonb_reads_them() {
        for line in ACCEPTED {
            assert!(scan(line, &[]).is_some(), "accepts {line}");
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "serde agrees on {line}"
            );
        }
        for line in REJECTED {
            assert!(scan(line, &[]).is_none(), "rejects {line}");
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line).is_err(),
                "serde agrees on {line}"
            );
        }
        for line in REFUSED_BY_JSONB {
            assert!(scan(line, &[]).is_none(), "refuses {line}");
        }
    }

    #[test]
    fn plain_text_ends_where_the_byte_table_says() {
        // Every byte at every position of a word and of the tail, after plain bytes that are
        // next to those that end text (0x1f, 0x20, 0x21, 0x22, 0x5b..0x5d, 0x7f, 0x80, 0xff).
        for end in 0..=255u8 {
            for len in 0..20 {
                let mut bytes: Vec<u8> = (0..len)
                    .map(|i| [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xff][i % 8])
                    .collect();
                bytes.push(end);
                bytes.extend_from_slice(b"\"\\\x00abc");
                let expected = bytes.iter().position(|&c| ENDS_PLAIN_TEXT[usize::from(c)]);
                assert_eq!(plain_text(&bytes), expected, "{bytes:?}");
                assert_eq!(plain_text(&bytes[..len]), None);
            }
        }
    }

    #[test]
    fn a_line_ends_at_its_newline() {
        let text = "{\"a\": 1} \r\n{\"a\": [2,\n3]}\n{\"a\": 3}";
        let mut found = [None];
        let second = line(text, 0, &["a"], &mut found).unwrap();
        assert_eq!(
            (&text[second..second + 1], found[0].unwrap().text),
            ("{", "1")
        );
        assert_eq!(
            line(text, second, &["a"], &mut found),
            None,
            "an object broken over two lines is two bad lines, as jsonb reads them"
        );
        let third = text.rfind('{').unwrap();
        assert_eq!(line(text, third, &["a"], &mut found), Some(text.len()));
        assert_eq!(line("{}\n", 0, &[], &mut []), Some(3));
        assert_eq!(
            line("\n", 0, &[], &mut []),
            None,
            "blank lines are the caller's to skip"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{{\"a\": {}1{}}}", "[".repeat(n), "]".repeat(n));
        assert!(scan(&deep(DEPTH), &[]).is_some());
        assert!(scan(&deep(DEPTH + 1), &[]).is_none(), "left to jsonb");
        let objects = format!(
            "{{\"a\": {}1{}}}",
            "{\"b\": ".repeat(DEPTH),
            "}".repeat(DEPTH)
        );
        assert!(scan(&objects, &["a"]).is_some());
    }

    #[test]
    fn wanted_keys_keep_their_last_value() {
        let line = r#"{"at": "2026-11-01T00:00:00Z", "n": {"at": 5}, "ms": 12, "ms": -3.5e2, "page": null, "x": [1]}"#;
        assert_eq!(
            scan(line, &["at", "ms", "page", "gone", "ms"]).unwrap(),
            vec![
                Some(r#""2026-11-01T00:00:00Z""#),
                Some("-3.5e2"),
                Some("null"),
                None,
                Some("-3.5e2")
            ]
        );
        assert_eq!(
            scan(r#"{"p\u0061ge": 1, "page": 2, "pag\u0065": 3}"#, &["page"]).unwrap(),
            vec![Some("3")],
            "escaped keys match"
        );
    }

    #[test]
    fn strings_decode_as_serde_decodes_them() {
        fn line_<'a>(text: &'a str, wanted: &[&str], found: &mut [Option<Field<'a>>]) {
            assert_eq!(line(text, 0, wanted, found), Some(text.len()), "{text}");
        }
        for line in ACCEPTED {
            let value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            for (key, expected) in &value {
                let mut found = [None];
                line_(line, &[key.as_str()], &mut found);
                let field = found[0].unwrap();
                match expected {
                    serde_json::Value::String(s) => {
                        assert_eq!(field.string().as_deref(), Some(s.as_str()), "{line}")
                    }
                    other => {
                        assert_eq!(field.string(), None);
                        assert_eq!(
                            serde_json::from_str::<serde_json::Value>(field.text).unwrap(),
                            *other,
                            "{line}"
                        );
                    }
                }
            }
        }
        let plain = Field {
            text: r#""abc""#,
            escaped: false,
        };
        assert!(
            matches!(plain.string(), Some(Cow::Borrowed("abc"))),
            "borrowed without escapes"
        );
    }
}
