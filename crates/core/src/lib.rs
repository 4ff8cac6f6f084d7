//! pg_collect's pure cores: what each capability computes, free of Postgres. The pg_collect
//! crate is the SQL-facing layer around them; its modules re-export these under the same
//! paths (`pg_collect::rollups::generate` is `pg_collect_core::rollups::generate`).

pub mod archives {
    pub mod generate;
    pub mod range;
}
pub mod calendar;
pub mod collections {
    pub mod generate;
    pub mod json;
    pub mod pipeline;
    pub mod time;
}
pub mod graphs {
    pub mod edge;
    pub mod generate;
    pub mod lists_core;
    pub mod sets_core;
}
pub mod interval;
pub mod json_fields;
pub mod latest {
    pub mod generate;
}
pub mod lump {
    pub mod format;
}
pub mod maintenance {
    pub mod databases;
}
pub mod registry {
    pub mod names;
}
pub mod rollups {
    pub mod batches;
    pub mod generate;
    pub mod ndjson;
    pub mod partials;
}
pub mod sketches {
    pub mod hll;
    pub mod quantiles;
    pub mod sketch;
    pub mod topk;
    pub mod wire;
}
#[cfg(test)]
mod testing;
