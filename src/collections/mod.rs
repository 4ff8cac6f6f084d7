//! Append-only collections with read-time reducers and normalization (Rocket Fuel's
//! Blackbird), declared in sql/collections.sql. `pipeline`, `json` and `time` are the pure
//! core; `sql` holds what `read` and `normalize` share.

pub mod json;
mod normalize;
pub mod pipeline;
mod read;
mod sql;
pub mod time;
