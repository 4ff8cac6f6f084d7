//! One statement's inserted rows rolled up: read from the statement's transition table (a
//! table source) or buffer (a view that keeps no rows), aggregated in memory (`partials`) and
//! merged with one upsert per table. Where the rollup's columns or a row's values are for
//! Postgres to decide (a type this path does not read, a value an aggregate refuses, more
//! groups than `collect.rollup_work_mem` allows), the generated SQL statements roll the rows
//! up instead, over the same rows exposed as `new_rows`.

use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{Internal, PgMemoryContexts};

use super::generate::{Rollup, Targets};
use super::partials::{Aggregator, Cell, Columns, Kind, Plan, Thresholds, Value, Wire};
use crate::errors::raise;

/// Default 256 MB: a batch ten times what the README suggests sending fits well within it.
static MAX_LUMP_BYTES: GucSetting<i32> = GucSetting::<i32>::new(256 << 10);
static WORK_MEM: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024);

pub fn init() {
    GucRegistry::define_int_guc(
        c"collect.rollup_work_mem",
        c"Memory one statement's or batch's events may take while rolled up in memory.",
        c"Beyond it, the events are rolled up by SQL statements instead, which spill to disk.",
        &WORK_MEM,
        1024,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"collect.max_batch_bytes",
        c"What one batch of events given to collect.ingest may inflate to.",
        c"A batch that inflates past it is refused (54000) before the rest is inflated. At most 1 GB, a text value's limit.",
        &MAX_LUMP_BYTES,
        1024,
        (1 << 20) - 1,
        GucContext::Suset,
        GucFlags::UNIT_KB,
    );
}

/// `collect.max_batch_bytes` in bytes.
pub fn max_batch_bytes() -> usize {
    usize::try_from(MAX_LUMP_BYTES.get())
        .unwrap_or(0)
        .saturating_mul(1024)
}

/// `collect.rollup_work_mem` in bytes.
pub fn work_mem() -> usize {
    usize::try_from(WORK_MEM.get())
        .unwrap_or(0)
        .saturating_mul(1024)
}

fn spi_error(what: &str, e: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("rollup {what}: {e}"),
        None,
    )
}

/// Per table, before which bucket events are late and from which they are kept, as now.
pub fn thresholds(client: &mut SpiClient, rollup: &Rollup) -> Vec<Thresholds> {
    let row = client
        .select(&rollup.thresholds(), Some(1), &[])
        .unwrap_or_else(|e| spi_error("thresholds", e));
    let (late, keep) = row
        .first()
        .get_two::<Vec<i64>, Vec<Option<i64>>>()
        .unwrap_or_else(|e| spi_error("thresholds", e));
    let (late, keep) = (late.unwrap_or_default(), keep.unwrap_or_default());
    late.into_iter()
        .zip(keep)
        .map(|(late_before, keep_from)| Thresholds {
            late_before,
            keep_from,
        })
        .collect()
}

/// Merges the partial rows of each table into its target, passing each column as an array
/// of its values (no text to format and parse back).
pub fn merge_partials(rollup: &Rollup, targets: &Targets, plan: &Plan, tables: Vec<Columns>) {
    let dimension_types: Vec<&str> = plan
        .dimensions
        .iter()
        .map(|(_, kind)| kind.sql_type())
        .collect();
    let time_type = if plan.with_zone {
        pg_sys::TIMESTAMPTZOID
    } else {
        pg_sys::TIMESTAMPOID
    };
    let wires = plan.wires();
    let elements: Vec<(String, pg_sys::Oid)> = wires
        .iter()
        .map(|wire| match wire {
            Wire::Time => (rollup.time_type.clone(), time_type),
            Wire::Int8 => ("pg_catalog.int8".into(), pg_sys::INT8OID),
            Wire::Float8 => ("pg_catalog.float8".into(), pg_sys::FLOAT8OID),
            Wire::Text => ("pg_catalog.text".into(), pg_sys::TEXTOID),
            Wire::Sketch(name) => (name.to_string(), sketch_type(name)),
        })
        .collect();
    let wire_names: Vec<&str> = elements.iter().map(|(name, _)| name.as_str()).collect();
    for (columns, target) in tables.into_iter().zip(&targets.tables) {
        if columns[0].is_empty() {
            continue;
        }
        let statement = rollup.upsert_partials(target, &dimension_types, &wire_names);
        // SAFETY: inside SPI; the arrays are made in the SPI procedure's memory context.
        unsafe {
            let types: Vec<pg_sys::Oid> = elements
                .iter()
                .map(|(_, oid)| pg_sys::get_array_type(*oid))
                .collect();
            let plan = kept_plan(statement, types);
            let mut values: Vec<pg_sys::Datum> = columns
                .iter()
                .zip(&elements)
                .map(|(cells, (_, oid))| array(cells, *oid))
                .collect();
            let rc =
                pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), std::ptr::null(), false, 0);
            if rc < 0 {
                spi_error("upsert", rc);
            }
        }
    }
}

thread_local! {
    /// The session's upsert plans, by statement and parameter types (a type's oid changes
    /// when the extension is made again). Postgres' plan cache replans one when a table it
    /// names changes, and privileges are checked at each execution, so a plan serves every
    /// role. Planning an upsert costs as much as running it for a batch's few hundred rows.
    static UPSERT_PLANS: std::cell::RefCell<HashMap<(String, Vec<pg_sys::Oid>), pg_sys::SPIPlanPtr>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Plans kept per session at most; past it a statement's plan lasts as long as its SPI call.
const KEPT_UPSERT_PLANS: usize = 64;

/// The plan of `statement`, prepared on first use (generic, since its parameters are arrays
/// whose contents do not change the plan) and kept while there is room.
///
/// # Safety
/// Inside SPI.
unsafe fn kept_plan(statement: String, mut types: Vec<pg_sys::Oid>) -> pg_sys::SPIPlanPtr {
    use crate::plans::{keep, prepare, Planning};
    let key = (statement, types.clone());
    if let Some(plan) = UPSERT_PLANS.with_borrow(|plans| plans.get(&key).copied()) {
        return plan;
    }
    // SAFETY: inside SPI; a kept plan lives in the cache memory context.
    unsafe {
        let plan = prepare("rollup upsert", &key.0, &mut types, Planning::Generic);
        // Never freed: an upsert may run inside another (a trigger on a rollup table writing
        // a source), and freeing a plan under a running execution would pull it away.
        if UPSERT_PLANS.with_borrow(|plans| plans.len()) < KEPT_UPSERT_PLANS {
            keep("rollup upsert", plan);
            UPSERT_PLANS.with_borrow_mut(|plans| plans.insert(key, plan));
        }
        plan
    }
}

/// The type oid of a sketch type, by its qualified name.
fn sketch_type(name: &str) -> pg_sys::Oid {
    let (schema, type_name) = name.split_once('.').expect("a qualified sketch type");
    let (schema, type_name) = (
        std::ffi::CString::new(schema).unwrap(),
        std::ffi::CString::new(type_name).unwrap(),
    );
    // SAFETY: catalog lookups by name.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(schema.as_ptr(), false);
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as i32,
            pg_sys::Anum_pg_type_oid as i16,
            pg_sys::Datum::from(type_name.as_ptr()),
            pg_sys::Datum::from(namespace),
            pg_sys::Datum::from(0usize),
            pg_sys::Datum::from(0usize),
        )
    }
}

/// A one-dimensional array of `element` values made of `cells`.
unsafe fn array(cells: &[Cell], element: pg_sys::Oid) -> pg_sys::Datum {
    // SAFETY: every datum is made as `element` stores it: by value for integers, floats and
    // times, a palloc'd varlena for text and sketches.
    unsafe {
        let varlena = |bytes: &[u8]| {
            let v = pg_sys::palloc(pg_sys::VARHDRSZ + bytes.len()).cast::<pg_sys::varlena>();
            pgrx::varlena::set_varsize_4b(v, (pg_sys::VARHDRSZ + bytes.len()) as i32);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                pgrx::varlena::vardata_4b(v).cast_mut().cast::<u8>(),
                bytes.len(),
            );
            pg_sys::Datum::from(v)
        };
        let mut nulls: Vec<bool> = cells.iter().map(|c| *c == Cell::Null).collect();
        let mut datums: Vec<pg_sys::Datum> = cells
            .iter()
            .map(|cell| match cell {
                Cell::Null => pg_sys::Datum::from(0usize),
                Cell::Int(i) => pg_sys::Datum::from(*i),
                Cell::Float(f) => pg_sys::Datum::from(f.to_bits()),
                Cell::Text(t) => varlena(t.as_bytes()),
                Cell::Bytes(b) => varlena(b),
            })
            .collect();
        let (mut length, mut by_value, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(element, &mut length, &mut by_value, &mut align);
        let mut dims = [cells.len() as i32];
        let mut lower = [1i32];
        let array = pg_sys::construct_md_array(
            datums.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lower.as_mut_ptr(),
            element,
            length.into(),
            by_value,
            align,
        );
        pg_sys::Datum::from(array)
    }
}

/// Whether text read from the database is UTF-8, as the sketches and JSON see it.
pub fn text_is_utf8() -> bool {
    // SAFETY: reads the database's encoding.
    unsafe { pg_sys::GetDatabaseEncoding() == pg_sys::pg_enc::PG_UTF8 as i32 }
}

/// A column of the rows' descriptor: its position and how its values are read.
struct Column {
    index: usize,
    kind: Kind,
}

/// A column of `tupdesc`: its name, index, type and collation.
type Attribute = (String, usize, pg_sys::Oid, pg_sys::Oid);

/// Where each column the rollup reads sits in `tupdesc`, and how it is read; None when some
/// column is of a type this path does not read, or is a dimension compared by a
/// nondeterministic collation.
unsafe fn columns(rollup: &Rollup, tupdesc: pg_sys::TupleDesc) -> Option<(usize, Vec<Attribute>)> {
    // SAFETY: the caller's descriptor is valid; attributes are read within natts.
    unsafe {
        // Borrowed, not reference counted: the descriptor stays the caller's.
        let descriptor = pgrx::tupdesc::PgTupleDesc::from_pg_unchecked(tupdesc);
        let attributes: Vec<Attribute> = descriptor
            .iter()
            .filter(|a| !a.attisdropped)
            .map(|a| {
                let name = CStr::from_ptr(a.attname.data.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                (name, a.attnum as usize - 1, a.atttypid, a.attcollation)
            })
            .collect();
        let time = attributes.iter().find(|a| a.0 == rollup.time_column)?;
        let time_type = match time.2 {
            pg_sys::TIMESTAMPTZOID => "timestamp with time zone",
            pg_sys::TIMESTAMPOID => "timestamp without time zone",
            _ => return None,
        };
        if time_type != rollup.time_type {
            return None;
        }
        for dimension in &rollup.dimensions {
            let column = attributes.iter().find(|a| a.0 == *dimension)?;
            if matches!(column.2, pg_sys::TEXTOID | pg_sys::VARCHAROID)
                && !pg_sys::get_collation_isdeterministic(column.3)
            {
                return None;
            }
        }
        Some((time.1, attributes))
    }
}

fn kind_of_type(oid: pg_sys::Oid, utf8: bool) -> Option<Kind> {
    Kind::of(match oid {
        pg_sys::INT2OID => "smallint",
        pg_sys::INT4OID => "integer",
        pg_sys::INT8OID => "bigint",
        pg_sys::FLOAT4OID => "real",
        pg_sys::FLOAT8OID => "double precision",
        pg_sys::TEXTOID | pg_sys::VARCHAROID if utf8 => "text",
        _ => return None,
    })
}

/// Reads the rows of `store` (laid out as `tupdesc`) into partial rows; None when they are for
/// SQL to roll up (see the module's comment).
unsafe fn aggregate_rows(
    client: &mut SpiClient,
    rollup: &Rollup,
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
) -> Option<(Plan, Vec<Columns>)> {
    // SAFETY: `store` and `tupdesc` are the statement's; the slot reads the store through a
    // read pointer of its own, as a scan of a transition table does.
    unsafe {
        let (time_index, attributes) = columns(rollup, tupdesc)?;
        let utf8 = text_is_utf8();
        let attribute = |name: &str| attributes.iter().find(|a| a.0 == name);
        let plan = Plan::new(
            rollup,
            |c| kind_of_type(attribute(c)?.2, utf8),
            &thresholds(client, rollup),
        )?;
        let dimensions: Vec<Column> = plan
            .dimensions
            .iter()
            .map(|(name, kind)| Column {
                index: attribute(name).expect("planned").1,
                kind: *kind,
            })
            .collect();
        let metrics: Vec<Column> = plan
            .metrics
            .iter()
            .map(|(_, name, kind)| Column {
                index: attribute(name).expect("planned").1,
                kind: *kind,
            })
            .collect();
        let last = dimensions
            .iter()
            .chain(&metrics)
            .map(|c| c.index)
            .chain([time_index])
            .max()
            .expect("a time column")
            + 1;
        let budget = work_mem();
        let slot = pg_sys::MakeSingleTupleTableSlot(tupdesc, &pg_sys::TTSOpsMinimalTuple);
        let pointer = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, pointer);
        pg_sys::tuplestore_rescan(store);
        // Values stored compressed or out of line are inflated here, one row at a time.
        let mut detoasted = PgMemoryContexts::new("pg_collect rollup row");
        let mut detoasted_any = false;
        let mut aggregator = Aggregator::new(&plan);
        let mut dimension_values: Vec<Value> = Vec::with_capacity(dimensions.len());
        let mut metric_values: Vec<Value> = Vec::with_capacity(metrics.len());
        let complete = loop {
            if !pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
                break true;
            }
            pg_sys::slot_getsomeattrs_int(slot, last as i32);
            let values = (*slot).tts_values;
            let nulls = (*slot).tts_isnull;
            if *nulls.add(time_index) {
                // SQL names the missing time.
                break false;
            }
            let time = (*values.add(time_index)).value() as i64;
            let mut read = |column: &Column| -> Option<Value<'static>> {
                if *nulls.add(column.index) {
                    return Some(Value::Null);
                }
                let datum = *values.add(column.index);
                Some(match column.kind {
                    Kind::Int(min, _) if min == i16::MIN as i64 => {
                        Value::Int(i64::from(datum.value() as i16))
                    }
                    Kind::Int(min, _) if min == i32::MIN as i64 => {
                        Value::Int(i64::from(datum.value() as i32))
                    }
                    Kind::Int(..) => Value::Int(datum.value() as i64),
                    Kind::Float4 => Value::Float(f64::from(f32::from_bits(datum.value() as u32))),
                    Kind::Float8 => Value::Float(f64::from_bits(datum.value() as u64)),
                    Kind::Text => {
                        let mut text = datum.cast_mut_ptr::<pg_sys::varlena>();
                        if pgrx::varlena::varatt_is_4b_c(text)
                            || pgrx::varlena::varatt_is_1b_e(text)
                        {
                            text = detoasted.switch_to(|_| pg_sys::pg_detoast_datum_packed(text));
                            detoasted_any = true;
                        }
                        // Lives until the row's values are aggregated: the slot's tuple, or
                        // the row's context.
                        Value::Text(std::borrow::Cow::Borrowed(
                            pgrx::varlena::varlena_to_byte_slice(text),
                        ))
                    }
                })
            };
            dimension_values.clear();
            metric_values.clear();
            let mut readable = true;
            for column in &dimensions {
                match read(column) {
                    Some(v) => dimension_values.push(v),
                    None => readable = false,
                }
            }
            for column in &metrics {
                match read(column) {
                    Some(v) => metric_values.push(v),
                    None => readable = false,
                }
            }
            if !readable
                || aggregator
                    .add(time, &dimension_values, &metric_values)
                    .is_none()
            {
                break false;
            }
            dimension_values.clear();
            metric_values.clear();
            if detoasted_any {
                detoasted.reset();
                detoasted_any = false;
            }
            if aggregator.heap_bytes() > budget {
                break false;
            }
        };
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        let tables = if complete { aggregator.finish() } else { None };
        tables.map(|tables| (plan, tables))
    }
}

/// Rolls up the rows of one statement, held in `store` as `tupdesc` lays them out, into
/// `targets`. `expose` makes them visible to SQL as `new_rows`, for the SQL path.
///
/// # Safety
/// `store` and `tupdesc` must be the statement's rows and their descriptor.
pub unsafe fn roll_up(
    rollup: &Rollup,
    targets: &Targets,
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    expose: impl FnOnce(),
) {
    // SAFETY: the store is the statement's; see aggregate_rows.
    if unsafe { pg_sys::tuplestore_tuple_count(store) } == 0 {
        return;
    }
    Spi::connect_mut(|client| {
        if let Some((plan, tables)) = unsafe { aggregate_rows(client, rollup, store, tupdesc) } {
            merge_partials(rollup, targets, &plan, tables);
            return;
        }
        pgrx::debug1!(
            "rollup {}: the statement's rows are rolled up by SQL",
            rollup.tables[0].table.sql()
        );
        expose();
        for statement in rollup.ingest_statements(targets) {
            client
                .update(statement.as_str(), None, &[])
                .unwrap_or_else(|e| spi_error("upsert", e));
        }
    });
}

/// The rollup a trigger writes and the tables it writes, as `collect._rollup_trigger_targets`
/// describes them (trusting the registry, or on a Citus worker the shards of one owner).
#[derive(serde::Deserialize)]
struct TriggerTargets {
    spec: Rollup,
    tables: Option<Vec<String>>,
    stale: Option<String>,
}

/// The rollup and tables of the trigger (schema, name, version, spec) fired on `source`.
pub fn trigger_targets(
    args: &[String],
    source: pg_sys::Oid,
    spec: Option<&str>,
) -> (Rollup, Targets) {
    let version: i32 = args[2]
        .parse()
        .unwrap_or_else(|_| protocol_violation("collect._rollup_ingest"));
    let described: Option<pgrx::JsonB> = Spi::get_one_with_args(
        "SELECT collect._rollup_trigger_targets($1, $2, $3, $4, $5::pg_catalog.jsonb, 'ingest')",
        &[
            args[0].as_str().into(),
            args[1].as_str().into(),
            version.into(),
            source.into(),
            spec.into(),
        ],
    )
    .unwrap_or_else(|e| spi_error("lookup", e));
    // The lookup raises an error for a trigger that is not the rollup's; it never answers NULL.
    let described = described.unwrap_or_else(|| spi_error("lookup", "no answer"));
    let mut described: TriggerTargets =
        serde_json::from_value(described.0).unwrap_or_else(|e| spi_error("lookup", e));
    described.spec.vocabulary = crate::registry::installed_vocabulary();
    let targets = described
        .spec
        .targets(described.tables, described.stale)
        .unwrap_or_else(|| spi_error("lookup", "shards do not match the rollup's tables"));
    (described.spec, targets)
}

fn protocol_violation(function: &str) -> ! {
    crate::registry::trigger_protocol_violation(
        function,
        "an AFTER INSERT statement trigger with a transition table, made by collect.create_rollup",
        "collect.create_rollup",
    )
}

/// AFTER INSERT, FOR EACH STATEMENT, REFERENCING NEW TABLE AS new_rows, on a rollup's source
/// table (or a shard of it): arguments (schema, name, version, spec).
#[pg_extern(sql = false)]
fn rollup_ingest(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: the call's context is checked to be trigger data before anything is read.
    unsafe {
        let td = crate::registry::after_insert_statement_trigger(fcinfo, 4..=4)
            .unwrap_or_else(|| protocol_violation("collect._rollup_ingest"));
        let trigger = (*td).tg_trigger;
        let relation = (*td).tg_relation;
        if pg_sys::tuplestore_tuple_count((*td).tg_newtable) == 0 {
            return Internal::from(Some(pg_sys::Datum::from(0usize)));
        }
        let args: Vec<String> = (0..4)
            .map(|i| {
                CStr::from_ptr(*(*trigger).tgargs.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let (rollup, targets) = trigger_targets(&args, (*relation).rd_id, Some(&args[3]));
        roll_up(
            &rollup,
            &targets,
            (*td).tg_newtable,
            (*relation).rd_att,
            || {
                // SAFETY: makes the transition table visible to SPI as new_rows.
                if pg_sys::SPI_register_trigger_data(td) < 0 {
                    spi_error("SPI_register_trigger_data", "failed");
                }
            },
        );
        Internal::from(Some(pg_sys::Datum::from(0usize)))
    }
}
