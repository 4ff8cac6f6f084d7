//! Archives (LiveJournal's data collection): cold rows of a table moved into gzipped JSON
//! lumps whose record positions are indexed in SQL, read back by key or time range, edited in
//! place one lump at a time. `generate` writes the statements (pure); `sql` holds the C entry
//! points sql/archives.sql declares.

pub use pg_collect_core::archives::generate;
pub mod range;
pub mod sql;
