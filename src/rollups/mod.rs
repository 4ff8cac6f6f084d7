//! Minute rollups kept at ingest (Druid, as Plumbr used it), declared in sql/rollups.sql with
//! metrics from `crate::sketches`. `rawless` is the in-memory path for rollups that keep no
//! raw rows.

pub mod rawless;
