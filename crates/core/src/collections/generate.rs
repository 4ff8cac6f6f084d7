//! The SQL of a collection: what `collect.create_collection` makes, and what reads and
//! normalization run on its tables. Pure.

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

/// A key type (one of `KEY_TYPES`, as the registry prints it) by its name in pg_catalog; any
/// other text is refused as no type at all.
fn qualified_key_type(key_type: &str) -> &'static str {
    match key_type {
        "text" => "pg_catalog.text",
        "bigint" => "pg_catalog.int8",
        "uuid" => "pg_catalog.uuid",
        _ => "pg_catalog.\"unknown key type\"",
    }
}

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

/// A pending row's place in append order. `txn` defaults to the appending transaction's id,
/// but a role allowed to append can write any value: a row whose `txn` is at or past `bound`
/// (a parameter: the node's next transaction id plus 2^31) cannot be a real transaction's, and
/// counts as the oldest (0) instead of winning every read and never being folded.
pub fn pending_txn(column: &str, bound: &str) -> String {
    format!("CASE WHEN {column} OPERATOR(pg_catalog.<) {bound}::pg_catalog.xid8 THEN {column} ELSE '0'::pg_catalog.xid8 END")
}

/// What reads and normalization run on a collection's tables, by name. Keys travel as text
/// and are cast to the key type in the statement.
#[derive(Debug, Clone)]
pub struct Statements {
    /// $1 keys as written: each in its type's canonical text, in the order asked for.
    pub canonical_keys: String,
    /// $1 keys, $2 forged-txn bound: each key's base lump (part 0) then its pending entries in
    /// append order (part 1): (key, part, txn, seq, at_us, lump, entry).
    pub stored_entries: String,
    /// $1 level, $2 horizon, $3 pass start, $4 at most this many, $5 bound: keys with entries
    /// to fold or whose level is older than the pass, in key order.
    pub keys_due_every: String,
    /// The same, but keys with entries to fold or changed since their level's last fold.
    pub keys_due_changed: String,
    /// $1 key: its base row, made empty if missing.
    pub ensure: String,
    /// $1 key: its base lump, locked.
    pub lock: String,
    /// $1 key, $2 horizon, $3 bound: its pending rows older than the horizon, taken.
    pub take: String,
    /// $1 key, $2 lump, $3 whether it changed, $4 level, $5 the time: the folded lump.
    pub store: String,
    /// $1 key: its base row, gone (everything expired).
    pub remove: String,
}

impl Tables {
    /// $1 keys (text[]), $2 forged-txn bound: each key's base lump (part 0) then its pending
    /// entries in append order (part 1): (key, part, txn, seq, at_us, lump, entry). Every
    /// name and operator qualified: `collect.read` runs it under the caller's search_path,
    /// prepared once for the session.
    pub fn stored_entries_sql(&self, key_type: &str) -> String {
        let Tables { pending, base } = self;
        let kt = qualified_key_type(key_type);
        format!(
            "SELECT b.key::pg_catalog.text, 0 AS part, NULL::pg_catalog.xid8 AS txn, NULL::pg_catalog.int8 AS seq,
                    NULL::pg_catalog.int8 AS at_us, b.entries AS lump, NULL::pg_catalog.text AS entry
               FROM {base} b WHERE b.key OPERATOR(pg_catalog.=) ANY ($1::{kt}[])
             UNION ALL
             SELECT p.key::pg_catalog.text, 1, {txn}, p.seq,
                    (EXTRACT(epoch FROM p.at) OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8, NULL, p.entry::pg_catalog.text
               FROM {pending} p WHERE p.key OPERATOR(pg_catalog.=) ANY ($1::{kt}[])
             ORDER BY 1, 2, 3, 4",
            txn = pending_txn("p.txn", "$2"),
        )
    }

    /// $1 the key, $2 the entry, $3 the collection's schema, $4 its name: one pending row,
    /// returning its seq, when the registry holds the collection and its definition holds
    /// (`collect._collection_verify`); no row otherwise. The check and the insert are one
    /// statement because an append is small: a second statement would cost as much again.
    /// The key comes in the collection's key type, or (`key_as_text`) in another type that is
    /// read as its text, as `key::text` would print it. Qualified throughout, as
    /// `stored_entries_sql`.
    pub fn append_sql(&self, key_type: &str, key_as_text: bool) -> String {
        let key = if key_as_text {
            format!("$1::pg_catalog.text::{}", qualified_key_type(key_type))
        } else {
            "$1".to_string()
        };
        format!(
            "INSERT INTO {} (key, entry)
             SELECT {key}, $2 FROM collect.collection_defs d
              WHERE (d.schema, d.name) OPERATOR(pg_catalog.=) ($3::pg_catalog.name, $4)
                AND collect._collection_verify(d)
             RETURNING seq",
            self.pending
        )
    }

    /// The statements for keys of `key_type` (one of `KEY_TYPES`, as the registry holds it).
    pub fn statements(&self, key_type: &str) -> Statements {
        let Tables { pending, base } = self;
        let kt = key_type;
        let keys_due = |base_rows: &str| {
            format!(
                "SELECT k FROM (SELECT key::text AS k, key FROM {base}
                                 WHERE {base_rows}
                                UNION
                                SELECT key::text, key FROM {pending} WHERE {txn} < $2::xid8) s
                  ORDER BY key LIMIT $4",
                txn = pending_txn("txn", "$5")
            )
        };
        Statements {
            canonical_keys: format!(
                "SELECT coalesce(array_agg(k::{kt}::text ORDER BY o), '{{}}') FROM unnest($1::text[]) WITH ORDINALITY AS u(k, o)"
            ),
            stored_entries: self.stored_entries_sql(key_type),
            keys_due_every: keys_due(
                "coalesce((levels->>$1)::timestamptz, '-infinity') < coalesce($3, now())",
            ),
            keys_due_changed: keys_due(
                "updated_at > coalesce((levels->>$1)::timestamptz, '-infinity')",
            ),
            ensure: format!("INSERT INTO {base} (key, entries, updated_at) VALUES ($1::{kt}, '[]', now()) ON CONFLICT (key) DO NOTHING"),
            lock: format!("SELECT entries FROM {base} WHERE key = $1::{kt} FOR UPDATE"),
            take: format!(
                "DELETE FROM {pending} p WHERE p.key = $1::{kt} AND {txn} < $2::xid8
                 RETURNING {txn}::text, p.seq, p.at, p.entry::text",
                txn = pending_txn("p.txn", "$3")
            ),
            // The time is a parameter ($5, the transaction's start, as now()): Citus refuses
            // functions that are not immutable inside CASE.
            store: format!(
                "UPDATE {base} SET entries = $2,
                    updated_at = CASE WHEN $3 THEN $5 ELSE updated_at END,
                    levels = levels || jsonb_build_object($4::text, $5)
                  WHERE key = $1::{kt}"
            ),
            remove: format!("DELETE FROM {base} WHERE key = $1::{kt}"),
        }
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

    #[test]
    fn statements_cast_keys_to_the_key_type_and_guard_forged_txns() {
        let statements = Tables::of("s", "c").statements("uuid");
        assert!(statements.lock.ends_with("WHERE key = $1::uuid FOR UPDATE"));
        assert!(statements.canonical_keys.contains("k::uuid::text"));
        assert!(statements
            .stored_entries
            .contains(&pending_txn("p.txn", "$2")));
        assert!(statements
            .stored_entries
            .contains("FROM \"s\".\"c_pending\" p WHERE p.key OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.uuid[])"));
        assert!(statements.take.contains(&pending_txn("p.txn", "$3")));
        assert!(statements.keys_due_every.contains("< coalesce($3, now())"));
        assert!(statements
            .keys_due_changed
            .contains("updated_at > coalesce((levels->>$1)::timestamptz"));
        assert!(statements
            .keys_due_every
            .contains(&pending_txn("txn", "$5")));
        assert_eq!(
            pending_txn("t", "$9"),
            "CASE WHEN t OPERATOR(pg_catalog.<) $9::pg_catalog.xid8 THEN t ELSE '0'::pg_catalog.xid8 END"
        );
    }

    #[test]
    fn appends_take_the_key_as_it_is_or_as_its_text_and_name_every_type() {
        let tables = Tables::of("s", "c");
        let plain = tables.append_sql("bigint", false);
        assert!(plain.starts_with(
            "INSERT INTO \"s\".\"c_pending\" (key, entry)\n             SELECT $1, $2 FROM collect.collection_defs d"
        ));
        assert!(plain
            .contains("WHERE (d.schema, d.name) OPERATOR(pg_catalog.=) ($3::pg_catalog.name, $4)"));
        assert!(plain.contains("AND collect._collection_verify(d)"));
        assert!(plain.ends_with("RETURNING seq"));
        assert!(tables
            .append_sql("bigint", true)
            .contains("SELECT $1::pg_catalog.text::pg_catalog.int8, $2 FROM"));
        assert!(tables
            .append_sql("uuid", true)
            .contains("$1::pg_catalog.text::pg_catalog.uuid"));
        assert!(tables
            .append_sql("text", true)
            .contains("$1::pg_catalog.text::pg_catalog.text"));
        // A type that is not a key type names no type rather than whatever the path finds.
        assert!(tables
            .append_sql("int; DROP TABLE t", true)
            .contains("::pg_catalog.\"unknown key type\","));
        assert!(tables
            .stored_entries_sql("text")
            .contains("ANY ($1::pg_catalog.text[])"));
    }
}
