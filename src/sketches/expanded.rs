//! Sketches as aggregate states of their own SQL type, changed in place.
//!
//! An aggregate whose state is `collect.hll` (not `internal`) can be split by Citus into
//! partial aggregates on the workers and a combine on the coordinator, and by Postgres into
//! parallel workers without serialize functions. To keep such a state from being decoded and
//! encoded again on every row, it is a Postgres expanded object: the decoded sketch lives in a
//! memory context of its own under the aggregate's, each transition changes it through the
//! read-write pointer the aggregate hands back, and Postgres asks for the flat bytes only when
//! the value leaves the aggregate (stored, sent, or read by a function that wants bytes).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgMemoryContexts};

use super::sketch::Sketch;
use super::stored::{merge_or_raise, raise_unmergeable, stored};
use crate::errors::raise;

/// A sketch type's expanded-object methods, one static per type.
pub trait ExpandedSketch: Sketch + 'static {
    fn methods() -> &'static pg_sys::ExpandedObjectMethods;
}

/// The expanded object: Postgres's header first, then the Rust sketch (dropped when the
/// object's memory context is deleted or reset).
#[repr(C)]
struct Expanded<S> {
    header: pg_sys::ExpandedObjectHeader,
    sketch: S,
    /// The bytes `get_flat_size` encoded, kept for the `flatten_into` that follows it.
    flat: Option<Vec<u8>>,
}

/// The size of the object flattened: Postgres's `get_flat_size` method.
///
/// # Safety
/// `eoh` is the header of an object made by `new_state::<S>`.
pub unsafe extern "C-unwind" fn get_flat_size<S: Sketch>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
) -> pg_sys::Size {
    // SAFETY: Postgres calls the methods of an object made by `new_state::<S>`.
    let object = unsafe { &mut *(eoh as *mut Expanded<S>) };
    let bytes = object.sketch.to_bytes();
    let size = bytes.len() + pg_sys::VARHDRSZ;
    object.flat = Some(bytes);
    size
}

/// The object written flat into `result`: Postgres's `flatten_into` method.
///
/// # Safety
/// `eoh` is the header of an object made by `new_state::<S>`, and `result` has the
/// `allocated_size` bytes that `get_flat_size` returned for it.
pub unsafe extern "C-unwind" fn flatten_into<S: Sketch>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
    result: *mut c_void,
    allocated_size: pg_sys::Size,
) {
    // SAFETY: as above; `result` has `allocated_size` bytes, the size get_flat_size returned.
    unsafe {
        let object = &mut *(eoh as *mut Expanded<S>);
        let bytes = object
            .flat
            .take()
            .unwrap_or_else(|| object.sketch.to_bytes());
        if bytes.len() + pg_sys::VARHDRSZ != allocated_size {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("{} changed while being flattened", S::SQL_NAME),
                None,
            );
        }
        pgrx::set_varsize_4b(result as *mut pg_sys::varlena, allocated_size as i32);
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (result as *mut u8).add(pg_sys::VARHDRSZ),
            bytes.len(),
        );
    }
}

/// The methods of `$rust`'s expanded objects.
macro_rules! expanded_sketch {
    ($rust:ty) => {
        impl $crate::sketches::expanded::ExpandedSketch for $rust {
            fn methods() -> &'static pgrx::pg_sys::ExpandedObjectMethods {
                static METHODS: pgrx::pg_sys::ExpandedObjectMethods =
                    pgrx::pg_sys::ExpandedObjectMethods {
                        get_flat_size: Some($crate::sketches::expanded::get_flat_size::<$rust>),
                        flatten_into: Some($crate::sketches::expanded::flatten_into::<$rust>),
                    };
                &METHODS
            }
        }
    };
}
pub(crate) use expanded_sketch;

/// `datum` as one of our expanded `S` objects, when it is one (read-write only if asked).
unsafe fn as_expanded<S: ExpandedSketch>(
    datum: pg_sys::Datum,
    read_write_only: bool,
) -> Option<*mut Expanded<S>> {
    // SAFETY: `datum` is a non-NULL varlena; an external one-byte header is 0x01 and its tag
    // follows (VARATT_IS_EXTERNAL_EXPANDED).
    unsafe {
        let pointer = datum.cast_mut_ptr::<u8>();
        if *pointer != 0x01 {
            return None;
        }
        let tag = *pointer.add(1) as u32;
        let read_write = tag == pg_sys::vartag_external::VARTAG_EXPANDED_RW;
        let read_only = tag == pg_sys::vartag_external::VARTAG_EXPANDED_RO;
        if !(read_write || (read_only && !read_write_only)) {
            return None;
        }
        // varatt_expanded: the object's header pointer, unaligned, after the two header bytes
        // (DatumGetEOHP, read here rather than called: this runs on every row).
        let eoh =
            std::ptr::read_unaligned(pointer.add(2) as *const *mut pg_sys::ExpandedObjectHeader);
        std::ptr::eq((*eoh).eoh_methods, S::methods()).then_some(eoh as *mut Expanded<S>)
    }
}

/// Whether the caller is a plain aggregate (what AggCheckCallContext answers
/// AGG_CONTEXT_AGGREGATE for), read from the call's context node on every row.
unsafe fn in_plain_aggregate(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    // SAFETY: fcinfo->context is NULL or a Node.
    unsafe {
        let context = (*fcinfo).context;
        !context.is_null() && (*context).type_ == pg_sys::NodeTag::T_AggState
    }
}

thread_local! {
    /// The context the expanded sketches of one aggregate context live in, by that context.
    static SHARED: RefCell<HashMap<usize, pg_sys::MemoryContext>> = RefCell::new(HashMap::new());
}

#[pg_guard]
unsafe extern "C-unwind" fn forget_shared(parent: *mut c_void) {
    SHARED.with(|shared| shared.borrow_mut().remove(&(parent as usize)));
}

/// One context under `parent` for all the sketches an aggregate keeps there. Postgres keeps a
/// read-write state in place only when its context's parent is the aggregate's, so the
/// sketches cannot live in `parent` itself; and a context per group would make hash
/// aggregation, which sums its contexts' memory at every new group, quadratic in the groups.
/// Deleted (or reset) with `parent`, when it is also forgotten here.
unsafe fn shared_context(parent: pg_sys::MemoryContext) -> pg_sys::MemoryContext {
    if let Some(context) = SHARED.with(|shared| shared.borrow().get(&(parent as usize)).copied()) {
        return context;
    }
    // SAFETY: a child of a live context; the callback runs when it goes.
    unsafe {
        let context = pg_sys::AllocSetContextCreateInternal(
            parent,
            c"collect sketches".as_ptr(),
            0,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        );
        let callback = pg_sys::MemoryContextAllocZero(
            context,
            std::mem::size_of::<pg_sys::MemoryContextCallback>(),
        ) as *mut pg_sys::MemoryContextCallback;
        (*callback).func = Some(forget_shared);
        (*callback).arg = parent as *mut c_void;
        pg_sys::MemoryContextRegisterResetCallback(context, callback);
        SHARED.with(|shared| shared.borrow_mut().insert(parent as usize, context));
        context
    }
}

/// A new expanded object holding `sketch`, under the aggregate context `parent`; the
/// read-write datum that stands for it.
unsafe fn new_state<S: ExpandedSketch>(parent: pg_sys::MemoryContext, sketch: S) -> pg_sys::Datum {
    // SAFETY: the object lives in the shared context, which Postgres deletes with `parent`;
    // the Rust sketch is dropped then. Postgres never deletes a state it keeps in place (it
    // deletes a read-write state only when the transition returns another, and ours return
    // the state they were given).
    unsafe {
        let context = shared_context(parent);
        let object = PgMemoryContexts::For(context).leak_and_drop_on_delete(Expanded {
            header: pg_sys::ExpandedObjectHeader::default(),
            sketch,
            flat: None,
        });
        pg_sys::EOH_init_header(&mut (*object).header, S::methods(), context);
        pg_sys::Datum::from((*object).header.eoh_rw_ptr.as_mut_ptr())
    }
}

/// A sketch argument decoded, whatever form it arrives in.
unsafe fn decoded<S: ExpandedSketch>(datum: pg_sys::Datum) -> S {
    // SAFETY: a non-NULL argument of S's SQL type.
    unsafe {
        match as_expanded::<S>(datum, false) {
            Some(object) => (*object).sketch.clone(),
            None => stored(<&[u8]>::from_datum(datum, false).unwrap_or_default()),
        }
    }
}

/// The body of a transition or combine function whose state (argument 0) is the sketch type:
/// `update` changes the state, which is created by `init` on the first row. Called by a plain
/// aggregate, the state is changed in place and returned as the same read-write object;
/// called otherwise (a window aggregate, which may still hold earlier results, or plain SQL),
/// a new value is returned and the argument is left alone.
///
/// # Safety
/// `fcinfo` is the call of a function whose argument 0 is NULL or a value of S's SQL type.
pub unsafe fn transition<S: ExpandedSketch>(
    fcinfo: pg_sys::FunctionCallInfo,
    init: impl FnOnce() -> S,
    update: impl FnOnce(&mut S),
) -> pg_sys::Datum {
    // SAFETY: argument 0 is NULL or a value of S's SQL type; a read-write object of ours is
    // handed to us only by the aggregate that owns it.
    unsafe {
        let state = pgrx::fcinfo::pg_get_nullable_datum(fcinfo, 0);
        if !state.isnull && in_plain_aggregate(fcinfo) {
            if let Some(object) = as_expanded::<S>(state.value, true) {
                // Bytes encoded before this change are no longer the sketch's.
                (*object).flat = None;
                update(&mut (*object).sketch);
                return state.value;
            }
        }
        let mut context: pg_sys::MemoryContext = std::ptr::null_mut();
        let kind = pg_sys::AggCheckCallContext(fcinfo, &mut context);
        let mut sketch = if state.isnull {
            init()
        } else {
            decoded::<S>(state.value)
        };
        update(&mut sketch);
        if kind == pg_sys::AGG_CONTEXT_AGGREGATE as i32 {
            return new_state(context, sketch);
        }
        sketch.to_bytes().into_datum().expect("bytes are a value")
    }
}

/// The body of a merge transition and of every sketch aggregate's combine function:
/// argument 1, a sketch, merged into the state. A NULL sketch adds nothing.
///
/// # Safety
/// `fcinfo` is the call of a function whose arguments 0 and 1 are NULL or values of S's SQL
/// type.
pub unsafe fn merge_transition<S: ExpandedSketch>(
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<pg_sys::Datum> {
    // SAFETY: reading the call's arguments, both of S's SQL type.
    unsafe {
        let state = pgrx::fcinfo::pg_get_nullable_datum(fcinfo, 0);
        let other = pgrx::fcinfo::pg_get_nullable_datum(fcinfo, 1);
        if other.isnull {
            return (!state.isnull).then_some(state.value);
        }
        if state.isnull {
            // The first sketch becomes the state: one decode, then merges in place.
            let first = decoded::<S>(other.value);
            return Some(transition(fcinfo, || first, |_| {}));
        }
        Some(transition(
            fcinfo,
            || unreachable!("the state is not NULL"),
            |sketch: &mut S| match as_expanded::<S>(other.value, false) {
                Some(object) => merge_or_raise(sketch, &(*object).sketch),
                None => merge_bytes_or_raise(
                    sketch,
                    <&[u8]>::from_datum(other.value, false).unwrap_or_default(),
                ),
            },
        ))
    }
}

fn merge_bytes_or_raise<S: Sketch>(into: &mut S, bytes: &[u8]) {
    if let Err(e) = into.merge_bytes(bytes) {
        // Precision mismatches are the caller's; anything else is a damaged stored value.
        if e.starts_with("cannot merge") {
            raise_unmergeable(e)
        }
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("{} value is corrupted: {e}", S::SQL_NAME),
            None,
        )
    }
}
