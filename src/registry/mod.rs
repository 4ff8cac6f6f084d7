//! The Rust side of the registry layer (sql/registry.sql): quoting of generated names, and
//! running a definition's own code with its owner's privileges.

pub use pg_collect_core::registry::names;

pub use names::{ident, literal, qualified, Vocabulary};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

/// Default 10 minutes: a batch is bounded (a lump, a thousand keys), so one that runs longer
/// is stuck, and holds back every job after it.
static JOB_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10 * 60 * 1000);

/// Registers `collect.job_timeout`, which bounds every owner-run batch of a maintenance job.
pub fn init() {
    GucRegistry::define_int_guc(
        c"collect.job_timeout",
        c"How long one batch of a maintenance job may run before it is cancelled and recorded as failed.",
        c"0 turns it off. A job that times out is retried as any failed job; the jobs after it run.",
        &JOB_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
}

/// The vocabulary of the release installed in this database (see `Vocabulary`): a syscache
/// probe for the type 0.3.0 renamed, cheap enough for every statement.
pub fn installed_vocabulary() -> Vocabulary {
    // SAFETY: lookups by name in the syscaches; an absent schema or type gives InvalidOid.
    let lump = unsafe {
        let schema = pg_sys::get_namespace_oid(c"collect".as_ptr(), true);
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as _,
            pg_sys::Anum_pg_type_oid as _,
            pg_sys::Datum::from(c"lump".as_ptr()),
            pg_sys::Datum::from(schema),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    };
    if lump == pg_sys::InvalidOid {
        Vocabulary::Before0_3
    } else {
        Vocabulary::Current
    }
}

/// Whether Citus is installed in this database: where it is, a table may be distributed and
/// the paths that plan for one node step aside.
pub fn citus_present() -> bool {
    // Citus loads only from shared_preload_libraries, which defines its settings: a server
    // without them has no Citus in any database, and the catalog (a scan of pg_extension, a
    // twentieth of an append) need not be asked.
    // SAFETY: a settings lookup (NULL when there is no such setting), then a catalog lookup
    // by name (InvalidOid for an absent extension).
    unsafe {
        !pg_sys::GetConfigOption(c"citus.shard_count".as_ptr(), true, false).is_null()
            && pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid
    }
}

/// `collect._owned_relation(owner, schema, relname)` (a C function from 0.4.0; plpgsql before):
/// the relation `schema.relname` when role `owner` has the privileges of its owner (what
/// `pg_has_role(owner, relowner, 'USAGE')` answers), else NULL. Every capability's verify
/// function asks it for each object a definition names, at every use of the definition, so
/// it reads the syscaches rather than running a query. A role that does not exist is 42704,
/// as `pg_has_role` says it.
#[pgrx::pg_extern(sql = false)]
fn owned_relation(fcinfo: pg_sys::FunctionCallInfo) -> Option<pg_sys::Oid> {
    use std::ffi::CStr;
    // SAFETY: declared STRICT (name, name, text): three non-null arguments of those types.
    let (owner, schema, relname) = unsafe {
        let name = |i: usize| {
            let datum = pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, i);
            CStr::from_ptr((*datum.cast_mut_ptr::<pg_sys::NameData>()).data.as_ptr())
        };
        let relname =
            pg_sys::text_to_cstring(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 2).cast_mut_ptr());
        (name(0), name(1), CStr::from_ptr(relname))
    };
    // SAFETY: syscache lookups by name and oid; each miss gives InvalidOid or NULL.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(schema.as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        let relation = relation_in(namespace, relname.to_bytes())?;
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as _,
            pg_sys::Datum::from(relation),
        );
        if tuple.is_null() {
            return None;
        }
        let relowner =
            (*(pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple))).relowner;
        pg_sys::ReleaseSysCache(tuple);
        let role = pg_sys::get_role_oid(owner.as_ptr(), false);
        pg_sys::has_privs_of_role(role, relowner).then_some(relation)
    }
}

#[unsafe(no_mangle)]
#[doc(hidden)]
pub extern "C" fn pg_finfo_resolve_wrapper() -> &'static pg_sys::Pg_finfo_record {
    const V1_API: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1_API
}

/// `collect._resolve(kind, name, suffix)` (a C function from 0.4.0; plpgsql before): the
/// schema and name of the definition `name` names, the way Postgres finds a table. A qualified
/// name (`schema.name`) names its schema; an unqualified one is looked up along the caller's
/// search_path (`current_schemas(true)`), and the first schema holding a relation
/// `name || suffix` wins (none: a NULL schema, which the definition lookup reports). Every
/// call of every capability starts here, so it reads the syscaches instead of running a query.
/// Written as the fmgr entry point itself: pgrx has no return type for a row of OUT
/// parameters that it declares no SQL for.
///
/// # Safety
/// Called by fmgr as `collect._resolve`, with its own `fcinfo`.
#[unsafe(no_mangle)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn resolve_wrapper(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    use pgrx::IntoDatum;
    // SAFETY: declared (text, text, text), not STRICT: each argument is read only when it is
    // not NULL.
    let (kind, name, suffix) = unsafe {
        (
            pgrx::fcinfo::pg_getarg::<String>(fcinfo, 0),
            pgrx::fcinfo::pg_getarg::<String>(fcinfo, 1),
            pgrx::fcinfo::pg_getarg::<String>(fcinfo, 2),
        )
    };
    let (schema, object_name) = resolve(
        kind.as_deref().unwrap_or("<NULL>"),
        name.as_deref(),
        suffix.as_deref(),
    );
    // SAFETY: the declared result is a row (schema name, object_name text); its descriptor
    // comes from the call, the tuple is formed and copied into the call's memory.
    unsafe {
        let mut tupdesc: pg_sys::TupleDesc = std::ptr::null_mut();
        if pg_sys::get_call_result_type(fcinfo, std::ptr::null_mut(), &mut tupdesc)
            != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE
        {
            crate::errors::raise(
                pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "collect._resolve must return a row".into(),
                None,
            );
        }
        let tupdesc = pg_sys::BlessTupleDesc(tupdesc);
        let schema = schema.map(|schema| {
            let schema = std::ffi::CString::new(schema).expect("text has no NUL");
            pgrx::direct_function_call_as_datum(pg_sys::namein, &[schema.as_c_str().into_datum()])
                .expect("namein returns a name")
        });
        let mut values = [
            schema.unwrap_or(pg_sys::Datum::from(0)),
            object_name.into_datum().expect("text"),
        ];
        let mut nulls = [schema.is_none(), false];
        let tuple = pg_sys::heap_form_tuple(tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::heap_copy_tuple_as_datum(tuple, tupdesc)
    }
}

/// What `collect._resolve(kind, name, suffix)` answers, for the C entry points that resolve a
/// name themselves: the schema (None when no schema of the search path holds `name || suffix`)
/// and the object's name. A NULL name is 22004, a name of more than two parts 22023.
pub fn resolve(kind: &str, name: Option<&str>, suffix: Option<&str>) -> (Option<String>, String) {
    use pgrx::IntoDatum;
    let Some(name) = name else {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{kind} name must not be NULL"),
            None,
        )
    };
    // SAFETY: parse_ident(text, strict boolean) returns a non-NULL text[] or raises.
    let parts: Vec<String> = unsafe {
        pgrx::direct_function_call::<Vec<String>>(
            pg_sys::parse_ident,
            &[name.into_datum(), true.into_datum()],
        )
    }
    .unwrap_or_default();
    if parts.len() > 2 || parts.is_empty() {
        let text = std::ffi::CString::new(name).expect("text has no NUL");
        // SAFETY: quote_literal_cstr returns a palloc'd C string.
        let quoted = unsafe {
            std::ffi::CStr::from_ptr(pg_sys::quote_literal_cstr(text.as_ptr()))
                .to_string_lossy()
                .into_owned()
        };
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid {kind} name: {quoted}"),
            Some("Write name or schema.name.".into()),
        )
    }
    let object_name = parts[parts.len() - 1].clone();
    let schema = if parts.len() == 2 {
        Some(parts[0].clone())
    } else {
        suffix.and_then(|suffix| schema_holding(&format!("{object_name}{suffix}")))
    };
    (schema, object_name)
}

/// The relation named `relname` in schema `namespace`, as `relname = text` finds it in
/// pg_class: a text longer than a name can be names none (the syscache would compare it cut
/// short to NAMEDATALEN - 1 bytes and find the relation its first bytes name).
fn relation_in(namespace: pg_sys::Oid, relname: &[u8]) -> Option<pg_sys::Oid> {
    if relname.len() >= pg_sys::NAMEDATALEN as usize {
        return None;
    }
    let relname = std::ffi::CString::new(relname).ok()?;
    // SAFETY: a syscache probe by name; a miss gives InvalidOid.
    let relation = unsafe { pg_sys::get_relname_relid(relname.as_ptr(), namespace) };
    (relation != pg_sys::InvalidOid).then_some(relation)
}

/// The relation `relname` in schema `schema`, by name, as `relation_in` finds it.
pub fn relation(schema: &str, relname: &str) -> Option<pg_sys::Oid> {
    let schema = std::ffi::CString::new(schema).ok()?;
    // SAFETY: a syscache probe by name; a miss gives InvalidOid.
    let namespace = unsafe { pg_sys::get_namespace_oid(schema.as_ptr(), true) };
    if namespace == pg_sys::InvalidOid {
        return None;
    }
    relation_in(namespace, relname.as_bytes())
}

/// The role named `name`, if there is one.
pub fn role(name: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a syscache probe by name; a miss gives InvalidOid.
    let role = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (role != pg_sys::InvalidOid).then_some(role)
}

/// The first schema of the caller's search path (`current_schemas(true)`) that holds a
/// relation named `relname`, by name.
fn schema_holding(relname: &str) -> Option<String> {
    // SAFETY: fetch_search_path returns a palloc'd list of schema OIDs.
    unsafe {
        let path = pg_sys::fetch_search_path(true);
        let length = if path.is_null() { 0 } else { (*path).length };
        (0..length as usize)
            .map(|i| (*(*path).elements.add(i)).oid_value)
            .find(|&namespace| relation_in(namespace, relname.as_bytes()).is_some())
            .map(|namespace| {
                std::ffi::CStr::from_ptr(pg_sys::get_namespace_name(namespace))
                    .to_string_lossy()
                    .into_owned()
            })
    }
}

/// `collect.job_timeout` in milliseconds; None when off.
fn job_timeout_ms() -> Option<i32> {
    Some(JOB_TIMEOUT.get()).filter(|&ms| ms > 0)
}

/// A trigger function of pg_collect's called as no trigger its `maker` makes (by hand, or by a
/// trigger somebody else declared): `function` must be called as `how`.
pub fn trigger_protocol_violation(function: &str, how: &str, maker: &str) -> ! {
    crate::errors::raise(
        pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
        format!("{function} must be called as {how}"),
        Some(format!("Only {maker} makes these triggers.")),
    )
}

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
///
/// Session-level advisory locks are the one thing neither abort nor the GUC unwinding ends:
/// those the code took (that the backend did not hold before) are released afterwards, on
/// error too. Transaction-level ones end with the caller's transaction, as PostgreSQL's own.
pub fn as_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    let held_before = advisory_locks_held();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| switched_to(owner, f)));
    release_session_advisory_locks_taken(&held_before);
    result.unwrap_or_else(|error| std::panic::resume_unwind(error))
}

fn switched_to<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
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

/// An advisory lock as pg_locks shows it: its tag and one mode this backend holds it in.
type AdvisoryLock = ([u32; 4], u16, pg_sys::LOCKMODE);

/// The advisory locks this backend holds (granted), from the lock manager's own listing (what
/// pg_locks reads): session and transaction ones alike, which nothing outside lock.c tells apart.
fn advisory_locks_held() -> Vec<AdvisoryLock> {
    let mut held = Vec::new();
    // SAFETY: GetLockStatusData returns a palloc'd snapshot of `nelements` entries.
    unsafe {
        let data = pg_sys::GetLockStatusData();
        let locks = std::slice::from_raw_parts((*data).locks, (*data).nelements as usize);
        for lock in locks.iter().filter(|l| l.pid == pg_sys::MyProcPid) {
            let tag = lock.locktag;
            if u32::from(tag.locktag_type) != pg_sys::LockTagType::LOCKTAG_ADVISORY {
                continue;
            }
            let fields = [
                tag.locktag_field1,
                tag.locktag_field2,
                tag.locktag_field3,
                u32::from(tag.locktag_field4),
            ];
            for mode in 1..=pg_sys::MaxLockMode as pg_sys::LOCKMODE {
                if lock.holdMask & (1 << mode) != 0 {
                    held.push((fields, u16::from(tag.locktag_lockmethodid), mode));
                }
            }
        }
        pg_sys::pfree((*data).locks.cast());
        pg_sys::pfree(data.cast());
    }
    held
}

/// Releases every session-level hold on advisory locks the backend holds now and did not
/// hold in `before`. LockRelease warns when the hold is a transaction-level one (which stays):
/// the warning is silenced for that one call, as it tells nobody anything.
fn release_session_advisory_locks_taken(before: &[AdvisoryLock]) {
    for (fields, method, mode) in advisory_locks_held()
        .into_iter()
        .filter(|l| !before.contains(l))
    {
        let tag = pg_sys::LOCKTAG {
            locktag_field1: fields[0],
            locktag_field2: fields[1],
            locktag_field3: fields[2],
            locktag_field4: fields[3] as u16,
            locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
            locktag_lockmethodid: method as u8,
        };
        // SAFETY: a release of a lock this backend holds (LockRelease raises only for an
        // unknown method or mode, and these come from the lock manager); the two message
        // levels are plain integers restored right after each call.
        unsafe {
            let (client, log) = (pg_sys::client_min_messages, pg_sys::log_min_messages);
            loop {
                pg_sys::client_min_messages = pgrx::PgLogLevel::ERROR as i32;
                pg_sys::log_min_messages = pgrx::PgLogLevel::ERROR as i32;
                let released = pg_sys::LockRelease(&tag, mode, true);
                pg_sys::client_min_messages = client;
                pg_sys::log_min_messages = log;
                if !released {
                    break;
                }
            }
        }
    }
}

/// The role `name`, for a caller who may act as it (a member, as `SET ROLE` requires, or a
/// superuser); 42501 otherwise, 42704 when there is no such role.
pub fn role_the_caller_may_become(name: &std::ffi::CStr, what: &str) -> pg_sys::Oid {
    // SAFETY: a role lookup that raises 42704 itself, and a catalog membership check.
    let (role, caller) = unsafe {
        (
            pg_sys::get_role_oid(name.as_ptr(), false),
            pg_sys::GetUserId(),
        )
    };
    if !unsafe { pg_sys::is_member_of_role(caller, role) } {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied to {what} as role {}",
                name.to_string_lossy()
            ),
            Some("Only the owner, a member of it, or a superuser does this.".into()),
        );
    }
    role
}

/// `collect._as_owner(owner, query, as_job)`: the one row and column `query` answers (NULL
/// for no row), run as `owner` by `as_owner`, for a caller who may become that role; a job's
/// batch (`as_job`) is also bounded by `collect.job_timeout`. The SQL-level door to the
/// mechanism: owner-run calls re-enter themselves through it.
#[pgrx::pg_extern(sql = false)]
fn registry_as_owner(owner: &std::ffi::CStr, query: &str, as_job: bool) -> Option<String> {
    let role = role_the_caller_may_become(owner, "run this");
    let wrapped = format!("SELECT a.answer::pg_catalog.text FROM ({query}) a(answer)");
    let run = || as_owner(role, || pgrx::Spi::get_one::<String>(&wrapped));
    let answer = match job_timeout_ms() {
        Some(ms) if as_job => within(ms, run),
        _ => run(),
    };
    answer.unwrap_or_else(|e| {
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
        role != pg_sys::Oid::INVALID
            && role == pg_sys::GetUserId()
            && pg_sys::InSecurityRestrictedOperation()
    }
}

/// `collect._delete_registry_rows(registry, key)`: deletes the rows of a capability's registry
/// whose columns equal `key` (`{"column": "value as text"}`; an OID column, such as a
/// `regclass`, as its number) and that the caller owns (a
/// member of the row's owner). PUBLIC has no DELETE on registries: table-level DELETE (or
/// UPDATE) would let any role `LOCK TABLE` a registry in any mode and stall every append and
/// ingest. So the delete runs as the registry's owner, with the ownership check in its WHERE.
#[pgrx::pg_extern(sql = false)]
fn registry_delete_rows(registry: pg_sys::Oid, key: crate::jsonb::JsonbArg) -> i64 {
    use pgrx::PgSqlErrorCode;
    let invalid = |why: String| -> ! {
        crate::errors::raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, why, None)
    };
    let (table, table_owner) = pgrx::Spi::get_two_with_args::<String, pg_sys::Oid>(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), c.relowner
           FROM collect.capabilities k JOIN pg_catalog.pg_class c ON c.oid = k.registry
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE k.registry = $1",
        &[registry.into()],
    )
    .ok()
    .and_then(|(t, o)| t.zip(o))
    .unwrap_or_else(|| {
        invalid(format!(
            "relation {} is not a registry of pg_collect",
            registry.to_u32()
        ))
    });
    let key: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(key.to_text().to_bytes()).unwrap_or_else(|e| {
            invalid(format!("a registry row's key is an object of texts: {e}"))
        });
    if key.is_empty() {
        invalid("a registry row's key names at least one column".into());
    }
    let mut conditions = Vec::new();
    let mut args: Vec<pgrx::datum::DatumWithOid> = Vec::new();
    for (i, (column, value)) in key.iter().enumerate() {
        let is_oid = pgrx::Spi::get_one_with_args::<bool>(
            "SELECT t.typname IN ('oid', 'regclass', 'regtype', 'regproc', 'regprocedure')
               FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[registry.into(), column.as_str().into()],
        )
        .ok()
        .flatten()
        .unwrap_or_else(|| invalid(format!("{table} has no column \"{column}\"")));
        let as_text = if is_oid {
            "::pg_catalog.oid::pg_catalog.text"
        } else {
            "::pg_catalog.text"
        };
        conditions.push(format!(
            "d.{}{as_text} OPERATOR(pg_catalog.=) ${}",
            ident(column),
            i + 1
        ));
        args.push(value.as_str().into());
    }
    // SAFETY: reads the caller's user id.
    let caller = unsafe { pg_sys::GetUserId() };
    conditions.push(format!(
        "pg_catalog.pg_has_role(${}, d.owner, 'USAGE')",
        key.len() + 1
    ));
    args.push(caller.into());
    let sql = format!(
        "WITH gone AS (DELETE FROM {table} d WHERE {} RETURNING 1) SELECT pg_catalog.count(*) FROM gone",
        conditions.join(" AND ")
    );
    as_owner(table_owner, || {
        pgrx::Spi::get_one_with_args::<i64>(&sql, &args)
    })
    .ok()
    .flatten()
    .unwrap_or(0)
}

/// `STATEMENT_TIMEOUT` of `enum TimeoutId` in utils/timeout.h (the fourth reason since the
/// enum was made in 9.3; read off PostgreSQL 15's header here), whose functions pgrx does not
/// bind.
const STATEMENT_TIMEOUT: std::ffi::c_int = 3;

unsafe extern "C-unwind" {
    fn enable_timeout_at(id: std::ffi::c_int, fin_time: pg_sys::TimestampTz);
    fn disable_timeout(id: std::ffi::c_int, keep_indicator: bool);
    fn get_timeout_active(id: std::ffi::c_int) -> bool;
    fn get_timeout_finish_time(id: std::ffi::c_int) -> pg_sys::TimestampTz;
}

/// Runs `f` with the statement timeout brought forward to at most `ms` from now (a batch of a
/// maintenance job, bounded by `collect.job_timeout`): past it, the batch is cancelled with
/// 57014 as `statement_timeout` would. The timeout the statement had before comes back
/// afterwards, on error too (the guard's drop runs while the error unwinds).
fn within<T>(ms: i32, f: impl FnOnce() -> T) -> T {
    struct Restore {
        was_active: bool,
        finish: pg_sys::TimestampTz,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            let id = STATEMENT_TIMEOUT;
            // SAFETY: re-arms or disarms a timeout registered by InitPostgres.
            unsafe {
                if self.was_active {
                    enable_timeout_at(id, self.finish);
                } else {
                    disable_timeout(id, false);
                }
            }
        }
    }
    let id = STATEMENT_TIMEOUT;
    // SAFETY: reads and arms the statement timeout of this backend, as postgres.c does.
    let _restore = unsafe {
        let was_active = get_timeout_active(id);
        let finish = if was_active {
            get_timeout_finish_time(id)
        } else {
            0
        };
        let deadline = pg_sys::GetCurrentTimestamp() + i64::from(ms) * 1000;
        if !was_active || deadline < finish {
            enable_timeout_at(id, deadline);
        }
        JOB_DEADLINE.set(deadline);
        Restore { was_active, finish }
    };
    f()
}

thread_local! {
    /// When the last job batch `within` bounded had to end.
    static JOB_DEADLINE: std::cell::Cell<pg_sys::TimestampTz> = const { std::cell::Cell::new(pg_sys::TimestampTz::MAX) };
}

/// `collect._past_job_deadline()`: whether a cancel that just ended a job's batch was its
/// `collect.job_timeout` (the job failed: record it, run the next) rather than somebody's
/// cancel of the whole call (which must end it).
#[pgrx::pg_extern(sql = false)]
fn registry_past_job_deadline() -> bool {
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    now >= JOB_DEADLINE.get()
}

/// `collect._figures_as_owner(kind, tables)`: the figures query of capability `kind`
/// (`collect.capabilities.figures`, which only the extension script writes) over `tables`, as
/// one jsonb row, run as the tables' one owner by `as_owner`; NULL when the caller may not read
/// every table or they have more than one owner. Reading a table runs its owner's code (a view
/// body, a policy, a cast of a column type): as the owner, sandboxed, never as the reader.
#[pgrx::pg_extern(sql = false)]
fn registry_figures(kind: &str, tables: Vec<Option<pg_sys::Oid>>) -> Option<pgrx::JsonB> {
    let tables: Vec<pg_sys::Oid> = tables.into_iter().collect::<Option<_>>()?;
    if tables.is_empty() {
        return None;
    }
    let (query, owner) = pgrx::Spi::get_two_with_args::<String, pg_sys::Oid>(
        "SELECT pg_catalog.format(k.figures, VARIADIC $2::pg_catalog.regclass[]::pg_catalog.text[]),
                (SELECT CASE WHEN pg_catalog.count(DISTINCT c.relowner) = 1 THEN pg_catalog.min(c.relowner::pg_catalog.text)::pg_catalog.oid END
                   FROM pg_catalog.pg_class c WHERE c.oid = ANY ($2))
           FROM collect.capabilities k
          WHERE k.kind = $1 AND k.figures IS NOT NULL
            AND (SELECT pg_catalog.bool_and(pg_catalog.has_table_privilege(t, 'SELECT')) FROM pg_catalog.unnest($2) t)
            AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.oid = ANY ($2)) = pg_catalog.cardinality($2)",
        &[kind.into(), tables.into()],
    )
    .ok()?;
    let (query, owner) = (query?, owner?);
    let row = format!("SELECT pg_catalog.to_jsonb(f) FROM ({query}) f");
    as_owner(owner, || pgrx::Spi::get_one::<pgrx::JsonB>(&row))
        .ok()
        .flatten()
}
