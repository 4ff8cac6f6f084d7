//! Edge lists (Twitter's FlockDB), declared in sql/graphs.sql: adjacency lists of 64-bit ids
//! with a state and a position per edge, kept forward and backward. `edge` (the rule that
//! makes writes order-independent) and `sets_core` (how set operations read their lists) are
//! the pure core; `sql` writes edges, `sets` runs set operations.

pub mod edge;
mod sets;
pub mod sets_core;
mod sql;
