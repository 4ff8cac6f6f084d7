//! Mergeable sketches (sql/sketches.sql): `hll` (distinct counts), `quantiles` (DDSketch),
//! `topk` (SpaceSaving) and their shared `wire` format are pure cores; `sql` makes them the
//! types `collect.hll`, `collect.quantiles` and `collect.topk` with their aggregates, whose
//! states are those types, changed in place (`expanded`). Rollups use them; so can anyone.

pub mod expanded;
pub mod hll;
pub mod quantiles;
pub mod sql;
pub mod topk;
pub mod wire;
