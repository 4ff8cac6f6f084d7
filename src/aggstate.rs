//! `internal` aggregate states owned by Rust values. A state lives in the aggregate's memory
//! context and is dropped (its Rust buffers freed) when that context goes, so an aborted or
//! finished aggregate leaks nothing.

use pgrx::prelude::*;
use pgrx::{pg_sys, Internal, PgMemoryContexts};

use crate::errors::raise;

/// The memory context that outlives the aggregate's rows: states must live there. Raises
/// outside an aggregate: every function that takes an `internal` state calls this first, so
/// SQL that calls it directly (with a NULL or another function's pointer) gets an ERROR.
pub fn aggregate_context(
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
) -> pg_sys::MemoryContext {
    let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
    // SAFETY: AggCheckCallContext only inspects fcinfo's context node.
    let kind = unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut context) };
    if kind == 0 {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("{function} called in non-aggregate context"),
            None,
        );
    }
    context
}

/// `value` owned by `context`.
pub fn state_in<T>(context: pg_sys::MemoryContext, value: T) -> Internal {
    let ptr = PgMemoryContexts::For(context).leak_and_drop_on_delete(value);
    Internal::from(Some(pg_sys::Datum::from(ptr)))
}

/// A deserialized state, in the current context as Postgres expects.
pub fn state_here<T>(value: T) -> Internal {
    // SAFETY: reading the current memory context pointer.
    state_in(unsafe { pg_sys::CurrentMemoryContext }, value)
}

/// The state, creating it with `init` on the first row.
pub fn state_or_init<'a, T>(
    state: &'a mut Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    init: impl FnOnce() -> T,
) -> &'a mut T {
    let context = aggregate_context(fcinfo, function);
    if !state.initialized() {
        *state = state_in(context, init());
    }
    // SAFETY: every state of the calling aggregate is a T made here.
    unsafe { state.get_mut::<T>() }.expect("state is initialized")
}

/// Combine function body: `merge` right into left; a missing left takes a copy of right in
/// the aggregate context (right may live in a shorter-lived one).
pub fn combine<T: Clone>(
    mut left: Internal,
    right: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    function: &str,
    merge: impl FnOnce(&mut T, &T),
) -> Internal {
    let context = aggregate_context(fcinfo, function);
    // SAFETY: both states, when present, are T (we are called by our own aggregate).
    let right_value = unsafe { right.get::<T>() };
    match (left.initialized(), right_value) {
        (_, None) => left,
        (false, Some(r)) => state_in(context, r.clone()),
        (true, Some(r)) => {
            let l = unsafe { left.get_mut::<T>() }.expect("state is initialized");
            merge(l, r);
            left
        }
    }
}

/// The state of a strict serialize or final function.
pub fn state_ref<T>(state: &Internal) -> Option<&T> {
    // SAFETY: the caller's aggregate only ever holds T states.
    unsafe { state.get::<T>() }
}
