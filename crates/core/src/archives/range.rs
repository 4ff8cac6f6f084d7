//! A range read's records, chosen from the lines of the lumps that overlap the range without
//! parsing a line into jsonb: each line's time is found by the field scanner (`json_fields`)
//! and only lines in range are kept, in the order the range statement of earlier releases
//! returned them (time, then the lump's place in `min_time, lump_id` order, then the line's).
//! Pure: the caller parses times as `::timestamptz` does.

use crate::json_fields;
use crate::rollups::batches::parse_time;

/// A line in range, copied out of its lump (which may go before the next is inflated).
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    pub time: i64,
    /// The lump's place among the lumps read, in `min_time, lump_id` order.
    pub lump: usize,
    /// The line's place in its lump.
    pub place: usize,
    /// Where the line's text is in the text the lines are copied to.
    pub line: std::ops::Range<usize>,
}

/// A line this reader leaves to SQL (the caller then reads the whole range there, where
/// jsonb's parser and `->>` decide): not one JSON object the scanner reads, or a time that
/// is neither a string nor null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftToSql {
    pub lump: usize,
    pub place: usize,
}

/// Appends to `chosen` (and their text to `text`) the lines of one lump whose `time_key`
/// value is in `since <= time < until`: read here when it is an ISO 8601 time with its zone
/// (as `to_jsonb` writes a timestamptz; the reader rollups' NDJSON ingest uses), otherwise by
/// `parse`, from the text `->>` would give. A line without the key, or with a JSON null
/// there, has no time and is in no range, as in SQL.
pub fn choose<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    lump: usize,
    time_key: &str,
    (since, until): (i64, i64),
    parse: &mut dyn FnMut(&str) -> i64,
    (chosen, text): (&mut Vec<Chosen>, &mut Vec<u8>),
) -> Result<(), LeftToSql> {
    let wanted = [time_key];
    for (place, line) in lines.enumerate() {
        let left = LeftToSql { lump, place };
        let json = std::str::from_utf8(line).map_err(|_| left)?;
        let mut found = [None];
        json_fields::line(json, 0, &wanted, &mut found).ok_or(left)?;
        let Some(field) = found[0] else { continue };
        if field.text == "null" {
            continue;
        }
        let time = match parse_time(field, true) {
            Some(time) => time,
            None => parse(&field.string().ok_or(left)?),
        };
        if since <= time && time < until {
            let start = text.len();
            text.extend_from_slice(line);
            chosen.push(Chosen {
                time,
                lump,
                place,
                line: start..text.len(),
            });
        }
    }
    Ok(())
}

/// `chosen` in the range read's order.
pub fn in_order(chosen: &mut [Chosen]) {
    chosen.sort_unstable_by_key(|c| (c.time, c.lump, c.place));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> i64 {
        text.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    }

    fn run(lumps: &[&[&str]], range: (i64, i64)) -> Result<Vec<(i64, usize, usize)>, LeftToSql> {
        let (mut chosen, mut text) = (Vec::new(), Vec::new());
        for (lump, lines) in lumps.iter().enumerate() {
            choose(
                lines.iter().map(|l| l.as_bytes()),
                lump,
                "at",
                range,
                &mut digits,
                (&mut chosen, &mut text),
            )?;
        }
        in_order(&mut chosen);
        for c in &chosen {
            let line = std::str::from_utf8(&text[c.line.clone()]).unwrap();
            assert_eq!(line, lumps[c.lump][c.place], "each line's own text");
        }
        Ok(chosen.iter().map(|c| (c.time, c.lump, c.place)).collect())
    }

    #[test]
    fn lines_in_range_come_in_time_then_lump_then_place_order() {
        let first: &[&str] = &[r#"{"at": "5", "x": 1}"#, r#"{"at": "3"}"#, r#"{"at": "9"}"#];
        let second: &[&str] = &[r#"{"x": {"at": "4"}, "at": "3"}"#, r#"{"at": "4"}"#];
        assert_eq!(
            run(&[first, second], (3, 9)).unwrap(),
            vec![(3, 0, 1), (3, 1, 0), (4, 1, 1), (5, 0, 0)]
        );
        // The upper end is excluded, the lower one included.
        assert_eq!(run(&[first], (9, 10)).unwrap(), vec![(9, 0, 2)]);
        assert_eq!(run(&[first], (6, 9)).unwrap(), vec![]);
    }

    #[test]
    fn a_missing_or_null_time_is_in_no_range_and_escapes_are_decoded() {
        let lines: &[&str] = &[
            r#"{"x": 1}"#,
            r#"{"at": null}"#,
            r#"{"at": "\u0037"}"#,
            r#"{"at": "1", "at": "8"}"#,
        ];
        // The last of duplicate keys counts, as in jsonb.
        assert_eq!(run(&[lines], (0, 100)).unwrap(), vec![(7, 0, 2), (8, 0, 3)]);
    }

    #[test]
    fn iso_times_with_a_zone_are_read_here_and_others_by_the_caller() {
        let mut chosen = Vec::new();
        let mut text = Vec::new();
        let lines = [
            r#"{"at": "2000-01-01T00:00:01+00:00"}"#,
            r#"{"at": "2000-01-01T01:00:02+01:00"}"#,
            r#"{"at": "2000-01-01T00:00:03"}"#,
        ];
        let mut asked = Vec::new();
        choose(
            lines.iter().map(|l| l.as_bytes()),
            0,
            "at",
            (0, i64::MAX),
            &mut |t| {
                asked.push(t.to_string());
                3_000_000
            },
            (&mut chosen, &mut text),
        )
        .unwrap();
        assert_eq!(
            chosen.iter().map(|c| c.time).collect::<Vec<_>>(),
            vec![1_000_000, 2_000_000, 3_000_000]
        );
        // Without a zone, the session's time zone decides: the caller's cast reads it.
        assert_eq!(asked, vec!["2000-01-01T00:00:03"]);
    }

    #[test]
    fn what_sql_must_decide_is_left_to_it() {
        for (line, place) in [
            (r#"{"at": 5}"#, 1),
            (r#"{"at": ["5"]}"#, 1),
            ("[1]", 1),
            (r#"{"at": "5""#, 1),
        ] {
            let lines: &[&str] = &[r#"{"at": "1"}"#, line];
            assert_eq!(run(&[lines], (0, 100)), Err(LeftToSql { lump: 0, place }));
        }
    }
}
