//! The SQL of a graph: what `collect.create_graph` makes, and every statement the writes, the
//! reads, the set operations and `check_graph` run on its tables. Pure.

use serde::Serialize;

use super::lists_core::FIRST;
use crate::registry::names::{ident, literal, qualified};

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

    /// Adds to a writer's counter slot `$5` the count changes of a write, one per (node
    /// `$1`, direction `$2`, state `$3`) with change `$4`, in key order (writers touch counter
    /// rows in one order). Run as a kept plan at every write.
    pub fn counts_upsert_sql(&self) -> String {
        format!(
            "INSERT INTO {counts} AS c (node, direction, state, slot, n)\n \
             SELECT d.node, d.direction::pg_catalog.\"char\", d.state, $5, d.n\n   \
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.text[]), \
             pg_catalog.unnest($3::pg_catalog.int2[]), pg_catalog.unnest($4::pg_catalog.int8[])) AS d(node, direction, state, n)\n  \
             ORDER BY 1, 2, 3\n \
             ON CONFLICT (node, direction, state, slot) DO UPDATE SET n = c.n OPERATOR(pg_catalog.+) excluded.n",
            counts = self.counts
        )
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

impl Tables {
    /// The list a direction reads: `out` a node's destinations, `in` its sources.
    pub fn list(&self, direction: Direction) -> List {
        let (table, key, other) = match direction {
            Direction::Out => (&self.out, "source", "destination"),
            Direction::In => (&self.inward, "destination", "source"),
        };
        List {
            table: table.clone(),
            key: ident(key),
            other: ident(other),
            counts: self.counts.clone(),
            direction,
        }
    }

    /// $1 source, $2 destination: the edge's stored state code.
    pub fn state_sql(&self) -> String {
        format!(
            "SELECT state FROM {} WHERE source = $1 AND destination = $2",
            self.out
        )
    }

    /// $1 node, $2 direction code, $3 state code: how many edges the counts hold.
    pub fn count_sql(&self) -> String {
        format!(
            "SELECT coalesce(sum(n), 0)::int8 FROM {} WHERE node = $1 AND direction = $2::\"char\" AND state = $3",
            self.counts
        )
    }

    /// $1 node, $2 direction code: a node's normal list from its compact blocks, a stripe at a
    /// time.
    pub fn stripes_sql(&self) -> String {
        format!(
            "SELECT stripe, ids FROM {} WHERE node = $1 AND direction = $2::\"char\" ORDER BY stripe, lo",
            self.lists
        )
    }

    /// $1 whether the graph keeps compact lists: (part, mismatches) for each stored fact that
    /// restates another, 0 when they agree (`collect.check_graph`).
    pub fn check_sql(&self) -> String {
        let Tables {
            out,
            inward,
            counts,
            lists,
        } = self;
        format!(
            "WITH listed AS (SELECT l.node, l.direction, l.stripe, l.lo, id FROM {lists} l, unnest(collect._graph_block_ids(l.ids)) id),
     normal AS (SELECT source AS node, 'o'::\"char\" AS direction, destination AS id FROM {out} WHERE state = 0 AND $1
                UNION ALL SELECT destination, 'i', source FROM {inward} WHERE state = 0 AND $1)
SELECT 'backward', (SELECT count(*) FROM {out} o FULL JOIN {inward} i USING (source, destination)
                     WHERE o.state IS DISTINCT FROM i.state OR o.position IS DISTINCT FROM i.position)
UNION ALL
SELECT 'counts', (SELECT count(*) FROM (SELECT node, direction, state, sum(n) AS n FROM {counts} GROUP BY 1, 2, 3) c
                   WHERE n <> CASE direction
                             WHEN 'o' THEN (SELECT count(*) FROM {out} o WHERE o.source = c.node AND o.state = c.state)
                             ELSE (SELECT count(*) FROM {inward} i WHERE i.destination = c.node AND i.state = c.state) END)
                + (SELECT count(*) FROM (SELECT source, state FROM {out} GROUP BY 1, 2) e
                    WHERE NOT EXISTS (SELECT FROM {counts} c WHERE c.node = e.source AND c.direction = 'o' AND c.state = e.state))
UNION ALL
SELECT 'lists', (SELECT count(*) FROM (SELECT node, direction, id FROM listed EXCEPT ALL SELECT * FROM normal) x)
                + (SELECT count(*) FROM (SELECT * FROM normal EXCEPT ALL SELECT node, direction, id FROM listed) y)
UNION ALL
SELECT 'blocks', (SELECT count(*) FROM listed x
                   WHERE x.id < x.lo OR EXISTS (SELECT FROM {lists} n WHERE (n.node, n.direction, n.stripe) = (x.node, x.direction, x.stripe)
                                                               AND n.lo > x.lo AND n.lo <= x.id))
               + (SELECT count(*) FROM (SELECT node, direction, stripe FROM {lists} GROUP BY 1, 2, 3
                                        HAVING min(lo) <> ({FIRST})::int8) f)"
        )
    }

    /// What the reads of `collect.edges`, `edge_count`, `edge_state` and `check_graph` run,
    /// by name, for the list of `direction` (`collect._graph_reads`).
    pub fn reads(&self, direction: Direction) -> Reads {
        let list = self.list(direction);
        Reads {
            position: list.position_sql(),
            page: list.page_sql(false),
            page_before: list.page_sql(true),
            count: self.count_sql(),
            direction: direction.code(),
            state: self.state_sql(),
            check: self.check_sql(),
        }
    }
}

/// Which end of its edges a node's list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    /// The node's destinations (whom it follows), by source.
    Out,
    /// The node's sources (who follows it), by destination.
    In,
}

impl Direction {
    /// The hint of the error for any other word.
    pub const HINT: &'static str =
        "Directions are out (a node's destinations) and in (its sources).";

    /// `out` or `in`, as SQL callers write them.
    pub fn parse(word: &str) -> Option<Direction> {
        match word {
            "out" => Some(Direction::Out),
            "in" => Some(Direction::In),
            _ => None,
        }
    }

    /// The code the counts and compact lists store.
    pub fn code(self) -> &'static str {
        match self {
            Direction::Out => "o",
            Direction::In => "i",
        }
    }
}

/// One direction's edge table, with its key and other-end columns quoted.
#[derive(Debug, Clone)]
pub struct List {
    pub table: String,
    pub key: String,
    pub other: String,
    pub counts: String,
    pub direction: Direction,
}

impl List {
    /// $1 node, $2 state code: the node's list in node order.
    pub fn sorted_sql(&self) -> String {
        let List {
            table, key, other, ..
        } = self;
        format!("SELECT {other} FROM {table} WHERE {key} = $1 AND state = $2 ORDER BY {other}")
    }

    /// $1 node, $2 other ends, $3 state code: which of them the node's list holds.
    pub fn probe_sql(&self) -> String {
        let List {
            table, key, other, ..
        } = self;
        format!(
            "SELECT {other} FROM {table} WHERE {key} = $1 AND {other} = ANY ($2) AND state = $3"
        )
    }

    /// $1 node, $2 other end: the position of that edge (a page's cursor).
    pub fn position_sql(&self) -> String {
        let List {
            table, key, other, ..
        } = self;
        format!("SELECT position FROM {table} WHERE {key} = $1 AND {other} = $2")
    }

    /// $1 node, $2 state code, $3 cursor's position, $4 cursor, $5 page size: (node, position,
    /// cursor) newest first, from after the cursor, or the page before it (`before`), one
    /// index range each.
    pub fn page_sql(&self, before: bool) -> String {
        let List {
            table, key, other, ..
        } = self;
        if before {
            format!(
                "SELECT * FROM (SELECT {other}, position, {other} FROM {table} WHERE {key} = $1 AND state = $2 AND (position, {other}) > ($3, $4)
                 ORDER BY position, {other} LIMIT $5) p ORDER BY 2 DESC, 1 DESC"
            )
        } else {
            format!(
                "SELECT {other}, position, {other} FROM {table} WHERE {key} = $1 AND state = $2 AND ($3::int8 IS NULL OR (position, {other}) < ($3, $4))
                 ORDER BY position DESC, {other} DESC LIMIT $5"
            )
        }
    }
}

/// The reads of one list, by name (`Tables::reads`).
#[derive(Debug, Clone, Serialize)]
pub struct Reads {
    pub position: String,
    pub page: String,
    pub page_before: String,
    pub count: String,
    /// The list's direction code, as `count` takes it.
    pub direction: &'static str,
    pub state: String,
    pub check: String,
}

/// The statements that keep a graph's compact lists, by name (`src/graphs/lists.rs`). A group
/// is (node, direction, stripe). For `one` group, parameters are that group's scalars and
/// every statement names one shard's rows (on Citus); otherwise arrays, one element a group
/// or block.
#[derive(Debug, Clone)]
pub struct BlockStatements {
    /// Locks the groups' first blocks (their gates), in key order.
    pub gate: String,
    /// The blocks from the one holding `a` to the one holding `b`.
    pub range: String,
    /// Makes the groups' first blocks where missing; returns the groups made.
    pub first: String,
    pub update: String,
    pub insert: String,
    pub delete: String,
}

impl BlockStatements {
    pub fn of(lists: &str, one: bool) -> BlockStatements {
        if one {
            let group = "l.node = $1 AND l.direction = $2::\"char\" AND l.stripe = $3";
            return BlockStatements {
                gate: format!("SELECT FROM {lists} l WHERE {group} AND l.lo = {FIRST} FOR UPDATE"),
                range: format!(
                    "SELECT l.node, l.direction::text, l.stripe, l.lo, l.ids FROM {lists} l
                      WHERE {group} AND l.lo <= $5
                        AND l.lo >= (SELECT max(f.lo) FROM {lists} f WHERE f.node = $1 AND f.direction = $2::\"char\" AND f.stripe = $3 AND f.lo <= $4)
                      ORDER BY l.lo",
                ),
                first: format!(
                    "INSERT INTO {lists} (node, direction, stripe, lo, ids) VALUES ($1, $2::\"char\", $3, {FIRST}, ''::bytea)
                     ON CONFLICT DO NOTHING RETURNING node, direction::text, stripe"
                ),
                update: format!("UPDATE {lists} l SET ids = $5 WHERE {group} AND l.lo = $4"),
                insert: format!("INSERT INTO {lists} (node, direction, stripe, lo, ids) VALUES ($1, $2::\"char\", $3, $4, $5)"),
                delete: format!("DELETE FROM {lists} l WHERE {group} AND l.lo = $4 AND $5 IS NOT NULL"),
            };
        }
        let group =
            "l.node = g.node AND l.direction = g.direction::\"char\" AND l.stripe = g.stripe";
        let row = "l.node = r.node AND l.direction = r.direction::\"char\" AND l.stripe = r.stripe AND l.lo = r.lo";
        // The arrays' rows, estimated at one: a write's groups are few (two for an edge), and a
        // plan kept for the session must probe the primary key per group whatever the table's
        // size when it was planned. Estimated at unnest's default of ten, a new graph's plans
        // hashed a scan of the whole lists table, and every write grew slower with it until
        // autovacuum analyzed the table (a LIMIT that is a parameter counts a tenth of its input).
        let few = |unnest: &str, alias: &str| {
            format!("(SELECT * FROM {unnest} LIMIT pg_catalog.cardinality($1::int8[])) {alias}")
        };
        let groups = few(
            "unnest($1::int8[], $2::text[], $3::int2[])",
            "g(node, direction, stripe)",
        );
        let rows = few(
            "unnest($1::int8[], $2::text[], $3::int2[], $4::int8[], $5::bytea[])",
            "r(node, direction, stripe, lo, ids)",
        );
        let ranges = few(
            "unnest($1::int8[], $2::text[], $3::int2[], $4::int8[], $5::int8[])",
            "g(node, direction, stripe, a, b)",
        );
        let firsts = few(
            "unnest($1::int8[], $2::text[], $3::int2[], $4::bytea[])",
            "g(node, direction, stripe, ids)",
        );
        BlockStatements {
            gate: format!(
                "SELECT FROM {groups} JOIN {lists} l ON {group} AND l.lo = {FIRST}
                  ORDER BY l.node, l.direction, l.stripe FOR UPDATE OF l"
            ),
            range: format!(
                "SELECT l.node, l.direction::text, l.stripe, l.lo, l.ids
                   FROM {ranges}
                   JOIN {lists} l ON {group} AND l.lo <= g.b
                    AND l.lo >= (SELECT max(f.lo) FROM {lists} f
                                  WHERE f.node = g.node AND f.direction = g.direction::\"char\" AND f.stripe = g.stripe AND f.lo <= g.a)
                  ORDER BY 1, 2, 3, 4"
            ),
            first: format!(
                "INSERT INTO {lists} (node, direction, stripe, lo, ids)
                 SELECT node, direction::\"char\", stripe, {FIRST}, coalesce(ids, ''::bytea)
                   FROM {firsts}
                  WHERE NOT EXISTS (SELECT FROM {lists} l WHERE {group} AND l.lo = {FIRST})
                  ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING RETURNING node, direction::text, stripe"
            ),
            update: format!("UPDATE {lists} l SET ids = r.ids FROM {rows} WHERE {row}"),
            insert: format!("INSERT INTO {lists} (node, direction, stripe, lo, ids) SELECT node, direction::\"char\", stripe, lo, ids FROM {rows}"),
            delete: format!("DELETE FROM {lists} l USING {rows} WHERE {row}"),
        }
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

    #[test]
    fn each_direction_reads_its_own_table_and_columns() {
        let tables = Tables::of("s", "g");
        let out = tables.list(Direction::Out);
        assert_eq!(out.table, "\"s\".\"g_out\"");
        assert_eq!(
            out.position_sql(),
            "SELECT position FROM \"s\".\"g_out\" WHERE \"source\" = $1 AND \"destination\" = $2"
        );
        let inward = tables.list(Direction::In);
        assert!(inward
            .sorted_sql()
            .starts_with("SELECT \"source\" FROM \"s\".\"g_in\" WHERE \"destination\" = $1"));
        let reads = tables.reads(Direction::In);
        assert_eq!(reads.direction, "i");
        assert!(reads
            .page
            .contains("ORDER BY position DESC, \"source\" DESC LIMIT $5"));
        assert!(reads
            .page_before
            .contains("(position, \"source\") > ($3, $4)"));
        assert!(reads
            .check
            .contains("HAVING min(lo) <> (-9223372036854775808)::int8"));
        assert_eq!(Direction::parse("out"), Some(Direction::Out));
        assert_eq!(Direction::parse("OUT"), None);
    }

    #[test]
    fn block_statements_for_one_group_take_scalars_and_for_many_arrays() {
        let one = BlockStatements::of("\"s\".\"g_lists\"", true);
        assert!(one
            .gate
            .contains("l.node = $1 AND l.direction = $2::\"char\" AND l.stripe = $3"));
        assert!(one.gate.ends_with("FOR UPDATE"));
        let many = BlockStatements::of("\"s\".\"g_lists\"", false);
        assert!(many
            .update
            .contains("unnest($1::int8[], $2::text[], $3::int2[], $4::int8[], $5::bytea[])"));
        assert!(many.gate.contains("FOR UPDATE OF l"));
        // Every statement over the arrays estimates them at one row (see `of`).
        for statement in [
            &many.gate,
            &many.range,
            &many.first,
            &many.update,
            &many.delete,
        ] {
            assert!(
                statement.contains(") LIMIT pg_catalog.cardinality($1::int8[])) "),
                "{statement}"
            );
        }
    }

    #[test]
    fn counts_are_added_in_key_order_with_qualified_names() {
        let sql = Tables::of("app", "Follows").counts_upsert_sql();
        assert!(
            sql.starts_with("INSERT INTO \"app\".\"Follows_counts\" AS c"),
            "{sql}"
        );
        assert!(sql.contains("ORDER BY 1, 2, 3"));
        assert!(sql.contains("n = c.n OPERATOR(pg_catalog.+) excluded.n"));
        assert!(sql.contains("ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), "));
    }
}
