//! The denormalized latest version (a file row carrying its newest version): `generate` writes
//! the SQL that keeps the copy exact, `sql` is the thin layer `sql/latest.sql` calls, `insert`
//! the AFTER INSERT trigger with plans prepared once per session.

pub use pg_collect_core::latest::generate;
mod insert;
mod sql;
