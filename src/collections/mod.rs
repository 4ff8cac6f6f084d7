//! Append-only collections with read-time reducers and normalization (Rocket Fuel's
//! Blackbird), declared in sql/collections.sql. `pipeline`, `json` and `time` are the pure
//! core; `sql` holds what `append`, `read` and `normalize` share.

mod append;
pub use pg_collect_core::collections::generate;
pub use pg_collect_core::collections::json;
mod normalize;
pub use pg_collect_core::collections::pipeline;
mod read;
mod sql;
pub use pg_collect_core::collections::time;
