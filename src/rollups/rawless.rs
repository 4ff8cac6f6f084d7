//! Rollups that keep no raw rows (`keep_raw => false`, Druid's mode). The source is a view:
//! a BEFORE statement trigger opens a buffer for the statement, an INSTEAD OF row trigger
//! appends each inserted row to it (an in-memory tuplestore: no heap, no WAL), and the AFTER
//! statement trigger rolls it up as a table source's trigger rolls up its transition table
//! (`statement`), exposing it as the ephemeral relation `new_rows` where SQL does the work.
//!
//! Buffers form a stack per rollup: a statement nested inside another (a function called by
//! the outer INSERT that inserts into the same view) opens and flushes its own, and a row
//! always lands in the innermost open statement's buffer, whatever the command counter did
//! meanwhile. Each rollup on a view has its own triggers and its own stack, so two rollups
//! on one view each see every row once. A subtransaction that aborts drops the buffers it
//! opened.

use std::cell::RefCell;
use std::ffi::CStr;

use pgrx::callbacks::{register_xact_callback, PgXactCallbackEvent};
use pgrx::prelude::*;
use pgrx::{pg_sys, Internal, PgMemoryContexts};

use crate::errors::raise;

/// One statement's buffered rows for one rollup.
struct Buffer {
    rollup: (String, String),
    view: pg_sys::Oid,
    subtransaction: pg_sys::SubTransactionId,
    store: *mut pg_sys::Tuplestorestate,
}

thread_local! {
    /// Open statements, innermost last. Emptied at every transaction end, when the stores'
    /// memory goes with TopTransactionContext, so no pointer here outlives its store.
    static BUFFERS: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
    static CLEANUP_REGISTERED: RefCell<bool> = const { RefCell::new(false) };
}

fn forget_buffers() {
    BUFFERS.with(|b| b.borrow_mut().clear());
    CLEANUP_REGISTERED.with(|r| *r.borrow_mut() = false);
}

#[pg_guard]
unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        // Statements opened inside the aborted subtransaction never reach their flush.
        BUFFERS.with(|b| b.borrow_mut().retain(|buf| buf.subtransaction < my_subid));
    }
}

fn ensure_cleanup() {
    CLEANUP_REGISTERED.with(|r| {
        if !*r.borrow() {
            register_xact_callback(PgXactCallbackEvent::Commit, forget_buffers);
            register_xact_callback(PgXactCallbackEvent::Abort, forget_buffers);
            *r.borrow_mut() = true;
        }
    });
    static SUBXACT_REGISTERED: std::sync::Once = std::sync::Once::new();
    // SAFETY: registers a callback that lives as long as the backend.
    SUBXACT_REGISTERED.call_once(|| unsafe {
        pg_sys::RegisterSubXactCallback(Some(on_subtransaction), std::ptr::null_mut())
    });
}

fn protocol_violation(function: &str, how: &str) -> ! {
    crate::registry::trigger_protocol_violation(function, how, "collect.create_rollup")
}

/// The trigger data, after checking that the call is the trigger `how` describes: fired
/// `when` (a TRIGGER_TYPE timing bit pattern), for rows or statements, by INSERT, on a
/// view, with the rollup's (schema, name) and `extra_args` more arguments.
unsafe fn checked_trigger(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    how: &str,
    fired: impl Fn(u32) -> bool,
    extra_args: usize,
) -> *mut pg_sys::TriggerData {
    // SAFETY: reading the call's context node, then (once it is trigger data) its fields.
    unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            protocol_violation(function, how);
        }
        let td = context.cast::<pg_sys::TriggerData>();
        let event = (*td).tg_event;
        let relation = (*td).tg_relation;
        let trigger = (*td).tg_trigger;
        if !fired(event)
            || event & pg_sys::TRIGGER_EVENT_OPMASK != pg_sys::TRIGGER_EVENT_INSERT
            || relation.is_null()
            || (*(*relation).rd_rel).relkind != pg_sys::RELKIND_VIEW as core::ffi::c_char
            || trigger.is_null()
            || (*trigger).tgnargs as usize != 2 + extra_args
        {
            protocol_violation(function, how);
        }
        td
    }
}

/// The trigger's argument `i`, as bytes.
///
/// # Safety
/// `td` passed `checked_trigger`, with more than `i` arguments.
unsafe fn trigger_arg<'a>(td: *mut pg_sys::TriggerData, i: usize) -> &'a [u8] {
    // SAFETY: the caller's promise; arguments are NUL-terminated strings of the trigger.
    unsafe { CStr::from_ptr(*(*(*td).tg_trigger).tgargs.add(i)).to_bytes() }
}

/// `checked_trigger`, then the rollup's (schema, name) and the other arguments as strings.
unsafe fn trigger_data(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    how: &str,
    fired: impl Fn(u32) -> bool,
    extra_args: usize,
) -> (*mut pg_sys::TriggerData, (String, String), Vec<String>) {
    // SAFETY: arguments are read within the count checked_trigger checked.
    unsafe {
        let td = checked_trigger(fcinfo, function, how, fired, extra_args);
        let arg = |i| String::from_utf8_lossy(trigger_arg(td, i)).into_owned();
        (td, (arg(0), arg(1)), (2..2 + extra_args).map(arg).collect())
    }
}

fn is_row(event: u32) -> bool {
    event & pg_sys::TRIGGER_EVENT_ROW != 0
}

fn timing(event: u32) -> u32 {
    event & pg_sys::TRIGGER_EVENT_TIMINGMASK
}

/// BEFORE INSERT, FOR EACH STATEMENT, on the view: open this statement's buffer.
#[pg_extern(sql = false)]
fn rollup_begin(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: trigger_data checks the call before reading anything.
    let (td, rollup, _) = unsafe {
        trigger_data(
            fcinfo,
            "collect._rollup_begin",
            "a BEFORE INSERT statement trigger on a view",
            |e| !is_row(e) && timing(e) == pg_sys::TRIGGER_EVENT_BEFORE,
            0,
        )
    };
    ensure_cleanup();
    // SAFETY: the relation was checked above; the store is made in TopTransactionContext.
    unsafe {
        let view = (*(*td).tg_relation).rd_id;
        let store = PgMemoryContexts::TopTransactionContext
            .switch_to(|_| pg_sys::tuplestore_begin_heap(false, false, pg_sys::work_mem));
        let subtransaction = pg_sys::GetCurrentSubTransactionId();
        BUFFERS.with(|b| {
            b.borrow_mut().push(Buffer {
                rollup,
                view,
                subtransaction,
                store,
            })
        });
    }
    Internal::from(Some(pg_sys::Datum::from(0usize)))
}

/// INSTEAD OF INSERT, FOR EACH ROW, on the view: keep the row for the statement trigger.
/// Runs for every row, so it reads the rollup's name in place instead of copying it.
#[pg_extern(sql = false)]
fn rollup_buffer_row(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let how = "an INSTEAD OF INSERT row trigger on a view";
    // SAFETY: checked_trigger checks the call before anything is read; an INSTEAD OF INSERT
    // row trigger on a view carries the new row in tg_trigtuple.
    unsafe {
        let td = checked_trigger(
            fcinfo,
            "collect._rollup_buffer_row",
            how,
            |e| is_row(e) && timing(e) == pg_sys::TRIGGER_EVENT_INSTEAD,
            0,
        );
        let view = (*(*td).tg_relation).rd_id;
        let tuple = (*td).tg_trigtuple;
        if tuple.is_null() {
            protocol_violation("collect._rollup_buffer_row", how);
        }
        // As rollup_begin read them (borrowed, not copied, when they are UTF-8).
        let (schema, name) = (
            String::from_utf8_lossy(trigger_arg(td, 0)),
            String::from_utf8_lossy(trigger_arg(td, 1)),
        );
        BUFFERS.with(|buffers| {
            let buffers = buffers.borrow();
            let Some(buffer) = buffers
                .iter()
                .rev()
                .find(|b| b.view == view && b.rollup.0 == schema && b.rollup.1 == name)
            else {
                raise(
                    PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                    format!("no statement is open for rollup {schema}.{name}"),
                    Some("The rollup's BEFORE INSERT trigger is missing: drop the rollup and create it again.".into()),
                )
            };
            pg_sys::tuplestore_puttuple(buffer.store, tuple);
        });
        // Returning the row counts it as inserted.
        Internal::from(Some(pg_sys::Datum::from(tuple)))
    }
}

/// AFTER INSERT, FOR EACH STATEMENT, on the view: roll up the buffered rows.
#[pg_extern(sql = false)]
fn rollup_flush(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    // SAFETY: trigger_data checks the call before reading anything.
    let (td, rollup, extra) = unsafe {
        trigger_data(
            fcinfo,
            "collect._rollup_flush",
            "an AFTER INSERT statement trigger on a view",
            |e| !is_row(e) && timing(e) == pg_sys::TRIGGER_EVENT_AFTER,
            1,
        )
    };
    // SAFETY: the relation was checked above.
    let view = unsafe { (*(*td).tg_relation).rd_id };
    let version: i32 = extra[0].parse().unwrap_or_else(|_| {
        protocol_violation(
            "collect._rollup_flush",
            "a trigger made by collect.create_rollup",
        )
    });
    let buffer = BUFFERS.with(|b| {
        let mut b = b.borrow_mut();
        let position = b
            .iter()
            .rposition(|buf| buf.rollup == rollup && buf.view == view);
        position.map(|p| b.remove(p))
    });
    let Some(buffer) = buffer else {
        protocol_violation(
            "collect._rollup_flush",
            "the AFTER trigger of a statement its rollup's BEFORE trigger opened",
        )
    };
    if unsafe { pg_sys::tuplestore_tuple_count(buffer.store) } == 0 {
        // SAFETY: nothing refers to the store any more.
        unsafe { pg_sys::tuplestore_end(buffer.store) };
        return Internal::from(Some(pg_sys::Datum::from(0usize)));
    }
    let args = [rollup.0, rollup.1, version.to_string()];
    let (spec, targets) = super::statement::trigger_targets(&args, view, None);
    // SAFETY: the buffer holds rows of the view, as its descriptor lays them out; the ENR and
    // its name live in the SPI procedure context until SPI_finish, the store in
    // TopTransactionContext.
    unsafe {
        super::statement::roll_up(
            &spec,
            &targets,
            buffer.store,
            (*(*td).tg_relation).rd_att,
            || {
                let enr =
                    pg_sys::palloc0(std::mem::size_of::<pg_sys::EphemeralNamedRelationData>())
                        .cast::<pg_sys::EphemeralNamedRelationData>();
                (*enr).md.name = pg_sys::pstrdup(c"new_rows".as_ptr());
                (*enr).md.reliddesc = view;
                (*enr).md.tupdesc = std::ptr::null_mut();
                (*enr).md.enrtype = pg_sys::EphemeralNameRelationType::ENR_NAMED_TUPLESTORE;
                (*enr).md.enrtuples = pg_sys::tuplestore_tuple_count(buffer.store) as f64;
                (*enr).reldata = buffer.store.cast();
                let rc = pg_sys::SPI_register_relation(enr);
                if rc != pg_sys::SPI_OK_REL_REGISTER as i32 {
                    raise(
                        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        format!("SPI_register_relation failed: {rc}"),
                        None,
                    );
                }
            },
        );
    }
    // SAFETY: nothing refers to the store any more.
    unsafe { pg_sys::tuplestore_end(buffer.store) };
    Internal::from(Some(pg_sys::Datum::from(0usize)))
}
