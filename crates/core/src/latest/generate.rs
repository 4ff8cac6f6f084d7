//! The SQL that keeps a parent row's copy of its latest child row exact. Pure: it only writes
//! text, from names the SQL layer has already checked against the catalogs.
//!
//! One rule does all the work: for a set of parent keys, lock those parents in key order, then
//! (in a new statement, hence a new snapshot that sees whatever committed while we waited)
//! recompute each one's latest eligible child with an index probe and write it only where it
//! differs. Inserts, out-of-order arrivals, deletes, updates of any column and moves between
//! parents are all "recompute the parents this statement touched".

use serde::{Deserialize, Serialize};

/// What `collect.create_latest` was asked for, with names resolved and validated.
#[derive(Debug, Clone, Deserialize)]
pub struct LatestCopy {
    pub parent: QualifiedName,
    pub parent_key: String,
    /// The key's type as `format_type` writes it (already valid SQL).
    pub key_type: String,
    pub child: QualifiedName,
    /// Every column of the child's primary key: ties between equal `order_by` values go to
    /// the larger key.
    pub child_key: Vec<String>,
    pub link: String,
    pub order_by: Vec<String>,
    pub columns: Vec<String>,
    pub prefix: String,
    /// A boolean expression over the child's columns, already parsed as exactly one.
    pub filter: Option<String>,
    /// The key type's equality operator, qualified (`pg_catalog.=` for built-in types): the
    /// generated functions pin search_path, so a key type of another schema names its own.
    #[serde(default = "builtin_equality")]
    pub key_eq: String,
    /// The generated functions: `<refresh>(keys)` and `<trigger>()`.
    pub refresh_function: QualifiedName,
    pub trigger_function: QualifiedName,
    /// The ordering columns' `>` and `=` are pg_catalog's (see `single_insert`).
    #[serde(default)]
    pub order_ops_builtin: bool,
}

/// What `LatestCopy::statements` generates: the two functions a latest copy runs (created in
/// the parent's schema) and the query check_latest asks.
#[derive(Debug, Clone, Serialize)]
pub struct Statements {
    pub refresh_function: String,
    pub trigger_function: String,
    pub check: String,
    /// $1 batch size: a backfill's first batch of parent keys, as (the text of their array,
    /// how many, the last one as text).
    pub backfill_first: String,
    /// $1 batch size, $2 the last key done (as text): the next batch, likewise.
    pub backfill_next: String,
    /// $1 parent keys (the text of an array): recomputed; returns how many changed.
    pub refresh: String,
    /// Recomputes the parents `check` reports; returns how many changed.
    pub repair: String,
    /// How many parents there are.
    pub count_parents: String,
    /// $1 the definition's row: `check`'s rows gathered from every shard (Citus), in key
    /// order, as (parent_key, stored, expected).
    pub check_on_shards: String,
    /// The generated functions made executable by their owner only.
    pub revoke_functions: Vec<String>,
    /// The generated functions, dropped if they exist.
    pub drop_functions: Vec<String>,
    /// The copies dropped from the parent (drop_latest(drop_columns => true)).
    pub drop_columns: Vec<String>,
}

impl Statements {
    /// As releases before 0.3.0 called them, by position.
    pub fn in_release_order(self) -> Vec<String> {
        vec![self.refresh_function, self.trigger_function, self.check]
    }
}

/// The trigger's work on Citus shards, statement by statement (see `shard_statements`).
#[derive(Debug, Clone, Serialize)]
pub struct ShardStatements {
    /// The parents an INSERT, DELETE or UPDATE touched, or that hold a copy, as the text of an
    /// array.
    pub inserted_keys: String,
    pub deleted_keys: String,
    pub updated_keys: String,
    pub keys_with_copies: String,
    /// Their lock and recompute, with that text as `$1`.
    pub lock: String,
    pub recompute: String,
    pub check: String,
    /// Every copy cleared (a TRUNCATE of the whole child).
    pub clear: String,
    /// `check`'s rows on this shard, as the text of a JSON array of [key, stored, expected].
    pub check_found: String,
    /// The keys `check` reports on this shard, as the text of an array (what repair
    /// recomputes).
    pub check_keys: String,
}

impl ShardStatements {
    /// As releases before 0.3.0 called them, by position.
    pub fn in_release_order(self) -> Vec<String> {
        vec![
            self.inserted_keys,
            self.deleted_keys,
            self.updated_keys,
            self.keys_with_copies,
            self.lock,
            self.recompute,
            self.check,
            self.clear,
        ]
    }
}

/// See `LatestCopy::insert_statements`.
#[derive(Debug, Clone)]
pub struct InsertStatements {
    pub keys: String,
    pub lock: String,
    pub recompute: String,
    pub single: Option<SingleInsert>,
    pub bulk: Option<BulkInsert>,
}

/// Several inserted rows, their parents locked: `update` (the parents their newest inserted
/// row is newer than), then, only when it updated fewer parents than were locked, `ties`
/// (the parents left to recompute).
#[derive(Debug, Clone)]
pub struct BulkInsert {
    pub ties: String,
    pub update: String,
}

/// The path of one inserted row: `update` ($1 the row's link, $2… its copied columns, in
/// `params` order); when it changes nothing, `check` on the locked parent says whether the row
/// is newer after all (update again) or tied (recompute the parent).
#[derive(Debug, Clone)]
pub struct SingleInsert {
    pub update: String,
    pub check: String,
    pub params: Vec<String>,
    /// Which params are ordering values: a row with a NULL one is never latest.
    pub order_params: Vec<usize>,
}

pub use crate::registry::names::{ident, literal, QualifiedName};

fn builtin_equality() -> String {
    "pg_catalog.=".into()
}

/// What every generated function pins: nothing it runs is found through the caller's path.
const PINNED: &str = "SET search_path = pg_catalog, pg_temp";

/// A dollar-quote tag that does not occur in `body`.
fn dollar_tag(body: &str) -> String {
    (0..)
        .map(|n| {
            if n == 0 {
                "$latest$".to_string()
            } else {
                format!("$latest{n}$")
            }
        })
        .find(|tag| !body.contains(tag.as_str()))
        .expect("some tag is free")
}

impl LatestCopy {
    pub fn parent_column(&self, column: &str) -> String {
        format!("{}{}", self.prefix, column)
    }

    fn stored_columns(&self, alias: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{alias}.{}", ident(&self.parent_column(c))))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn latest_columns(&self, alias: &str) -> String {
        self.columns
            .iter()
            .map(|c| format!("{alias}.{}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows that may be latest: a NULL ordering value is never latest, and the filter holds.
    /// Unqualified, so it reads transition tables as well as the child.
    fn eligible(&self) -> String {
        let mut conditions: Vec<String> = self
            .order_by
            .iter()
            .map(|c| format!("{} IS NOT NULL", ident(c)))
            .collect();
        if let Some(filter) = &self.filter {
            // On its own line: the filter cannot swallow what follows.
            conditions.push(format!("(\n{filter}\n)"));
        }
        conditions.join(" AND ")
    }

    /// Children newest first: by `order_by`, ties to the larger child key.
    fn newest_first(&self) -> String {
        self.order_by
            .iter()
            .chain(self.child_key.iter())
            .map(|c| format!("{} DESC", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The copied columns, as the child names them.
    fn child_columns(&self) -> String {
        self.columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The latest eligible child of the parent whose key is `key`, as a one-row subquery.
    fn latest_of(&self, key: &str) -> String {
        format!(
            "SELECT {columns} FROM {child} WHERE {link} OPERATOR({eq}) {key} AND {eligible} ORDER BY {order} LIMIT 1",
            eq = self.key_eq,
            order = self.newest_first(),
            columns = self.child_columns(),
            child = self.child.sql(),
            link = ident(&self.link),
            eligible = self.eligible(),
        )
    }

    /// The stored copy is not byte for byte the latest row's columns (NULLs equal): a copy
    /// must be exact, and this needs no operator of the columns' types.
    fn differs(&self, stored: &str, latest: &str) -> String {
        format!(
            "ROW({})::pg_catalog.record OPERATOR(pg_catalog.*<>) ROW({})::pg_catalog.record",
            self.stored_columns(stored),
            self.latest_columns(latest)
        )
    }

    /// Locks the parents `keys` in key order: concurrent writers queue instead of
    /// deadlocking, and foreign-key checks (KEY SHARE) are not blocked.
    fn lock_parents(&self) -> String {
        format!(
            "PERFORM FROM {parent} WHERE {key} OPERATOR({eq}) ANY (pg_collect_keys) ORDER BY {key} FOR NO KEY UPDATE;",
            key = ident(&self.parent_key),
            eq = self.key_eq,
            parent = self.parent.sql(),
        )
    }

    /// Recomputes the locked parents `keys`. A statement of its own after the lock, so its
    /// snapshot sees every version committed before the lock was granted.
    fn recompute_locked(&self) -> String {
        let sets = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} = pg_collect_latest.{}",
                    ident(&self.parent_column(c)),
                    ident(c)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "UPDATE {parent} AS pg_collect_parent SET {sets}
          FROM pg_catalog.unnest(pg_collect_keys) AS pg_collect_key_list(pg_collect_key)
          LEFT JOIN LATERAL ({latest}) AS pg_collect_latest ON true
         WHERE pg_collect_parent.{key} OPERATOR({eq}) pg_collect_key_list.pg_collect_key AND {differs};",
            parent = self.parent.sql(),
            key = ident(&self.parent_key),
            eq = self.key_eq,
            latest = self.latest_of("pg_collect_key_list.pg_collect_key"),
            differs = self.differs("pg_collect_parent", "pg_collect_latest"),
        )
    }

    /// `<refresh>(keys key_type[]) RETURNS bigint`: recompute these parents, return how many
    /// changed. Used by the backfill and the repair.
    /// The triggers on `tables` (the child and its leaf partitions, quoted and qualified),
    /// named after `base`: collect._latest_insert for INSERT, and for UPDATE, DELETE and
    /// TRUNCATE the generated trigger function, or on Citus (`shard_spec`: this copy's spec,
    /// as JSON text) collect._latest_shard_sync, both carrying the spec a shard needs.
    pub fn trigger_sql(
        &self,
        tables: &[String],
        base: &str,
        refresh: &str,
        shard_spec: Option<&str>,
    ) -> Vec<String> {
        // Every trigger's first argument is `refresh`, the refresh function's name exactly as
        // the registry keeps it: a trigger finds its copy by it.
        let refresh = literal(refresh);
        let (insert_args, others) = match shard_spec {
            None => (
                refresh.clone(),
                format!("{}()", self.trigger_function.sql()),
            ),
            Some(spec) => (
                format!("{refresh}, {}", literal(spec)),
                format!("collect._latest_shard_sync({refresh}, {})", literal(spec)),
            ),
        };
        let name = |what: &str| ident(&format!("{base}_latest_{what}"));
        tables
            .iter()
            .flat_map(|t| {
                [
                    format!(
                        "CREATE TRIGGER {} AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT \
                         EXECUTE FUNCTION collect._latest_insert({insert_args})",
                        name("insert")
                    ),
                    format!(
                        "CREATE TRIGGER {} AFTER UPDATE ON {t} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
                         FOR EACH STATEMENT EXECUTE FUNCTION {others}",
                        name("update")
                    ),
                    format!(
                        "CREATE TRIGGER {} AFTER DELETE ON {t} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT \
                         EXECUTE FUNCTION {others}",
                        name("delete")
                    ),
                    format!(
                        "CREATE TRIGGER {} AFTER TRUNCATE ON {t} FOR EACH STATEMENT EXECUTE FUNCTION {others}",
                        name("truncate")
                    ),
                ]
            })
            .collect()
    }

    /// The functions, the check query and what backfill, repair and drop run, by name.
    pub fn statements(&self) -> Statements {
        let (parent, key, key_type) = (self.parent.sql(), ident(&self.parent_key), &self.key_type);
        let refresh = self.refresh_function.sql();
        let check = self.check_sql();
        let batch = |after: &str| {
            format!(
                "SELECT pg_catalog.array_agg(k ORDER BY k)::pg_catalog.text, pg_catalog.count(*), pg_catalog.max(k)::pg_catalog.text
                   FROM (SELECT {key} AS k FROM {parent}{after} ORDER BY 1 LIMIT $1) AS pg_collect_batch"
            )
        };
        Statements {
            refresh_function: self.refresh_function_sql(),
            trigger_function: self.trigger_function_sql(),
            backfill_first: batch(""),
            backfill_next: batch(&format!(" WHERE {key} > $2::pg_catalog.text::{key_type}")),
            refresh: format!("SELECT {refresh}($1::pg_catalog.text::{key_type}[])"),
            repair: format!(
                "SELECT {refresh}(ARRAY(SELECT k::{key_type} FROM ({check}) AS pg_collect_check(k, s, e)))"
            ),
            count_parents: format!("SELECT pg_catalog.count(*) FROM {parent}"),
            check_on_shards: format!(
                "SELECT r->>0, r->1, r->2 FROM collect._latest_on_shards($1, 'check', NULL) AS found,
                        pg_catalog.jsonb_array_elements(found::pg_catalog.jsonb) AS r
                  ORDER BY (r->>0)::{key_type}"
            ),
            revoke_functions: vec![
                format!("REVOKE EXECUTE ON FUNCTION {}() FROM PUBLIC", self.trigger_function.sql()),
                format!("REVOKE EXECUTE ON FUNCTION {refresh}({key_type}[]) FROM PUBLIC"),
            ],
            drop_functions: vec![
                // CASCADE: on Citus, the shards of a table distributed after create_latest
                // keep TRUNCATE triggers of the generated function that dropping the table's
                // triggers leaves behind.
                format!("DROP FUNCTION IF EXISTS {}() CASCADE", self.trigger_function.sql()),
                format!("DROP FUNCTION IF EXISTS {refresh}({key_type}[])"),
            ],
            drop_columns: self
                .columns
                .iter()
                .map(|c| format!("ALTER TABLE {parent} DROP COLUMN IF EXISTS {}", ident(&self.parent_column(c))))
                .collect(),
            check,
        }
    }

    /// The parent's copies of `columns` (child columns whose copies it lacks), each of its
    /// type as `format_type` writes it.
    pub fn add_columns_sql(&self, columns: &[String], types: &[String]) -> Vec<String> {
        columns
            .iter()
            .zip(types)
            .map(|(c, t)| {
                format!(
                    "ALTER TABLE {} ADD COLUMN {} {t}",
                    self.parent.sql(),
                    ident(&self.parent_column(c))
                )
            })
            .collect()
    }

    pub fn refresh_function_sql(&self) -> String {
        let body = format!(
            "DECLARE
    pg_collect_keys {key_type}[] := ARRAY(SELECT DISTINCT pg_catalog.unnest(pg_collect_requested) ORDER BY 1);
    pg_collect_changed bigint;
BEGIN
    {lock}
    {recompute}
    GET DIAGNOSTICS pg_collect_changed = ROW_COUNT;
    RETURN pg_collect_changed;
END",
            key_type = self.key_type,
            lock = self.lock_parents(),
            recompute = self.recompute_locked(),
        );
        let tag = dollar_tag(&body);
        format!(
            "CREATE FUNCTION {name}(pg_collect_requested {key_type}[]) RETURNS bigint LANGUAGE plpgsql {PINNED} AS {tag}\n{body}\n{tag}",
            name = self.refresh_function.sql(),
            key_type = self.key_type,
        )
    }

    /// The statement-level trigger function for INSERT, UPDATE, DELETE and TRUNCATE on the
    /// child (and on each of its partitions, for writes aimed at a partition directly): the
    /// parents the statement touched, locked, then recomputed.
    /// The parents a statement touched, from the transition table `table`.
    fn touched(&self, table: &str) -> String {
        let link = ident(&self.link);
        format!(
            "SELECT DISTINCT {link} FROM {table} WHERE {link} IS NOT NULL AND {}",
            self.eligible()
        )
    }

    /// After TRUNCATE the rows are gone, so every parent that holds a copy is recomputed.
    fn holding_a_copy(&self) -> String {
        format!(
            "SELECT {key} FROM {parent} WHERE NOT ROW({stored}) IS NULL",
            key = ident(&self.parent_key),
            parent = self.parent.sql(),
            stored = self
                .columns
                .iter()
                .map(|c| ident(&self.parent_column(c)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    pub fn trigger_function_sql(&self) -> String {
        let body = format!(
            "DECLARE
    pg_collect_keys {key_type}[];
BEGIN
    IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION '% must be an AFTER statement trigger', TG_NAME USING ERRCODE = 'trigger_protocol_violated';
    END IF;
    IF TG_OP = 'INSERT' THEN
        pg_collect_keys := ARRAY({new} ORDER BY 1);
    ELSIF TG_OP = 'DELETE' THEN
        pg_collect_keys := ARRAY({old} ORDER BY 1);
    ELSIF TG_OP = 'UPDATE' THEN
        pg_collect_keys := ARRAY({old} UNION {new} ORDER BY 1);
    ELSE
        -- TRUNCATE (for the whole child: every copy cleared, as nothing is left).
        pg_collect_keys := ARRAY({truncated} ORDER BY 1);
    END IF;
    IF pg_catalog.cardinality(pg_collect_keys) > 0 THEN
        {lock}
        {recompute}
    END IF;
    RETURN NULL;
END",
            key_type = self.key_type,
            new = self.touched("new_rows"),
            old = self.touched("old_rows"),
            truncated = self.holding_a_copy(),
            lock = self.lock_parents(),
            recompute = self.recompute_locked(),
        );
        let tag = dollar_tag(&body);
        format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {PINNED} AS {tag}\n{body}\n{tag}",
            name = self.trigger_function.sql(),
        )
    }

    /// The statements `collect._latest_insert` (an AFTER INSERT statement trigger in Rust)
    /// prepares once per session: the inserted parents (over the transition table
    /// `new_rows`), their lock and recompute with keys `$1` (as the generated trigger does),
    /// and, where it can be exact, the path of a single inserted row.
    pub fn insert_statements(&self) -> InsertStatements {
        let link = ident(&self.link);
        InsertStatements {
            keys: format!(
                "SELECT pg_catalog.array_agg(DISTINCT {link} ORDER BY {link}) FROM new_rows WHERE {link} IS NOT NULL AND {}",
                self.eligible()
            ),
            lock: self.lock_parents().replace("PERFORM FROM", "SELECT FROM").replace("ANY (pg_collect_keys)", "ANY ($1)").trim_end_matches(';').to_string(),
            recompute: self.recompute_locked().replace("pg_collect_keys", "$1").trim_end_matches(';').to_string(),
            single: self.single_insert(),
            bulk: self.bulk_insert(),
        }
    }

    /// The trigger's work as statements to run one by one, for a latest copy kept on Citus shards
    /// (where the generated functions, which name the logical tables, cannot run): the
    /// parents an INSERT, DELETE, UPDATE or TRUNCATE touched, as the text of an array; their
    /// lock and recompute, with that text as `$1`; the check query; and the clearing of every
    /// copy, for a TRUNCATE of the whole child (which Citus runs on the distributed table
    /// only, not on its shards).
    pub fn shard_statements(&self) -> ShardStatements {
        let keys = |query: String| format!("SELECT ARRAY({query} ORDER BY 1)::pg_catalog.text");
        let with_text_keys = |sql: String| {
            sql.replace(
                "pg_collect_keys",
                &format!("$1::pg_catalog.text::{}[]", self.key_type),
            )
            .trim_end_matches(';')
            .to_string()
        };
        let stored = self
            .columns
            .iter()
            .map(|c| ident(&self.parent_column(c)))
            .collect::<Vec<_>>()
            .join(", ");
        ShardStatements {
            inserted_keys: keys(self.touched("new_rows")),
            deleted_keys: keys(self.touched("old_rows")),
            updated_keys: keys(format!(
                "{} UNION {}",
                self.touched("old_rows"),
                self.touched("new_rows")
            )),
            keys_with_copies: keys(self.holding_a_copy()),
            lock: with_text_keys(
                self.lock_parents()
                    .replacen("PERFORM FROM", "SELECT FROM", 1),
            ),
            recompute: with_text_keys(self.recompute_locked()),
            check_found: format!(
                "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(k, s, e)), '[]')::pg_catalog.text
                   FROM ({}) AS pg_collect_check(k, s, e)",
                self.check_sql()
            ),
            check_keys: format!(
                "SELECT ARRAY(SELECT k FROM ({}) AS pg_collect_check(k, s, e))::pg_catalog.text",
                self.check_sql()
            ),
            check: self.check_sql(),
            clear: format!(
                "UPDATE {parent} SET {cleared} WHERE NOT ROW({stored}) IS NULL",
                parent = self.parent.sql(),
                cleared = self
                    .columns
                    .iter()
                    .map(|c| format!("{} = NULL", ident(&self.parent_column(c))))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }

    /// Inserted rows can only raise a parent's latest: with the parents locked, each parent's
    /// newest inserted row replaces the copy where it is newer, in one UPDATE, without a probe
    /// of the child per parent. Where it ties with the copy on the ordering values, the child
    /// key decides, which the copy does not hold: such parents are recomputed, unless the copy
    /// already equals that row byte for byte (then it is right whichever row is latest).
    /// `ties` runs after `update` and only when the update changed fewer parents than were
    /// locked (a row older than or tied with its copy): an updated parent's copy equals its
    /// newest row, so that comparison also leaves out the parents just updated. Possible
    /// when the copy holds the ordering columns (and `order_ops_builtin`).
    fn bulk_insert(&self) -> Option<BulkInsert> {
        if !self.order_ops_builtin || !self.order_by.iter().all(|o| self.columns.contains(o)) {
            return None;
        }
        let link = ident(&self.link);
        let newest = format!(
            "(SELECT DISTINCT ON ({link}) {link} AS pg_collect_link, {columns} FROM new_rows
               WHERE {link} IS NOT NULL AND {eligible} ORDER BY {link}, {order}) AS pg_collect_new",
            columns = self.child_columns(),
            order = self.newest_first(),
            eligible = self.eligible(),
        );
        let stored_order = self
            .order_by
            .iter()
            .map(|o| format!("p.{}", ident(&self.parent_column(o))))
            .collect::<Vec<_>>()
            .join(", ");
        let new_order = self
            .order_by
            .iter()
            .map(|o| format!("pg_collect_new.{}", ident(o)))
            .collect::<Vec<_>>()
            .join(", ");
        let key = format!(
            "p.{} OPERATOR({}) pg_collect_new.pg_collect_link",
            ident(&self.parent_key),
            self.key_eq
        );
        let sets = self
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} = pg_collect_new.{}",
                    ident(&self.parent_column(c)),
                    ident(c)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(BulkInsert {
            ties: format!(
                "SELECT pg_catalog.array_agg(p.{pk} ORDER BY p.{pk}) FROM {parent} AS p JOIN {newest} ON {key}
                  WHERE ROW({stored_order}) OPERATOR(pg_catalog.=) ROW({new_order})
                    AND {differs}",
                pk = ident(&self.parent_key),
                differs = self.differs("p", "pg_collect_new"),
                parent = self.parent.sql(),
            ),
            update: format!(
                "UPDATE {parent} AS p SET {sets} FROM {newest}
                  WHERE {key} AND (p.{first} IS NULL OR ROW({new_order}) OPERATOR(pg_catalog.>) ROW({stored_order}))",
                parent = self.parent.sql(),
                first = ident(&self.parent_column(&self.order_by[0])),
            ),
        })
    }

    /// One inserted row ($1 its link, then $2… its `columns`) is the parent's latest when its
    /// ordering values exceed the stored copy's: one UPDATE, whose row lock and recheck of a
    /// concurrently changed parent keep it exact. Possible when the copy holds the ordering
    /// columns and no filter applies (`order_ops_builtin`: their `>` and `=` are
    /// pg_catalog's, so the generated SQL can name them).
    fn single_insert(&self) -> Option<SingleInsert> {
        if self.filter.is_some()
            || !self.order_ops_builtin
            || !self.order_by.iter().all(|o| self.columns.contains(o))
        {
            return None;
        }
        let param = |column: &str| {
            format!(
                "${}",
                2 + self
                    .columns
                    .iter()
                    .position(|c| c == column)
                    .expect("ordering columns are copied")
            )
        };
        let new_order = self
            .order_by
            .iter()
            .map(|o| param(o))
            .collect::<Vec<_>>()
            .join(", ");
        let stored_order = self
            .order_by
            .iter()
            .map(|o| ident(&self.parent_column(o)))
            .collect::<Vec<_>>()
            .join(", ");
        let first_stored = ident(&self.parent_column(&self.order_by[0]));
        let newer = format!("({first_stored} IS NULL OR ROW({new_order}) OPERATOR(pg_catalog.>) ROW({stored_order}))");
        let sets = self
            .columns
            .iter()
            .map(|c| format!("{} = {}", ident(&self.parent_column(c)), param(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let key = ident(&self.parent_key);
        Some(SingleInsert {
            update: format!(
                "UPDATE {parent} SET {sets} WHERE {key} OPERATOR({eq}) $1 AND {newer}",
                parent = self.parent.sql(),
                eq = self.key_eq,
            ),
            // On the parent's current version, locked: is the row newer (a concurrent change
            // since the UPDATE's snapshot), or tied on every ordering value (the child key
            // breaks the tie, and the copy does not hold it)?
            check: format!(
                "SELECT {newer}, ROW({stored_order}) OPERATOR(pg_catalog.=) ROW({new_order}) FROM {parent}
                  WHERE {key} OPERATOR({eq}) $1 FOR NO KEY UPDATE",
                parent = self.parent.sql(),
                eq = self.key_eq,
            ),
            params: std::iter::once(self.link.clone()).chain(self.columns.iter().cloned()).collect(),
            order_params: self
                .order_by
                .iter()
                .map(|o| 1 + self.columns.iter().position(|c| c == o).expect("ordering columns are copied"))
                .collect(),
        })
    }

    /// Rows whose stored copy differs from the truth: (parent_key text, stored jsonb, expected jsonb).
    pub fn check_sql(&self) -> String {
        let object = |alias: &str, parent_side: bool| {
            let pairs = self
                .columns
                .iter()
                .map(|c| {
                    let column = if parent_side {
                        self.parent_column(c)
                    } else {
                        c.clone()
                    };
                    format!("{}, {alias}.{}", literal(c), ident(&column))
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("pg_catalog.jsonb_build_object({pairs})")
        };
        format!(
            "SELECT pg_collect_parent.{key}::pg_catalog.text, {stored},
                    CASE WHEN pg_collect_latest.pg_collect_present THEN {expected} END
               FROM {parent} AS pg_collect_parent
               LEFT JOIN LATERAL (SELECT true AS pg_collect_present, * FROM ({latest}) AS pg_collect_found) AS pg_collect_latest ON true
              WHERE {differs}
              ORDER BY pg_collect_parent.{key}",
            key = ident(&self.parent_key),
            stored = object("pg_collect_parent", true),
            expected = object("pg_collect_latest", false),
            parent = self.parent.sql(),
            latest = self.latest_of(&format!("pg_collect_parent.{}", ident(&self.parent_key))),
            differs = self.differs("pg_collect_parent", "pg_collect_latest"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> LatestCopy {
        LatestCopy {
            parent: QualifiedName {
                schema: "public".into(),
                name: "files".into(),
            },
            parent_key: "id".into(),
            key_type: "bigint".into(),
            child: QualifiedName {
                schema: "public".into(),
                name: "versions".into(),
            },
            child_key: vec!["id".into()],
            link: "file_id".into(),
            order_by: vec!["created_at".into()],
            columns: vec!["size".into(), "created_at".into()],
            prefix: "latest_".into(),
            filter: Some("NOT deleted".into()),
            refresh_function: QualifiedName {
                schema: "public".into(),
                name: "files_latest_refresh".into(),
            },
            trigger_function: QualifiedName {
                schema: "public".into(),
                name: "files_latest_sync".into(),
            },
            key_eq: builtin_equality(),
            order_ops_builtin: true,
        }
    }

    #[test]
    fn inserts_take_one_update_when_they_can() {
        let mut t = files();
        assert!(
            t.insert_statements().single.is_none(),
            "a filter needs the general path"
        );
        t.filter = None;
        let s = t.insert_statements();
        assert_eq!(s.lock, "SELECT FROM \"public\".\"files\" WHERE \"id\" OPERATOR(pg_catalog.=) ANY ($1) ORDER BY \"id\" FOR NO KEY UPDATE");
        assert!(
            s.recompute
                .contains("pg_catalog.unnest($1) AS pg_collect_key_list")
                && !s.recompute.ends_with(';')
        );
        assert!(s.keys.starts_with(
            "SELECT pg_catalog.array_agg(DISTINCT \"file_id\" ORDER BY \"file_id\") FROM new_rows"
        ));
        let single = s.single.expect("ordering column copied, no filter");
        assert_eq!(single.params, ["file_id", "size", "created_at"]);
        assert_eq!(single.order_params, [2]);
        assert_eq!(
            single.update,
            "UPDATE \"public\".\"files\" SET \"latest_size\" = $2, \"latest_created_at\" = $3 WHERE \"id\" OPERATOR(pg_catalog.=) $1 \
             AND (\"latest_created_at\" IS NULL OR ROW($3) OPERATOR(pg_catalog.>) ROW(\"latest_created_at\"))"
        );
        assert!(
            single
                .check
                .contains("ROW(\"latest_created_at\") OPERATOR(pg_catalog.=) ROW($3)")
                && single.check.ends_with("FOR NO KEY UPDATE")
        );
        let bulk = t.insert_statements().bulk.expect("ordering column copied");
        assert!(bulk.update.contains("SELECT DISTINCT ON (\"file_id\") \"file_id\" AS pg_collect_link, \"size\", \"created_at\" FROM new_rows"), "{}", bulk.update);
        assert!(bulk
            .update
            .contains("ORDER BY \"file_id\", \"created_at\" DESC, \"id\" DESC)"));
        assert!(bulk.update.ends_with("ROW(pg_collect_new.\"created_at\") OPERATOR(pg_catalog.>) ROW(p.\"latest_created_at\"))"), "{}", bulk.update);
        assert!(bulk.ties.contains("ROW(p.\"latest_created_at\") OPERATOR(pg_catalog.=) ROW(pg_collect_new.\"created_at\")"));
        assert!(
            bulk.ties.ends_with(
                "AND ROW(p.\"latest_size\", p.\"latest_created_at\")::pg_catalog.record OPERATOR(pg_catalog.*<>) \
                 ROW(pg_collect_new.\"size\", pg_collect_new.\"created_at\")::pg_catalog.record"
            ),
            "an updated parent's copy equals its newest row: {}",
            bulk.ties
        );
        t.filter = Some("NOT deleted".into());
        assert!(t
            .insert_statements()
            .bulk
            .expect("a filter applies to the inserted rows")
            .update
            .contains("NOT deleted"));
        // The single-row path runs with the writer's search_path (src/latest/insert.rs): it
        // must never carry a filter, which is read with pg_catalog only.
        assert!(t.insert_statements().single.is_none());
        t.filter = None;
        t.order_by = vec!["version".into()];
        assert!(
            t.insert_statements().single.is_none(),
            "the ordering column is not copied"
        );
        assert!(t.insert_statements().bulk.is_none());
        t.order_by = vec!["created_at".into()];
        t.order_ops_builtin = false;
        assert!(t.insert_statements().single.is_none());
    }

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(ident("files"), "\"files\"");
        assert_eq!(ident("we\"ird name"), "\"we\"\"ird name\"");
        assert_eq!(literal("it's"), "'it''s'");
    }

    #[test]
    fn refresh_locks_in_key_order_before_recomputing() {
        let sql = files().refresh_function_sql();
        let lock = sql
            .find("ORDER BY \"id\" FOR NO KEY UPDATE")
            .expect("locks in key order");
        let update = sql
            .find("UPDATE \"public\".\"files\"")
            .expect("updates the parent");
        assert!(lock < update);
        assert!(
            sql.contains("ORDER BY \"created_at\" DESC, \"id\" DESC LIMIT 1"),
            "{sql}"
        );
        assert!(
            sql.contains("\"created_at\" IS NOT NULL AND (\nNOT deleted\n)"),
            "{sql}"
        );
        assert!(sql.contains(
            "ROW(pg_collect_parent.\"latest_size\", pg_collect_parent.\"latest_created_at\")::pg_catalog.record \
             OPERATOR(pg_catalog.*<>) ROW(pg_collect_latest.\"size\", pg_collect_latest.\"created_at\")::pg_catalog.record"
        ), "{sql}");
        assert!(sql.starts_with(
            "CREATE FUNCTION \"public\".\"files_latest_refresh\"(pg_collect_requested bigint[]) RETURNS bigint \
             LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp"
        ), "{sql}");
    }

    #[test]
    fn trigger_covers_every_operation() {
        let sql = files().trigger_function_sql();
        for op in ["'INSERT'", "'DELETE'", "'UPDATE'"] {
            assert!(sql.contains(op), "{op} missing");
        }
        assert!(
            sql.contains("SELECT DISTINCT \"file_id\" FROM old_rows WHERE"),
            "{sql}"
        );
        assert!(sql.contains("UNION SELECT DISTINCT \"file_id\" FROM new_rows WHERE"));
        assert!(sql.contains("WHERE NOT ROW(\"latest_size\", \"latest_created_at\") IS NULL"));
        // Every branch locks in key order, then recomputes.
        assert_eq!(sql.matches("ORDER BY \"id\" FOR NO KEY UPDATE").count(), 1);
        assert!(
            sql.rfind("FOR NO KEY UPDATE").unwrap()
                < sql.find("UPDATE \"public\".\"files\"").unwrap()
        );
    }

    #[test]
    fn shard_statements_pass_keys_as_text_and_lock_before_recomputing() {
        let s = files().shard_statements();
        assert!(
            s.inserted_keys
                .starts_with("SELECT ARRAY(SELECT DISTINCT \"file_id\" FROM new_rows WHERE"),
            "{}",
            s.inserted_keys
        );
        assert!(s.inserted_keys.ends_with("ORDER BY 1)::pg_catalog.text"));
        assert!(s.deleted_keys.contains("FROM old_rows") && !s.deleted_keys.contains("new_rows"));
        assert!(
            s.updated_keys.contains("FROM old_rows")
                && s.updated_keys
                    .contains("UNION SELECT DISTINCT \"file_id\" FROM new_rows")
        );
        assert!(s.keys_with_copies.contains("FROM \"public\".\"files\" WHERE NOT ROW(\"latest_size\", \"latest_created_at\") IS NULL"));
        assert_eq!(
            s.lock,
            "SELECT FROM \"public\".\"files\" WHERE \"id\" OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text::bigint[]) ORDER BY \"id\" FOR NO KEY UPDATE"
        );
        assert!(s.recompute.starts_with("UPDATE \"public\".\"files\""));
        assert!(s
            .recompute
            .contains("pg_catalog.unnest($1::pg_catalog.text::bigint[])"));
        assert_eq!(s.check, files().check_sql());
        assert_eq!(
            s.clear,
            "UPDATE \"public\".\"files\" SET \"latest_size\" = NULL, \"latest_created_at\" = NULL WHERE NOT ROW(\"latest_size\", \"latest_created_at\") IS NULL"
        );
        // Releases before 0.3.0 take them by position, in this order.
        let by_position = s.clone().in_release_order();
        assert_eq!(by_position.len(), 8);
        assert!(!by_position
            .iter()
            .any(|s| s.contains("pg_collect_keys") || s.ends_with(';')));
        assert_eq!(
            (&by_position[4], &by_position[5], &by_position[7]),
            (&s.lock, &s.recompute, &s.clear)
        );
    }

    #[test]
    fn triggers_carry_the_refresh_function_and_on_citus_the_spec() {
        let tables = [
            "\"public\".\"versions\"".to_string(),
            "\"public\".\"versions_1\"".to_string(),
        ];
        let local = files().trigger_sql(
            &tables,
            "files",
            "\"public\".\"files_latest_refresh\"",
            None,
        );
        assert_eq!(local.len(), 8);
        assert!(local[0].starts_with(
            "CREATE TRIGGER \"files_latest_insert\" AFTER INSERT ON \"public\".\"versions\""
        ));
        assert!(
            local[0].ends_with(
                "EXECUTE FUNCTION collect._latest_insert('\"public\".\"files_latest_refresh\"')"
            ),
            "{}",
            local[0]
        );
        assert!(local[1].ends_with("EXECUTE FUNCTION \"public\".\"files_latest_sync\"()"));
        assert!(local[7].starts_with(
            "CREATE TRIGGER \"files_latest_truncate\" AFTER TRUNCATE ON \"public\".\"versions_1\""
        ));
        let citus = files().trigger_sql(
            &tables[..1],
            "files",
            "\"public\".\"files_latest_refresh\"",
            Some("{\"a\": \"it's\"}"),
        );
        assert!(citus[0].ends_with(
            "collect._latest_insert('\"public\".\"files_latest_refresh\"', '{\"a\": \"it''s\"}')"
        ));
        assert!(citus[2].ends_with("collect._latest_shard_sync('\"public\".\"files_latest_refresh\"', '{\"a\": \"it''s\"}')"));
    }

    #[test]
    fn dollar_quotes_never_collide_with_the_filter() {
        let mut t = files();
        t.filter = Some("note <> '$latest$'".into());
        let sql = t.refresh_function_sql();
        assert!(sql.contains("AS $latest1$\n"), "{sql}");
        assert!(sql.ends_with("\n$latest1$"));
    }

    #[test]
    fn no_filter_means_only_non_null_order() {
        let mut t = files();
        t.filter = None;
        t.order_by = vec!["version".into(), "minor".into()];
        let sql = t.check_sql();
        assert!(sql.contains(
            "WHERE \"file_id\" OPERATOR(pg_catalog.=) pg_collect_parent.\"id\" AND \"version\" IS NOT NULL AND \"minor\" IS NOT NULL ORDER BY"
        ), "{sql}");
        assert!(sql.contains("ORDER BY \"version\" DESC, \"minor\" DESC, \"id\" DESC LIMIT 1"));
    }
}
