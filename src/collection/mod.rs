//! Append-only collections with read-time reducers and normalization (Rocket Fuel's
//! Blackbird). `pipeline`, `json` and `time` are the pure core.

pub mod json;
pub mod pipeline;
pub mod time;
pub mod sql;
