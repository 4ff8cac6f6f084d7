//! The AFTER INSERT statement trigger of a child with a latest copy, in Rust with plans prepared once per
//! session: applications mostly insert one version at a time, and a PL/pgSQL trigger pays
//! for its interpreter and a transition-table query on every statement.
//!
//! One inserted row (when `LatestCopy::insert_statements` has a single-row path) costs one
//! UPDATE of its parent, made only if the row is newer than the copy; the row lock and the
//! recheck Postgres does on a concurrently changed parent keep it exact. When that UPDATE
//! changes nothing, the parent is locked and looked at again: newer after all (a concurrent
//! change since the UPDATE's snapshot) means update again, a tie on the ordering values means
//! the general path for that parent. Several rows lock their parents in key order; then each
//! parent's newest inserted row replaces the copy where it is newer (one UPDATE), and, only
//! when that left some locked parent alone, parents where it ties are recomputed; where the
//! copy does not hold the ordering columns, every parent is recomputed, as the generated
//! trigger does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::Internal;

use super::generate::LatestCopy;
use crate::errors::raise;

struct Single {
    update: pg_sys::SPIPlanPtr,
    check: pg_sys::SPIPlanPtr,
    attnums: Vec<i32>,
    order_params: Vec<usize>,
}

struct Plans {
    keys: CString,
    /// The several-rows path (`BulkInsert`): its ties and update statements; the update runs first.
    bulk: Option<(CString, CString)>,
    lock: pg_sys::SPIPlanPtr,
    recompute: pg_sys::SPIPlanPtr,
    lock_one: pg_sys::SPIPlanPtr,
    recompute_one: pg_sys::SPIPlanPtr,
    /// The single-row path: its two plans and the attribute numbers of its parameters in the
    /// relation the trigger fired on (a partition's may differ from its parent's).
    single: Option<Single>,
}

thread_local! {
    /// Plans kept for the session (SPI_keepplan), per trigger and relation. A latest copy made
    /// again has new triggers; plans of dropped ones are small and stay until the session ends.
    static PLANS: RefCell<HashMap<(pg_sys::Oid, pg_sys::Oid), Plans>> = RefCell::new(HashMap::new());
}

fn protocol_violation() -> ! {
    crate::registry::trigger_protocol_violation(
        "collect._latest_insert",
        "an AFTER INSERT statement trigger with a transition table, made by collect.create_latest",
        "collect.create_latest",
    )
}

fn spi_failed(what: &str, rc: i32) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("collect._latest_insert: {what} failed ({rc})"),
        None,
    )
}

/// Prepares `sql` with `types` and keeps it for the session.
unsafe fn keep(sql: &str, types: &mut [pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    // SAFETY: inside SPI.
    unsafe { crate::plans::kept("collect._latest_insert", sql, types) }
}

/// The plans for the latest copy whose refresh function is `refresh`, on relation `relation`.
unsafe fn prepare(relation: pg_sys::Relation, refresh: &str, shard_spec: Option<String>) -> Plans {
    // SAFETY: inside SPI, on the trigger's open relation.
    unsafe {
        let relid = (*relation).rd_id;
        let plan: String = Spi::get_one_with_args::<String>(
            "SELECT collect._latest_insert_plan($1::pg_catalog.oid::pg_catalog.regclass, $2, $3::pg_catalog.jsonb)",
            &[relid.into(), refresh.into(), shard_spec.into()],
        )
        .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("collect._latest_insert: {e}"), None))
        .unwrap_or_else(|| protocol_violation());
        let invalid = |why: String| -> ! {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("collect._latest_insert: invalid plan: {why}"),
                None,
            )
        };
        let spec: serde_json::Value =
            serde_json::from_str(&plan).unwrap_or_else(|e| invalid(e.to_string()));
        let oid = |field: &str| {
            pg_sys::Oid::from(
                spec[field]
                    .as_u64()
                    .unwrap_or_else(|| invalid(format!("no {field}"))) as u32,
            )
        };
        let (key_type, key_array) = (oid("key_type_oid"), oid("key_array_oid"));
        let latest: LatestCopy =
            serde_json::from_value(spec).unwrap_or_else(|e| invalid(e.to_string()));
        let statements = latest.insert_statements();
        let one = |sql: &str| sql.replace("$1", "ARRAY[$1]");
        let tupdesc = (*relation).rd_att;
        let single = statements.single.as_ref().map(|single| {
            let attnums: Vec<i32> = single
                .params
                .iter()
                .map(|column| {
                    let name = CString::new(column.as_str()).expect("column names have no NUL");
                    let attnum = pg_sys::SPI_fnumber(tupdesc, name.as_ptr());
                    if attnum <= 0 {
                        protocol_violation();
                    }
                    attnum
                })
                .collect();
            let mut types: Vec<pg_sys::Oid> = attnums
                .iter()
                .map(|a| pg_sys::SPI_gettypeid(tupdesc, *a))
                .collect();
            Single {
                update: keep(&single.update, &mut types),
                check: keep(&single.check, &mut types.clone()),
                attnums,
                order_params: single.order_params.clone(),
            }
        });
        Plans {
            keys: CString::new(statements.keys.as_str()).expect("generated SQL has no NUL"),
            bulk: statements.bulk.as_ref().map(|b| {
                (
                    CString::new(b.ties.as_str()).expect("no NUL"),
                    CString::new(b.update.as_str()).expect("no NUL"),
                )
            }),
            lock: keep(&statements.lock, &mut [key_array]),
            recompute: keep(&statements.recompute, &mut [key_array]),
            lock_one: keep(&one(&statements.lock), &mut [key_type]),
            recompute_one: keep(&one(&statements.recompute), &mut [key_type]),
            single,
        }
    }
}

unsafe fn execute(
    plan: pg_sys::SPIPlanPtr,
    values: &mut [pg_sys::Datum],
    nulls: &[u8],
    read_only: bool,
) -> u64 {
    // SAFETY: inside SPI, with as many values as the plan has parameters.
    unsafe { crate::plans::execute("collect._latest_insert", plan, values, nulls, read_only) }
}

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as a function's SET clause would, but
/// only around what needs it: preparing, and the several-rows path, whose statements carry
/// the latest copy's filter. The single-row path runs without it, so that a single-row INSERT
/// does not pay for a GUC change: its statements qualify every name and never carry a filter
/// (a latest copy with one has no single-row path), so they mean the same under any search_path
/// (Postgres analyzes a kept plan again under the current one when it changes). An error
/// unwinds the setting with the transaction.
unsafe fn with_pinned_search_path<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: a GUC nest level of our own, closed before returning.
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let result = f();
        pg_sys::AtEOXact_GUC(true, level);
        result
    }
}

/// The parent of one inserted row (its values, in `params` order), made exact.
unsafe fn single_row(
    plans: &Plans,
    update: pg_sys::SPIPlanPtr,
    check: pg_sys::SPIPlanPtr,
    values: &mut [pg_sys::Datum],
    nulls: &[u8],
) {
    // SAFETY: inside SPI; the plans take these parameters.
    unsafe {
        if execute(update, values, nulls, false) > 0 {
            return;
        }
        if execute(check, values, nulls, false) == 0 {
            return; // no such parent: nothing holds a copy
        }
        let table = pg_sys::SPI_tuptable;
        let row = *(*table).vals;
        let mut isnull = false;
        let newer = pg_sys::SPI_getbinval(row, (*table).tupdesc, 1, &mut isnull);
        let newer = !isnull && bool::from_datum(newer, false).unwrap_or(false);
        let tied = pg_sys::SPI_getbinval(row, (*table).tupdesc, 2, &mut isnull);
        let tied = !isnull && bool::from_datum(tied, false).unwrap_or(false);
        if newer {
            execute(update, values, nulls, false);
        } else if tied {
            // The child key breaks the tie, and the copy does not hold it: recompute.
            execute(plans.lock_one, &mut values[..1], &nulls[..1], false);
            execute(plans.recompute_one, &mut values[..1], &nulls[..1], false);
        }
    }
}

/// AFTER INSERT, FOR EACH STATEMENT, REFERENCING NEW TABLE on a child with a latest copy; its one
/// argument names the latest copy's refresh function; a second, on Citus, is its spec.
#[pg_extern(sql = false)]
fn latest_insert(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: the call's context is checked to be trigger data before anything is read.
    unsafe {
        let td = crate::registry::after_insert_statement_trigger(fcinfo, 1..=2)
            .unwrap_or_else(|| protocol_violation());
        let trigger = (*td).tg_trigger;
        let relation = (*td).tg_relation;
        let store = (*td).tg_newtable;
        let rows = pg_sys::tuplestore_tuple_count(store);
        if rows == 0 {
            return Internal::from(Some(pg_sys::Datum::from(0usize)));
        }
        let refresh = CStr::from_ptr(*(*trigger).tgargs)
            .to_string_lossy()
            .into_owned();
        let key = ((*trigger).tgoid, (*relation).rd_id);
        if pg_sys::SPI_connect() < 0 {
            spi_failed("SPI_connect", 0);
        }
        let known = PLANS.with(|p| p.borrow().contains_key(&key));
        if !known {
            // On a Citus shard, where the registry is not, the latest copy's spec (see
            // collect._latest_trigger_spec).
            let shard_spec = ((*trigger).tgnargs == 2).then(|| {
                CStr::from_ptr(*(*trigger).tgargs.add(1))
                    .to_string_lossy()
                    .into_owned()
            });
            let plans = with_pinned_search_path(|| prepare(relation, &refresh, shard_spec));
            PLANS.with(|p| p.borrow_mut().insert(key, plans));
        }
        PLANS.with(|p| {
            let plans = p.borrow();
            let plans = plans.get(&key).expect("prepared above");
            match &plans.single {
                Some(single) if rows == 1 => {
                    let attnums = &single.attnums;
                    // The one row, read from the transition table through a read pointer
                    // of our own, as a scan of it would.
                    let tupdesc = (*relation).rd_att;
                    let slot =
                        pg_sys::MakeSingleTupleTableSlot(tupdesc, &pg_sys::TTSOpsMinimalTuple);
                    let pointer = pg_sys::tuplestore_alloc_read_pointer(
                        store,
                        pg_sys::EXEC_FLAG_REWIND as i32,
                    );
                    pg_sys::tuplestore_select_read_pointer(store, pointer);
                    pg_sys::tuplestore_rescan(store);
                    if !pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
                        protocol_violation();
                    }
                    pg_sys::slot_getsomeattrs_int(slot, (*tupdesc).natts);
                    let mut values: Vec<pg_sys::Datum> = attnums
                        .iter()
                        .map(|a| *(*slot).tts_values.add(*a as usize - 1))
                        .collect();
                    let nulls: Vec<u8> = attnums
                        .iter()
                        .map(|a| {
                            if *(*slot).tts_isnull.add(*a as usize - 1) {
                                b'n'
                            } else {
                                b' '
                            }
                        })
                        .collect();
                    // A row without a parent or with a NULL ordering value is never latest.
                    if nulls[0] != b'n' && single.order_params.iter().all(|p| nulls[*p] != b'n') {
                        single_row(plans, single.update, single.check, &mut values, &nulls);
                    }
                    pg_sys::ExecDropSingleTupleTableSlot(slot);
                }
                _ => with_pinned_search_path(|| {
                    // SAFETY: makes the transition table visible to SPI as new_rows.
                    if pg_sys::SPI_register_trigger_data(td) < 0 {
                        spi_failed("SPI_register_trigger_data", 0);
                    }
                    let rc = pg_sys::SPI_execute(plans.keys.as_ptr(), true, 1);
                    if rc < 0 {
                        spi_failed("SPI_execute", rc);
                    }
                    let table = pg_sys::SPI_tuptable;
                    let mut isnull = false;
                    let keys =
                        pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
                    if !isnull {
                        let mut values = [keys];
                        let locked = execute(plans.lock, &mut values, b" ", false);
                        match &plans.bulk {
                            Some((ties, update)) => {
                                // Each statement a snapshot of its own, taken with the parents
                                // locked; ties only when some locked parent was not updated.
                                let rc = pg_sys::SPI_execute(update.as_ptr(), false, 0);
                                if rc < 0 {
                                    spi_failed("SPI_execute", rc);
                                }
                                if pg_sys::SPI_processed < locked {
                                    let rc = pg_sys::SPI_execute(ties.as_ptr(), false, 1);
                                    if rc < 0 {
                                        spi_failed("SPI_execute", rc);
                                    }
                                    let table = pg_sys::SPI_tuptable;
                                    let tied = pg_sys::SPI_getbinval(
                                        *(*table).vals,
                                        (*table).tupdesc,
                                        1,
                                        &mut isnull,
                                    );
                                    if !isnull {
                                        execute(plans.recompute, &mut [tied], b" ", false);
                                    }
                                }
                            }
                            None => {
                                execute(plans.recompute, &mut values, b" ", false);
                            }
                        }
                    }
                }),
            }
        });
        pg_sys::SPI_finish();
        Internal::from(Some(pg_sys::Datum::from(0usize)))
    }
}
