//! Status codes and the thread-local "last error" message (SPEC §2).
//!
//! Library errors are negative and never renumbered; positive values are user exception codes.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

/// Status returned by most libslp calls.
pub(crate) type Status = i32;

pub(crate) const OK: Status = 0;
pub(crate) const E_INVALID: Status = -1;
pub(crate) const E_NOMEM: Status = -2;
pub(crate) const E_STATE: Status = -3;
pub(crate) const E_WRONG_THREAD: Status = -4;
pub(crate) const E_DEADLOCK: Status = -5;
pub(crate) const E_CLOSED: Status = -6;
pub(crate) const E_KILLED: Status = -7;
pub(crate) const E_TIMEOUT: Status = -8;
pub(crate) const E_WOULD_BLOCK: Status = -9;
pub(crate) const E_SWITCH_TRAP: Status = -10;
pub(crate) const E_DEAD: Status = -11;
pub(crate) const E_PANIC: Status = -12;

/// The static, NUL-terminated name of a status (also for user codes).
pub fn status_str(s: Status) -> &'static [u8] {
    match s {
        OK => b"SLP_OK: success\0",
        E_INVALID => b"SLP_E_INVALID: invalid argument\0",
        E_NOMEM => b"SLP_E_NOMEM: out of memory\0",
        E_STATE => b"SLP_E_STATE: the object's state forbids the call\0",
        E_WRONG_THREAD => b"SLP_E_WRONG_THREAD: the call needs the owner thread\0",
        E_DEADLOCK => b"SLP_E_DEADLOCK: the caller would block and nothing could wake it\0",
        E_CLOSED => b"SLP_E_CLOSED: channel closed\0",
        E_KILLED => b"SLP_E_KILLED: the calling tasklet was killed\0",
        E_TIMEOUT => b"SLP_E_TIMEOUT: deadline passed\0",
        E_WOULD_BLOCK => b"SLP_E_WOULD_BLOCK: the operation would block\0",
        E_SWITCH_TRAP => b"SLP_E_SWITCH_TRAP: switch_trap is set\0",
        E_DEAD => b"SLP_E_DEAD: the tasklet is dead\0",
        E_PANIC => b"SLP_E_PANIC: internal error (panic caught)\0",
        s if s > 0 => b"user exception\0",
        _ => b"unknown libslp status\0",
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::new("no error").unwrap());
}

/// Records `msg` as this thread's last error and returns `status`.
#[cold]
#[inline(never)]
pub fn fail(status: Status, msg: impl AsRef<str>) -> Status {
    let mut bytes: Vec<u8> = msg.as_ref().bytes().filter(|&b| b != 0).collect();
    bytes.truncate(4096);
    let c = CString::new(bytes).unwrap_or_default();
    // try_with: a call during thread teardown must not panic.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
    status
}

/// This thread's last error message. The pointer stays valid until the next failing call on
/// this thread (successful calls leave it untouched).
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(b"thread is exiting\0".as_ptr() as *const c_char)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn names_are_nul_terminated_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for s in -12..=0 {
            let b = status_str(s);
            assert_eq!(*b.last().unwrap(), 0);
            assert!(seen.insert(b));
        }
        assert_eq!(status_str(42), b"user exception\0");
        assert_eq!(status_str(-99), b"unknown libslp status\0");
    }

    #[test]
    fn fail_sets_message() {
        assert_eq!(fail(E_STATE, "bad \0state"), E_STATE);
        let m = unsafe { CStr::from_ptr(last_error_ptr()) };
        assert_eq!(m.to_str().unwrap(), "bad state");
    }
}
