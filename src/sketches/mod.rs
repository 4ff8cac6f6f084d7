//! Mergeable sketches (sql/sketches.sql): `hll` (distinct counts), `quantiles` (DDSketch),
//! `topk` (SpaceSaving), their shared `wire` format and the `sketch` interface are pure cores;
//! `stored` reads them from SQL values; `sql` makes them the
//! types `collect.hll`, `collect.quantiles` and `collect.topk` with their aggregates, whose
//! states are those types, changed in place (`expanded`). Rollups use them; so can anyone.

pub mod expanded;
pub use pg_collect_core::sketches::hll;
pub use pg_collect_core::sketches::quantiles;
pub use pg_collect_core::sketches::sketch;
pub mod sql;
pub mod stored;
pub use pg_collect_core::sketches::topk;
pub use pg_collect_core::sketches::wire;
