//! The Rust side of the registry layer (sql/registry.sql): quoting of generated names, and
//! running a definition's own code with its owner's privileges.

pub mod names;

pub use names::{ident, literal, qualified};

use pgrx::pg_sys;

/// The trigger data of a call made as an AFTER INSERT statement trigger with a transition
/// table of new rows and `args` arguments (what pg_collect's ingest triggers are); None for
/// any other call, which the caller refuses as a protocol violation.
///
/// # Safety
/// `fcinfo` must be the call's own.
pub unsafe fn after_insert_statement_trigger(
    fcinfo: pg_sys::FunctionCallInfo,
    args: std::ops::RangeInclusive<i16>,
) -> Option<*mut pg_sys::TriggerData> {
    // SAFETY: the context is checked to be trigger data before its fields are read.
    unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            return None;
        }
        let td = context.cast::<pg_sys::TriggerData>();
        let event = (*td).tg_event;
        let trigger = (*td).tg_trigger;
        (event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_INSERT
            && event & pg_sys::TRIGGER_EVENT_ROW == 0
            && event & pg_sys::TRIGGER_EVENT_TIMINGMASK == pg_sys::TRIGGER_EVENT_AFTER
            && !(*td).tg_newtable.is_null()
            && !trigger.is_null()
            && !(*td).tg_relation.is_null()
            && args.contains(&(*trigger).tgnargs))
            .then_some(td)
    }
}

/// Runs `f` as `owner`, as Postgres runs a view's or an index expression's code: the user id
/// is switched for the duration (not the session's role), and the code may not change it
/// back, nor create temporary objects (a restricted operation). An error inside leaves the
/// switch to transaction abort, which restores the caller, as it does for Postgres's own.
pub fn as_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    as_role(owner, pg_sys::SECURITY_RESTRICTED_OPERATION as i32, f)
}

/// Runs `f` as `owner` the way a SECURITY DEFINER function runs: the code may not change the
/// role back (SET ROLE and RESET ROLE are refused), but may create temporary objects, which
/// scheduled maintenance jobs need (a rollup refresh uses a temporary table).
pub fn as_job_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    as_role(owner, 0, f)
}

fn as_role<T>(owner: pg_sys::Oid, extra_context: i32, f: impl FnOnce() -> T) -> T {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: reading and setting the backend's current user id, as SECURITY DEFINER and
    // REFRESH MATERIALIZED VIEW do; the owner is a role that exists.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | extra_context,
        );
    }
    let result = f();
    // SAFETY: restores what was read above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}
