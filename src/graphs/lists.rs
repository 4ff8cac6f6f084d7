//! A graph's compact lists (`g_lists`, see `lists_core`): kept in step with the edges in the
//! writer's transaction, read by set operations.
//!
//! A stripe's first block (`lo` = `FIRST`, never deleted) is its gate: a writer locks the
//! first blocks of the stripes it changes, in key order, and only then reads the blocks it
//! will rewrite, by a new statement that sees every writer that held the gate before. Readers
//! take no locks. Under REPEATABLE READ the read may miss a split committed after the
//! snapshot, but a split always rewrites the block it splits, which this write then rewrites
//! too: Postgres refuses that (40001) instead of losing it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiCursor};
use pgrx::{pg_sys, PgOid};

use super::edge::State;
use super::generate::BlockStatements;
use super::lists_core::{
    decode_into, encode, rewrite, stripe, Changes, Corrupt, Rewrite, BLOCK_BYTES,
};
use crate::errors::raise;

fn spi_error(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI: {e}"),
        None,
    )
}

fn corrupt(_: Corrupt) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        "a block of a graph's lists is not a list of ids".into(),
        None,
    )
}

/// (node, direction "o" or "i", stripe)
type Group = (i64, &'static str, i16);

/// The changes a write batch makes to the normal lists.
#[derive(Default)]
pub(super) struct ListChanges(BTreeMap<Group, Changes>);

impl ListChanges {
    pub(super) fn moved(&mut self, source: i64, destination: i64, from: Option<State>, to: State) {
        let (was, is) = (from == Some(State::Normal), to == State::Normal);
        if was == is {
            return;
        }
        self.0
            .entry((source, "o", stripe(destination)))
            .or_default()
            .push(destination, is);
        self.0
            .entry((destination, "i", stripe(source)))
            .or_default()
            .push(source, is);
    }

    pub(super) fn apply(mut self, lists: &str) {
        if self.0.is_empty() {
            return;
        }
        for changes in self.0.values_mut() {
            changes.settle();
        }
        if crate::registry::citus_present() {
            // On Citus a statement over many nodes cannot be routed to one shard: a group at a time.
            for (group, changes) in self.0 {
                let one = BTreeMap::from([(group, changes)]);
                apply_groups(&one, &Statements::unprepared(lists));
            }
        } else {
            apply_groups(&self.0, &statements(lists));
        }
    }
}

/// Blocks as read: group → (lo, ids) in lo order.
type Blocks = BTreeMap<Group, Vec<(i64, Vec<i64>)>>;

fn apply_groups(groups: &BTreeMap<Group, Changes>, statements: &Statements) {
    Spi::connect_mut(|client| {
        // Each stripe's first block, made by whoever writes it first — for all groups before any
        // is locked: an uncommitted first block is another writer's hold on its stripe, and
        // waiting for it while holding stripes could close a cycle. A stripe made here with
        // only additions that fit one block is made whole (an import's new nodes) and is done.
        let keys: Vec<Group> = groups.keys().copied().collect();
        let whole: Vec<Option<Vec<u8>>> = groups
            .values()
            .map(|c| {
                Some(encode(&c.add))
                    .filter(|b| c.remove.is_empty() && b.len() <= BLOCK_BYTES && !statements.one)
            })
            .collect();
        let extra = if statements.one {
            Vec::new()
        } else {
            vec![Column::OptionalBytea(whole.clone())]
        };
        let made: HashSet<Group> = run(
            client,
            &statements.first,
            args(&keys, extra, statements.one),
        )
        .map(|row| {
            let direction: String = row.get(2).ok().flatten().unwrap_or_default();
            (
                row.get(1).ok().flatten().unwrap_or(0),
                if direction == "o" { "o" } else { "i" },
                row.get(3).ok().flatten().unwrap_or(0),
            )
        })
        .collect();
        let rest: Vec<usize> = (0..keys.len())
            .filter(|&i| !(whole[i].is_some() && made.contains(&keys[i])))
            .collect();
        if rest.is_empty() {
            return;
        }
        let keys: Vec<Group> = rest.iter().map(|&i| keys[i]).collect();
        let low: Vec<i64> = keys.iter().map(|g| groups[g].low()).collect();
        let high: Vec<i64> = keys.iter().map(|g| groups[g].high()).collect();
        // Then the stripes' first blocks, locked in key order: whoever holds a stripe's first
        // block alone changes its blocks.
        let gates = run(
            client,
            &statements.gate,
            args(&keys, Vec::new(), statements.one),
        )
        .len();
        if gates != keys.len() {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!(
                    "{} of the {} stripes written lack their first block",
                    keys.len() - gates,
                    keys.len()
                ),
                Some("collect.check_graph(graph) shows what else disagrees.".into()),
            );
        }
        // Read by a new statement, so after every writer that held these stripes before.
        let blocks = read_blocks(client, statements, &keys, &low, &high);
        let (mut updates, mut inserts, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
        for group in &keys {
            for Rewrite { lo, keep, split } in rewrite(&blocks[group], &groups[group]) {
                match keep {
                    Some(bytes) => updates.push((*group, lo, bytes)),
                    None => deletes.push((*group, lo, Vec::new())),
                }
                inserts.extend(split.into_iter().map(|(lo, bytes)| (*group, lo, bytes)));
            }
        }
        for (statement, rows) in [
            (&statements.update, updates),
            (&statements.insert, inserts),
            (&statements.delete, deletes),
        ] {
            if !rows.is_empty() {
                let (groups, rest): (Vec<Group>, Vec<(i64, Vec<u8>)>) =
                    rows.into_iter().map(|(g, lo, b)| (g, (lo, b))).unzip();
                let (los, bytes): (Vec<i64>, Vec<Vec<u8>>) = rest.into_iter().unzip();
                run(
                    client,
                    statement,
                    args(
                        &groups,
                        vec![Column::Int8(los), Column::Bytea(bytes)],
                        statements.one,
                    ),
                );
            }
        }
    });
}

/// A statement's arguments: the groups' columns, then `extra`; one group's as scalars (`one`).
fn args(
    groups: &[Group],
    extra: Vec<Column>,
    one: bool,
) -> Vec<pgrx::datum::DatumWithOid<'static>> {
    let mut columns = vec![
        Column::Int8(groups.iter().map(|g| g.0).collect()),
        Column::Text(groups.iter().map(|g| g.1.to_string()).collect()),
        Column::Int2(groups.iter().map(|g| g.2).collect()),
    ];
    columns.extend(extra);
    columns.into_iter().map(|c| c.datum(one)).collect()
}

enum Column {
    Int8(Vec<i64>),
    Int2(Vec<i16>),
    Text(Vec<String>),
    Bytea(Vec<Vec<u8>>),
    OptionalBytea(Vec<Option<Vec<u8>>>),
}

impl Column {
    fn datum(self, one: bool) -> pgrx::datum::DatumWithOid<'static> {
        fn first<T>(v: Vec<T>) -> T {
            v.into_iter().next().expect("one group has one row")
        }
        match (self, one) {
            (Column::Int8(v), false) => v.into(),
            (Column::Int8(v), true) => first(v).into(),
            (Column::Int2(v), false) => v.into(),
            (Column::Int2(v), true) => first(v).into(),
            (Column::Text(v), false) => v.into(),
            (Column::Text(v), true) => first(v).into(),
            (Column::Bytea(v), false) => v.into(),
            (Column::Bytea(v), true) => first(v).into(),
            (Column::OptionalBytea(v), false) => v.into(),
            (Column::OptionalBytea(v), true) => first(v).into(),
        }
    }
}

fn read_blocks(
    client: &mut SpiClient,
    statements: &Statements,
    keys: &[Group],
    low: &[i64],
    high: &[i64],
) -> Blocks {
    let extra = vec![Column::Int8(low.to_vec()), Column::Int8(high.to_vec())];
    let rows = run(client, &statements.range, args(keys, extra, statements.one));
    let mut blocks: Blocks = BTreeMap::new();
    for row in rows {
        let node: i64 = row.get(1).ok().flatten().unwrap_or(0);
        let direction: String = row.get(2).ok().flatten().unwrap_or_default();
        let stripe: i16 = row.get(3).ok().flatten().unwrap_or(0);
        let lo: i64 = row.get(4).ok().flatten().unwrap_or(0);
        let mut ids = Vec::new();
        let bytes: &[u8] = row.get(5).ok().flatten().unwrap_or_default();
        decode_into(bytes, &mut ids).unwrap_or_else(|e| corrupt(e));
        let group = (node, if direction == "o" { "o" } else { "i" }, stripe);
        blocks.entry(group).or_default().push((lo, ids));
    }
    blocks
}

fn run<'c>(
    client: &mut SpiClient<'c>,
    statement: &Statement,
    args: Vec<pgrx::datum::DatumWithOid<'static>>,
) -> pgrx::spi::SpiTupleTable<'c> {
    match statement {
        Statement::Prepared(p) => client.update(p, None, &args),
        Statement::Text(q) => client.update(q.as_str(), None, &args),
    }
    .unwrap_or_else(|e| spi_error(e))
}

enum Statement {
    Prepared(OwnedPreparedStatement),
    Text(String),
}

/// The statements of list writes (`BlockStatements`). Each takes its groups' nodes, directions
/// and stripes ($1, $2, $3) then $4 and $5: as arrays, or, on Citus (`one`), one group's as
/// scalars, so that the distribution column is a parameter and the statement goes to one shard.
struct Statements {
    gate: Statement,
    range: Statement,
    first: Statement,
    update: Statement,
    insert: Statement,
    delete: Statement,
    one: bool,
}

impl Statements {
    fn unprepared(lists: &str) -> Statements {
        let texts = BlockStatements::of(lists, true);
        Statements {
            gate: Statement::Text(texts.gate),
            range: Statement::Text(texts.range),
            first: Statement::Text(texts.first),
            update: Statement::Text(texts.update),
            insert: Statement::Text(texts.insert),
            delete: Statement::Text(texts.delete),
            one: true,
        }
    }
}

thread_local! {
    static PLANS: RefCell<HashMap<String, Rc<Statements>>> = RefCell::new(HashMap::new());
}

/// The statements for `lists` (a qualified table name; search_path is pinned), prepared once
/// per session.
fn statements(lists: &str) -> Rc<Statements> {
    if let Some(s) = PLANS.with(|p| p.borrow().get(lists).cloned()) {
        return s;
    }
    let int8a = PgOid::from(pg_sys::INT8ARRAYOID);
    let texta = PgOid::from(pg_sys::TEXTARRAYOID);
    let int2a = PgOid::from(pg_sys::INT2ARRAYOID);
    let byteaa = PgOid::from(unsafe { pg_sys::get_array_type(pg_sys::BYTEAOID) });
    let texts = BlockStatements::of(lists, false);
    let statements = Spi::connect_mut(|client| {
        let prepare = |text: &str, types: &[PgOid]| {
            Statement::Prepared(
                client
                    .prepare_mut(text, types)
                    .unwrap_or_else(|e| spi_error(e))
                    .keep(),
            )
        };
        Rc::new(Statements {
            gate: prepare(&texts.gate, &[int8a, texta, int2a]),
            range: prepare(&texts.range, &[int8a, texta, int2a, int8a, int8a]),
            first: prepare(&texts.first, &[int8a, texta, int2a, byteaa]),
            update: prepare(&texts.update, &[int8a, texta, int2a, int8a, byteaa]),
            insert: prepare(&texts.insert, &[int8a, texta, int2a, int8a, byteaa]),
            delete: prepare(&texts.delete, &[int8a, texta, int2a, int8a, byteaa]),
            one: false,
        })
    });
    PLANS.with(|p| p.borrow_mut().insert(lists.to_string(), statements.clone()));
    statements
}

/// The ids a block holds (for `collect.check_graph`).
#[pg_extern(sql = false, immutable, strict, parallel_safe)]
fn graph_block_ids(ids: &[u8]) -> Vec<i64> {
    super::lists_core::decode(ids).unwrap_or_else(|e| corrupt(e))
}

/// One node's normal list, a stripe at a time.
pub(super) struct Stripes<'conn> {
    cursor: SpiCursor<'conn>,
    buffer: VecDeque<(i16, Vec<u8>)>,
    done: bool,
}

const FETCH: i64 = 1_000;

impl<'conn> Stripes<'conn> {
    pub(super) fn open(
        client: &SpiClient<'conn>,
        stripes_sql: &str,
        node: i64,
        direction: &str,
    ) -> Stripes<'conn> {
        let cursor = client.open_cursor(stripes_sql, &[node.into(), direction.into()]);
        Stripes {
            cursor,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    /// The ids of stripe `s`, sorted; stripes are asked for in order.
    pub(super) fn stripe(&mut self, s: i16) -> Vec<i64> {
        let mut ids = Vec::new();
        loop {
            if self.buffer.is_empty() && !self.done {
                let batch = self.cursor.fetch(FETCH).unwrap_or_else(|e| spi_error(e));
                self.buffer.extend(batch.map(|row| {
                    let stripe: i16 = row.get(1).ok().flatten().unwrap_or(0);
                    (
                        stripe,
                        row.get::<&[u8]>(2)
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                            .to_vec(),
                    )
                }));
                self.done = self.buffer.len() < FETCH as usize;
                pgrx::check_for_interrupts!();
            }
            match self.buffer.front() {
                Some((t, bytes)) if *t == s => {
                    decode_into(bytes, &mut ids).unwrap_or_else(|e| corrupt(e));
                    self.buffer.pop_front();
                }
                _ => return ids,
            }
        }
    }
}
