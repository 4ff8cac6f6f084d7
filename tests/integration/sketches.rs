//! The sketch types across the binary protocol.

use std::io::Read;

use crate::lump::RawBinary;
use crate::{connect, fresh_database, sqlstate};

#[test]
fn sketch_binary_input_is_validated_and_round_trips() {
    let db = fresh_database("sketch_recv");
    let mut client = connect(&db);
    for (ty, build) in [
        (
            "collect.hll",
            "SELECT collect.hll_agg(g) FROM generate_series(1, 5000) g",
        ),
        (
            "collect.quantiles",
            "SELECT collect.quantiles_agg(g::float8) FROM generate_series(1, 5000) g",
        ),
        (
            "collect.topk",
            "SELECT collect.topk_agg((g % 17)::text, 5) FROM generate_series(1, 5000) g",
        ),
    ] {
        let mut copied = Vec::new();
        client
            .copy_out(&format!("COPY ({build}) TO STDOUT (FORMAT binary)"))
            .unwrap()
            .read_to_end(&mut copied)
            .unwrap();
        let len = i32::from_be_bytes(copied[21..25].try_into().unwrap()) as usize;
        let good = copied[25..25 + len].to_vec();
        let same: bool = client
            .query_one(
                &format!("SELECT $1::{ty} OPERATOR(collect.=) ({build})"),
                &[&RawBinary(good.clone())],
            )
            .unwrap()
            .get(0);
        assert!(same, "{ty} binary round trip");
        let mut damaged = vec![good[..good.len() / 2].to_vec(), vec![], vec![99]];
        let mut flipped = good.clone();
        flipped[0] = 7;
        damaged.push(flipped);
        for bad in damaged {
            let err = client
                .query_one(&format!("SELECT $1::{ty} IS NULL"), &[&RawBinary(bad)])
                .expect_err(ty);
            assert_eq!(sqlstate(&err), "22P03", "{ty}: {err}");
        }
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
    }
}
