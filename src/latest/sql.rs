use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::generate::LatestCopy;
use crate::errors::raise;
use crate::jsonb::{JsonbArg, JsonbValue};

/// `collect._latest_statements(spec)`: the generated SQL for a latest copy, by name.
#[pg_extern(sql = false)]
fn latest_statements(spec: JsonbArg) -> JsonbValue {
    JsonbValue::serialize(&latest(spec).statements())
}

/// `collect._latest_shard_statements(spec)`: the trigger's statements for a latest copy kept
/// on Citus shards, by name (`LatestCopy::shard_statements`).
#[pg_extern(sql = false)]
fn latest_shard_statements(spec: JsonbArg) -> JsonbValue {
    JsonbValue::serialize(&latest(spec).shard_statements())
}

/// `collect._latest_add_columns_sql(spec, columns, types)`: the parent's copies of those child
/// columns, of those types (`LatestCopy::add_columns_sql`).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn latest_add_columns_sql(
    spec: JsonbArg,
    columns: Vec<Option<String>>,
    types: Vec<Option<String>>,
) -> Vec<String> {
    let columns = crate::errors::no_null_elements(columns, "columns");
    let types = crate::errors::no_null_elements(types, "types");
    if columns.len() != types.len() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "{} columns but {} types: each column needs its type",
                columns.len(),
                types.len()
            ),
            None,
        );
    }
    latest(spec).add_columns_sql(&columns, &types)
}

/// `collect._latest_trigger_sql(spec, tables, base, refresh, distributed)`: the triggers of a latest
/// copy on `tables` (`LatestCopy::trigger_sql`); on Citus they carry the spec.
#[pg_extern(sql = false, immutable, parallel_safe)]
fn latest_trigger_sql(
    spec: JsonbArg,
    tables: Vec<Option<String>>,
    base: &str,
    refresh: &str,
    distributed: bool,
) -> Vec<String> {
    let tables = crate::errors::no_null_elements(tables, "tables");
    let text = spec
        .to_text()
        .to_str()
        .map(str::to_string)
        .unwrap_or_else(|_| {
            raise(
                PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
                "a latest copy's spec must be UTF-8 to be carried by its triggers on Citus".into(),
                None,
            )
        });
    latest(spec).trigger_sql(&tables, base, refresh, distributed.then_some(text.as_str()))
}

/// The same two by position, as `collect._latest_sql` and `collect._latest_shard_sql` of
/// releases before 0.3.0 return them.
#[pg_extern(sql = false)]
fn latest_sql(spec: JsonbArg) -> Vec<String> {
    latest(spec).statements().in_release_order()
}

#[pg_extern(sql = false)]
fn latest_shard_sql(spec: JsonbArg) -> Vec<String> {
    latest(spec).shard_statements().in_release_order()
}

fn latest(spec: JsonbArg) -> LatestCopy {
    spec.deserialize("latest spec", None)
}

fn invalid_filter(filter: &str, why: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid filter {filter:?}: {why}"),
        Some(
            "A filter is one boolean expression over the child's columns, such as NOT deleted."
                .into(),
        ),
    )
}

#[pg_guard]
unsafe extern "C-unwind" fn has_sublink(
    node: *mut pg_sys::Node,
    context: *mut core::ffi::c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    if (*node).type_ == pg_sys::NodeTag::T_SubLink {
        return true;
    }
    pg_sys::raw_expression_tree_walker(node, Some(has_sublink), context)
}

/// The filter, checked to be exactly one expression without subqueries: what it may read is
/// then only the row it is evaluated on. (Columns and the boolean type are checked by
/// Postgres itself, by planning `WHERE filter` over the child.)
#[pg_extern(sql = false)]
fn latest_check_filter(filter: &str) -> String {
    let trimmed = filter.trim();
    if trimmed.is_empty() {
        invalid_filter(filter, "it is empty");
    }
    // Parsed twice, bare and in parentheses: text that only parses inside parentheses (such
    // as `a) OR (true`) would escape them in the generated SQL.
    for select in [
        format!("SELECT \n{trimmed}\n"),
        format!("SELECT (\n{trimmed}\n)"),
    ] {
        let parsed = PgTryBuilder::new(|| {
            single_expression(filter, &select);
            Ok(())
        })
        .catch_others(|e| match e {
            pgrx::pg_sys::panic::CaughtError::PostgresError(r)
            | pgrx::pg_sys::panic::CaughtError::ErrorReport(r)
                if r.sql_error_code() == PgSqlErrorCode::ERRCODE_SYNTAX_ERROR =>
            {
                Err(r.message().to_string())
            }
            other => other.rethrow(),
        })
        .execute();
        if let Err(why) = parsed {
            invalid_filter(filter, &format!("it is not a single expression ({why})"));
        }
    }
    trimmed.to_string()
}

fn single_expression(filter: &str, select: &str) {
    let text = CString::new(select).expect("text values hold no NUL byte");
    // SAFETY: raw_parser reads a NUL-terminated string and returns a List of RawStmt nodes
    // (or raises a syntax error); the nodes are palloc'd in the current context.
    unsafe {
        let statements = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        if statements.is_null() || (*statements).length != 1 {
            invalid_filter(filter, "it is more than one statement");
        }
        let raw = pg_sys::list_nth(statements, 0).cast::<pg_sys::RawStmt>();
        let select = (*raw).stmt.cast::<pg_sys::SelectStmt>();
        if (*select).type_ != pg_sys::NodeTag::T_SelectStmt
            || (*select).op != pg_sys::SetOperation::SETOP_NONE
            || !(*select).fromClause.is_null()
            || !(*select).whereClause.is_null()
            || !(*select).groupClause.is_null()
            || !(*select).havingClause.is_null()
            || !(*select).windowClause.is_null()
            || !(*select).sortClause.is_null()
            || !(*select).limitCount.is_null()
            || !(*select).limitOffset.is_null()
            || !(*select).lockingClause.is_null()
            || !(*select).withClause.is_null()
            || !(*select).intoClause.is_null()
            || !(*select).distinctClause.is_null()
            || (*(*select).targetList).length != 1
        {
            invalid_filter(filter, "it is not a single expression");
        }
        let target = pg_sys::list_nth((*select).targetList, 0).cast::<pg_sys::Node>();
        if has_sublink(target, std::ptr::null_mut()) {
            invalid_filter(
                filter,
                "subqueries are not allowed: the filter may only read the child row",
            );
        }
    }
}
