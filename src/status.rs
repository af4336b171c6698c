//! Status codes and the thread-local "last error" message.
//!
//! Library errors are negative and never renumbered; positive values are user exception codes.
//!
//! The status table below is the single source of every status: the core constants
//! (`E_INVALID`, ...), their C names (`SLP_E_INVALID`, re-exported by `crate::ffi`),
//! `status_str`, [`ALL`], and — read by `build.rs`, since cbindgen does not expand macros —
//! the documented `enum slp_status_code` of `include/slp.h`.

use std::cell::UnsafeCell;
use std::ffi::c_char;
use std::fmt;
use std::ptr;

/// Status returned by most libslp calls.
pub type Status = i32;

/// One row of the status table (see [`ALL`]).
#[derive(Debug, Clone, Copy)]
pub struct StatusInfo {
    /// The value: 0 or negative.
    pub value: Status,
    /// The core name, e.g. `E_CLOSED`.
    pub name: &'static str,
    /// The C name, e.g. `SLP_E_CLOSED`.
    pub c_name: &'static str,
    /// The short message: `status_str` is `"<c_name>: <message>"`.
    pub message: &'static str,
    /// The documentation, one entry per `///` line (as written, leading space included).
    pub doc: &'static [&'static str],
}

/// Expands the status table into the constants, `ALL`, `status_str` and `c_names`.
macro_rules! status_table {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident = $value:literal => $c_name:ident, $message:literal;
    )+) => {
        $(
            $(#[doc = $doc])+
            pub const $name: Status = $value;
        )+

        /// Every library status, in table order.
        pub const ALL: &[StatusInfo] = &[$(
            StatusInfo {
                value: $name,
                name: stringify!($name),
                c_name: stringify!($c_name),
                message: $message,
                doc: &[$($doc),+],
            },
        )+];

        /// The static, NUL-terminated description of a status, e.g.
        /// `"SLP_E_CLOSED: channel closed"`; `"user exception"` for positive values,
        /// `"unknown libslp status"` for unknown negative ones.
        pub fn status_str(s: Status) -> &'static [u8] {
            match s {
                $($name => concat!(stringify!($c_name), ": ", $message, "\0").as_bytes(),)+
                s if s > 0 => b"user exception\0",
                _ => b"unknown libslp status\0",
            }
        }

        /// The statuses under their C names (`SLP_OK`, `SLP_E_INVALID`, ...), re-exported by
        /// `crate::ffi`.
        pub mod c_names {
            $(pub use super::$name as $c_name;)+
        }
    };
}

// THE STATUS TABLE. One row per status: its `///` documentation (copied into include/slp.h),
// then `NAME = VALUE => SLP_NAME, "message";` on one line (SLP_NAME is `SLP_` + NAME).
// build.rs parses these lines strictly (and fails the build on a row it cannot read): keep to
// that shape, with no escapes in the message. Values are never renumbered.
status_table! {
    /// Success.
    OK = 0 => SLP_OK, "success";
    /// Bad argument: NULL where not allowed, out of range, bad flags or struct_size.
    E_INVALID = -1 => SLP_E_INVALID, "invalid argument";
    /// Out of memory, stacks or mappings.
    E_NOMEM = -2 => SLP_E_NOMEM, "out of memory";
    /// The object's state forbids the call (insert a blocked tasklet, remove the current one, ...).
    E_STATE = -3 => SLP_E_STATE, "the object's state forbids the call";
    /// The call needs the owner thread of the object (e.g. switch to another thread's tasklet).
    E_WRONG_THREAD = -4 => SLP_E_WRONG_THREAD, "the call needs the owner thread";
    /// The caller would block and nothing could ever wake it (see "Deadlock detection").
    E_DEADLOCK = -5 => SLP_E_DEADLOCK, "the caller would block and nothing could wake it";
    /// The channel is closed and there is nothing to pair with.
    E_CLOSED = -6 => SLP_E_CLOSED, "channel closed";
    /// The calling tasklet was killed (Stackless TaskletExit): clean up and return.
    E_KILLED = -7 => SLP_E_KILLED, "the calling tasklet was killed";
    /// A deadline passed (or a poll found nothing).
    E_TIMEOUT = -8 => SLP_E_TIMEOUT, "deadline passed";
    /// block_trap is set on the caller and the operation would block.
    E_WOULD_BLOCK = -9 => SLP_E_WOULD_BLOCK, "the operation would block";
    /// switch_trap is set on this thread and the call would switch tasklets.
    E_SWITCH_TRAP = -10 => SLP_E_SWITCH_TRAP, "switch_trap is set";
    /// The target tasklet is dead.
    E_DEAD = -11 => SLP_E_DEAD, "the tasklet is dead";
    /// An internal error (a Rust panic) was caught at the library boundary.
    E_PANIC = -12 => SLP_E_PANIC, "internal error (panic caught)";
}

// Library statuses are 0 or negative (positive values are user codes) and distinct.
const _: () = {
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i].value <= 0, "a library status must not be positive");
        let mut j = i + 1;
        while j < ALL.len() {
            assert!(ALL[i].value != ALL[j].value, "two statuses share a value");
            j += 1;
        }
        i += 1;
    }
};

/// Size of the per-thread last-error buffer, NUL included: longer messages are truncated to
/// `LAST_ERROR_CAP - 1` bytes.
pub(crate) const LAST_ERROR_CAP: usize = 1024;

const fn initial_message() -> [u8; LAST_ERROR_CAP] {
    let mut b = [0u8; LAST_ERROR_CAP];
    let m = b"no error";
    let mut i = 0;
    while i < m.len() {
        b[i] = m[i];
        i += 1;
    }
    b
}

thread_local! {
    /// This thread's last error: NUL-terminated UTF-8, allocated with the thread (no heap, no
    /// destructor). Written only by the final copy in `record`; read through raw pointers.
    static LAST_ERROR: UnsafeCell<[u8; LAST_ERROR_CAP]> =
        const { UnsafeCell::new(initial_message()) };
}

/// A `fmt::Write` into a fixed byte buffer that keeps room for the terminating NUL, drops NUL
/// bytes, and at the first piece that does not fit keeps what fits up to a UTF-8 character
/// boundary and ignores everything after it (the text stays valid UTF-8 and has no gaps).
struct Truncating<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
}

impl<'a> Truncating<'a> {
    /// `buf` must not be empty (it always receives at least the NUL).
    fn new(buf: &'a mut [u8]) -> Self {
        assert!(!buf.is_empty());
        Truncating { buf, len: 0, full: false }
    }

    /// Writes the NUL terminator; returns the text's length (without the NUL).
    fn finish(self) -> usize {
        self.buf[self.len] = 0;
        self.len
    }
}

impl fmt::Write for Truncating<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for piece in s.split('\0') {
            if self.full {
                break;
            }
            let room = self.buf.len() - 1 - self.len;
            let take = if piece.len() <= room {
                piece.len()
            } else {
                self.full = true;
                let mut cut = room;
                while !piece.is_char_boundary(cut) {
                    cut -= 1;
                }
                cut
            };
            self.buf[self.len..self.len + take].copy_from_slice(&piece.as_bytes()[..take]);
            self.len += take;
        }
        // Never an error: a Display impl must not fail (or panic) because the text was cut.
        Ok(())
    }
}

/// Formats `msg` into `buf` (truncated, NULs dropped, NUL-terminated); returns its length.
fn format_into(buf: &mut [u8], msg: &dyn fmt::Display) -> usize {
    let mut w = Truncating::new(buf);
    let _ = fmt::write(&mut w, format_args!("{msg}"));
    w.finish()
}

/// Records `msg` as this thread's last error and returns `status`. Allocates nothing itself:
/// pass `format_args!(...)` (or a `&str`) rather than a `format!` String to keep the whole
/// error path off the heap. Messages longer than `LAST_ERROR_CAP - 1` bytes are truncated.
#[cold]
#[inline(never)]
pub fn fail(status: Status, msg: impl fmt::Display) -> Status {
    record(&msg);
    status
}

#[cold]
#[inline(never)]
fn record(msg: &dyn fmt::Display) {
    // Format into a scratch buffer on this call's own stack, then copy. `msg` is user code
    // that may read the current message (slp_last_error() / last_error_ptr(), e.g. "stopped
    // after 2 values: <the send's error>") or even call `fail` itself. Formatting straight into
    // LAST_ERROR would let it read a half-overwritten, possibly unterminated buffer (reading
    // past its end), and a nested `fail` would write the buffer while this one holds it
    // mutably borrowed. With a per-call scratch, LAST_ERROR is written once, after `msg` has
    // been consumed, by a plain copy during which no user code runs and no reference into the
    // buffer exists; each nested call has its own scratch. The cost is 1 KiB of stack on
    // this cold path only (tasklet stacks are at least 16 KiB).
    let mut scratch = [0u8; LAST_ERROR_CAP];
    let len = format_into(&mut scratch, msg);
    // try_with: a call during thread teardown must not panic.
    let _ = LAST_ERROR.try_with(|cell| {
        // SAFETY: `cell.get()` points to this thread's LAST_ERROR_CAP-byte buffer; `len + 1 <=
        // LAST_ERROR_CAP`; the scratch is a distinct stack array; no reference into the buffer
        // is alive (only raw pointers are ever handed out).
        unsafe { ptr::copy_nonoverlapping(scratch.as_ptr(), cell.get().cast::<u8>(), len + 1) }
    });
}

/// This thread's last error message: "no error" before any failure. The pointer stays valid
/// until the next failing call on this thread (successful calls leave it untouched).
pub fn last_error_ptr() -> *const c_char {
    LAST_ERROR.try_with(|cell| cell.get() as *const c_char).unwrap_or(c"thread is exiting".as_ptr())
}

/// `Display` of this thread's last error message (for messages that quote it; no allocation).
pub struct LastError;

impl fmt::Display for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: last_error_ptr() is a NUL-terminated string that lives as long as the thread.
        let c = unsafe { std::ffi::CStr::from_ptr(last_error_ptr()) };
        for chunk in c.to_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::fmt::Write;

    fn last() -> String {
        unsafe { CStr::from_ptr(last_error_ptr()) }.to_str().unwrap().to_owned()
    }

    /// What `Truncating` leaves in a buffer of `cap` bytes after writing `pieces` in turn.
    fn truncate(cap: usize, pieces: &[&str]) -> (String, usize) {
        let mut buf = vec![0xffu8; cap];
        let mut w = Truncating::new(&mut buf);
        for p in pieces {
            w.write_str(p).unwrap();
        }
        let len = w.finish();
        assert_eq!(buf[len], 0, "NUL-terminated");
        (std::str::from_utf8(&buf[..len]).unwrap().to_owned(), len)
    }

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
    fn table_rows_expand_consistently() {
        assert_eq!(ALL.len(), 13);
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(s.value, -(i as Status), "{}: the table runs 0, -1, -2, ...", s.name);
            assert_eq!(s.c_name, format!("SLP_{}", s.name));
            let text = format!("{}: {}\0", s.c_name, s.message);
            assert_eq!(status_str(s.value), text.as_bytes());
            assert!(!s.doc.is_empty());
        }
        assert_eq!(E_CLOSED, -6);
        assert_eq!(c_names::SLP_E_CLOSED, E_CLOSED);
        assert_eq!(status_str(E_CLOSED), b"SLP_E_CLOSED: channel closed\0");
    }

    #[test]
    fn fail_sets_message() {
        assert_eq!(fail(E_STATE, "bad \0state"), E_STATE);
        assert_eq!(last(), "bad state");
        assert_eq!(fail(E_INVALID, format_args!("code {} must be > {}", -3, 0)), E_INVALID);
        assert_eq!(last(), "code -3 must be > 0");
        assert_eq!(fail(E_INVALID, String::from("owned")), E_INVALID);
        assert_eq!(last(), "owned");
        // A shorter message after a longer one: terminated, no tail of the old one.
        fail(E_INVALID, "x");
        assert_eq!(last(), "x");
    }

    #[test]
    fn fresh_thread_says_no_error() {
        let m = std::thread::spawn(last).join().unwrap();
        assert_eq!(m, "no error");
    }

    #[test]
    fn truncates_long_messages() {
        let long = "a".repeat(5000);
        fail(E_INVALID, &long);
        assert_eq!(last(), "a".repeat(LAST_ERROR_CAP - 1));
        // Exactly fitting: kept whole.
        let fits = "b".repeat(LAST_ERROR_CAP - 1);
        fail(E_INVALID, &fits);
        assert_eq!(last(), fits);
        // One byte more: the last byte goes.
        fail(E_INVALID, format_args!("{fits}c"));
        assert_eq!(last(), fits);
    }

    #[test]
    fn truncation_keeps_utf8_boundaries() {
        // 'é' is 2 bytes: 1023 bytes of room hold 511 of them, not 511.5.
        fail(E_INVALID, "é".repeat(600));
        let m = last();
        assert_eq!(m, "é".repeat(511));
        // '€' is 3 bytes, '𝄞' 4: cut before a character that does not fit whole.
        assert_eq!(truncate(6, &["ab€c"]), ("ab€".to_owned(), 5));
        assert_eq!(truncate(5, &["ab€"]), ("ab".to_owned(), 2));
        assert_eq!(truncate(4, &["𝄞"]), (String::new(), 0));
        assert_eq!(truncate(5, &["𝄞"]), ("𝄞".to_owned(), 4));
        // After a cut nothing more is appended, even a piece that would fit in the gap.
        assert_eq!(truncate(5, &["ab", "€", "c"]), ("ab".to_owned(), 2));
        assert_eq!(truncate(1, &["abc"]), (String::new(), 0));
    }

    #[test]
    fn nul_bytes_are_dropped() {
        assert_eq!(truncate(16, &["\0a\0\0b\0", "\0", "c\0"]), ("abc".to_owned(), 3));
        // Dropped NULs take no room.
        assert_eq!(truncate(4, &["\0\0\0a\0b\0\0c\0d"]), ("abc".to_owned(), 3));
        fail(E_INVALID, format_args!("{}{}", "\0x\0", '\0'));
        assert_eq!(last(), "x");
    }

    /// A message that reads the current last error while it is being formatted, and one that
    /// fails (again) from inside its Display: each sees a whole, terminated message.
    #[test]
    fn message_may_read_or_set_the_last_error() {
        struct Quote;
        impl fmt::Display for Quote {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let prev = unsafe { CStr::from_ptr(last_error_ptr()) };
                write!(f, "[{}]", prev.to_str().unwrap())
            }
        }
        fail(E_CLOSED, "first");
        fail(E_INVALID, format_args!("second, after {Quote}, twice {Quote}"));
        assert_eq!(last(), "second, after [first], twice [first]");

        struct Nested;
        impl fmt::Display for Nested {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("outer ")?;
                fail(E_STATE, format_args!("inner {}", "y".repeat(2000)));
                let inner = unsafe { CStr::from_ptr(last_error_ptr()) }.to_bytes().len();
                write!(f, "saw {inner} bytes")
            }
        }
        fail(E_INVALID, Nested);
        assert_eq!(last(), format!("outer saw {} bytes", LAST_ERROR_CAP - 1));
    }
}
