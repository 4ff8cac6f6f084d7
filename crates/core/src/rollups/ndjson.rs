//! Events as a batch of newline-delimited JSON, gzip-compressed as a client's gzip writes it
//! (one member or several concatenated) or not compressed at all: split into lines, one
//! event each. Pure: the SQL layer parses each line as jsonb, so numbers stay exact.

use std::io::Read;

use flate2::read::MultiGzDecoder;

#[derive(Debug, PartialEq)]
pub enum BatchError {
    /// Starts like gzip but does not inflate.
    NotGzip(String),
    /// Inflates beyond what one text value may hold.
    TooLarge(usize),
    /// A line that is not UTF-8 (1-based).
    NotUtf8 { line: usize },
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// How much is inflated between two calls of `between_pieces`.
const PIECE: u64 = 1 << 20;

/// The batch's text: inflated into `buffer` (emptied first) when it is gzip, else the batch
/// itself. A buffer kept from batch to batch keeps its pages: growing a new one page by page
/// costs as much as a third of inflating. It inflates a piece at a time, calling
/// `between_pieces` after each (where the caller honours a cancel or timeout), and stops as
/// soon as the text passes `limit`: what a small batch could inflate to is never allocated.
pub fn inflate<'a>(
    batch: &'a [u8],
    limit: usize,
    buffer: &'a mut Vec<u8>,
    between_pieces: &mut dyn FnMut(),
) -> Result<&'a [u8], BatchError> {
    if !batch.starts_with(&GZIP_MAGIC) {
        return Ok(batch);
    }
    buffer.clear();
    let mut decoder = MultiGzDecoder::new(batch).take(limit as u64 + 1);
    loop {
        let read = (&mut decoder)
            .take(PIECE)
            .read_to_end(buffer)
            .map_err(|e| BatchError::NotGzip(e.to_string()))?;
        if buffer.len() > limit {
            return Err(BatchError::TooLarge(limit));
        }
        if read == 0 {
            return Ok(buffer);
        }
        between_pieces();
    }
}

/// The lines of a batch's text, blank ones kept as empty lines so that a line's index is its
/// number minus one. A final newline ends the last line; `\r\n` ends a line too.
pub fn split<T: AsRef<[u8]> + ?Sized>(text: &T) -> impl Iterator<Item = &[u8]> {
    let mut body = text.as_ref();
    if body.last() == Some(&b'\n') {
        body = &body[..body.len() - 1];
    }
    let none = body.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !none)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// The batch's lines as text (see `split`).
pub fn lines(
    batch: &[u8],
    limit: usize,
    between_pieces: &mut dyn FnMut(),
) -> Result<Vec<String>, BatchError> {
    let mut buffer = Vec::new();
    let text = inflate(batch, limit, &mut buffer, between_pieces)?;
    split(text)
        .enumerate()
        .map(|(i, line)| {
            String::from_utf8(line.to_vec()).map_err(|_| BatchError::NotUtf8 { line: i + 1 })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_plain_batches_split_into_lines() {
        let text = b"{\"a\": 1}\r\n\n{\"a\": 1e400}\n";
        let expected = vec![
            "{\"a\": 1}".to_string(),
            String::new(),
            "{\"a\": 1e400}".to_string(),
        ];
        assert_eq!(lines(text, 1 << 20, &mut || {}).unwrap(), expected);
        assert_eq!(lines(&gzip(text), 1 << 20, &mut || {}).unwrap(), expected);
        // Members concatenated, as `cat a.gz b.gz` makes.
        let mut two = gzip(b"{\"a\": 1}\n");
        two.extend(gzip(b"{\"a\": 2}\n"));
        assert_eq!(
            lines(&two, 1 << 20, &mut || {}).unwrap(),
            vec!["{\"a\": 1}", "{\"a\": 2}"]
        );
        assert_eq!(lines(b"", 10, &mut || {}).unwrap(), Vec::<String>::new());
        assert_eq!(
            lines(&gzip(b""), 10, &mut || {}).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(lines(b"{}", 10, &mut || {}).unwrap(), vec!["{}"]);
    }

    #[test]
    fn a_kept_buffer_holds_only_the_last_batch() {
        let mut buffer = Vec::new();
        let long = gzip(b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n");
        assert_eq!(
            inflate(&long, 1 << 20, &mut buffer, &mut || {})
                .unwrap()
                .len(),
            27
        );
        assert_eq!(
            inflate(&gzip(b"{}\n"), 1 << 20, &mut buffer, &mut || {}).unwrap(),
            b"{}\n"
        );
        assert_eq!(
            inflate(b"{\"plain\": 1}", 1 << 20, &mut buffer, &mut || {}).unwrap(),
            b"{\"plain\": 1}",
            "text that is not gzip is the batch itself"
        );
        assert!(buffer.capacity() >= 27, "the buffer keeps its memory");
    }

    #[test]
    fn damage_size_and_encoding_are_errors() {
        let mut cut = gzip(b"{\"a\": 1}\n");
        cut.truncate(cut.len() - 6);
        assert!(matches!(
            lines(&cut, 1 << 20, &mut || {}),
            Err(BatchError::NotGzip(_))
        ));
        assert_eq!(
            lines(&gzip(&[b'x'; 1000]), 999, &mut || {}),
            Err(BatchError::TooLarge(999))
        );
        assert_eq!(
            lines(&gzip(&[b'x'; 1000]), 1000, &mut || {}).unwrap().len(),
            1
        );
        assert_eq!(
            lines(b"{}\n\xff\n", 100, &mut || {}),
            Err(BatchError::NotUtf8 { line: 2 })
        );
    }

    #[test]
    fn a_bomb_inflates_a_piece_at_a_time_and_stops_at_the_limit() {
        // 64 MB of newlines compress to ~64 KB: it is read in pieces, the caller hears of
        // each, and what passes the limit is refused before the rest is inflated.
        let bomb = gzip(&vec![b'\n'; 64 << 20]);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let mut pieces = 0;
        let mut buffer = Vec::new();
        assert_eq!(
            inflate(&bomb, 8 << 20, &mut buffer, &mut || pieces += 1),
            Err(BatchError::TooLarge(8 << 20))
        );
        assert!(
            (7..=9).contains(&pieces),
            "{pieces} pieces before the limit"
        );
        assert!(
            buffer.capacity() < 32 << 20,
            "{} bytes held",
            buffer.capacity()
        );
        pieces = 0;
        assert_eq!(
            inflate(&bomb, 64 << 20, &mut buffer, &mut || pieces += 1)
                .unwrap()
                .len(),
            64 << 20
        );
        assert_eq!(pieces, 64);
    }
}
