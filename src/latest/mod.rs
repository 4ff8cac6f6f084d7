//! The denormalized latest version (a file row carrying its newest version): `generate` writes
//! the SQL that keeps the copy exact, `sql` is the thin layer `sql/latest.sql` calls.

pub mod generate;
mod sql;
