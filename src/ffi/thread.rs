//! C API: threads of the toolkit (mo-threads `Thread`), shutdown and the log callback.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use super::boundary::nonnull;
use super::{ffi_boundary, ffi_status, slp_status, SLP_OK};
use crate::signal::Signal;
use crate::status::*;
use crate::thread::{self, Thread};

/// A toolkit thread's function: `int32_t fn(void *arg, slp_signal *please_stop)`. Return 0
/// for success; any other value is the thread's error result (slp_thread_join returns it).
/// Check `please_stop` (slp_signal_is_go, slp_signal_wait, or a SIGNAL case of slp_select
/// next to a work channel) and return soon after it goes.
pub type slp_thread_fn = Option<unsafe extern "C" fn(arg: *mut c_void, please_stop: *mut Signal) -> i32>;

/// Starts `fn(arg, please_stop)` on a new, named OS thread (mo-threads `Thread.run`), a child
/// of the calling toolkit thread (or a top-level thread when the caller is not one). The new
/// thread has a libslp scheduler and participates in deadlock detection from before this call
/// returns. When `fn` returns, the thread stops its children (please_stop) and joins them,
/// its tasklets are killed as at any thread exit, and its `stopped` signal goes. `*out`
/// receives the handle, consumed by exactly one of slp_thread_join (when it returns SLP_OK)
/// or slp_thread_release. Any thread. Returns SLP_OK, SLP_E_INVALID (fn or out NULL),
/// SLP_E_NOMEM (no memory, or the OS refused a thread). `name` may be NULL ("thread").
///
/// # Safety
/// `name`: NULL or a NUL-terminated string (copied); `fn_` safe to call with `arg` on the new
/// thread; `out`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_new(
    name: *const c_char,
    fn_: slp_thread_fn,
    arg: *mut c_void,
    out: *mut *mut Thread,
) -> slp_status {
    ffi_status!("slp_thread_new", {
        let out = nonnull(out, "slp_thread_new", "out")? as *mut *mut Thread;
        let Some(f) = fn_ else {
            return Err(fail(E_INVALID, "slp_thread_new: fn is NULL"));
        };
        let name = if name.is_null() { c"thread" } else { CStr::from_ptr(name) };
        // The creator participates in deadlock detection from now on (it will stop and join).
        crate::sched::usable()?;
        *out = thread::spawn(name, f, arg)?;
        Ok(SLP_OK)
    })
}

/// Asks the thread to stop (mo-threads `stop()`): its children's please_stop signals go
/// first, depth first, then its own. Never blocks; the thread stops when its function
/// returns. Any thread. Returns SLP_OK, SLP_E_INVALID (NULL).
///
/// # Safety
/// `th`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_stop(th: *mut Thread) -> slp_status {
    ffi_status!("slp_thread_stop", {
        let th = nonnull(th, "slp_thread_stop", "th")? as *mut Thread;
        thread::stop(th);
        Ok(SLP_OK)
    })
}

/// Waits until the thread stopped (its function returned, its children were joined) — from a
/// tasklet it parks only the tasklet — then consumes the handle and writes the function's
/// result to `*result` (may be NULL). Returns SLP_OK (handle consumed); SLP_E_TIMEOUT
/// (`timeout_ns` passed: 0 polls, < 0 waits without limit; the handle stays valid);
/// SLP_E_STATE (the handle was already consumed — answered while the thread still runs;
/// once it has ended, a consumed handle is freed and must not be used); SLP_E_DEADLOCK (a
/// thread joining itself);
/// SLP_E_KILLED or a thrown code (the waiting tasklet was killed); SLP_E_INVALID (NULL).
///
/// # Safety
/// `th`: NULL or a live handle not yet consumed; `result`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_join(th: *mut Thread, timeout_ns: i64, result: *mut i32) -> slp_status {
    ffi_status!("slp_thread_join", {
        let th = nonnull(th, "slp_thread_join", "th")? as *mut Thread;
        Ok(thread::join(th, timeout_ns, result))
    })
}

/// Detaches the thread and consumes the handle (mo-threads `release()`): nobody will join it.
/// If its function returns an error result, that is reported through the log callback (see
/// slp_set_log_callback; default stderr), never lost. Returns SLP_OK, SLP_E_STATE (already
/// consumed), SLP_E_INVALID (NULL).
///
/// # Safety
/// `th`: NULL or a live handle not yet consumed.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_release(th: *mut Thread) -> slp_status {
    ffi_status!("slp_thread_release", {
        let th = nonnull(th, "slp_thread_release", "th")? as *mut Thread;
        Ok(thread::release(th))
    })
}

/// The thread's please_stop signal (borrowed: valid while the handle is; retain it to keep
/// it longer), the one its function receives. NULL for NULL.
///
/// # Safety
/// `th`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_please_stop(th: *mut Thread) -> *mut Signal {
    ffi_boundary!("slp_thread_please_stop", {
        if th.is_null() { ptr::null_mut() } else { thread::please_stop(th) }
    })
}

/// The thread's stopped signal (borrowed, like slp_thread_please_stop): it goes once the
/// thread has fully stopped. Wait on it, combine it (slp_signal_and of two threads' stopped
/// signals), or select on it. NULL for NULL.
///
/// # Safety
/// `th`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_stopped(th: *mut Thread) -> *mut Signal {
    ffi_boundary!("slp_thread_stopped", {
        if th.is_null() { ptr::null_mut() } else { thread::stopped(th) }
    })
}

/// Brings the toolkit down in order (mo-threads shutdown): every running toolkit thread gets
/// please_stop (in reverse creation order, each one's children first), every pending Till
/// fires at once (so no thread waits out a long Till), then every thread is joined within
/// `timeout_ns` (< 0: no limit). Threads that did not stop in time are named through the log
/// callback. Tills made afterwards are born fired and threads made afterwards are asked to
/// stop at once. Handles stay the callers' (join them at once, or release them). Installs no
/// signal handlers. Call it from a thread that is not a toolkit thread (the main thread).
/// Returns SLP_OK or SLP_E_TIMEOUT.
#[no_mangle]
pub extern "C" fn slp_shutdown(timeout_ns: i64) -> slp_status {
    ffi_boundary!("slp_shutdown", { thread::shutdown(timeout_ns) })
}

/// A log callback: `fn(message, user_data)`; `message` is borrowed for the call.
pub type slp_log_fn = Option<unsafe extern "C" fn(message: *const c_char, user_data: *mut c_void)>;

/// Installs the process-wide log callback (NULL: stderr, the default) for what libslp reports
/// instead of losing it: the error result of a released thread, threads that did not stop
/// within slp_shutdown's deadline. It may be called on any thread. The previous callback is
/// returned through `prev_fn` / `prev_user_data` (each may be NULL). Returns SLP_OK.
///
/// # Safety
/// `fn_`: NULL or safe to call from any thread; `prev_fn`, `prev_user_data`: NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_set_log_callback(
    fn_: slp_log_fn,
    user_data: *mut c_void,
    prev_fn: *mut slp_log_fn,
    prev_user_data: *mut *mut c_void,
) -> slp_status {
    ffi_boundary!("slp_set_log_callback", {
        let old = thread::set_log(fn_.map(|f| (f, user_data as usize)));
        if !prev_fn.is_null() {
            *prev_fn = old.map(|(f, _)| f);
        }
        if !prev_user_data.is_null() {
            *prev_user_data = old.map_or(ptr::null_mut(), |(_, u)| u as *mut c_void);
        }
        SLP_OK
    })
}
