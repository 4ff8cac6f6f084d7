//! Minute rollups with mergeable metrics (Druid, as Plumbr used it). The sketches are pure
//! cores: `hll` (distinct counts), `quantiles` (DDSketch), `topk` (SpaceSaving).

pub mod hll;
pub mod quantiles;
pub mod topk;
pub mod wire;
pub mod sketch_types;
pub mod rawless;
