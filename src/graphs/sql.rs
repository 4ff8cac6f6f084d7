//! Writes to a graph's stored edges (sql/graphs.sql declares them): each edge is locked in
//! (source, destination) order, its next state computed by `super::edge`, the forward and
//! backward rows written, and the per-node counts moved by the difference — all in the
//! caller's transaction.
//!
//! Storage of a graph `g` in its schema:
//! - `g_out(source, destination, state, position, state_at, position_at, first_at,
//!   archived_from)`: the edge as written, keyed by (source, destination);
//! - `g_in(destination, source, state, position)`: the same edge seen from its destination;
//! - `g_counts(node, direction, state, slot, n)`: edges per node, direction and state, spread
//!   over slots so that writers to one popular node do not queue on one row.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid};

use super::edge::{Edge, State, Write};
use super::generate::{Direction, Tables};
use super::lists::ListChanges;
use crate::errors::{raise, required};
use crate::registry::citus_present;

/// Counter slots per (node, direction, state): a writer adds to the slot of its backend.
const SLOTS: i32 = 16;

fn spi_error(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI: {e}"),
        None,
    )
}

fn state_of(code: i16) -> State {
    State::from_code(code).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("stored edge state {code} is not a state"),
            None,
        )
    })
}

/// `collect._graph_create_sql(schema, name)`: the tables of a new graph, as {tables, create}
/// (`generate::Tables`).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn graph_create_sql(schema: &str, name: &str) -> crate::jsonb::JsonbValue {
    let tables = Tables::of(schema, name);
    crate::jsonb::JsonbValue::serialize(
        &serde_json::json!({"create": tables.create_sql(name), "tables": tables}),
    )
}

/// A list's direction as SQL callers name it: 22004 when NULL, 22023 naming any other word.
pub(super) fn direction(word: Option<&str>) -> Direction {
    let word = required(word, "direction");
    Direction::parse(word).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid direction: {}", crate::registry::literal(word)),
            Some(Direction::HINT.into()),
        )
    })
}

/// `collect._graph_reads(schema, name, direction)`: the statements the reads run on that
/// list, by name (`generate::Tables::reads`).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn graph_reads(
    schema: Option<&str>,
    name: Option<&str>,
    direction: Option<&str>,
) -> crate::jsonb::JsonbValue {
    let tables = Tables::of(required(schema, "schema"), required(name, "name"));
    crate::jsonb::JsonbValue::serialize(&tables.reads(self::direction(direction)))
}

/// `collect._edge_state_code(state)`: the stored code of a state named in SQL (`edge::State`
/// is the one list of states and codes).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn graph_state_code(state: Option<&str>) -> i16 {
    let Some(state) = state else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "state must not be NULL".into(),
            None,
        )
    };
    State::parse(state).map(State::code).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid state: {}", crate::registry::literal(state)),
            Some("States are normal, removed, archived and negative.".into()),
        )
    })
}

/// `collect._edge_state_name(code)`: a stored state's name; NULL for NULL (no edge).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn graph_state_name(code: Option<i16>) -> Option<&'static str> {
    code.map(|code| state_of(code).name())
}

/// What the state changes of one write batch do to the counts and the compact lists,
/// applied at its end, each in key order.
#[derive(Default)]
struct Moves {
    counts: BTreeMap<(i64, &'static str, i16), i64>,
    lists: ListChanges,
    compact_lists: bool,
}

impl Moves {
    fn moved(&mut self, source: i64, destination: i64, from: Option<State>, to: State) {
        if from == Some(to) {
            return;
        }
        if self.compact_lists {
            self.lists.moved(source, destination, from, to);
        }
        for (node, direction) in [(source, "o"), (destination, "i")] {
            if let Some(from) = from {
                *self
                    .counts
                    .entry((node, direction, from.code()))
                    .or_default() -= 1;
            }
            *self.counts.entry((node, direction, to.code())).or_default() += 1;
        }
    }

    fn apply(self, tables: &Tables) {
        self.lists.apply(&tables.lists);
        let slot = (unsafe { pg_sys::MyProcPid } % SLOTS) as i16;
        let deltas: Vec<_> = self.counts.into_iter().filter(|(_, n)| *n != 0).collect();
        if deltas.is_empty() {
            return;
        }
        let (nodes, rest): (Vec<i64>, Vec<_>) = deltas
            .iter()
            .map(|((node, dir, state), n)| (*node, (*dir, *state, *n)))
            .unzip();
        let directions: Vec<String> = rest.iter().map(|(d, _, _)| d.to_string()).collect();
        let states: Vec<i16> = rest.iter().map(|(_, s, _)| *s).collect();
        let counts: Vec<i64> = rest.iter().map(|(_, _, n)| *n).collect();
        let args = [
            nodes.into(),
            directions.into(),
            states.into(),
            counts.into(),
            slot.into(),
        ];
        if citus_present() {
            // Citus routes an INSERT … SELECT only with its parameters' values at hand: no
            // plan is kept for a counts table it may distribute.
            Spi::run_with_args(&tables.counts_upsert_sql(), &args)
        } else {
            let plan = counts_plan(tables);
            Spi::connect_mut(|client| client.update(&*plan, None, &args).map(|_| ()))
        }
        .unwrap_or_else(|e| spi_error(e));
    }
}

/// The edge stored in a locked row (state, state_at, position, position_at, first_at,
/// first_add, ...).
fn stored_edge(row: &pgrx::spi::SpiTupleTable) -> Option<Edge> {
    let get = |i: usize| row.get::<i64>(i).unwrap_or_else(|e| spi_error(e));
    let state: i16 = row.get(1).ok().flatten()?;
    let first_add: bool = row.get(6).ok().flatten()?;
    Some(Edge {
        state: state_of(state),
        state_at: get(2)?,
        position: get(3)?,
        position_at: get(4),
        first_at: get(5)?,
        first_add,
    })
}

/// The statements of a graph's edge writes, prepared once per session and graph (names are
/// qualified and search_path is pinned, so a plan never resolves to another table; a table
/// recreated under the same name is planned again by Postgres).
struct WritePlans {
    lock: OwnedPreparedStatement,
    insert: OwnedPreparedStatement,
    update: OwnedPreparedStatement,
    mirror: OwnedPreparedStatement,
}

thread_local! {
    static COUNTS_PLANS: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
    static WRITE_PLANS: RefCell<HashMap<(String, String), Rc<WritePlans>>> = RefCell::new(HashMap::new());
}

/// The counts upsert of a graph's counts table (`Tables::counts_upsert_sql`), prepared once
/// per session: every write runs it.
fn counts_plan(tables: &Tables) -> Rc<OwnedPreparedStatement> {
    if let Some(plan) = COUNTS_PLANS.with(|p| p.borrow().get(&tables.counts).cloned()) {
        return plan;
    }
    let plan = Rc::new(Spi::connect_mut(|client| {
        let types = [
            pg_sys::INT8ARRAYOID,
            pg_sys::TEXTARRAYOID,
            pg_sys::INT2ARRAYOID,
            pg_sys::INT8ARRAYOID,
            pg_sys::INT2OID,
        ]
        .map(PgOid::from);
        client
            .prepare_mut(tables.counts_upsert_sql().as_str(), &types)
            .unwrap_or_else(|e| spi_error(e))
            .keep()
    }));
    COUNTS_PLANS.with(|p| p.borrow_mut().insert(tables.counts.clone(), plan.clone()));
    plan
}

fn write_plans(schema: &str, name: &str, tables: &Tables) -> Rc<WritePlans> {
    let key = (schema.to_string(), name.to_string());
    if let Some(plans) = WRITE_PLANS.with(|p| p.borrow().get(&key).cloned()) {
        return plans;
    }
    let plans = Rc::new(Spi::connect_mut(|client| {
        let int8 = PgOid::from(pg_sys::INT8OID);
        let int2 = PgOid::from(pg_sys::INT2OID);
        let boolean = PgOid::from(pg_sys::BOOLOID);
        let lock = client
            .prepare_mut(
                format!(
                    "SELECT state, state_at, position, position_at, first_at, first_add FROM {out}
                      WHERE source = $1 AND destination = $2 FOR UPDATE",
                    out = tables.out
                )
                .as_str(),
                &[int8, int8],
            )
            .unwrap_or_else(|e| spi_error(e))
            .keep();
        let insert = client
            .prepare_mut(
                format!(
                    "INSERT INTO {out} (source, destination, state, state_at, position, position_at, first_at, first_add)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, destination) DO NOTHING",
                    out = tables.out
                )
                .as_str(),
                &[int8, int8, int2, int8, int8, int8, int8, boolean],
            )
            .unwrap_or_else(|e| spi_error(e))
            .keep();
        let update = client
            .prepare_mut(
                format!(
                    "UPDATE {out} SET state = $3, state_at = $4, position = $5, position_at = $6, first_at = $7,
                            first_add = $8, archived_from = NULL
                      WHERE source = $1 AND destination = $2",
                    out = tables.out
                )
                .as_str(),
                &[int8, int8, int2, int8, int8, int8, int8, boolean],
            )
            .unwrap_or_else(|e| spi_error(e))
            .keep();
        let mirror = client
            .prepare_mut(
                format!(
                    "INSERT INTO {inward} AS e (destination, source, state, position) VALUES ($2, $1, $3, $4)
                     ON CONFLICT (destination, source) DO UPDATE SET state = excluded.state, position = excluded.position",
                    inward = tables.inward
                )
                .as_str(),
                &[int8, int8, int2, int8],
            )
            .unwrap_or_else(|e| spi_error(e))
            .keep();
        WritePlans {
            lock,
            insert,
            update,
            mirror,
        }
    }));
    WRITE_PLANS.with(|p| p.borrow_mut().insert(key, plans.clone()));
    plans
}

/// From this many edges on, a write runs as a few set-based statements.
const BULK: usize = 64;

/// Column arrays of edges, for statements over `unnest(...)`.
#[derive(Default)]
struct EdgeColumns {
    source: Vec<i64>,
    destination: Vec<i64>,
    state: Vec<i16>,
    state_at: Vec<i64>,
    position: Vec<i64>,
    position_at: Vec<Option<i64>>,
    first_at: Vec<i64>,
    first_add: Vec<bool>,
}

impl EdgeColumns {
    fn push(&mut self, (source, destination): (i64, i64), e: &Edge) {
        self.source.push(source);
        self.destination.push(destination);
        self.state.push(e.state.code());
        self.state_at.push(e.state_at);
        self.position.push(e.position);
        self.position_at.push(e.position_at);
        self.first_at.push(e.first_at);
        self.first_add.push(e.first_add);
    }

    fn args(&self) -> Vec<pgrx::datum::DatumWithOid<'_>> {
        vec![
            self.source.clone().into(),
            self.destination.clone().into(),
            self.state.clone().into(),
            self.state_at.clone().into(),
            self.position.clone().into(),
            self.position_at.clone().into(),
            self.first_at.clone().into(),
            self.first_add.clone().into(),
        ]
    }
}

const EDGE_COLUMNS: &str = "unnest($1::int8[], $2::int8[], $3::int2[], $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::bool[])
    AS e(source, destination, state, state_at, position, position_at, first_at, first_add)";

/// Applies `writes` with a few set-based statements. One statement, in key order, inserts
/// each edge that is new and locks (and reads) each that exists — the order every writer takes
/// edges in, so bulk and single writers never wait on each other in a cycle; the edges the rule
/// changes are then updated together. Returns how many edges changed.
fn write_in_bulk(tables: &Tables, writes: &BTreeMap<(i64, i64), Write>, moves: &mut Moves) -> i64 {
    let mut proposed = EdgeColumns::default();
    for (key, write) in writes {
        proposed.push(*key, &Edge::new(*write));
    }
    let (mut updated, mut mirrored) = (EdgeColumns::default(), EdgeColumns::default());
    let mut changed = 0;
    Spi::connect_mut(|client| {
        // A conflicting row is "updated" to itself: that locks it and returns what it holds.
        let rows = client
            .update(
                format!(
                    "INSERT INTO {out} AS o (source, destination, state, state_at, position, position_at, first_at, first_add)
                     SELECT * FROM {EDGE_COLUMNS} ORDER BY 1, 2
                     ON CONFLICT (source, destination) DO UPDATE SET state = o.state
                     RETURNING o.source, o.destination, o.state, o.state_at, o.position, o.position_at, o.first_at, o.first_add,
                               o.xmax = 0",
                    out = tables.out
                )
                .as_str(),
                None,
                &proposed.args(),
            )
            .unwrap_or_else(|e| spi_error(e));
        for row in rows {
            let key: (i64, i64) = (
                row.get(1).ok().flatten().unwrap_or(0),
                row.get(2).ok().flatten().unwrap_or(0),
            );
            let stored = Edge {
                state: state_of(row.get(3).ok().flatten().unwrap_or(0)),
                state_at: row.get(4).ok().flatten().unwrap_or(0),
                position: row.get(5).ok().flatten().unwrap_or(0),
                position_at: row.get(6).ok().flatten(),
                first_at: row.get(7).ok().flatten().unwrap_or(0),
                first_add: row.get(8).ok().flatten().unwrap_or(false),
            };
            let inserted: bool = row.get(9).ok().flatten().unwrap_or(false);
            if inserted {
                mirrored.push(key, &stored);
                moves.moved(key.0, key.1, None, stored.state);
                changed += 1;
                continue;
            }
            let after = stored.apply(writes[&key]);
            if after == stored {
                continue;
            }
            updated.push(key, &after);
            if (stored.state, stored.position) != (after.state, after.position) {
                mirrored.push(key, &after);
            }
            moves.moved(key.0, key.1, Some(stored.state), after.state);
            changed += 1;
        }
        if !updated.source.is_empty() {
            client
                .update(
                    format!(
                        "UPDATE {out} o SET state = e.state, state_at = e.state_at, position = e.position, position_at = e.position_at,
                                first_at = e.first_at, first_add = e.first_add, archived_from = NULL
                           FROM {EDGE_COLUMNS} WHERE o.source = e.source AND o.destination = e.destination",
                        out = tables.out
                    )
                    .as_str(),
                    None,
                    &updated.args(),
                )
                .unwrap_or_else(|e| spi_error(e));
        }
        if !mirrored.source.is_empty() {
            client
                .update(
                    format!(
                        "INSERT INTO {inward} AS i (destination, source, state, position)
                         SELECT destination, source, state, position FROM {EDGE_COLUMNS} ORDER BY 1, 2
                         ON CONFLICT (destination, source) DO UPDATE SET state = excluded.state, position = excluded.position",
                        inward = tables.inward
                    )
                    .as_str(),
                    None,
                    &mirrored.args(),
                )
                .unwrap_or_else(|e| spi_error(e));
        }
    });
    changed
}

/// A graph checked for use: its schema, name, and whether it keeps compact lists.
pub(super) struct Graph<'a> {
    pub schema: &'a str,
    pub name: &'a str,
    pub compact_lists: bool,
}

/// The two statements that read a graph's definition, kept for the session: every write and
/// set operation reads one.
#[derive(Hash, PartialEq, Eq)]
enum DefinitionStatement {
    /// Whether it keeps compact lists, when its definition holds (`collect._graph_verify`,
    /// which Postgres inlines here: no function call per write).
    Found,
    /// The same through `collect._graph_def`, which raises the error of a name without a graph
    /// or of a definition that does not hold.
    Checked,
}

thread_local! {
    static DEFINITION: crate::plans::Session<DefinitionStatement> =
        crate::plans::Session::new("graph definition");
}

const DEFINITION_FOUND: &str = "SELECT d.compact_lists FROM collect.graph_defs d
  WHERE (d.schema, d.name) OPERATOR(pg_catalog.=) ($1::pg_catalog.name, $2) AND collect._graph_verify(d)";
const DEFINITION_CHECKED: &str =
    "SELECT (collect._graph_def($1::pg_catalog.name, $2)).compact_lists";

/// Raises unless schema.name is a graph whose tables belong to its owner (the same check the
/// SQL functions make): these functions are reachable from SQL, so they check for themselves.
/// A NULL graph (one no name resolved to) is looked up as such, to say it does not exist.
pub(super) fn check_graph<'a>(schema: Option<&'a str>, name: Option<&'a str>) -> Graph<'a> {
    let types = [pg_sys::TEXTOID, pg_sys::TEXTOID];
    let compact_lists = Spi::connect(|client| {
        let args = [schema.into(), name.into()];
        let read = |key: DefinitionStatement, sql: &'static str| {
            let statement = DEFINITION
                .with(|kept| kept.statement(client, key, &types, false, || sql.to_string()));
            client
                .select(statement.as_ref(), Some(1), &args)
                .unwrap_or_else(|e| spi_error(e))
                .next()
                .map(|row| row.get::<bool>(1).ok().flatten().unwrap_or(false))
        };
        read(DefinitionStatement::Found, DEFINITION_FOUND)
            .or_else(|| read(DefinitionStatement::Checked, DEFINITION_CHECKED))
    })
    .unwrap_or(false);
    match (schema, name) {
        (Some(schema), Some(name)) => Graph {
            schema,
            name,
            compact_lists,
        },
        _ => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "graph name must not be NULL".into(),
            None,
        ),
    }
}

/// Applies one write to each (source, destination) pair; returns how many edges changed.
/// `positions` is empty or as long as the pairs.
#[pg_extern(sql = false)]
fn graph_write(
    schema: Option<&str>,
    name: Option<&str>,
    sources: Option<Vec<Option<i64>>>,
    destinations: Option<Vec<Option<i64>>>,
    state: Option<i16>,
    positions: Option<Vec<Option<i64>>>,
    at_us: Option<i64>,
) -> i64 {
    let (Some(sources), Some(destinations), Some(at_us)) = (sources, destinations, at_us) else {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "an edge write needs its nodes and its time, not NULL".into(),
            None,
        )
    };
    let graph = check_graph(schema, name);
    let (schema, name) = (graph.schema, graph.name);
    let state = state_of(required(state, "state"));
    let positions = positions.unwrap_or_default();
    if sources.len() != destinations.len()
        || (!positions.is_empty() && positions.len() != sources.len())
    {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{} sources, {} destinations and {} positions do not pair up",
                sources.len(),
                destinations.len(),
                positions.len()
            ),
            Some("Give one destination (and, if any, one position) per source.".into()),
        );
    }
    // One write per pair, in key order: the locks of concurrent batches are taken in one order.
    let mut writes: BTreeMap<(i64, i64), Write> = BTreeMap::new();
    for (i, (s, d)) in sources.iter().zip(&destinations).enumerate() {
        let (Some(s), Some(d)) = (s, d) else {
            raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("edge {} has a NULL node", i + 1),
                None,
            )
        };
        let write = Write {
            at: at_us,
            state,
            position: positions.get(i).copied().flatten(),
        };
        // Two writes to one edge in one call share instant and state: the rule keeps the larger
        // position given.
        writes
            .entry((*s, *d))
            .and_modify(|w| w.position = w.position.max(write.position))
            .or_insert(write);
    }
    let tables = Tables::of(schema, name);
    let mut moves = Moves {
        compact_lists: graph.compact_lists,
        ..Moves::default()
    };
    let mut changed = 0;
    if writes.len() >= BULK && !citus_present() {
        let changed = write_in_bulk(&tables, &writes, &mut moves);
        moves.apply(&tables);
        return changed;
    }
    let plans = write_plans(schema, name, &tables);
    Spi::connect_mut(|client| {
        let (lock, insert, update, mirror) =
            (&plans.lock, &plans.insert, &plans.update, &plans.mirror);
        for ((source, destination), write) in writes {
            // An addition is most often of a new edge: it tries the insert first (one
            // statement); other writes most often change an edge that exists: they lock it first.
            let mut insert_first = write.state == State::Normal;
            let (before, after) = loop {
                if !insert_first {
                    let rows = client
                        .update(lock, None, &[source.into(), destination.into()])
                        .unwrap_or_else(|e| spi_error(e));
                    if let Some(before) = stored_edge(&rows.first()) {
                        break (Some(before), before.apply(write));
                    }
                }
                let new = Edge::new(write);
                let inserted = client
                    .update(
                        insert,
                        None,
                        &[
                            source.into(),
                            destination.into(),
                            new.state.code().into(),
                            new.state_at.into(),
                            new.position.into(),
                            new.position_at.into(),
                            new.first_at.into(),
                            new.first_add.into(),
                        ],
                    )
                    .unwrap_or_else(|e| spi_error(e))
                    .len();
                if inserted == 1 {
                    break (None, new);
                }
                // There already, or inserted meanwhile by another transaction, now committed:
                // lock that row.
                insert_first = false;
            };
            if before == Some(after) {
                continue;
            }
            if before.is_some() {
                client
                    .update(
                        update,
                        None,
                        &[
                            source.into(),
                            destination.into(),
                            after.state.code().into(),
                            after.state_at.into(),
                            after.position.into(),
                            after.position_at.into(),
                            after.first_at.into(),
                            after.first_add.into(),
                        ],
                    )
                    .unwrap_or_else(|e| spi_error(e));
            }
            if before.map(|b| (b.state, b.position)) != Some((after.state, after.position)) {
                client
                    .update(
                        mirror,
                        None,
                        &[
                            source.into(),
                            destination.into(),
                            after.state.code().into(),
                            after.position.into(),
                        ],
                    )
                    .unwrap_or_else(|e| spi_error(e));
            }
            moves.moved(source, destination, before.map(|b| b.state), after.state);
            changed += 1;
            pgrx::check_for_interrupts!();
        }
    });
    moves.apply(&tables);
    changed
}

/// Archives every normal or negative edge of `node`, both directions (`archive`), or restores
/// the edges an archive changed (`!archive`), if `at_us` is newer than their last write.
/// Returns how many edges changed.
#[pg_extern(sql = false)]
fn graph_archive(
    schema: Option<&str>,
    name: Option<&str>,
    node: Option<i64>,
    archive: Option<bool>,
    at_us: Option<i64>,
) -> i64 {
    let graph = check_graph(schema, name);
    let (schema, name) = (graph.schema, graph.name);
    let (node, archive, at_us) = (
        required(node, "node"),
        required(archive, "archive"),
        required(at_us, "at"),
    );
    let tables = Tables::of(schema, name);
    // The node's edges, both directions, in key order.
    let pairs: Vec<(i64, i64)> = Spi::connect(|client| {
        client
            .select(
                &format!(
                    "SELECT source, destination FROM {out} WHERE source = $1
                     UNION SELECT source, destination FROM {inward} WHERE destination = $1
                     ORDER BY 1, 2",
                    out = tables.out,
                    inward = tables.inward
                ),
                None,
                &[node.into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .map(|row| {
                (
                    row.get::<i64>(1).ok().flatten().unwrap_or(0),
                    row.get::<i64>(2).ok().flatten().unwrap_or(0),
                )
            })
            .collect()
    });
    let mut moves = Moves {
        compact_lists: graph.compact_lists,
        ..Moves::default()
    };
    let mut changed = 0;
    Spi::connect_mut(|client| {
        let int8 = PgOid::from(pg_sys::INT8OID);
        let int2 = PgOid::from(pg_sys::INT2OID);
        let lock = client
            .prepare_mut(
                format!(
                    "SELECT state, state_at, position, position_at, first_at, first_add, archived_from FROM {out}
                      WHERE source = $1 AND destination = $2 FOR UPDATE",
                    out = tables.out
                )
                .as_str(),
                &[int8, int8],
            )
            .unwrap_or_else(|e| spi_error(e));
        let update = client
            .prepare_mut(
                format!(
                    "UPDATE {out} SET state = $3, state_at = $4, archived_from = $5 WHERE source = $1 AND destination = $2",
                    out = tables.out
                )
                .as_str(),
                &[int8, int8, int2, int8, int2],
            )
            .unwrap_or_else(|e| spi_error(e));
        let mirror = client
            .prepare_mut(
                format!(
                    "UPDATE {inward} SET state = $3 WHERE destination = $2 AND source = $1",
                    inward = tables.inward
                )
                .as_str(),
                &[int8, int8, int2],
            )
            .unwrap_or_else(|e| spi_error(e));
        for (source, destination) in pairs {
            let rows = client
                .update(&lock, None, &[source.into(), destination.into()])
                .unwrap_or_else(|e| spi_error(e));
            let row = rows.first();
            let Some(before) = stored_edge(&row) else {
                continue;
            };
            let archived_from: Option<i16> = row.get(7).unwrap_or_else(|e| spi_error(e));
            let (target, marker) = match (archive, before.state, archived_from) {
                (true, State::Normal | State::Negative, _) => {
                    (State::Archived, Some(before.state.code()))
                }
                (false, State::Archived, Some(from)) => (state_of(from), None),
                _ => continue,
            };
            let after = before.apply(Write {
                at: at_us,
                state: target,
                position: None,
            });
            if after.state != target {
                continue; // an older archive or unarchive than the edge's last write
            }
            client
                .update(
                    &update,
                    None,
                    &[
                        source.into(),
                        destination.into(),
                        after.state.code().into(),
                        after.state_at.into(),
                        marker.into(),
                    ],
                )
                .unwrap_or_else(|e| spi_error(e));
            client
                .update(
                    &mirror,
                    None,
                    &[source.into(), destination.into(), after.state.code().into()],
                )
                .unwrap_or_else(|e| spi_error(e));
            moves.moved(source, destination, Some(before.state), after.state);
            changed += 1;
        }
    });
    moves.apply(&tables);
    changed
}
