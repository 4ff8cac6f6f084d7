//! The Rust side of the registry layer (sql/registry.sql): quoting of generated names, and
//! running a definition's own code with its owner's privileges.

pub mod names;

pub use names::{ident, literal, qualified};

use pgrx::pg_sys;

/// Runs `f` as `owner`, as Postgres runs a view's or an index expression's code: the user id
/// is switched for the duration (not the session's role), and the code may not change it
/// back, nor create temporary objects (a restricted operation). An error inside leaves the
/// switch to transaction abort, which restores the caller, as it does for Postgres's own.
pub fn as_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: reading and setting the backend's current user id, as SECURITY DEFINER and
    // REFRESH MATERIALIZED VIEW do; the owner is a role that exists.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let result = f();
    // SAFETY: restores what was read above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}
