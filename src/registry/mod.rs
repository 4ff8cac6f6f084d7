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

/// Runs `f` as `owner` the way PostgreSQL runs a role's code in VACUUM, CLUSTER or REFRESH
/// MATERIALIZED VIEW (CVE-2022-1552): the user id is switched for the duration (not the
/// session's role), inside a security-restricted operation (no `SET ROLE` back to the caller,
/// no temporary objects that could capture the caller's later statements), and inside a GUC
/// nest level of its own that is unwound afterwards, so no setting the code makes outlives
/// it, `SET` and `set_config(…, false)` included. Every path that runs another role's code
/// comes through here: `sql` steps, maintenance jobs and the owner-run calls (normalize,
/// archive, refresh, …). An error inside leaves the unwinding to (sub)transaction abort,
/// which restores user id, context and settings as it does for PostgreSQL's own.
pub fn as_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: reading and setting the backend's current user id and opening a GUC nest
    // level, as PostgreSQL's own restricted operations do; `owner` is a role that exists.
    let nest_level = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        pg_sys::NewGUCNestLevel()
    };
    let result = f();
    // SAFETY: unwinds what was set up above, settings first (as REFRESH MATERIALIZED VIEW).
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}

/// The role `name`, for a caller who may act as it (a member, as `SET ROLE` requires, or a
/// superuser); 42501 otherwise, 42704 when there is no such role.
pub fn role_the_caller_may_become(name: &std::ffi::CStr, what: &str) -> pg_sys::Oid {
    // SAFETY: a role lookup that raises 42704 itself, and a catalog membership check.
    let (role, caller) = unsafe { (pg_sys::get_role_oid(name.as_ptr(), false), pg_sys::GetUserId()) };
    if !unsafe { pg_sys::is_member_of_role(caller, role) } {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {what} as role {}", name.to_string_lossy()),
            Some("Only the owner, a member of it, or a superuser does this.".into()),
        );
    }
    role
}

/// `collect._as_owner(owner, query)`: the one row and column `query` answers (NULL for no
/// row), run as `owner` by `as_owner`, for a caller who may become that role. The SQL-level
/// door to the mechanism: owner-run calls re-enter themselves through it.
#[pgrx::pg_extern(sql = false)]
fn registry_as_owner(owner: &std::ffi::CStr, query: &str) -> Option<String> {
    let role = role_the_caller_may_become(owner, "run this");
    let wrapped = format!("SELECT a.answer::pg_catalog.text FROM ({query}) a(answer)");
    as_owner(role, || pgrx::Spi::get_one::<String>(&wrapped)).unwrap_or_else(|e| {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!("a statement run as its owner answered what pg_collect cannot read: {e}"),
            Some("It must answer at most one row of one column.".into()),
        )
    })
}

/// `collect._acting_as(owner)`: whether this code already runs as `owner` inside a
/// restricted operation (an owner-run call re-entered through `_as_owner`, or a job).
#[pgrx::pg_extern(sql = false)]
fn registry_acting_as(owner: &std::ffi::CStr) -> bool {
    // SAFETY: a role lookup (missing_ok) and reads of the backend's user id and context.
    unsafe {
        let role = pg_sys::get_role_oid(owner.as_ptr(), true);
        role != pg_sys::Oid::INVALID && role == pg_sys::GetUserId() && pg_sys::InSecurityRestrictedOperation()
    }
}
