//! The lump format: an ordered run of JSON entries, gzip-compressed behind a small header.
//!
//! ```text
//! offset  size  field
//!      0     1  format version (1)
//!      1     1  flags (0; reserved)
//!      2     2  reserved (0)
//!      4     4  entry count, little endian
//!      8     4  raw length: bytes of uncompressed payload, little endian
//!     12     *  payload: zero or more concatenated gzip members
//! ```
//!
//! Uncompressed, the payload is newline-delimited JSON: each entry is one line of JSON text
//! followed by `\n`. Gunzipping a lump's payload therefore yields an ordinary `.jsonl` file,
//! which any tool can read: the seed's "JSON as compromise record encoding".
//!
//! Concatenated gzip members are one valid gzip stream (RFC 1952 §2.2), which is what makes
//! appending and merging cheap: the existing compressed bytes are copied, never inflated.
//! The header's count and raw length are checked against what the payload inflates to, and
//! every member's CRC is checked, so a tampered or truncated value is reported, not trusted.
//!
//! This module knows nothing of Postgres: the SQL layer maps [`DecodeError`] to SQLSTATEs.

use std::fmt;
use std::io::{Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

pub const FORMAT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 12;
/// The uncompressed payload must fit one Postgres allocation (MaxAllocSize - 1), because the
/// text form and `jsonb` conversions of a lump are built in memory.
pub const MAX_RAW_LEN: usize = 0x3fff_fffe;

/// What went wrong reading a lump. The SQL layer chooses the SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    TooShort {
        len: usize,
    },
    UnsupportedVersion(u8),
    ReservedBitsSet,
    RawLengthTooLarge(u64),
    /// The payload did not inflate: bad gzip framing, CRC mismatch, truncation.
    Payload(String),
    RawLengthMismatch {
        header: usize,
        actual: usize,
    },
    EntryCountMismatch {
        header: u32,
        actual: usize,
    },
    /// An entry line is empty or holds something other than one JSON value.
    BadEntry {
        index: usize,
        reason: String,
    },
    EmptyPayloadWithEntries,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooShort { len } => {
                write!(
                    f,
                    "value is {len} bytes, shorter than the {HEADER_LEN}-byte header"
                )
            }
            DecodeError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            DecodeError::ReservedBitsSet => write!(f, "reserved header bits are set"),
            DecodeError::RawLengthTooLarge(n) => write!(f, "raw length {n} exceeds the maximum"),
            DecodeError::Payload(e) => write!(f, "compressed payload is damaged: {e}"),
            DecodeError::RawLengthMismatch { header, actual } => write!(
                f,
                "header says {header} uncompressed bytes, payload holds at least {actual}"
            ),
            DecodeError::EntryCountMismatch { header, actual } => {
                write!(f, "header says {header} entries, payload holds {actual}")
            }
            DecodeError::BadEntry { index, reason } => write!(f, "entry {index}: {reason}"),
            DecodeError::EmptyPayloadWithEntries => {
                write!(f, "header counts entries but the payload is empty")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// The size limit was exceeded while building a lump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub raw_len: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} uncompressed bytes exceed the maximum of {MAX_RAW_LEN}",
            self.raw_len
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub entry_count: u32,
    pub raw_len: u32,
}

impl Header {
    pub fn parse(bytes: &[u8]) -> Result<Header, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        if bytes[0] != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(bytes[0]));
        }
        if bytes[1] != 0 || bytes[2] != 0 || bytes[3] != 0 {
            return Err(DecodeError::ReservedBitsSet);
        }
        let entry_count = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        let raw_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if raw_len as usize > MAX_RAW_LEN {
            return Err(DecodeError::RawLengthTooLarge(raw_len as u64));
        }
        Ok(Header {
            entry_count,
            raw_len,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(&self.entry_count.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
    }
}

/// Entries gathered in memory before they are compressed into a lump; also the state of the
/// `lump_agg` aggregate, whose partial states travel between parallel workers as
/// [`Builder::to_state_bytes`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Builder {
    /// Newline-terminated JSON entries.
    raw: Vec<u8>,
    count: u32,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one entry: the text of one JSON value, with no newline in it (Postgres' `jsonb`
    /// output never has one; callers with other sources check with [`validate_entry`]).
    pub fn push(&mut self, entry: &[u8]) -> Result<(), TooLarge> {
        debug_assert!(!entry.contains(&b'\n'));
        let raw_len = self.raw.len() + entry.len() + 1;
        if raw_len > MAX_RAW_LEN || self.count == u32::MAX {
            return Err(TooLarge { raw_len });
        }
        self.raw.extend_from_slice(entry);
        self.raw.push(b'\n');
        self.count += 1;
        Ok(())
    }

    /// Appends every entry of `other` after this builder's entries.
    pub fn append(&mut self, other: &Builder) -> Result<(), TooLarge> {
        let raw_len = self.raw.len() + other.raw.len();
        if raw_len > MAX_RAW_LEN || self.count.checked_add(other.count).is_none() {
            return Err(TooLarge { raw_len });
        }
        self.raw.extend_from_slice(&other.raw);
        self.count += other.count;
        Ok(())
    }

    pub fn entries(&self) -> impl Iterator<Item = &[u8]> {
        split_lines(&self.raw)
    }

    /// Compresses the entries into a lump with one gzip member.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.raw.len() / 4 + 32);
        Header {
            entry_count: self.count,
            raw_len: self.raw.len() as u32,
        }
        .write(&mut out);
        if self.count > 0 {
            out.extend_from_slice(&gzip(&self.raw));
        }
        out
    }

    /// A flat form for moving partial aggregate states between processes: count, then raw.
    pub fn to_state_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.raw.len());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.raw);
        out
    }

    pub fn from_state_bytes(bytes: &[u8]) -> Result<Builder, DecodeError> {
        if bytes.len() < 4 {
            return Err(DecodeError::TooShort { len: bytes.len() });
        }
        let count = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
        let raw = bytes[4..].to_vec();
        check_lines(&raw, count, false)?;
        Ok(Builder { raw, count })
    }
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(raw.len() / 4 + 32),
        Compression::default(),
    );
    encoder
        .write_all(raw)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

fn split_lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    // `raw` ends with '\n', so the final empty piece after it is dropped.
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let empty = raw.is_empty();
    body.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// Checks that one entry is exactly one JSON value on one line.
pub fn validate_entry(entry: &[u8]) -> Result<(), String> {
    if entry.contains(&b'\n') {
        return Err("entry contains a newline".into());
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(entry)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn check_lines(raw: &[u8], count: u32, validate_json: bool) -> Result<(), DecodeError> {
    if !raw.is_empty() && raw.last() != Some(&b'\n') {
        return Err(DecodeError::BadEntry {
            index: count.saturating_sub(1) as usize,
            reason: "last entry is not newline-terminated".into(),
        });
    }
    let mut actual = 0usize;
    for (index, entry) in split_lines(raw).enumerate() {
        if entry.is_empty() {
            return Err(DecodeError::BadEntry {
                index,
                reason: "empty entry".into(),
            });
        }
        if validate_json {
            validate_entry(entry).map_err(|reason| DecodeError::BadEntry { index, reason })?;
        }
        actual += 1;
    }
    if actual != count as usize {
        return Err(DecodeError::EntryCountMismatch {
            header: count,
            actual,
        });
    }
    Ok(())
}

/// A decoded lump: the uncompressed entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lump {
    raw: Vec<u8>,
    count: u32,
}

impl Lump {
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = &[u8]> {
        split_lines(&self.raw)
    }

    /// The newline-terminated entries, for callers that walk them without borrowing.
    pub fn into_raw(self) -> Vec<u8> {
        self.raw
    }
}

/// How thoroughly [`decode`] checks a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// A value this extension wrote and Postgres stored: check framing, CRCs and counts.
    Stored,
    /// A value from outside (binary input): also parse every entry as JSON.
    Untrusted,
}

/// Inflates a lump and checks it against its header.
pub fn decode(bytes: &[u8], trust: Trust) -> Result<Lump, DecodeError> {
    decode_between(bytes, trust, &mut || {})
}

/// Reads all of `reader` into `raw`, `INFLATE_PIECE` bytes at a time, calling `between_pieces`
/// after each: inflating a large value honours a cancel or `statement_timeout`.
fn read_in_pieces(
    mut reader: impl Read,
    raw: &mut Vec<u8>,
    between_pieces: &mut dyn FnMut(),
) -> std::io::Result<()> {
    loop {
        if (&mut reader).take(INFLATE_PIECE as u64).read_to_end(raw)? == 0 {
            return Ok(());
        }
        between_pieces();
    }
}

/// `decode`, calling `between_pieces` as it inflates (see `read_in_pieces`).
pub fn decode_between(
    bytes: &[u8],
    trust: Trust,
    between_pieces: &mut dyn FnMut(),
) -> Result<Lump, DecodeError> {
    let header = Header::parse(bytes)?;
    let payload = &bytes[HEADER_LEN..];
    let expected = header.raw_len as usize;
    if payload.is_empty() {
        if header.entry_count != 0 || expected != 0 {
            return Err(DecodeError::EmptyPayloadWithEntries);
        }
        return Ok(Lump {
            raw: Vec::new(),
            count: 0,
        });
    }
    // Never trust the header for an allocation size: grow as the payload really inflates.
    let mut raw = Vec::with_capacity(expected.min(payload.len().saturating_mul(8)));
    // One byte past the stated length both detects a payload longer than stated and, when the
    // payload is exactly as long, drives the decoder to the end so every member's CRC is read.
    let limit = expected as u64 + 1;
    read_in_pieces(
        MultiGzDecoder::new(payload).take(limit),
        &mut raw,
        between_pieces,
    )
    .map_err(|e| DecodeError::Payload(e.to_string()))?;
    if raw.len() != expected {
        return Err(DecodeError::RawLengthMismatch {
            header: expected,
            actual: raw.len(),
        });
    }
    check_lines(&raw, header.entry_count, trust == Trust::Untrusted)?;
    Ok(Lump {
        raw,
        count: header.entry_count,
    })
}

/// Checks one entry of a lump (its index and its JSON text).
pub type EntryCheck<'a> = dyn FnMut(usize, &[u8]) -> Result<(), String> + 'a;

/// How much inflated text an untrusted lump is read in at a time: between two pieces the
/// caller may check for a cancel or timeout.
pub const INFLATE_PIECE: usize = 64 * 1024;

/// Checks a lump from outside (binary input) without holding its inflated text: the payload
/// is inflated `INFLATE_PIECE` bytes at a time (`between_pieces` runs after each, so a caller
/// can honour a cancel or `statement_timeout`), never past the header's stated length, and
/// each entry is handed to `entry` (with its index) as soon as its line is whole. Memory is
/// one piece plus the longest entry, whatever the payload inflates to.
pub fn check_streaming(
    bytes: &[u8],
    between_pieces: &mut dyn FnMut(),
    entry: &mut EntryCheck,
) -> Result<(), DecodeError> {
    let header = Header::parse(bytes)?;
    let payload = &bytes[HEADER_LEN..];
    let expected = header.raw_len as usize;
    if payload.is_empty() {
        return if header.entry_count != 0 || expected != 0 {
            Err(DecodeError::EmptyPayloadWithEntries)
        } else {
            Ok(())
        };
    }
    // One byte past the stated length both detects a longer payload and drives the decoder
    // to the end, so that every member's CRC is checked.
    let mut decoder = MultiGzDecoder::new(payload).take(expected as u64 + 1);
    let mut piece = vec![0u8; INFLATE_PIECE];
    let mut line: Vec<u8> = Vec::new();
    let (mut total, mut index) = (0usize, 0usize);
    loop {
        let n = decoder
            .read(&mut piece)
            .map_err(|e| DecodeError::Payload(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n;
        if total > expected {
            return Err(DecodeError::RawLengthMismatch {
                header: expected,
                actual: total,
            });
        }
        let mut rest = &piece[..n];
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&rest[..end]);
            if line.is_empty() {
                return Err(DecodeError::BadEntry {
                    index,
                    reason: "empty entry".into(),
                });
            }
            if index >= header.entry_count as usize {
                return Err(DecodeError::EntryCountMismatch {
                    header: header.entry_count,
                    actual: index + 1,
                });
            }
            entry(index, &line).map_err(|reason| DecodeError::BadEntry { index, reason })?;
            line.clear();
            index += 1;
            rest = &rest[end + 1..];
        }
        line.extend_from_slice(rest);
        between_pieces();
    }
    if total != expected {
        return Err(DecodeError::RawLengthMismatch {
            header: expected,
            actual: total,
        });
    }
    if !line.is_empty() {
        return Err(DecodeError::BadEntry {
            index,
            reason: "last entry is not newline-terminated".into(),
        });
    }
    if index != header.entry_count as usize {
        return Err(DecodeError::EntryCountMismatch {
            header: header.entry_count,
            actual: index,
        });
    }
    Ok(())
}

/// Reads only the header: the entry count without inflating anything.
pub fn entry_count(bytes: &[u8]) -> Result<u32, DecodeError> {
    Header::parse(bytes).map(|h| h.entry_count)
}

/// `a`'s entries followed by `b`'s, by concatenating their compressed payloads: neither lump
/// is inflated. Both must be well-formed lumps (their headers are checked, not their payloads).
pub fn concat(a: &[u8], b: &[u8]) -> Result<Vec<u8>, ConcatError> {
    let ha = Header::parse(a).map_err(ConcatError::Decode)?;
    let hb = Header::parse(b).map_err(ConcatError::Decode)?;
    let raw_len = ha.raw_len as usize + hb.raw_len as usize;
    let entry_count = ha.entry_count.checked_add(hb.entry_count);
    let entry_count = match entry_count {
        Some(n) if raw_len <= MAX_RAW_LEN => n,
        _ => return Err(ConcatError::TooLarge(TooLarge { raw_len })),
    };
    let mut out = Vec::with_capacity(a.len() + b.len() - HEADER_LEN);
    Header {
        entry_count,
        raw_len: raw_len as u32,
    }
    .write(&mut out);
    out.extend_from_slice(&a[HEADER_LEN..]);
    out.extend_from_slice(&b[HEADER_LEN..]);
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcatError {
    Decode(DecodeError),
    TooLarge(TooLarge),
}

/// `lump` with the builder's entries appended as one new gzip member.
pub fn append(lump: &[u8], extra: &Builder) -> Result<Vec<u8>, ConcatError> {
    concat(lump, &extra.finish())
}

/// Where a lump written in members keeps its member directory: an empty first gzip member
/// whose header carries it as an extra field (RFC 1952 §2.3.1.1, subfield `P` `C`). The value
/// stays an ordinary lump (an empty member inflates to nothing); a reader of one entry fetches
/// the directory, then only the member that holds the entry.
///
/// ```text
/// directory data: member_rows u32 LE, then each member's byte offset in the lump, u32 LE
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Entries per member; the last member may hold fewer.
    pub member_rows: u32,
    pub offsets: Vec<u32>,
}

/// Deflate looks back 32 KiB: members of about that much raw text compress nearly as well as
/// one member of everything.
pub const MEMBER_RAW_BYTES: usize = 32 * 1024;
const DIRECTORY_ID: [u8; 2] = *b"PC";
/// A gzip extra field holds at most 65,535 bytes: subfield header, member_rows, offsets.
const MAX_MEMBERS: usize = (65_535 - 4 - 4) / 4;
/// gzip header with FEXTRA: magic, method, flags, mtime, xfl, os (10), XLEN (2).
const GZIP_FIXED_HEADER: usize = 12;

fn directory_member(directory: &Directory) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + 4 * directory.offsets.len());
    data.extend_from_slice(&directory.member_rows.to_le_bytes());
    for offset in &directory.offsets {
        data.extend_from_slice(&offset.to_le_bytes());
    }
    let mut extra = Vec::with_capacity(4 + data.len());
    extra.extend_from_slice(&DIRECTORY_ID);
    extra.extend_from_slice(&(data.len() as u16).to_le_bytes());
    extra.extend_from_slice(&data);
    let encoder = flate2::GzBuilder::new()
        .extra(extra)
        .write(Vec::new(), Compression::default());
    encoder.finish().expect("writing to a Vec cannot fail")
}

impl Builder {
    /// Compresses the entries in members of about `member_raw_bytes` of raw text each (the
    /// same number of entries in every member, judged from the average entry), behind a
    /// directory of where each member starts.
    pub fn finish_in_members(&self, member_raw_bytes: usize) -> Vec<u8> {
        let count = self.count as usize;
        let average = self.raw.len().checked_div(count).unwrap_or(1).max(1);
        let mut member_rows = (member_raw_bytes / average).clamp(1, count.max(1));
        member_rows = member_rows.max(count.div_ceil(MAX_MEMBERS));
        let members_count = count.div_ceil(member_rows);
        // The directory member's size depends only on how many offsets it holds.
        let placeholder = Directory {
            member_rows: member_rows as u32,
            offsets: vec![0; members_count],
        };
        let mut offset = HEADER_LEN + directory_member(&placeholder).len();
        let mut members = Vec::with_capacity(members_count);
        let mut offsets = Vec::with_capacity(members_count);
        let mut start = 0usize;
        let mut rows = 0usize;
        for (end, byte) in self.raw.iter().enumerate() {
            if *byte != b'\n' {
                continue;
            }
            rows += 1;
            if rows == member_rows || end + 1 == self.raw.len() {
                let member = gzip(&self.raw[start..=end]);
                offsets.push(offset as u32);
                offset += member.len();
                members.push(member);
                start = end + 1;
                rows = 0;
            }
        }
        let mut lump = Vec::with_capacity(offset);
        Header {
            entry_count: self.count,
            raw_len: self.raw.len() as u32,
        }
        .write(&mut lump);
        lump.extend_from_slice(&directory_member(&Directory {
            member_rows: member_rows as u32,
            offsets,
        }));
        for member in members {
            lump.extend_from_slice(&member);
        }
        debug_assert_eq!(lump.len(), offset);
        lump
    }
}

/// How many leading bytes of a lump hold its member directory, judged from its first
/// [`DIRECTORY_PROBE`] bytes; `None` when it has none.
pub fn directory_len(prefix: &[u8]) -> Option<usize> {
    let gz = prefix.get(HEADER_LEN..HEADER_LEN + GZIP_FIXED_HEADER)?;
    (gz[0..3] == [0x1f, 0x8b, 8] && gz[3] & 0x04 != 0)
        .then(|| HEADER_LEN + GZIP_FIXED_HEADER + u16::from_le_bytes([gz[10], gz[11]]) as usize)
}

/// Enough bytes for [`directory_len`].
pub const DIRECTORY_PROBE: usize = HEADER_LEN + GZIP_FIXED_HEADER;

/// The member directory of a lump written by [`Builder::finish_in_members`], read from the
/// lump's first bytes (`prefix`: at least its [`directory_len`] bytes). `None` for a lump written otherwise.
pub fn directory(prefix: &[u8]) -> Option<Directory> {
    let gz = prefix.get(HEADER_LEN..)?;
    if gz.len() < GZIP_FIXED_HEADER || gz[0..3] != [0x1f, 0x8b, 8] || gz[3] & 0x04 == 0 {
        return None;
    }
    let xlen = u16::from_le_bytes([gz[10], gz[11]]) as usize;
    let extra = gz.get(GZIP_FIXED_HEADER..GZIP_FIXED_HEADER + xlen)?;
    if extra.len() < 8 || extra[0..2] != DIRECTORY_ID {
        return None;
    }
    let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
    let data = extra.get(4..4 + len)?;
    if len < 4 || !len.is_multiple_of(4) {
        return None;
    }
    let mut words = data
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes(w.try_into().unwrap()));
    let member_rows = words.next()?;
    Some(Directory {
        member_rows,
        offsets: words.collect(),
    })
}

impl Directory {
    /// The member holding entry `place` and the entry's index in it, with the member's byte
    /// range in a lump of `lump_len` bytes; `None` if the directory does not cover `place`.
    pub fn locate(&self, place: usize, lump_len: usize) -> Option<(std::ops::Range<usize>, usize)> {
        let rows = self.member_rows as usize;
        if rows == 0 {
            return None;
        }
        let member = place / rows;
        let start = *self.offsets.get(member)? as usize;
        let end = self
            .offsets
            .get(member + 1)
            .map_or(lump_len, |&o| o as usize);
        (start < end && end <= lump_len).then_some((start..end, place % rows))
    }
}

/// Entry `index` of one gzip member (the bytes of exactly one member), or None when the member
/// holds fewer entries. The whole member is inflated, so that its CRC is checked; only the one
/// entry is copied out.
pub fn member_entry(
    member: &[u8],
    index: usize,
    between_pieces: &mut dyn FnMut(),
) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut raw = Vec::with_capacity(member.len() * 8);
    read_in_pieces(
        flate2::read::GzDecoder::new(member).take(MAX_RAW_LEN as u64),
        &mut raw,
        between_pieces,
    )
    .map_err(|e| DecodeError::Payload(e.to_string()))?;
    if raw.last() != Some(&b'\n') {
        return Err(DecodeError::Payload(
            "member does not end with a whole entry".into(),
        ));
    }
    let mut start = 0;
    for _ in 0..index {
        match memchr::memchr(b'\n', &raw[start..]) {
            Some(end) => start += end + 1,
            None => return Ok(None),
        }
    }
    Ok(memchr::memchr(b'\n', &raw[start..]).map(|end| raw[start..start + end].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::XorShift;

    fn build(entries: &[&str]) -> Builder {
        let mut b = Builder::new();
        for e in entries {
            b.push(e.as_bytes()).unwrap();
        }
        b
    }

    fn texts(lump: &Lump) -> Vec<String> {
        lump.entries()
            .map(|e| String::from_utf8(e.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn membered_lumps_read_whole_and_one_member_at_a_time() {
        let entries: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"id": {i}, "pad": "{}"}}"#, "x".repeat(i % 50)))
            .collect();
        let mut builder = Builder::new();
        for e in &entries {
            builder.push(e.as_bytes()).unwrap();
        }
        let lump = builder.finish_in_members(2048);
        // The whole value is an ordinary lump.
        assert_eq!(texts(&decode(&lump, Trust::Untrusted).unwrap()), entries);
        let len = directory_len(&lump[..DIRECTORY_PROBE]).unwrap();
        let dir = directory(&lump[..len]).unwrap();
        assert_eq!(directory(&lump[..len - 1]), None);
        assert!(dir.offsets.len() > 10, "{} members", dir.offsets.len());
        // Every entry is found in its member alone.
        for (place, entry) in entries.iter().enumerate() {
            let (range, index) = dir.locate(place, lump.len()).unwrap();
            let got = member_entry(&lump[range], index, &mut || {}).unwrap();
            assert_eq!(got.as_deref(), Some(entry.as_bytes()));
        }
        // Past the last entry of the (shorter) last member: none.
        let last = dir.locate(entries.len() - 1, lump.len()).unwrap();
        let past = member_entry(&lump[last.0], last.1 + 1, &mut || {});
        assert_eq!(past, Ok(None));
        assert!(dir
            .locate(entries.len() + dir.member_rows as usize, lump.len())
            .is_none());
        // A damaged member is reported, as is a truncated one.
        let (range, _) = dir.locate(dir.member_rows as usize, lump.len()).unwrap();
        let mut damaged = lump[range.clone()].to_vec();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x55;
        assert!(member_entry(&damaged, 0, &mut || {}).is_err());
        assert!(member_entry(&lump[range.start..range.start + 5], 0, &mut || {}).is_err());
        // A lump written in one member has no directory.
        assert_eq!(directory(&builder.finish()), None);
        assert_eq!(directory(&lump[..HEADER_LEN + 3]), None);
    }

    #[test]
    fn membered_edge_cases() {
        let empty = Builder::new().finish_in_members(MEMBER_RAW_BYTES);
        assert!(decode(&empty, Trust::Untrusted).unwrap().is_empty());
        assert_eq!(directory(&empty).unwrap().offsets, Vec::<u32>::new());
        let one = build(&["1"]).finish_in_members(MEMBER_RAW_BYTES);
        assert_eq!(directory(&one).unwrap().member_rows, 1);
        let big = build(&[&"7".repeat(100_000), "8"]).finish_in_members(10);
        let dir = directory(&big).unwrap();
        assert_eq!((dir.member_rows, dir.offsets.len()), (1, 2));
        // Past the extra field's capacity, members grow instead.
        let many: Vec<String> = (0..40_000).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let lump = build(&refs).finish_in_members(1);
        let dir = directory(&lump).unwrap();
        assert!(
            dir.offsets.len() <= MAX_MEMBERS && dir.member_rows >= 3,
            "{}",
            dir.member_rows
        );
        assert_eq!(decode(&lump, Trust::Untrusted).unwrap().len(), 40_000);
    }

    #[test]
    fn round_trips_entries_in_order() {
        let entries = [r#"{"a": 1}"#, "2", r#""three""#, "[4, 5]", "null"];
        let bytes = build(&entries).finish();
        let lump = decode(&bytes, Trust::Untrusted).unwrap();
        assert_eq!(texts(&lump), entries);
        assert_eq!(entry_count(&bytes).unwrap(), 5);
    }

    #[test]
    fn empty_lump_is_just_a_header() {
        let bytes = Builder::new().finish();
        assert_eq!(bytes.len(), HEADER_LEN);
        let lump = decode(&bytes, Trust::Untrusted).unwrap();
        assert!(lump.is_empty());
        assert_eq!(lump.entries().count(), 0);
    }

    #[test]
    fn payload_is_plain_gzipped_json_lines() {
        let bytes = build(&[r#"{"a": 1}"#, r#"{"b": 2}"#]).finish();
        let mut text = String::new();
        MultiGzDecoder::new(&bytes[HEADER_LEN..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\": 1}\n{\"b\": 2}\n");
    }

    #[test]
    fn concat_and_append_keep_order_without_inflating() {
        let a = build(&["1", "2"]).finish();
        let b = build(&["3"]).finish();
        let empty = Builder::new().finish();
        let ab = concat(&a, &b).unwrap();
        assert_eq!(
            texts(&decode(&ab, Trust::Untrusted).unwrap()),
            ["1", "2", "3"]
        );
        // The compressed bytes of both sides are carried over untouched.
        assert_eq!(
            &ab[HEADER_LEN..HEADER_LEN + a.len() - HEADER_LEN],
            &a[HEADER_LEN..]
        );
        assert_eq!(concat(&empty, &a).unwrap(), a);
        assert_eq!(concat(&a, &empty).unwrap(), a);
        let abc = append(&ab, &build(&["4", "5"])).unwrap();
        assert_eq!(
            texts(&decode(&abc, Trust::Stored).unwrap()),
            ["1", "2", "3", "4", "5"]
        );
        assert_eq!(entry_count(&abc).unwrap(), 5);
    }

    #[test]
    fn state_bytes_round_trip_and_combine() {
        let mut a = build(&["1", "2"]);
        let b = Builder::from_state_bytes(&build(&["3"]).to_state_bytes()).unwrap();
        a.append(&b).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.entries().collect::<Vec<_>>(), [b"1", b"2", b"3"]);
        assert!(Builder::from_state_bytes(&[1, 0]).is_err());
        // A count that disagrees with the lines is refused.
        let mut bad = build(&["1"]).to_state_bytes();
        bad[0] = 2;
        assert!(Builder::from_state_bytes(&bad).is_err());
    }

    #[test]
    fn header_is_checked() {
        let good = build(&["1"]).finish();
        assert_eq!(
            decode(&good[..5], Trust::Stored),
            Err(DecodeError::TooShort { len: 5 })
        );
        let mut v = good.clone();
        v[0] = 9;
        assert_eq!(
            decode(&v, Trust::Stored),
            Err(DecodeError::UnsupportedVersion(9))
        );
        let mut v = good.clone();
        v[2] = 1;
        assert_eq!(decode(&v, Trust::Stored), Err(DecodeError::ReservedBitsSet));
        let mut v = good.clone();
        v[4] = 7; // entry count 7
        assert!(matches!(
            decode(&v, Trust::Stored),
            Err(DecodeError::EntryCountMismatch {
                header: 7,
                actual: 1
            })
        ));
        let mut v = good.clone();
        v[8] += 1; // raw length one more than the payload holds
        assert!(matches!(
            decode(&v, Trust::Stored),
            Err(DecodeError::RawLengthMismatch { .. })
        ));
        let mut v = good.clone();
        v[8] -= 1; // raw length one less
        assert!(matches!(
            decode(&v, Trust::Stored),
            Err(DecodeError::RawLengthMismatch { .. })
        ));
        let mut v = good;
        v[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&v, Trust::Stored),
            Err(DecodeError::RawLengthTooLarge(_))
        ));
        let mut v = Builder::new().finish();
        v[4] = 1;
        assert_eq!(
            decode(&v, Trust::Stored),
            Err(DecodeError::EmptyPayloadWithEntries)
        );
    }

    #[test]
    fn truncation_and_crc_damage_are_detected() {
        let good = build(&[r#"{"k": "some text to compress"}"#; 50]).finish();
        for cut in HEADER_LEN + 1..good.len() {
            assert!(decode(&good[..cut], Trust::Stored).is_err(), "cut at {cut}");
        }
        // Flip a bit in the CRC32 of the trailer.
        let mut v = good.clone();
        let crc_at = v.len() - 8;
        v[crc_at] ^= 1;
        assert!(matches!(
            decode(&v, Trust::Stored),
            Err(DecodeError::Payload(_))
        ));
        // Trailing garbage after the last member.
        let mut v = good;
        v.extend_from_slice(b"garbage");
        assert!(decode(&v, Trust::Stored).is_err());
    }

    #[test]
    fn untrusted_values_must_hold_json() {
        let mut b = Builder::new();
        b.push(b"{not json").unwrap();
        let bytes = b.finish();
        assert!(decode(&bytes, Trust::Stored).is_ok());
        assert!(matches!(
            decode(&bytes, Trust::Untrusted),
            Err(DecodeError::BadEntry { index: 0, .. })
        ));
        assert!(validate_entry(b"[1, 2]").is_ok());
        assert!(validate_entry(b"1 2").is_err());
        assert!(validate_entry(b"").is_err());
    }

    #[test]
    fn size_limit_is_enforced() {
        let mut b = Builder::new();
        b.raw = vec![b'1'; MAX_RAW_LEN - 1];
        assert!(b.push(b"12").is_err());
        let a = Header {
            entry_count: u32::MAX,
            raw_len: 2,
        };
        let mut bytes = Vec::new();
        a.write(&mut bytes);
        assert!(matches!(
            concat(&bytes, &build(&["1"]).finish()),
            Err(ConcatError::TooLarge(_))
        ));
    }

    /// Mutation fuzzing of the decoder: bit flips, byte overwrites, truncations, splices and
    /// pure noise. Decoding must never panic; whatever it accepts must be internally consistent.
    #[test]
    fn fuzz_decoder_never_panics() {
        let seeds: Vec<Vec<u8>> = vec![
            Builder::new().finish(),
            build(&["1"]).finish(),
            build(&[r#"{"user": 42, "event": "click", "tags": ["a", "b"]}"#; 20]).finish(),
            concat(&build(&["1", "2"]).finish(), &build(&[r#""x""#]).finish()).unwrap(),
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for round in 0..30_000 {
            let mut v = seeds[round % seeds.len()].clone();
            match rng.below(6) {
                0 => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 => {
                    let i = rng.below(v.len());
                    v[i] = rng.next_u64() as u8;
                }
                2 => v.truncate(rng.below(v.len() + 1)),
                3 => {
                    let other = &seeds[rng.below(seeds.len())];
                    let at = rng.below(v.len() + 1);
                    v.truncate(at);
                    v.extend_from_slice(&other[rng.below(other.len())..]);
                }
                4 => {
                    let n = rng.below(64);
                    v = (0..n).map(|_| rng.next_u64() as u8).collect();
                    if rng.below(2) == 0 && v.len() >= 4 {
                        v[0] = FORMAT_VERSION;
                        v[1] = 0;
                        v[2] = 0;
                        v[3] = 0;
                    }
                }
                _ => {
                    // Header fields only: counts and lengths that lie.
                    let i = 4 + rng.below(8);
                    if i < v.len() {
                        v[i] = rng.next_u64() as u8;
                    }
                }
            }
            for trust in [Trust::Stored, Trust::Untrusted] {
                if let Ok(lump) = decode(&v, trust) {
                    accepted += 1;
                    assert_eq!(lump.entries().count(), lump.len());
                    assert_eq!(entry_count(&v).unwrap() as usize, lump.len());
                }
            }
        }
        // Some mutations (in the gzip header's mtime, say) leave a valid lump: the fuzzer did
        // reach the accepting path, not only the rejecting ones.
        assert!(accepted > 0);
    }

    #[test]
    fn untrusted_lumps_are_checked_a_piece_at_a_time() {
        let entries = ["{\"a\": 1}", "[1, 2]", "\"x\""];
        let lump = build(&entries).finish();
        let mut seen = Vec::new();
        check_streaming(&lump, &mut || {}, &mut |i, e| {
            seen.push((i, String::from_utf8(e.to_vec()).unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i, e.to_string()))
                .collect::<Vec<_>>()
        );
        // An entry the caller refuses is named by its index.
        let refused = check_streaming(&lump, &mut || {}, &mut |i, _| {
            if i == 1 {
                Err("no".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(
            refused,
            Err(DecodeError::BadEntry {
                index: 1,
                reason: "no".into()
            })
        );
        // A header that understates the payload is refused without inflating past it.
        let mut short = lump.clone();
        let mut header = Header::parse(&lump).unwrap();
        header.raw_len -= 1;
        let mut head = Vec::new();
        header.write(&mut head);
        short[..HEADER_LEN].copy_from_slice(&head);
        assert!(matches!(
            check_streaming(&short, &mut || {}, &mut |_, _| Ok(())),
            Err(DecodeError::RawLengthMismatch { .. })
        ));
        // Many small entries that inflate far beyond the value: read piece by piece, with the
        // caller told after each piece.
        let many: Vec<String> = (0..200_000).map(|i| format!("{}", i % 10)).collect();
        let big = build(&many.iter().map(String::as_str).collect::<Vec<_>>()).finish();
        let (mut pieces, mut count) = (0, 0);
        check_streaming(&big, &mut || pieces += 1, &mut |_, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 200_000);
        assert!(pieces >= 400_000 / INFLATE_PIECE, "{pieces} pieces");
    }
}
