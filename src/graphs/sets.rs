//! Set operations over nodes' lists (FlockDB's "who follows both of these users"), exact
//! whatever the lists' sizes. Normal lists are read from their compact blocks a stripe at a
//! time (`lists`); other states, and graphs without compact lists, through the edge tables'
//! primary keys in node order and merged. A list much shorter than the others is probed into
//! them instead, one index lookup per element. Every read names one node, so on Citus each one
//! goes to the one shard holding that node's list.

use std::collections::VecDeque;

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiCursor};

use super::generate::{List, Tables};
use super::lists::Stripes;
use super::lists_core::{combine, STRIPES};
use super::sets_core::{plan, Op, Plan};
use super::sql::check_graph;
use crate::errors::raise;
use crate::errors::required;

const FETCH: i64 = 10_000;
/// Nodes looked up per index scan when probing.
const PROBE_BATCH: usize = 1_000;

fn spi_error(e: pgrx::spi::SpiError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI: {e}"),
        None,
    )
}

/// One node's list in node order, fetched a batch at a time.
struct Sorted<'conn> {
    cursor: SpiCursor<'conn>,
    buffer: VecDeque<i64>,
    done: bool,
}

impl<'conn> Sorted<'conn> {
    fn open(client: &SpiClient<'conn>, list: &List, node: i64, state: i16) -> Sorted<'conn> {
        let cursor = client.open_cursor(list.sorted_sql().as_str(), &[node.into(), state.into()]);
        Sorted {
            cursor,
            buffer: VecDeque::new(),
            done: false,
        }
    }

    fn peek(&mut self) -> Option<i64> {
        if self.buffer.is_empty() && !self.done {
            let batch = self.cursor.fetch(FETCH).unwrap_or_else(|e| spi_error(e));
            self.buffer
                .extend(batch.filter_map(|row| row.get::<i64>(1).ok().flatten()));
            self.done = self.buffer.len() < FETCH as usize;
            pgrx::check_for_interrupts!();
        }
        self.buffer.front().copied()
    }

    fn pop(&mut self) -> Option<i64> {
        let v = self.peek();
        self.buffer.pop_front();
        v
    }

    /// Skips to the first element at least `target`.
    fn seek(&mut self, target: i64) -> Option<i64> {
        while let Some(v) = self.peek() {
            if v >= target {
                return Some(v);
            }
            self.buffer.pop_front();
        }
        None
    }
}

/// Each list's exact size, from the counts, one node at a time (on Citus, each on its shard).
fn list_sizes(tables: &Tables, list: &List, nodes: &[i64], state: i16) -> Vec<i64> {
    let query = tables.count_sql();
    nodes
        .iter()
        .map(|node| {
            Spi::get_one_with_args::<i64>(
                &query,
                &[(*node).into(), list.direction.code().into(), state.into()],
            )
            .unwrap_or_else(|e| spi_error(e))
            .unwrap_or(0)
        })
        .collect()
}

/// Runs `op` over the lists of `nodes`, handing each result to `emit` in node order.
fn run(
    schema: Option<&str>,
    name: Option<&str>,
    op: Option<&str>,
    nodes: Option<Vec<Option<i64>>>,
    direction: Option<&str>,
    state: Option<i16>,
    emit: &mut dyn FnMut(i64),
) {
    let graph = check_graph(schema, name);
    let (schema, name) = (graph.schema, graph.name);
    let (op, direction, state) = (
        required(op, "op"),
        super::sql::direction(direction),
        required(state, "state"),
    );
    let nodes: Vec<i64> = required(nodes, "nodes")
        .into_iter()
        .map(|n| required(n, "node"))
        .collect();
    let op = Op::parse(op).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid set operation {op:?}"),
            None,
        )
    });
    if nodes.is_empty() {
        return;
    }
    let tables = Tables::of(schema, name);
    let list = tables.list(direction);
    let sizes = list_sizes(&tables, &list, &nodes, state);
    Spi::connect(|client| match plan(op, &sizes) {
        Plan::Empty => {}
        // Normal lists merge from their compact blocks, a stripe of every list at a time.
        Plan::Merge if state == 0 && graph.compact_lists => {
            let stripes = tables.stripes_sql();
            let mut readers: Vec<Stripes> = nodes
                .iter()
                .map(|n| Stripes::open(client, &stripes, *n, direction.code()))
                .collect();
            for s in 0..STRIPES {
                combine(op, readers.iter_mut().map(|r| r.stripe(s)).collect(), emit);
            }
        }
        Plan::Merge => {
            let mut lists: Vec<Sorted> = nodes
                .iter()
                .map(|n| Sorted::open(client, &list, *n, state))
                .collect();
            match op {
                Op::Intersect => intersect(&mut lists, emit),
                Op::Union => union(&mut lists, emit),
                Op::Difference => difference(&mut lists, emit),
            }
        }
        Plan::Probe {
            scan,
            into,
            keep_found,
        } => {
            // The scanned list a batch at a time; each batch looked up in each other list with
            // one index scan (= ANY of the batch).
            let probe = list.probe_sql();
            let mut scanned = Sorted::open(client, &list, nodes[scan], state);
            loop {
                let batch: Vec<i64> = std::iter::from_fn(|| scanned.pop())
                    .take(PROBE_BATCH)
                    .collect();
                if batch.is_empty() {
                    break;
                }
                let mut hits = vec![0usize; batch.len()];
                for &i in &into {
                    let found: std::collections::HashSet<i64> = client
                        .select(
                            &probe,
                            None,
                            &[nodes[i].into(), batch.clone().into(), state.into()],
                        )
                        .unwrap_or_else(|e| spi_error(e))
                        .filter_map(|row| row.get::<i64>(1).ok().flatten())
                        .collect();
                    for (h, v) in hits.iter_mut().zip(&batch) {
                        *h += usize::from(found.contains(v));
                    }
                }
                for (v, h) in batch.into_iter().zip(hits) {
                    let in_all = h == into.len();
                    let in_none = h == 0;
                    if (keep_found && in_all) || (!keep_found && in_none) {
                        emit(v);
                    }
                }
            }
        }
    });
}

fn intersect(lists: &mut [Sorted], emit: &mut dyn FnMut(i64)) {
    let Some(mut candidate) = lists[0].peek() else {
        return;
    };
    'outer: loop {
        for l in lists.iter_mut() {
            match l.seek(candidate) {
                None => return,
                Some(v) if v > candidate => {
                    candidate = v;
                    continue 'outer;
                }
                Some(_) => {}
            }
        }
        emit(candidate);
        lists[0].pop();
        match lists[0].peek() {
            Some(v) => candidate = v,
            None => return,
        }
    }
}

fn union(lists: &mut [Sorted], emit: &mut dyn FnMut(i64)) {
    loop {
        let Some(smallest) = lists.iter_mut().filter_map(|l| l.peek()).min() else {
            return;
        };
        emit(smallest);
        for l in lists.iter_mut() {
            if l.peek() == Some(smallest) {
                l.pop();
            }
        }
    }
}

fn difference(lists: &mut [Sorted], emit: &mut dyn FnMut(i64)) {
    let (a, rest) = lists.split_first_mut().expect("difference has two lists");
    while let Some(v) = a.pop() {
        if rest.iter_mut().all(|l| l.seek(v) != Some(v)) {
            emit(v);
        }
    }
}

/// The result as one array, which the SQL wrappers unnest: returning half a million rows one
/// call at a time costs more than finding them.
#[pg_extern(sql = false)]
fn graph_sets(
    schema: Option<&str>,
    name: Option<&str>,
    op: Option<&str>,
    nodes: Option<Vec<Option<i64>>>,
    direction: Option<&str>,
    state: Option<i16>,
) -> Vec<i64> {
    let mut out = Vec::new();
    run(schema, name, op, nodes, direction, state, &mut |v| {
        out.push(v)
    });
    out
}

#[pg_extern(sql = false)]
fn graph_sets_count(
    schema: Option<&str>,
    name: Option<&str>,
    op: Option<&str>,
    nodes: Option<Vec<Option<i64>>>,
    direction: Option<&str>,
    state: Option<i16>,
) -> i64 {
    let mut n = 0;
    run(schema, name, op, nodes, direction, state, &mut |_| n += 1);
    n
}
