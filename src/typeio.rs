//! Input and output helpers shared by our base types.

use pgrx::{pg_sys, Internal};

/// The unread bytes of a receive function's `StringInfo`, marked as consumed.
pub fn recv_bytes<'a>(buf: Internal) -> &'a [u8] {
    // SAFETY: a type's receive function is always called with a StringInfo.
    unsafe {
        let buf = buf
            .unwrap()
            .expect("receive function called without a buffer")
            .cast_mut_ptr::<pg_sys::StringInfoData>();
        let start = (*buf).cursor as usize;
        let len = (*buf).len as usize - start;
        (*buf).cursor = (*buf).len;
        std::slice::from_raw_parts((*buf).data.add(start).cast::<u8>(), len)
    }
}

/// `\x` followed by lower-case hex, as bytea prints.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text
        .trim()
        .strip_prefix("\\x")
        .ok_or("expected \\x followed by hex digits")?;
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("\"{s}\" is not a hex byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(to_hex(&[0, 15, 255]), "\\x000fff");
        assert_eq!(from_hex("\\x000fff").unwrap(), vec![0, 15, 255]);
        assert!(from_hex("000fff").is_err());
        assert!(from_hex("\\x0").is_err());
        assert!(from_hex("\\xzz").is_err());
    }
}
