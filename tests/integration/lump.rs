//! The collect.lump type across connections, dumps and the binary protocol.

use std::error::Error;
use std::io::{Read, Write};
use std::process::Command;
use std::thread;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use crate::{connect, db_user, dump_and_restore, fresh_database, pg_bin, port, sqlstate};

/// Bytes sent as a binary parameter, so the server runs collection_recv on them.
#[derive(Debug)]
pub struct RawBinary(pub Vec<u8>);

impl ToSql for RawBinary {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// Reads a value's binary form (collection_send) back as bytes.
fn binary_of(client: &mut postgres::Client, literal: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    client
        .copy_out(&format!(
            "COPY (SELECT '{literal}'::collect.lump) TO STDOUT (FORMAT binary)"
        ))
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    // COPY BINARY: 11-byte signature, flags, extension length, then per row a field count
    // (i16) and per field a length (i32) and the bytes.
    let field_len = i32::from_be_bytes(bytes[21..25].try_into().unwrap()) as usize;
    bytes[25..25 + field_len].to_vec()
}

#[test]
fn pg_dump_and_pg_restore_round_trip_collections() {
    let source = fresh_database("dump_src");
    let target = fresh_database("dump_dst");
    let mut src = connect(&source);
    src.batch_execute(
        r#"
        CREATE TABLE lumps (id int PRIMARY KEY, c collect.lump);
        INSERT INTO lumps VALUES
            (1, '[]'),
            (2, '[{"a": 1}, "two", 3.5, null, [true, false]]'),
            (3, collect.lump_append('[1]', '[2, 3]')),
            (4, (SELECT collect.lump_agg(jsonb_build_object('n', g, 's', repeat('x', g % 50)) ORDER BY g)
                 FROM generate_series(1, 20000) g));
        "#,
    )
    .unwrap();
    let dump = format!("{}/target/it-{source}.dump", env!("CARGO_MANIFEST_DIR"));
    let status = Command::new(pg_bin("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(),
            "-U",
            &db_user(),
            "-Fc",
            "-t",
            "lumps",
            "-f",
            &dump,
            &source,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "pg_dump failed");
    let status = Command::new(pg_bin("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port(),
            "-U",
            &db_user(),
            "-d",
            &target,
            "--exit-on-error",
            &dump,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "pg_restore failed");
    std::fs::remove_file(&dump).ok();

    let query = "SELECT id, c::text, collect.entry_count(c) FROM lumps ORDER BY id";
    let rows = |db: &str| -> Vec<(i32, String, i64)> {
        connect(db)
            .query(query, &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    let before = rows(&source);
    let after = rows(&target);
    assert_eq!(before.len(), 4);
    assert_eq!(before[3].2, 20000);
    assert_eq!(before, after);
}

#[test]
fn copy_binary_round_trips_without_reencoding() {
    let db = fresh_database("copy_bin");
    let mut client = connect(&db);
    client
        .batch_execute(
            r#"
            CREATE TABLE a (c collect.lump);
            CREATE TABLE b (c collect.lump);
            INSERT INTO a SELECT collect.lump_agg(jsonb_build_object('g', g) ORDER BY g)
                FROM generate_series(1, 1000) g GROUP BY g % 7;
            INSERT INTO a VALUES ('[]'), (collect.merge('[1]'::collect.lump, '[2]'));
            "#,
        )
        .unwrap();
    let mut data = Vec::new();
    client
        .copy_out("COPY a TO STDOUT (FORMAT binary)")
        .unwrap()
        .read_to_end(&mut data)
        .unwrap();
    let mut writer = client.copy_in("COPY b FROM STDIN (FORMAT binary)").unwrap();
    writer.write_all(&data).unwrap();
    writer.finish().unwrap();
    let diff: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT c::text FROM a EXCEPT ALL SELECT c::text FROM b) d",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(diff, 0);
    let same_bytes: bool = client
        .query_one(
            "SELECT (SELECT array_agg(collect.lump_send(c) ORDER BY c::text) FROM a)
                  = (SELECT array_agg(collect.lump_send(c) ORDER BY c::text) FROM b)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        same_bytes,
        "binary COPY must carry the stored lump unchanged"
    );
}

#[test]
fn binary_input_is_validated_and_never_crashes() {
    let db = fresh_database("recv");
    let mut client = connect(&db);
    let good = binary_of(&mut client, r#"[{"a": 1}, {"a": 2}, {"a": 3}]"#);
    let count: i64 = client
        .query_one(
            "SELECT collect.entry_count($1::collect.lump)",
            &[&RawBinary(good.clone())],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 3);

    let mut bad_cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short header", good[..7].to_vec()),
        ("truncated payload", good[..good.len() - 5].to_vec()),
        ("garbage", b"this is not a lump at all".to_vec()),
    ];
    let mut v = good.clone();
    v[0] = 42;
    bad_cases.push(("unknown version", v));
    let mut v = good.clone();
    v[4] = 9;
    bad_cases.push(("count lies", v));
    let mut v = good.clone();
    let crc = v.len() - 8;
    v[crc] ^= 0xff;
    bad_cases.push(("crc mismatch", v));
    // A well-framed lump whose entry is not JSON: build the gzip member by hand.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{not json\n").unwrap();
    let payload = gz.finish().unwrap();
    let mut v = vec![1, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0];
    v.extend_from_slice(&payload);
    bad_cases.push(("entry is not json", v));

    for (what, bytes) in bad_cases {
        let err = client
            .query_one(
                "SELECT collect.entry_count($1::collect.lump)",
                &[&RawBinary(bytes)],
            )
            .expect_err(what);
        assert_eq!(sqlstate(&err), "22P03", "{what}: {err}");
        // The backend survived and the connection is usable.
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1, "{what}");
    }
}

#[test]
fn concurrent_appends_to_one_value_lose_nothing() {
    let db = fresh_database("concurrent");
    connect(&db)
        .batch_execute("CREATE TABLE doc (id int PRIMARY KEY, c collect.lump); INSERT INTO doc VALUES (1, '[]')")
        .unwrap();
    const CLIENTS: i32 = 8;
    const APPENDS: i32 = 100;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|client_id| {
            let db = db.clone();
            thread::spawn(move || {
                let mut client = connect(&db);
                for n in 0..APPENDS {
                    client
                        .execute(
                            "UPDATE doc SET c = collect.lump_append(c, jsonb_build_object('client', $1::int, 'n', $2::int)) WHERE id = 1",
                            &[&client_id, &n],
                        )
                        .unwrap();
                    // Readers run alongside the writers.
                    let _: i64 = client
                        .query_one("SELECT collect.entry_count(c) FROM doc WHERE id = 1", &[])
                        .unwrap()
                        .get(0);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread failed");
    }
    let mut client = connect(&db);
    let row = client
        .query_one(
            "SELECT collect.entry_count(c), (SELECT count(DISTINCT e) FROM collect.entries(c) e) FROM doc",
            &[],
        )
        .unwrap();
    let (count, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(count, (CLIENTS * APPENDS) as i64);
    assert_eq!(distinct, (CLIENTS * APPENDS) as i64);
    // Each client's entries stay in the order that client appended them.
    let ordered: bool = client
        .query_one(
            "SELECT bool_and(ok) FROM (
                SELECT (e->>'n')::int > coalesce(lag((e->>'n')::int) OVER (PARTITION BY e->>'client' ORDER BY ord), -1) AS ok
                FROM doc, collect.entries(c) WITH ORDINALITY AS x(e, ord)) s",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ordered);
}

/// The peak memory of the backend `pid` (this machine's /proc: the test cluster is local).
pub fn backend_peak_bytes(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Gzip of `repeat` copies of `line` (highly compressible: a bomb).
pub fn gzip_bomb(line: &[u8], repeat: usize) -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = line.repeat((1 << 20) / line.len());
    let per_block = block.len() / line.len();
    let mut left = repeat;
    while left > 0 {
        let n = left.min(per_block);
        encoder.write_all(&block[..n * line.len()]).unwrap();
        left -= n;
    }
    encoder.finish().unwrap()
}

#[test]
fn a_small_binary_value_that_inflates_to_half_a_gigabyte_costs_time_not_memory() {
    let db = fresh_database("lumpbomb");
    let mut client = connect(&db);
    // 512 MB of the entry `1`: about half a megabyte on the wire.
    let entries: u32 = 256 << 20;
    let mut value = vec![1, 0, 0, 0];
    value.extend_from_slice(&entries.to_le_bytes());
    value.extend_from_slice(&(entries * 2).to_le_bytes());
    value.extend_from_slice(&gzip_bomb(b"1\n", entries as usize));
    assert!(value.len() < 8 << 20, "{} bytes", value.len());
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    client
        .batch_execute("SET statement_timeout = '2s'")
        .unwrap();
    let started = std::time::Instant::now();
    let err = client
        .query_one(
            "SELECT collect.entry_count($1::collect.lump)",
            &[&RawBinary(value)],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "statement_timeout was not honoured: {:?}",
        started.elapsed()
    );
    let peak = backend_peak_bytes(pid);
    assert!(peak < 256 << 20, "checking the value took {peak} bytes");
    // Deep nesting that jsonb accepts passes binary input as it passes text input.
    let deep = format!("[{}1{}]", "[".repeat(3000), "]".repeat(3000));
    let bytes = binary_of(&mut client, &deep);
    let n: i64 = client
        .query_one(
            "SELECT collect.entry_count($1::collect.lump)",
            &[&RawBinary(bytes)],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// A lump of the given entry lines, framed by hand (header, one gzip member).
fn lump_of(entries: &[&[u8]]) -> Vec<u8> {
    let mut raw = Vec::new();
    for e in entries {
        raw.extend_from_slice(e);
        raw.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let mut v = vec![1, 0, 0, 0];
    v.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    v.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    v.extend_from_slice(&gz.finish().unwrap());
    v
}

#[test]
fn binary_input_accepts_exactly_what_text_input_makes() {
    let db = fresh_database("recv_exact");
    let mut client = connect(&db);
    let recv = |client: &mut postgres::Client, bytes: Vec<u8>| -> Result<String, postgres::Error> {
        client
            .query_one("SELECT $1::collect.lump::text", &[&RawBinary(bytes)])
            .map(|r| r.get(0))
    };
    // The framing itself must be right: a lump text input made is accepted as is.
    assert_eq!(
        recv(&mut client, lump_of(&[br#"{"a": 1}"#, b"2"])).unwrap(),
        r#"[{"a": 1}, 2]"#
    );
    let deep_ok = format!("{}1{}", "[".repeat(500), "]".repeat(500));
    let deep_bad = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let rejected: Vec<(&str, Vec<u8>)> = vec![
        ("\\u0000", br#""a\u0000b""#.to_vec()),
        ("lone surrogate", br#""\ud800""#.to_vec()),
        ("invalid UTF-8", b"\"\xff\xfe\"".to_vec()),
        ("100,000-deep nesting", deep_bad.into_bytes()),
        ("keys out of jsonb's order", br#"{"b": 1, "a": 2}"#.to_vec()),
        ("duplicate keys", br#"{"a": 1, "a": 2}"#.to_vec()),
        ("exponent form", b"1e400".to_vec()),
        ("not jsonb's spacing", br#"{"a":1}"#.to_vec()),
    ];
    for (what, entry) in rejected {
        let err = recv(&mut client, lump_of(&[b"1", &entry])).expect_err(what);
        assert_eq!(sqlstate(&err), "22P03", "{what}: {err}");
    }
    // What text input makes from those values is accepted and dumps and restores.
    client
        .batch_execute(&format!(
            r#"CREATE TABLE lumps (id int PRIMARY KEY, c collect.lump);
               INSERT INTO lumps VALUES (1, '[1e400, 123456789012345678901234567890, {{"b": 1, "a": 2}}, "\ud83d\ude00"]'),
                                        (2, '[{deep_ok}]');"#
        ))
        .unwrap();
    let mut fuzz = crate::XorShift(0x5eed_1234_abcd_ef01);
    let seeds: [&[u8]; 5] = [
        br#"{"a": [1, 2.50, "x"], "b": null}"#,
        br#""text \"q\" \\ done""#,
        b"[true, false, -0.0001]",
        b"1e400",
        br#"{"": {"": []}}"#,
    ];
    let mut accepted = 0;
    for case in 0..400 {
        let mut entry = seeds[case % seeds.len()].to_vec();
        for _ in 0..1 + fuzz.below(3) {
            let at = fuzz.below(entry.len() + 1);
            match fuzz.below(3) {
                0 if at < entry.len() => {
                    entry.remove(at);
                }
                1 => entry.insert(at, b"{}[]\",:0e\\u\x00\xff -"[fuzz.below(15)]),
                _ if at < entry.len() => entry[at] ^= 1 << fuzz.below(8),
                _ => {}
            }
        }
        if entry.contains(&b'\n') {
            continue;
        }
        match recv(&mut client, lump_of(&[&entry])) {
            Ok(text) => {
                // Accepted: text input of the same value gives exactly these bytes back.
                accepted += 1;
                let again: String = client
                    .query_one("SELECT $1::text::collect.lump::text", &[&text])
                    .unwrap()
                    .get(0);
                assert_eq!(again, text, "case {case}");
                assert_eq!(
                    format!("[{}]", String::from_utf8_lossy(&entry)),
                    text,
                    "case {case}: accepted a non-canonical entry"
                );
            }
            Err(e) => assert_eq!(
                sqlstate(&e),
                "22P03",
                "case {case} {:?}: {e}",
                String::from_utf8_lossy(&entry)
            ),
        }
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
    assert!(accepted > 0, "the fuzz never produced a valid entry");
    let restored = dump_and_restore(&db);
    let texts: Vec<String> = connect(&restored)
        .query("SELECT c::text FROM lumps ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(texts.len(), 2);
    assert!(texts[0].starts_with("[1000000000"), "{}", texts[0]);
    // topk values travel as text: NUL bytes and invalid UTF-8 are refused in binary input.
    for bad in [b"a\0b".to_vec(), b"\xff".to_vec()] {
        let mut bytes = vec![1u8, 4, 1, 1, bad.len() as u8];
        bytes.extend_from_slice(&bad);
        bytes.extend_from_slice(&[1, 0]);
        let err = client
            .query_one("SELECT $1::collect.topk::text", &[&RawBinary(bytes)])
            .expect_err("a topk value text cannot hold");
        assert_eq!(sqlstate(&err), "22P03", "{err}");
    }
}
