//! `collect.archived_range(name, since, until)` (a C function from 0.7.0): the records with
//! `since <= time < until`, in time order. On one node it reads the lumps overlapping the
//! range with a statement the session prepared once, finds each line's time with the field
//! scanner (`range::choose`) and parses into jsonb only the lines in range; the statement of
//! earlier releases parsed every line of those lumps and read its time twice. Any other call
//! (a NULL argument, Citus installed, a line the scanner leaves to jsonb, more rows than a read
//! holds in memory) goes through `collect._archived_range`, the path of earlier releases.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

use pg_collect_core::archives::range::{choose, in_order};
use pgrx::prelude::*;
use pgrx::{pg_sys, IntoDatum};

use super::sql::{archive_spec, column, definition, Definition};
use crate::errors::raise;
use crate::jsonb::JsonbValue;

const WHO: &str = "collect.archived_range";

/// The most source bytes (the lumps' `heap_bytes`) a read holds in memory; larger ranges go
/// through SQL, whose tuplestores spill to disk.
const HOLD_BYTES: i64 = 64 << 20;

/// Per lumps table (an archive made again under the same name has a new one): the statement
/// that reads the lumps overlapping a range, and the records' time key.
struct RangeStatement {
    plan: pg_sys::SPIPlanPtr,
    time_key: String,
}

thread_local! {
    static STATEMENTS: RefCell<HashMap<pg_sys::Oid, std::rc::Rc<RangeStatement>>> =
        RefCell::new(HashMap::new());
}

/// The chosen lines, in order, parsed into jsonb one at a time as the caller asks.
struct Records {
    text: Vec<u8>,
    lines: std::vec::IntoIter<std::ops::Range<usize>>,
}

impl Iterator for Records {
    type Item = JsonbValue;
    fn next(&mut self) -> Option<JsonbValue> {
        let line = self.lines.next()?;
        Some(JsonbValue::parse_bytes(&self.text[line]))
    }
}

/// `text` as `timestamptz_in` reads it (the `::timestamptz` of the earlier statement, with
/// its errors).
fn timestamptz(text: &str) -> i64 {
    let text = CString::new(text).unwrap_or_else(|_| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            "a record's time holds a NUL byte".into(),
            None,
        )
    });
    // SAFETY: timestamptz_in takes a cstring, the type's OID for I/O and a typmod.
    let datum = unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::timestamptz_in,
            &[
                text.as_c_str().into_datum(),
                pg_sys::TIMESTAMPTZOID.into_datum(),
                (-1i32).into_datum(),
            ],
        )
    };
    datum.expect("timestamptz_in returned NULL").value() as i64
}

/// The range read on one node; None when it is for SQL to read (see the module's comment).
///
/// # Safety
/// `name` is a text datum.
unsafe fn read_here(name: pg_sys::Datum, since: i64, until: i64) -> Option<Records> {
    pgrx::spi::Spi::connect(|_| {
        // SAFETY: inside SPI, with a text datum.
        let Definition::Holds {
            lumps: Some(lumps),
            schema,
            name,
            ..
        } = (unsafe { definition(Some(name)) })
        else {
            return None;
        };
        let statement = STATEMENTS.with(|s| {
            s.borrow_mut()
                .entry(lumps)
                .or_insert_with(|| {
                    let archive = archive_spec(&schema, &name);
                    let mut types = [pg_sys::TIMESTAMPTZOID, pg_sys::TIMESTAMPTZOID];
                    std::rc::Rc::new(RangeStatement {
                        // SAFETY: inside SPI.
                        plan: unsafe {
                            crate::plans::kept(WHO, &archive.range_lumps_sql(), &mut types)
                        },
                        time_key: archive.time,
                    })
                })
                .clone()
        });
        let mut values = [pg_sys::Datum::from(since), pg_sys::Datum::from(until)];
        // SAFETY: inside SPI, two timestamptz values for the plan's two parameters; the rows
        // are read before the next statement.
        unsafe {
            let rows =
                crate::plans::execute(WHO, statement.plan, &mut values, b"  ", true) as usize;
            let held: i64 = (0..rows)
                .filter_map(|row| column(row, 2).map(|d| d.value() as i64))
                .sum();
            if held > HOLD_BYTES {
                pgrx::debug1!(
                    "{WHO}: archive {schema}.{name}: the lumps overlapping the range held {held} bytes of rows, more than {HOLD_BYTES}: SQL reads the range"
                );
                return None;
            }
            let (mut chosen, mut text) = (Vec::new(), Vec::new());
            for row in 0..rows {
                let Some(lump) = column(row, 1) else { continue };
                let detoasted = pg_sys::pg_detoast_datum_packed(lump.cast_mut_ptr());
                let lump = crate::lump::sql::decode_stored(pgrx::varlena::varlena_to_byte_slice(
                    detoasted,
                ));
                choose(
                    lump.entries(),
                    row,
                    &statement.time_key,
                    (since, until),
                    &mut timestamptz,
                    (&mut chosen, &mut text),
                )
                .map_err(|left| {
                    pgrx::debug1!(
                        "{WHO}: archive {schema}.{name}: line {} of overlapping lump {} (by min_time) is left to SQL: SQL reads the range",
                        left.place + 1,
                        left.lump + 1
                    )
                })
                .ok()?;
                pgrx::check_for_interrupts!();
            }
            in_order(&mut chosen);
            let lines: Vec<_> = chosen.into_iter().map(|c| c.line).collect();
            Some(Records {
                text,
                lines: lines.into_iter(),
            })
        }
    })
}

/// The same read through `collect._archived_range`, as the SQL function of earlier releases
/// made it (its errors too).
fn read_through_sql(
    name: Option<pg_sys::Datum>,
    since: Option<pg_sys::Datum>,
    until: Option<pg_sys::Datum>,
) -> Records {
    // SAFETY: the call's own datums, of the declared types.
    let args = unsafe {
        [
            (name, pg_sys::TEXTOID),
            (since, pg_sys::TIMESTAMPTZOID),
            (until, pg_sys::TIMESTAMPTZOID),
        ]
        .map(|(datum, oid)| match datum {
            Some(d) => pgrx::datum::DatumWithOid::new(d, oid),
            None => pgrx::datum::DatumWithOid::null_oid(oid),
        })
    };
    let mut text = Vec::new();
    let mut lines = Vec::new();
    pgrx::spi::Spi::connect(|client| {
        let rows = client
            .select(
                "SELECT collect._archived_range(r.schema, r.object_name, $2, $3)::pg_catalog.text
                   FROM collect._resolve('archive', $1, '_lumps') r",
                None,
                &args,
            )
            .unwrap_or_else(|e| {
                raise(
                    PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    format!("{WHO}: {e}"),
                    None,
                )
            });
        for row in rows {
            if let Ok(Some(record)) = row.get::<&str>(1) {
                let start = text.len();
                text.extend_from_slice(record.as_bytes());
                lines.push(start..text.len());
            }
        }
    });
    Records {
        text,
        lines: lines.into_iter(),
    }
}

#[pg_extern(sql = false)]
fn archived_range(fcinfo: pg_sys::FunctionCallInfo) -> SetOfIterator<'static, JsonbValue> {
    // SAFETY: declared (text, timestamptz, timestamptz), not STRICT: each argument is read as
    // NULL or as a value of its type.
    let (name, since, until) = unsafe {
        (
            pgrx::fcinfo::pg_getarg_datum(fcinfo, 0),
            pgrx::fcinfo::pg_getarg_datum(fcinfo, 1),
            pgrx::fcinfo::pg_getarg_datum(fcinfo, 2),
        )
    };
    let here = match (name, since, until) {
        (Some(name), Some(since), Some(until)) if !crate::registry::citus_present() => {
            // SAFETY: a text datum.
            unsafe { read_here(name, since.value() as i64, until.value() as i64) }
        }
        _ => None,
    };
    SetOfIterator::new(here.unwrap_or_else(|| read_through_sql(name, since, until)))
}
