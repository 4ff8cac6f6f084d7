//! Rollups that keep no raw rows (`keep_raw => false`, Druid's mode). The source is a view:
//! an INSTEAD OF row trigger appends each inserted row to an in-memory tuplestore (no heap,
//! no WAL), and the view's statement trigger exposes that tuplestore as the ephemeral relation
//! `new_rows` — as Postgres does for transition tables — and runs the same generated upserts
//! as a table source's trigger.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::callbacks::{register_xact_callback, PgXactCallbackEvent};
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal, PgMemoryContexts};

use crate::errors::raise;

/// One statement's buffered rows for one view.
struct Buffer {
    command: pg_sys::CommandId,
    store: *mut pg_sys::Tuplestorestate,
}

thread_local! {
    /// Per view; emptied at every transaction end, when the stores' memory goes with
    /// TopTransactionContext, so no pointer here outlives its store.
    static BUFFERS: RefCell<HashMap<pg_sys::Oid, Buffer>> = RefCell::new(HashMap::new());
    static CLEANUP_REGISTERED: RefCell<bool> = const { RefCell::new(false) };
}

fn forget_buffers() {
    BUFFERS.with(|b| b.borrow_mut().clear());
    CLEANUP_REGISTERED.with(|r| *r.borrow_mut() = false);
}

fn ensure_cleanup() {
    CLEANUP_REGISTERED.with(|r| {
        if !*r.borrow() {
            register_xact_callback(PgXactCallbackEvent::Commit, forget_buffers);
            register_xact_callback(PgXactCallbackEvent::Abort, forget_buffers);
            *r.borrow_mut() = true;
        }
    });
}

fn trigger_data(fcinfo: pg_sys::FunctionCallInfo, function: &str) -> *mut pg_sys::TriggerData {
    // SAFETY: reading the call's context node.
    unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            raise(
                PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                format!("{function} must be called as a trigger"),
                None,
            );
        }
        context.cast()
    }
}

fn current_command() -> pg_sys::CommandId {
    // SAFETY: reads the current command counter without marking it used.
    unsafe { pg_sys::GetCurrentCommandId(false) }
}

/// INSTEAD OF INSERT, FOR EACH ROW, on the view: keep the row for the statement trigger.
#[pg_extern(sql = false)]
fn rollup_buffer_row(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let td = trigger_data(fcinfo, "collect._rollup_buffer_row");
    ensure_cleanup();
    // SAFETY: an INSTEAD OF row trigger on a view carries the new row in tg_trigtuple.
    unsafe {
        let view = (*(*td).tg_relation).rd_id;
        let tuple = (*td).tg_trigtuple;
        let command = current_command();
        BUFFERS.with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            let fresh = buffers.get(&view).is_none_or(|b| b.command != command);
            if fresh {
                let store = PgMemoryContexts::TopTransactionContext
                    .switch_to(|_| pg_sys::tuplestore_begin_heap(false, false, pg_sys::work_mem));
                buffers.insert(view, Buffer { command, store });
            }
            pg_sys::tuplestore_puttuple(buffers[&view].store, tuple);
        });
        // Returning the row counts it as inserted.
        Internal::from(Some(pg_sys::Datum::from(tuple)))
    }
}

/// AFTER INSERT, FOR EACH STATEMENT, on the view: roll up the buffered rows.
#[pg_extern(sql = false)]
fn rollup_flush(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let td = trigger_data(fcinfo, "collect._rollup_flush");
    // SAFETY: reading the trigger's relation and arguments.
    let (view, rollup) = unsafe {
        let trigger = (*td).tg_trigger;
        if (*trigger).tgnargs < 1 {
            raise(PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "collect._rollup_flush needs the rollup's name".into(), None);
        }
        let name = CStr::from_ptr(*(*trigger).tgargs).to_string_lossy().into_owned();
        ((*(*td).tg_relation).rd_id, name)
    };
    let command = current_command();
    let buffer = BUFFERS.with(|b| {
        let mut b = b.borrow_mut();
        match b.get(&view) {
            Some(buf) if buf.command == command => b.remove(&view),
            _ => None,
        }
    });
    let Some(buffer) = buffer else {
        // The statement inserted no rows.
        return Internal::from(Some(pg_sys::Datum::from(0usize)));
    };
    let statements: Vec<String> = Spi::get_one_with_args::<Vec<String>>(
        "SELECT statements FROM collect.rollup_defs WHERE name = $1",
        &[rollup.as_str().into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("rollup \"{rollup}\" does not exist"), None));
    Spi::connect_mut(|client| {
        // SAFETY: the ENR and its name live in the SPI procedure context until SPI_finish;
        // the tuplestore lives in TopTransactionContext.
        unsafe {
            let enr = pg_sys::palloc0(std::mem::size_of::<pg_sys::EphemeralNamedRelationData>())
                .cast::<pg_sys::EphemeralNamedRelationData>();
            (*enr).md.name = pg_sys::pstrdup(c"new_rows".as_ptr());
            (*enr).md.reliddesc = view;
            (*enr).md.tupdesc = std::ptr::null_mut();
            (*enr).md.enrtype = pg_sys::EphemeralNameRelationType::ENR_NAMED_TUPLESTORE;
            (*enr).md.enrtuples = pg_sys::tuplestore_tuple_count(buffer.store) as f64;
            (*enr).reldata = buffer.store.cast();
            let rc = pg_sys::SPI_register_relation(enr);
            if rc != pg_sys::SPI_OK_REL_REGISTER as i32 {
                raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("SPI_register_relation failed: {rc}"), None);
            }
        }
        for statement in &statements {
            client
                .update(statement.as_str(), None, &[])
                .unwrap_or_else(|e| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, format!("rollup upsert: {e}"), None));
        }
    });
    // SAFETY: nothing refers to the store any more.
    unsafe { pg_sys::tuplestore_end(buffer.store) };
    Internal::from(Some(pg_sys::Datum::from(0usize)))
}
