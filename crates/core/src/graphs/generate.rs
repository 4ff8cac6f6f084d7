//! The SQL of a graph's tables: what `collect.create_graph` makes, and the names the writes
//! and reads use. Pure.

use serde::Serialize;

use crate::registry::names::{literal, qualified};

/// A graph's four tables, quoted and qualified.
#[derive(Debug, Clone, Serialize)]
pub struct Tables {
    /// Edges by source (FlockDB's forward list).
    pub out: String,
    /// Edges by destination (the backward list).
    pub inward: String,
    /// Edges per node, direction and state, in counter slots.
    pub counts: String,
    /// Each node's normal edges again, as sorted blocks for set operations.
    pub lists: String,
}

impl Tables {
    pub fn of(schema: &str, name: &str) -> Tables {
        Tables {
            out: qualified(schema, &format!("{name}_out")),
            inward: qualified(schema, &format!("{name}_in")),
            counts: qualified(schema, &format!("{name}_counts")),
            lists: qualified(schema, &format!("{name}_lists")),
        }
    }

    /// The statements that make the tables of graph `name`. Times are microseconds since
    /// the Unix epoch; positions order a node's list, newest first. A stripe of a compact
    /// list holds the ids of one hash (`lists_core`), each block those from its lower bound
    /// `lo` up to the next block's.
    pub fn create_sql(&self, name: &str) -> Vec<String> {
        let Tables {
            out,
            inward,
            counts,
            lists,
        } = self;
        let comment =
            |table: &str, text: String| format!("COMMENT ON TABLE {table} IS {}", literal(&text));
        vec![
            format!(
                "CREATE TABLE {out} (\n    source bigint NOT NULL, destination bigint NOT NULL, state smallint NOT NULL, \
                 position bigint NOT NULL,\n    state_at bigint NOT NULL, position_at bigint, first_at bigint NOT NULL, \
                 first_add boolean NOT NULL,\n    archived_from smallint,\n    PRIMARY KEY (source, destination))"
            ),
            format!("CREATE INDEX ON {out} (source, state, position, destination)"),
            format!(
                "CREATE TABLE {inward} (\n    destination bigint NOT NULL, source bigint NOT NULL, state smallint NOT NULL, \
                 position bigint NOT NULL,\n    PRIMARY KEY (destination, source))"
            ),
            format!("CREATE INDEX ON {inward} (destination, state, position, source)"),
            format!(
                "CREATE TABLE {counts} (\n    node bigint NOT NULL, direction \"char\" NOT NULL, state smallint NOT NULL, \
                 slot smallint NOT NULL, n bigint NOT NULL,\n    PRIMARY KEY (node, direction, state, slot))"
            ),
            format!(
                "CREATE TABLE {lists} (\n    node bigint NOT NULL, direction \"char\" NOT NULL, stripe smallint NOT NULL, \
                 lo bigint NOT NULL, ids bytea NOT NULL,\n    PRIMARY KEY (node, direction, stripe, lo))"
            ),
            format!("ALTER TABLE {lists} ALTER COLUMN ids SET STORAGE MAIN"),
            comment(out, format!("Edges of graph {name} by source (pg_collect)")),
            comment(inward, format!("Edges of graph {name} by destination (pg_collect)")),
            comment(counts, format!("Edges per node, direction and state of graph {name} (pg_collect)")),
            comment(lists, format!("Normal edges per node and direction of graph {name} as sorted blocks (pg_collect)")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_quoted_and_comments_are_literals() {
        let tables = Tables::of("my schema", "it's");
        assert_eq!(tables.out, "\"my schema\".\"it's_out\"");
        assert_eq!(tables.inward, "\"my schema\".\"it's_in\"");
        let sql = tables.create_sql("it's");
        assert_eq!(sql.len(), 11);
        assert!(sql[0].starts_with("CREATE TABLE \"my schema\".\"it's_out\" ("));
        assert_eq!(sql[7], "COMMENT ON TABLE \"my schema\".\"it's_out\" IS 'Edges of graph it''s by source (pg_collect)'");
        assert!(sql.iter().all(|s| !s.ends_with(';')));
    }
}
