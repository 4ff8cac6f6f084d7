//! Edge lists (Twitter's FlockDB), declared in sql/graphs.sql: adjacency lists of 64-bit ids
//! with a state and a position per edge, kept forward and backward, and each node's normal
//! edges also as compact sorted blocks. `edge` (the rule that makes writes order-independent),
//! `lists_core` (the blocks) and `sets_core` (how set operations read their lists) are the pure
//! core; `sql` writes edges, `lists` keeps the blocks, `sets` runs set operations.

pub use pg_collect_core::graphs::edge;
pub use pg_collect_core::graphs::generate;
mod lists;
pub use pg_collect_core::graphs::lists_core;
mod sets;
pub use pg_collect_core::graphs::sets_core;
mod sql;
