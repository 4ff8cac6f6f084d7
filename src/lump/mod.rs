//! Lumps: ordered JSON entries gzipped behind a small header (LiveJournal's "JSON as
//! compromise record encoding; aggregate data into large gzipped files"). `format` is the pure
//! encoding; `collection_type` exposes it to SQL as the `collect.collection` type, which every
//! other capability uses to store folded data.

pub mod collection_type;
pub mod format;
