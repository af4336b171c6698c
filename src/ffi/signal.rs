//! C API: Signal and Till (mo-threads' `Signal` and `Till`).

use std::ffi::c_void;

use super::boundary::nonnull;
use super::{ffi_boundary, ffi_status, slp_status, SLP_OK};
use crate::signal::{self, Signal};
use crate::status::*;

/// Creates a Signal (mo-threads `Signal`): an irreversible binary semaphore that threads and
/// tasklets wait on. `*out` receives a reference the caller releases with
/// slp_signal_release. Any thread. Returns SLP_OK, SLP_E_INVALID (out NULL), SLP_E_NOMEM.
///
/// # Safety
/// `out`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_new(out: *mut *mut Signal) -> slp_status {
    ffi_status!("slp_signal_new", {
        let out = nonnull(out, "slp_signal_new", "out")? as *mut *mut Signal;
        // A thread that makes a signal participates in deadlock detection from now on.
        crate::sched::usable()?;
        let Some(s) = signal::new() else {
            return Err(fail(E_NOMEM, "slp_signal_new: out of memory"));
        };
        *out = s;
        Ok(SLP_OK)
    })
}

/// Adds a reference. NULL is ignored. Any thread.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_retain(s: *mut Signal) {
    ffi_boundary!("slp_signal_retain", {
        if !s.is_null() {
            signal::retain(s);
        }
    })
}

/// Drops a reference; NULL is ignored. The last one frees the signal; a derived signal
/// (slp_signal_or / _and) then unsubscribes from its inputs, so making and releasing derived
/// signals in a loop does not grow its inputs. A tasklet or thread waiting on the signal holds
/// it until its wait ends. Any thread.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_release(s: *mut Signal) {
    ffi_boundary!("slp_signal_release", {
        if !s.is_null() {
            signal::release(s);
        }
    })
}

/// Makes the signal go (mo-threads `go()`): idempotent and irreversible. The `then` callbacks
/// run once each, in registration order, on this thread (see "Callbacks" at the top of this
/// header), then every waiter, tasklet or thread, on any thread, is released (a tasklet of the
/// calling thread is appended to its run queue; one of another thread goes back to its owner,
/// which is woken): a wait that returns SLP_OK sees what the callbacks did. Any thread. Returns SLP_OK, SLP_E_INVALID
/// (NULL).
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_go(s: *mut Signal) -> slp_status {
    ffi_status!("slp_signal_go", {
        let s = nonnull(s, "slp_signal_go", "s")?;
        crate::sched::usable()?;
        Ok(signal::go(s))
    })
}

/// True once the signal went (false for NULL). Any thread.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_is_go(s: *const Signal) -> bool {
    ffi_boundary!("slp_signal_is_go", { !s.is_null() && signal::is_go(s) })
}

/// Waits until the signal goes (mo-threads `wait()`, which could not tell a timeout from
/// success: libslp can). Returns SLP_OK as soon as it went (at once if it already had), or
/// SLP_E_TIMEOUT when `timeout_ns` passed first (0 polls; < 0 waits without limit; the
/// deadline is on the thread's scheduler clock, see slp_set_clock). Tasklet-aware: from a
/// tasklet it parks only that tasklet; from a main tasklet with nothing runnable it parks
/// the OS thread. A wait nothing could ever end is SLP_E_DEADLOCK (see "Deadlock detection").
/// Also SLP_E_KILLED or a thrown code (the waiting tasklet was killed or thrown to; it left the
/// signal), SLP_E_WOULD_BLOCK (block_trap, signal not gone), SLP_E_SWITCH_TRAP, SLP_E_STATE
/// (inside a callback), SLP_E_INVALID (NULL). A waiter killed from another thread leaves the
/// signal when its own thread applies the kill.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_wait(s: *mut Signal, timeout_ns: i64) -> slp_status {
    ffi_status!("slp_signal_wait", {
        let s = nonnull(s, "slp_signal_wait", "s")? as *mut Signal;
        Ok(signal::wait(s, timeout_ns))
    })
}

/// A `then` callback: `fn(user_data)`.
pub type slp_signal_then_fn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Registers `fn(user_data)` to run once when the signal goes (mo-threads `then()`), on the
/// thread that makes it go, in registration order; if the signal already went, `fn` runs at
/// once, on the caller, before this returns. `*token` (may be NULL) receives an id for
/// slp_signal_remove_then. `fn` is a libslp callback: calls that would switch, block or run
/// return SLP_E_STATE inside it. Any thread. Returns SLP_OK, SLP_E_INVALID (s or fn NULL),
/// SLP_E_NOMEM.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to; `fn_`: NULL or safe to call
/// with `user_data` on whichever thread makes the signal go; `token`: NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_then(
    s: *mut Signal,
    fn_: slp_signal_then_fn,
    user_data: *mut c_void,
    token: *mut u64,
) -> slp_status {
    ffi_status!("slp_signal_then", {
        let s = nonnull(s, "slp_signal_then", "s")?;
        crate::sched::usable()?;
        let Some(f) = fn_ else {
            return Err(fail(E_INVALID, "slp_signal_then: fn is NULL"));
        };
        let t = signal::then(s, f, user_data)?;
        if !token.is_null() {
            *token = t;
        }
        Ok(SLP_OK)
    })
}

/// Removes a `then` callback before it ran. Returns SLP_OK; SLP_E_STATE when it already ran,
/// was removed, or the token is not this signal's; SLP_E_INVALID (NULL). Any thread.
///
/// # Safety
/// `s`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_remove_then(s: *mut Signal, token: u64) -> slp_status {
    ffi_status!("slp_signal_remove_then", {
        let s = nonnull(s, "slp_signal_remove_then", "s")?;
        Ok(signal::remove_then(s, token))
    })
}

/// A derived signal (a new reference in `*out`) that goes when `a` or `b` goes (mo-threads
/// `a | b`), at once if one already went. It holds its inputs while it exists; released, it
/// unsubscribes from them (a `wait(or(x, please_stop))` loop does not grow `x`). Any thread.
/// Returns SLP_OK, SLP_E_INVALID (a NULL argument), SLP_E_NOMEM.
///
/// # Safety
/// `a`, `b`: NULL or live handles the caller holds references to; `out`: NULL or valid for a
/// write.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_or(a: *mut Signal, b: *mut Signal, out: *mut *mut Signal) -> slp_status {
    derive("slp_signal_or", a, b, out, false)
}

/// A derived signal (a new reference in `*out`) that goes when both `a` and `b` went
/// (mo-threads `a & b`), at once if both already did. Released, it unsubscribes from its
/// inputs, like slp_signal_or. Any thread. Returns SLP_OK, SLP_E_INVALID (a NULL argument),
/// SLP_E_NOMEM.
///
/// # Safety
/// As slp_signal_or.
#[no_mangle]
pub unsafe extern "C" fn slp_signal_and(a: *mut Signal, b: *mut Signal, out: *mut *mut Signal) -> slp_status {
    derive("slp_signal_and", a, b, out, true)
}

unsafe fn derive(func: &'static str, a: *mut Signal, b: *mut Signal, out: *mut *mut Signal, and: bool) -> slp_status {
    super::boundary::run(func, || {
        super::boundary::flatten((|| {
            let a = nonnull(a, func, "a")? as *mut Signal;
            let b = nonnull(b, func, "b")? as *mut Signal;
            let out = nonnull(out, func, "out")? as *mut *mut Signal;
            crate::sched::usable()?;
            *out = signal::derive(a, b, and)?;
            Ok(SLP_OK)
        })())
    })
}

/// A Till (mo-threads `Till`): a new signal (a reference in `*out`) that goes `ns`
/// nanoseconds from now on the monotonic clock — at once when `ns` <= 0. One process-wide
/// timer thread ("libslp-till") fires every Till within about a millisecond of its time,
/// sleeping in between (no polling); the `then` callbacks of a Till therefore run on that
/// thread. Any thread. Returns SLP_OK, SLP_E_INVALID (out NULL), SLP_E_NOMEM.
///
/// # Safety
/// `out`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_till_new(ns: i64, out: *mut *mut Signal) -> slp_status {
    ffi_status!("slp_till_new", {
        let out = nonnull(out, "slp_till_new", "out")? as *mut *mut Signal;
        crate::sched::usable()?;
        *out = crate::till::till_new(ns)?;
        Ok(SLP_OK)
    })
}
