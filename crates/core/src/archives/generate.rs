//! The statements an archive runs, written from its definition. Pure: names arrive checked
//! against the catalogs and leave quoted and schema-qualified; operators and functions are
//! written `pg_catalog.` / `collect.` so that nothing resolves through a caller's path.
//!
//! An archive keeps cold rows of a source table in its lumps table, one row per lump:
//!
//! ```text
//! lump_id | shard_key | min_key | max_key | min_time | max_time | records | heap_bytes
//!         | keys (key[] in lump order) | lump
//! ```
//!
//! The position index is per lump, not per record: a lump's key and time bounds prune, and
//! its `keys` array gives a record's place; the lump's member directory gives the gzip member
//! that holds it (see `lump::format::Directory`).
//! Every change is one statement, so a crash or cancel leaves either all of it or none.

use serde::{Deserialize, Serialize};

pub use crate::registry::names::{ident, literal, QualifiedName, Vocabulary};

/// An archive's statements, by name (`Archive::statements`).
#[derive(Debug, Clone, Serialize)]
pub struct Statements {
    /// One lump of the oldest records before a time, moved (see `archive_batch_sql`).
    pub batch: String,
    /// On Citus, the keys of one shard's next lump.
    pub shard_batch_keys: String,
    pub point_read: String,
    pub range_read: String,
    pub unarchive: String,
    pub delete: String,
    /// A new lump erases the older records of its keys.
    pub supersede: String,
}

impl Statements {
    /// As releases before 0.3.0 called them, by position.
    pub fn in_release_order(self) -> Vec<String> {
        vec![
            self.batch,
            self.shard_batch_keys,
            self.point_read,
            self.range_read,
            self.unarchive,
            self.delete,
            self.supersede,
        ]
    }
}

/// An archive's definition, with names resolved and checked.
#[derive(Debug, Clone, Deserialize)]
pub struct Archive {
    pub source: QualifiedName,
    pub lumps: QualifiedName,
    pub key: String,
    /// The key's type as `format_type` writes it (a built-in type: its btree operators are
    /// pg_catalog's).
    pub key_type: String,
    pub time: String,
    /// The source's columns that an INSERT may name (generated columns are left out), for
    /// putting records back.
    pub columns: Vec<String>,
    /// Per column of `columns`, what its value needs to come back exactly (`ColumnKind`).
    #[serde(default)]
    pub column_kinds: Vec<ColumnKind>,
    /// On Citus: every lump holds rows of one shard and is stored with them (`shard_key` is a
    /// value of that shard), and reads and writes name the shard.
    #[serde(default)]
    pub distributed: bool,
    /// The names of the release installed where the statements run (set by the SQL layer).
    #[serde(skip)]
    pub vocabulary: Vocabulary,
}

/// Columns whose values `to_jsonb` of the row would not give back exactly, and how a record
/// keeps them instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Kept as `to_jsonb` writes it.
    #[default]
    #[serde(alias = "")]
    Plain,
    /// `json`: its text exactly (whitespace, key order, duplicate keys), as a JSON string.
    Json,
    /// `jsonb`: a JSON `null` stays a `null`; SQL NULL leaves the field out of the record.
    Jsonb,
    /// `jsonb NOT NULL`: never SQL NULL, so the record is `to_jsonb`'s; a JSON `null` comes
    /// back a `null`.
    #[serde(rename = "jsonb not null")]
    JsonbNotNull,
    /// `real`, `double precision`: `-0` is kept as the string `"-0"` (a JSON number has no
    /// negative zero once it is `numeric`).
    Float,
}

/// The lumps table's columns after `lump_id`, in the order the statements write them.
const LUMP_COLUMNS: &str =
    "shard_key, min_key, max_key, min_time, max_time, records, heap_bytes, keys, lump";

impl Archive {
    pub fn statements(&self) -> Statements {
        Statements {
            batch: self.archive_batch_sql(),
            shard_batch_keys: self.shard_batch_keys_sql(),
            point_read: self.point_read_sql(),
            range_read: self.range_read_sql(),
            unarchive: self.unarchive_sql(),
            delete: self.delete_sql(),
            supersede: self.supersede_sql(),
        }
    }

    fn key(&self, alias: &str) -> String {
        format!("{alias}.{}", ident(&self.key))
    }

    fn time(&self, alias: &str) -> String {
        format!("{alias}.{}", ident(&self.time))
    }

    /// A record's time, from its JSON (the text `to_jsonb` wrote, read back exactly).
    fn record_time(&self, record: &str) -> String {
        format!(
            "({record} OPERATOR(pg_catalog.->>) {})::pg_catalog.timestamptz",
            literal(&self.time)
        )
    }

    fn kinds(&self) -> impl Iterator<Item = (&String, ColumnKind)> {
        self.columns.iter().zip(
            self.column_kinds
                .iter()
                .copied()
                .chain(std::iter::repeat(ColumnKind::Plain)),
        )
    }

    /// The record of row `alias` (a table alias: `alias.*` is its whole row, whatever columns
    /// the table has): `to_jsonb` of the row, with the columns it would not give back exactly
    /// kept as `ColumnKind` says.
    fn record(&self, alias: &str) -> String {
        let mut record = format!("pg_catalog.to_jsonb({alias}.*)");
        let (mut null_tests, mut null_names, mut zero_tests, mut zero_fields) =
            (vec![], vec![], vec![], vec![]);
        for (column, kind) in self.kinds() {
            let value = format!("{alias}.{}", ident(column));
            let name = literal(column);
            match kind {
                ColumnKind::Plain | ColumnKind::JsonbNotNull => {}
                ColumnKind::Json => record = format!(
                    "{record} OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object({name}, {value}::pg_catalog.text)"
                ),
                ColumnKind::Jsonb => {
                    null_tests.push(format!("{value} IS NULL"));
                    null_names.push(format!("CASE WHEN {value} IS NULL THEN {name} END"));
                }
                ColumnKind::Float => {
                    let is_negative_zero = format!(
                        "({value} OPERATOR(pg_catalog.=) 0 AND pg_catalog.starts_with({value}::pg_catalog.text, '-'))"
                    );
                    zero_fields.push(format!("{name}, CASE WHEN {is_negative_zero} THEN '-0' END"));
                    zero_tests.push(is_negative_zero);
                }
            }
        }
        // The rare rows that need it pay for a changed copy; the others are `to_jsonb` as is
        // (one CASE per kind, so the record's text appears at most four times, whatever the
        // number of columns).
        if !null_tests.is_empty() {
            record = format!(
                "CASE WHEN {} THEN ({record}) OPERATOR(pg_catalog.-) pg_catalog.array_remove(ARRAY[{}]::pg_catalog.text[], NULL) ELSE {record} END",
                null_tests.join(" OR "),
                null_names.join(", ")
            );
        }
        if !zero_tests.is_empty() {
            record = format!(
                "CASE WHEN {} THEN ({record}) OPERATOR(pg_catalog.||) pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object({})) ELSE {record} END",
                zero_tests.join(" OR "),
                zero_fields.join(", ")
            );
        }
        record
    }

    /// Column `column` of the source, from record `record` (`populated`: the row
    /// `jsonb_populate_record` made of it).
    fn restored(&self, column: &str, kind: ColumnKind, record: &str, populated: &str) -> String {
        match kind {
            ColumnKind::Json => format!(
                "({record} OPERATOR(pg_catalog.->>) {})::pg_catalog.json",
                literal(column)
            ),
            ColumnKind::Jsonb | ColumnKind::JsonbNotNull => {
                format!("{record} OPERATOR(pg_catalog.->) {}", literal(column))
            }
            ColumnKind::Plain | ColumnKind::Float => format!("{populated}.{}", ident(column)),
        }
    }

    fn record_key(&self, record: &str) -> String {
        format!(
            "({record} OPERATOR(pg_catalog.->>) {})::{}",
            literal(&self.key),
            self.key_type
        )
    }

    /// The DDL of the lumps table and its indexes.
    pub fn create_sql(&self) -> Vec<String> {
        let lumps = self.lumps.sql();
        let index = |suffix: &str| ident(&format!("{}_{suffix}", self.lumps.name));
        vec![
            format!(
                "CREATE TABLE {lumps} (\n    lump_id bigserial NOT NULL,\n    shard_key {kt} NOT NULL,\n    \
                 min_key {kt} NOT NULL,\n    max_key {kt} NOT NULL,\n    min_time timestamptz NOT NULL,\n    \
                 max_time timestamptz NOT NULL,\n    records integer NOT NULL CHECK (records > 0),\n    \
                 heap_bytes bigint NOT NULL,\n    keys {kt}[] NOT NULL,\n    \
                 lump {lump_type} NOT NULL,\n    \
                 PRIMARY KEY (shard_key, lump_id)\n)",
                kt = self.key_type,
                lump_type = self.vocabulary.lump_type(),
            ),
            // Lumps are already compressed; the key arrays compress, but are read whole at
            // every point read, so they stay uncompressed in line or out of line.
            format!("ALTER TABLE {lumps} ALTER COLUMN keys SET STORAGE EXTERNAL"),
            format!("CREATE INDEX {} ON {lumps} (shard_key, min_key, max_key)", index("keys")),
            format!("CREATE INDEX {} ON {lumps} (min_time, max_time)", index("times")),
            format!(
                "COMMENT ON TABLE {lumps} IS {}",
                literal(&format!(
                    "Rows of {}.{} archived as gzipped JSON lumps by archive {} (pg_collect)",
                    self.source.schema,
                    self.source.name,
                    self.lumps.name.strip_suffix("_lumps").unwrap_or(&self.lumps.name)
                ))
            ),
        ]
    }

    /// Moves up to `$2` source rows older than `$1` (oldest first) into one new lump. One
    /// statement: the rows leave the source in the same transaction as the lump arrives. Rows
    /// another transaction holds are skipped, not waited for. Returns the lump's records, id,
    /// key bounds, keys and shard key (the last four as text), what `supersede_sql` takes.
    /// On Citus `$3` is the shard's key value: only rows of that shard move.
    pub fn archive_batch_sql(&self) -> String {
        let source = self.source.sql();
        let order = format!("{}, {}", self.time("m"), self.key("m"));
        let chosen = format!(
            "SELECT c.ctid FROM {source} c WHERE {ct} OPERATOR(pg_catalog.<) $1 \
             ORDER BY {ct}, {ck} LIMIT $2 FOR UPDATE SKIP LOCKED",
            ct = self.time("c"),
            ck = self.key("c"),
        );
        let moved = if self.distributed {
            // Citus routes a DELETE by its key values; ctids are per shard.
            format!(
                "DELETE FROM {source} s WHERE {sk} OPERATOR(pg_catalog.=) ANY ($4::{kt}[]) RETURNING s.*",
                sk = self.key("s"),
                kt = self.key_type
            )
        } else {
            format!("DELETE FROM {source} s WHERE s.ctid OPERATOR(pg_catalog.=) ANY (ARRAY({chosen})) RETURNING s.*")
        };
        let shard_key = if self.distributed {
            format!("$3::{}", self.key_type)
        } else {
            "p.sorted_keys[1]".to_string()
        };
        format!(
            "WITH moved AS ({moved}),\n\
             packed AS (\n    SELECT collect._archive_pack({record} ORDER BY {order}) AS lump,\n           \
             pg_catalog.array_agg({mk} ORDER BY {order}) AS keys,\n           \
             pg_catalog.array_agg({mk} ORDER BY {mk}) AS sorted_keys,\n           \
             pg_catalog.min({mt})::pg_catalog.timestamptz AS min_time, pg_catalog.max({mt})::pg_catalog.timestamptz AS max_time,\n           \
             pg_catalog.count(*)::integer AS records,\n           \
             pg_catalog.sum(pg_catalog.pg_column_size(m.*) OPERATOR(pg_catalog.+) 4)::bigint AS heap_bytes\n      FROM moved m\n)\n\
             INSERT INTO {lumps} ({LUMP_COLUMNS})\n\
             SELECT {shard_key}, p.sorted_keys[1], p.sorted_keys[p.records], p.min_time, p.max_time, p.records, p.heap_bytes, p.keys, p.lump\n  \
             FROM packed p WHERE p.records OPERATOR(pg_catalog.>) 0\n\
             RETURNING records, lump_id, min_key::pg_catalog.text, max_key::pg_catalog.text, keys::pg_catalog.text, shard_key::pg_catalog.text",
            mk = self.key("m"),
            mt = self.time("m"),
            record = self.record("m"),
            lumps = self.lumps.sql(),
        )
    }

    /// On Citus, the keys of up to `$2` rows older than `$1` in the shard that holds key
    /// `$3`: the rows `archive_batch_sql` then moves (as `$4`) in one statement routed there.
    pub fn shard_batch_keys_sql(&self) -> String {
        let source = self.source.sql();
        format!(
            "SELECT pg_catalog.array_agg(b.k) FROM (SELECT {ck} AS k FROM {source} c WHERE {ct} OPERATOR(pg_catalog.<) $1 \
             AND pg_catalog.get_shard_id_for_distribution_column({src}, {ck}) \
             OPERATOR(pg_catalog.=) pg_catalog.get_shard_id_for_distribution_column({src}, $3::{kt}) ORDER BY {ct}, {ck} LIMIT $2) b",
            ck = self.key("c"),
            ct = self.time("c"),
            kt = self.key_type,
            src = literal(&source),
        )
    }

    /// Lumps whose key bounds take in key `$1` (on Citus, in the shard of `$2`).
    fn lumps_bounding_key(&self) -> String {
        let shard = if self.distributed {
            format!(
                "l.shard_key OPERATOR(pg_catalog.=) $2::{} AND ",
                self.key_type
            )
        } else {
            String::new()
        };
        format!(
            "{shard}l.min_key OPERATOR(pg_catalog.<=) $1 AND l.max_key OPERATOR(pg_catalog.>=) $1"
        )
    }

    /// Lumps that hold key `$1` (on Citus, in the shard of `$2`).
    fn lumps_holding_key(&self) -> String {
        format!(
            "{} AND $1 OPERATOR(pg_catalog.=) ANY (l.keys)",
            self.lumps_bounding_key()
        )
    }

    /// The record with key `$1`: only its member of its lump is fetched and inflated. A lump's
    /// keys are fetched once (OFFSET 0 keeps the planner from computing the place twice).
    pub fn point_read_sql(&self) -> String {
        format!(
            "SELECT collect._archive_record(c.lump, c.place OPERATOR(pg_catalog.-) 1)\n  \
             FROM (SELECT l.lump, pg_catalog.array_position(l.keys, $1) AS place FROM {lumps} l\n         \
             WHERE {bounding} OFFSET 0) c\n WHERE c.place IS NOT NULL\n LIMIT 1",
            lumps = self.lumps.sql(),
            bounding = self.lumps_bounding_key()
        )
    }

    /// For a caller that finds the place itself (`collect.archived`, on one node): each lump
    /// whose key bounds take in key `$1`, with its keys and the lump.
    pub fn point_candidates_sql(&self) -> String {
        format!(
            "SELECT l.keys, l.lump FROM {lumps} l WHERE {bounding}",
            lumps = self.lumps.sql(),
            bounding = self.lumps_bounding_key()
        )
    }

    fn lumps_overlapping(&self) -> &'static str {
        "l.max_time OPERATOR(pg_catalog.>=) $1 AND l.min_time OPERATOR(pg_catalog.<) $2"
    }

    fn in_range(&self, record: &str) -> String {
        let t = self.record_time(record);
        format!("{t} OPERATOR(pg_catalog.>=) $1 AND {t} OPERATOR(pg_catalog.<) $2")
    }

    /// The lumps a range read of `$1 <= time < $2` goes through (`range::choose` picks their
    /// lines), in the order that breaks ties between equal times as `range_read_sql` does, with
    /// the bytes their rows took in the source (what a read may have to hold).
    pub fn range_lumps_sql(&self) -> String {
        format!(
            "SELECT l.lump, l.heap_bytes FROM {lumps} l WHERE {overlapping} ORDER BY l.min_time, l.lump_id",
            lumps = self.lumps.sql(),
            overlapping = self.lumps_overlapping(),
        )
    }

    /// Records with `$1 <= time < $2`, in time order: only lumps overlapping the range are read.
    pub fn range_read_sql(&self) -> String {
        format!(
            "SELECT e.record FROM {lumps} l, LATERAL collect.entries(l.lump) WITH ORDINALITY e(record, place)\n \
             WHERE {overlapping} AND {in_range}\n ORDER BY {t}, l.min_time, l.lump_id, e.place",
            lumps = self.lumps.sql(),
            overlapping = self.lumps_overlapping(),
            in_range = self.in_range("e.record"),
            t = self.record_time("e.record"),
        )
    }

    /// Rewrites the lumps `lump_filter` selects without the records `record_filter` selects
    /// (a lump left empty goes), and with `restore` puts those records back into the source.
    /// Returns (records removed, lumps rewritten). One statement: all of it or none.
    fn rewrite_sql(&self, lump_filter: &str, record_filter: &str, restore: bool) -> String {
        let lumps = self.lumps.sql();
        let restored = if restore {
            let columns = self
                .columns
                .iter()
                .map(|c| ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            let values = self
                .kinds()
                .map(|(c, kind)| self.restored(c, kind, "x.record", "r"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                ",\nrestored AS (\n    INSERT INTO {source} ({columns}) OVERRIDING SYSTEM VALUE\n    \
                 SELECT {values} FROM records x, LATERAL pg_catalog.jsonb_populate_record(NULL::{source}, x.record) r\n     \
                 WHERE x.removed\n    RETURNING 1\n)",
                source = self.source.sql()
            )
        } else {
            String::new()
        };
        format!(
            "WITH old AS (\n    DELETE FROM {lumps} l WHERE {lump_filter}\n    RETURNING l.lump_id, l.shard_key, l.records, l.heap_bytes, l.lump\n),\n\
             records AS (\n    SELECT o.lump_id, o.shard_key, o.records AS old_records, o.heap_bytes AS old_heap_bytes, e.record, e.place,\n           \
             coalesce({record_filter}, false) AS removed\n      FROM old o, LATERAL collect.entries(o.lump) WITH ORDINALITY e(record, place)\n){restored},\n\
             kept AS (\n    SELECT x.shard_key, collect._archive_pack(x.record ORDER BY x.place) AS lump,\n           \
             pg_catalog.array_agg({rk} ORDER BY x.place) AS keys, pg_catalog.array_agg({rk} ORDER BY {rk}) AS sorted_keys,\n           \
             pg_catalog.min({rt}) AS min_time, pg_catalog.max({rt}) AS max_time, pg_catalog.count(*)::integer AS records,\n           \
             (pg_catalog.min(x.old_heap_bytes) OPERATOR(pg_catalog.*) pg_catalog.count(*) OPERATOR(pg_catalog./) pg_catalog.min(x.old_records))::bigint AS heap_bytes\n      \
             FROM records x WHERE NOT x.removed GROUP BY x.lump_id, x.shard_key\n),\n\
             written AS (\n    INSERT INTO {lumps} ({LUMP_COLUMNS})\n    \
             SELECT k.shard_key, k.sorted_keys[1], k.sorted_keys[k.records], k.min_time, k.max_time, k.records, k.heap_bytes, k.keys, k.lump\n      FROM kept k\n    RETURNING 1\n)\n\
             SELECT (SELECT pg_catalog.count(*) FROM records WHERE removed), (SELECT pg_catalog.count(*) FROM old)",
            rk = self.record_key("x.record"),
            rt = self.record_time("x.record"),
        )
    }

    /// Erases the older records of the keys of the lump just written (id `$1`, key bounds `$2`
    /// and `$3`, keys `$4`, shard key `$5`, as `archive_batch_sql` returns them): a key written
    /// again to the source after it was archived has one record, its newest. Only lumps whose
    /// key bounds take in the new lump's are looked into, so keys that only grow cost nothing.
    pub fn supersede_sql(&self) -> String {
        let kt = &self.key_type;
        // On Citus both the lumps and the subquery name the shard, so the statement goes to it.
        let shard = |alias: &str| {
            if self.distributed {
                format!("{alias}.shard_key OPERATOR(pg_catalog.=) $5::{kt} AND ")
            } else {
                String::new()
            }
        };
        // Candidate lumps (bounds overlap) that hold one of the new keys, found by a semi-join
        // against the keys, which PostgreSQL hashes: `&&` of two arrays, or `= ANY` of one per
        // key, compares every pair, and made archiving random keys (uuids) 20 times slower.
        let new_keys = format!("(SELECT pg_catalog.unnest($4::{kt}[]))");
        let lumps = format!(
            "{}l.lump_id IN (SELECT c.lump_id FROM {} c, pg_catalog.unnest(c.keys) k(key) \
             WHERE {}c.min_key OPERATOR(pg_catalog.<=) $3::{kt} AND c.max_key OPERATOR(pg_catalog.>=) $2::{kt} \
             AND c.lump_id OPERATOR(pg_catalog.<>) $1 AND k.key IN {new_keys})",
            shard("l"),
            self.lumps.sql(),
            shard("c"),
        );
        let records = format!("{} IN {new_keys}", self.record_key("e.record"));
        self.rewrite_sql(&lumps, &records, false)
    }

    /// Puts records with `$1 <= time < $2` back into the source.
    pub fn unarchive_sql(&self) -> String {
        self.rewrite_sql(self.lumps_overlapping(), &self.in_range("e.record"), true)
    }

    /// Erases the record with key `$1` (on Citus, in the shard of `$2`).
    pub fn delete_sql(&self) -> String {
        let filter = format!("{} OPERATOR(pg_catalog.=) $1", self.record_key("e.record"));
        self.rewrite_sql(&self.lumps_holding_key(), &filter, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(distributed: bool) -> Archive {
        Archive {
            source: QualifiedName {
                schema: "app".into(),
                name: "Events".into(),
            },
            lumps: QualifiedName {
                schema: "app".into(),
                name: "events_archive_lumps".into(),
            },
            key: "id".into(),
            key_type: "bigint".into(),
            time: "at".into(),
            columns: vec![
                "id".into(),
                "at".into(),
                "body".into(),
                "doc".into(),
                "tree".into(),
                "ratio".into(),
            ],
            column_kinds: vec![
                ColumnKind::Plain,
                ColumnKind::Plain,
                ColumnKind::Plain,
                ColumnKind::Json,
                ColumnKind::Jsonb,
                ColumnKind::Float,
            ],
            distributed,
            vocabulary: Default::default(),
        }
    }

    #[test]
    fn names_are_quoted_and_qualified() {
        let a = archive(false);
        for sql in [
            a.archive_batch_sql(),
            a.supersede_sql(),
            a.point_read_sql(),
            a.point_candidates_sql(),
            a.range_lumps_sql(),
            a.range_read_sql(),
            a.unarchive_sql(),
            a.delete_sql(),
        ] {
            assert!(!sql.contains("app.Events"), "{sql}");
            assert!(
                !sql.contains(" < ") && !sql.contains(" = "),
                "unqualified operator in {sql}"
            );
        }
        assert!(a
            .archive_batch_sql()
            .contains("DELETE FROM \"app\".\"Events\" s WHERE s.ctid"));
        assert!(a.archive_batch_sql().contains("FOR UPDATE SKIP LOCKED"));
        assert!(a
            .point_read_sql()
            .contains("FROM \"app\".\"events_archive_lumps\" l"));
        assert!(a.unarchive_sql().contains("INSERT INTO \"app\".\"Events\" (\"id\", \"at\", \"body\", \"doc\", \"tree\", \"ratio\") OVERRIDING SYSTEM VALUE"));
        assert!(
            !a.delete_sql().contains("INSERT INTO \"app\".\"Events\""),
            "a delete restores nothing"
        );
        assert!(a.create_sql()[0].contains("keys bigint[] NOT NULL"));
    }

    #[test]
    fn one_node_archives_by_ctid_and_citus_by_shard() {
        let local = archive(false);
        assert!(!local.archive_batch_sql().contains("$3"));
        assert!(local.point_read_sql().contains("WHERE l.min_key"));
        assert_eq!(
            local.point_candidates_sql(),
            "SELECT l.keys, l.lump FROM \"app\".\"events_archive_lumps\" l \
             WHERE l.min_key OPERATOR(pg_catalog.<=) $1 AND l.max_key OPERATOR(pg_catalog.>=) $1"
        );
        assert_eq!(
            local.point_read_sql().matches("l.keys").count(),
            1,
            "the keys are fetched once"
        );
        let citus = archive(true);
        let batch = citus.archive_batch_sql();
        assert!(
            batch.contains("ANY ($4::bigint[])") && !batch.contains("ctid"),
            "{batch}"
        );
        assert!(batch.contains("SELECT $3::bigint, p.sorted_keys[1]"));
        assert!(citus
            .point_read_sql()
            .contains("l.shard_key OPERATOR(pg_catalog.=) $2::bigint AND"));
        assert!(citus
            .delete_sql()
            .contains("l.shard_key OPERATOR(pg_catalog.=) $2::bigint AND"));
        assert!(citus.shard_batch_keys_sql().contains("LIMIT $2"));
    }

    #[test]
    fn a_range_reads_overlapping_lumps_in_the_order_that_breaks_ties() {
        let a = archive(false);
        assert_eq!(
            a.range_lumps_sql(),
            format!(
                "SELECT l.lump, l.heap_bytes FROM {} l WHERE l.max_time OPERATOR(pg_catalog.>=) $1 \
                 AND l.min_time OPERATOR(pg_catalog.<) $2 ORDER BY l.min_time, l.lump_id",
                a.lumps.sql()
            )
        );
        // The same ties as the range statement of earlier releases.
        assert!(a
            .range_read_sql()
            .ends_with(", l.min_time, l.lump_id, e.place"));
    }

    #[test]
    fn record_fields_are_literals() {
        let mut a = archive(false);
        a.time = "it's".into();
        assert!(a
            .range_read_sql()
            .contains("->>) 'it''s')::pg_catalog.timestamptz"));
    }

    #[test]
    fn records_keep_what_to_jsonb_alone_would_not() {
        let a = archive(false);
        let batch = a.archive_batch_sql();
        // The whole row is `m.*`: a source column named `m` is not the row.
        assert!(
            batch.contains("collect._archive_pack(CASE WHEN")
                && batch.contains("pg_catalog.to_jsonb(m.*)"),
            "{batch}"
        );
        assert!(
            batch.contains("pg_catalog.jsonb_build_object('doc', m.\"doc\"::pg_catalog.text)"),
            "json as its text: {batch}"
        );
        assert!(
            batch.contains("CASE WHEN m.\"tree\" IS NULL THEN 'tree' END"),
            "a SQL NULL jsonb leaves its field out: {batch}"
        );
        assert!(
            batch.contains(
                "jsonb_build_object('ratio', CASE WHEN (m.\"ratio\" OPERATOR(pg_catalog.=) 0"
            ),
            "-0 as a string: {batch}"
        );
        assert_eq!(
            batch.matches("pg_catalog.to_jsonb(m.*)").count(),
            4,
            "one record expression per branch: {batch}"
        );
        let restore = a.unarchive_sql();
        assert!(
            restore.contains("(x.record OPERATOR(pg_catalog.->>) 'doc')::pg_catalog.json"),
            "{restore}"
        );
        assert!(
            restore.contains("x.record OPERATOR(pg_catalog.->) 'tree'"),
            "{restore}"
        );
        assert!(restore.contains("r.\"ratio\""), "{restore}");
        let mut plain = archive(false);
        plain.column_kinds.clear();
        assert!(plain
            .archive_batch_sql()
            .contains("collect._archive_pack(pg_catalog.to_jsonb(m.*) ORDER BY"));
        plain.column_kinds = vec![ColumnKind::JsonbNotNull; 6];
        assert!(
            plain
                .archive_batch_sql()
                .contains("collect._archive_pack(pg_catalog.to_jsonb(m.*) ORDER BY"),
            "NOT NULL jsonb costs nothing"
        );
        assert!(plain
            .unarchive_sql()
            .contains("x.record OPERATOR(pg_catalog.->) 'tree'"));
    }
}
