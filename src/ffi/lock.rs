//! C API: Lock (mo-threads' `Lock`).

use super::boundary::nonnull;
use super::{ffi_boundary, ffi_status, slp_status, SLP_OK};
use crate::lock::{self, Lock};
use crate::status::*;

/// Creates a Lock (mo-threads `Lock`): a monitor owned by the calling tasklet (a thread's main
/// tasklet for plain threads), usable from any thread. Not reentrant. `*out` receives the
/// handle, which has a single owner: free it with slp_lock_free. Returns SLP_OK, SLP_E_INVALID
/// (out NULL), SLP_E_NOMEM.
///
/// # Safety
/// `out`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_lock_new(out: *mut *mut Lock) -> slp_status {
    ffi_status!("slp_lock_new", {
        let out = nonnull(out, "slp_lock_new", "out")? as *mut *mut Lock;
        // A thread that makes a lock participates in deadlock detection from now on.
        crate::sched::usable()?;
        let Some(l) = lock::new() else {
            return Err(fail(E_NOMEM, "slp_lock_new: out of memory"));
        };
        *out = l;
        Ok(SLP_OK)
    })
}

/// Frees a lock that nobody holds or waits for. NULL is ignored. A lock that is held or
/// waited for is not freed (that would pull it from under its users): the call is refused,
/// slp_last_error() says so, and the lock stays valid.
///
/// # Safety
/// `l`: NULL or a live handle, not used again once freed.
#[no_mangle]
pub unsafe extern "C" fn slp_lock_free(l: *mut Lock) {
    ffi_boundary!("slp_lock_free", {
        if !l.is_null() && !lock::free(l) {
            fail(E_STATE, "slp_lock_free: the lock is held or waited for; it was not freed");
        }
    })
}

/// Acquires the lock for the calling tasklet. If another tasklet holds it, the caller blocks
/// — only the calling tasklet: others on its thread keep running; a main tasklet with nothing
/// runnable parks the OS thread — until ownership is handed to it. Hand-off is FIFO: a
/// release gives the lock to the longest-waiting acquirer, so nobody starves (a releaser that
/// acquires again queues behind the others). Not reentrant (mo-threads): a tasklet that
/// already holds the lock gets SLP_E_DEADLOCK instead of hanging. Returns SLP_OK;
/// SLP_E_DEADLOCK (re-entry, or nothing could ever release it: see "Deadlock detection");
/// SLP_E_KILLED or a thrown code (killed while waiting: it does not hold the lock);
/// SLP_E_WOULD_BLOCK (block_trap); SLP_E_SWITCH_TRAP; SLP_E_STATE (inside a callback);
/// SLP_E_INVALID (NULL). A tasklet that ends holding a lock leaves it locked.
///
/// # Safety
/// `l`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_lock_acquire(l: *mut Lock) -> slp_status {
    ffi_status!("slp_lock_acquire", {
        let l = nonnull(l, "slp_lock_acquire", "l")? as *mut Lock;
        Ok(lock::acquire(l))
    })
}

/// Releases the lock held by the calling tasklet: ownership goes to the first acquirer (FIFO),
/// and one tasklet waiting in slp_lock_wait is woken (it re-acquires in turn: mo-threads'
/// "exiting a lock always signals a waiting thread"). Never blocks. Returns SLP_OK;
/// SLP_E_STATE (the caller does not hold it); SLP_E_INVALID (NULL).
///
/// # Safety
/// `l`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_lock_release(l: *mut Lock) -> slp_status {
    ffi_status!("slp_lock_release", {
        let l = nonnull(l, "slp_lock_release", "l")? as *mut Lock;
        Ok(lock::release(l))
    })
}

/// Waits inside the lock (mo-threads `lock.wait()`): releases it (waking one other waiter and
/// handing the lock on), waits until another holder's release wakes the caller or
/// `timeout_ns` passes (< 0: no limit; 0: give others a turn), then re-acquires it: it
/// **always holds the lock again when it returns** SLP_OK (woken) or SLP_E_TIMEOUT — which it
/// may therefore return later than the timeout. Returns also SLP_E_STATE (the caller does not
/// hold the lock; inside a callback); SLP_E_KILLED or a thrown code (killed while waiting: the
/// caller does NOT hold the lock then); SLP_E_WOULD_BLOCK; SLP_E_SWITCH_TRAP; SLP_E_DEADLOCK;
/// SLP_E_INVALID (NULL).
///
/// # Safety
/// `l`: NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn slp_lock_wait(l: *mut Lock, timeout_ns: i64) -> slp_status {
    ffi_status!("slp_lock_wait", {
        let l = nonnull(l, "slp_lock_wait", "l")? as *mut Lock;
        Ok(lock::wait(l, timeout_ns))
    })
}
