//! The one boundary every export goes through (`ffi_boundary!`): it runs the export's body —
//! argument checks included — under `catch_unwind`, so no Rust panic unwinds into C. A caught
//! panic answers with the value the export's return type gives it (`PanicDefault`: a status
//! becomes SLP_E_PANIC, a bool false, a pointer NULL), sets slp_last_error, and poisons the
//! calling thread's scheduler: a panic may have left it half-updated, so every later call that
//! needs it is refused with SLP_E_PANIC instead of touching inconsistent state.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{fail, Status, E_INVALID, E_PANIC};

/// What an export returns when a panic was caught in it.
pub trait PanicDefault {
    fn panic_default() -> Self;
}

impl PanicDefault for Status {
    fn panic_default() -> Self {
        E_PANIC
    }
}
impl PanicDefault for bool {
    fn panic_default() -> Self {
        false
    }
}
impl PanicDefault for () {
    fn panic_default() -> Self {}
}
impl PanicDefault for i64 {
    fn panic_default() -> Self {
        0
    }
}
impl PanicDefault for u32 {
    fn panic_default() -> Self {
        0
    }
}
impl PanicDefault for usize {
    fn panic_default() -> Self {
        0
    }
}
impl<T> PanicDefault for *mut T {
    fn panic_default() -> Self {
        std::ptr::null_mut()
    }
}
impl<T> PanicDefault for *const T {
    fn panic_default() -> Self {
        std::ptr::null()
    }
}

/// Runs an export's body at the boundary (see the module docs).
#[inline(always)]
pub fn run<R: PanicDefault>(name: &'static str, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(_) => caught(name),
    }
}

#[cold]
#[inline(never)]
fn caught<R: PanicDefault>(name: &'static str) -> R {
    if let Some(s) = crate::sched::sched_opt() {
        s.poison();
    }
    fail(
        E_PANIC,
        format_args!(
            "{name}: internal error (a panic was caught at the libslp boundary); this thread's \
             scheduler is refused from now on"
        ),
    );
    R::panic_default()
}

/// A pointer argument that must not be NULL: `Err(SLP_E_INVALID)` naming the export and the
/// argument.
#[inline(always)]
pub fn nonnull<T>(p: *const T, func: &'static str, what: &'static str) -> Result<*const T, Status> {
    if p.is_null() {
        Err(null_arg(func, what))
    } else {
        Ok(p)
    }
}

#[cold]
fn null_arg(func: &str, what: &str) -> Status {
    fail(E_INVALID, format_args!("{func}: {what} is NULL"))
}

/// `Ok(s) | Err(s) => s`, for bodies that use `?` on argument checks.
#[inline(always)]
pub fn flatten(r: Result<Status, Status>) -> Status {
    match r {
        Ok(s) | Err(s) => s,
    }
}

/// Wraps an export's whole body: `ffi_boundary!("slp_x", { ... })`.
macro_rules! ffi_boundary {
    ($name:literal, $body:block) => {
        $crate::ffi::boundary::run($name, || $body)
    };
}
pub(crate) use ffi_boundary;

/// Like `ffi_boundary!` for a status-returning body that uses `?`.
macro_rules! ffi_status {
    ($name:literal, $body:block) => {
        $crate::ffi::boundary::run($name, || {
            // The inner closure gives the body's `?` its scope.
            #[allow(clippy::redundant_closure_call)]
            let r = (|| -> Result<$crate::status::Status, $crate::status::Status> { $body })();
            $crate::ffi::boundary::flatten(r)
        })
    };
}
pub(crate) use ffi_status;
