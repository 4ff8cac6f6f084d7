//! Append-only collections with read-time reducers and normalization (Rocket Fuel's
//! Blackbird). `pipeline` and `time` are the pure core.

pub mod pipeline;
pub mod time;
pub mod sql;
