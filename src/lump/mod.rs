//! Lumps: ordered JSON entries gzipped behind a small header (LiveJournal's "JSON as
//! compromise record encoding; aggregate data into large gzipped files"). `format` is the pure
//! encoding; `sql` exposes it as the `collect.lump` type (sql/lump.sql), which the other
//! capabilities use to store folded data.

pub use pg_collect_core::lump::format;
pub mod sql;
