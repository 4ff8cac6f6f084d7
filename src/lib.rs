//! pg_collect: data-shape tricks of large systems, as a PostgreSQL extension.
//!
//! Each capability has a pure core in the workspace crate `pg_collect_core` (crates/core, which
//! has no pgrx) and a thin SQL layer here, whose module re-exports the core under the same
//! path; the SQL declarations themselves are hand-written in `sql/` and included below in
//! dependency order.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    registry::init();
    maintenance::init();
    rollups::init();
}

mod aggstate;
pub mod archives;
pub use pg_collect_core::calendar;
pub mod collections;
mod errors;
pub mod graphs;
mod jsonb;
pub mod latest;
pub mod lump;
pub mod maintenance;
pub mod plans;
pub mod registry;
pub mod rollups;
pub mod sketches;
mod typeio;

extension_sql_file!("../sql/registry.sql", name = "registry");
extension_sql_file!("../sql/lump.sql", name = "lump", requires = ["registry"]);
extension_sql_file!(
    "../sql/collections.sql",
    name = "collections",
    requires = ["lump"]
);
extension_sql_file!(
    "../sql/sketches.sql",
    name = "sketches",
    requires = ["registry"]
);
extension_sql_file!(
    "../sql/rollups.sql",
    name = "rollups",
    requires = ["sketches"]
);
extension_sql_file!(
    "../sql/latest.sql",
    name = "latest",
    requires = ["registry"]
);
extension_sql_file!(
    "../sql/graphs.sql",
    name = "graphs",
    requires = ["registry"]
);
extension_sql_file!(
    "../sql/archives.sql",
    name = "archives",
    requires = ["lump"]
);
extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = ["collections", "rollups", "latest", "graphs", "archives"]
);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
