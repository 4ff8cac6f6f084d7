//! The SQL of a collection's tables: what `collect.create_collection` makes, and the names
//! appends, reads and normalization use. Pure.

use serde::Serialize;

use crate::registry::names::{literal, qualified};

/// A collection's two tables, quoted and qualified.
#[derive(Debug, Clone, Serialize)]
pub struct Tables {
    /// Entries appended and not yet folded, one row each.
    pub pending: String,
    /// Per key, the folded entries as one lump.
    pub base: String,
}

/// The key types a collection may have.
pub const KEY_TYPES: [&str; 3] = ["text", "bigint", "uuid"];

impl Tables {
    pub fn of(schema: &str, name: &str) -> Tables {
        Tables {
            pending: qualified(schema, &format!("{name}_pending")),
            base: qualified(schema, &format!("{name}_base")),
        }
    }

    /// The statements that make the tables of collection `name` with keys of `key_type` (one
    /// of `KEY_TYPES`, else None).
    pub fn create_sql(&self, name: &str, key_type: &str) -> Option<Vec<String>> {
        // Qualified, except bigint: a keyword, which is pg_catalog's int8 anyway.
        let key_type = match KEY_TYPES.into_iter().find(|&k| k == key_type)? {
            "bigint" => "bigint".to_string(),
            other => format!("pg_catalog.{other}"),
        };
        let Tables { pending, base } = self;
        Some(vec![
            format!(
                "CREATE TABLE {pending} (\n    key {key_type} NOT NULL,\n    \
                 txn pg_catalog.xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),\n    seq bigserial,\n    \
                 at timestamptz NOT NULL DEFAULT pg_catalog.now(),\n    entry jsonb NOT NULL,\n    PRIMARY KEY (key, seq))"
            ),
            format!(
                "CREATE TABLE {base} (\n    key {key_type} PRIMARY KEY,\n    entries collect.lump NOT NULL,\n    \
                 updated_at timestamptz NOT NULL,\n    levels jsonb NOT NULL DEFAULT '{{}}')"
            ),
            format!(
                "COMMENT ON TABLE {pending} IS {}",
                literal(&format!("Entries appended to collection {name}, not yet normalized (pg_collect)"))
            ),
            format!(
                "COMMENT ON TABLE {base} IS {}",
                literal(&format!(
                    "Normalized entries of collection {name} per key, as [seq, at_us, entry] lumps (pg_collect)"
                ))
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_of_any_name_and_only_the_key_types_there_are() {
        let tables = Tables::of("s", "it's \"odd\"");
        assert_eq!(tables.pending, "\"s\".\"it's \"\"odd\"\"_pending\"");
        let sql = tables.create_sql("it's", "uuid").unwrap();
        assert!(sql[0].contains("key pg_catalog.uuid NOT NULL"));
        assert!(tables.create_sql("x", "bigint").unwrap()[1].contains("key bigint PRIMARY KEY"));
        assert!(
            sql[1].contains("entries collect.lump NOT NULL") && sql[1].ends_with("DEFAULT '{}')")
        );
        assert!(sql[2].ends_with(
            "IS 'Entries appended to collection it''s, not yet normalized (pg_collect)'"
        ));
        assert!(tables.create_sql("x", "text; DROP TABLE t").is_none());
        assert!(tables.create_sql("x", "integer").is_none());
    }
}
