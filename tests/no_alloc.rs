//! The error path allocates nothing: `fail` with a `format_args!` (or `&str`) message,
//! `last_error_ptr` / `slp_last_error` and `slp_status_str` touch no heap once the thread's
//! last-error buffer exists. A counting global allocator proves it; each thread counts its
//! own allocations, so the test harness's other threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::fmt;
use std::ptr;

use slp::ffi::{slp_last_error, slp_status_str, SLP_E_CLOSED, SLP_E_INVALID, SLP_E_STATE};
use slp::status::{fail, last_error_ptr};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations the calling thread made while running `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (ALLOCS.with(Cell::get) - before, r)
}

fn text(p: *const c_char) -> &'static [u8] {
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

#[test]
fn the_counter_counts() {
    let (n, s) = allocations(|| format!("{}", 42));
    assert!(n >= 1, "format! allocated nothing?");
    assert_eq!(s, "42");
}

#[test]
fn fail_and_last_error_do_not_allocate() {
    // First touch of the thread-local outside the counted region.
    fail(SLP_E_INVALID, "warm up");
    let _ = last_error_ptr();

    let name = "worker";
    let (n, (a, b, c, p1, p2, d)) = allocations(|| {
        let a = fail(
            SLP_E_STATE,
            format_args!("insert: tasklet {name:?} (id {:#x}) is blocked", 0x2au32),
        );
        let p1 = last_error_ptr();
        let b = fail(SLP_E_CLOSED, "send on a closed channel with no receiver");
        let p2 = slp_last_error();
        // Longer than the buffer: truncated, still no allocation.
        let c = fail(SLP_E_INVALID, format_args!("{:>5000}", "end"));
        let d = slp_status_str(SLP_E_CLOSED);
        (a, b, c, p1, p2, d)
    });
    assert_eq!(n, 0, "the error path allocated {n} times");
    assert_eq!((a, b, c), (SLP_E_STATE, SLP_E_CLOSED, SLP_E_INVALID));
    assert_eq!(p1, p2, "one buffer per thread");
    assert_eq!(text(d), b"SLP_E_CLOSED: channel closed");
    let m = text(last_error_ptr());
    assert_eq!(m.len(), 1023);
    assert!(m.iter().all(|&b| b == b' '), "the padding survives, the tail is cut");
}

/// A message that quotes the previous one while it is formatted (as slp_channel_send_sequence
/// does) allocates nothing either, and sees the previous message whole.
#[test]
fn quoting_the_last_error_does_not_allocate() {
    struct Quote;
    impl fmt::Display for Quote {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let prev = unsafe { CStr::from_ptr(slp_last_error()) };
            f.write_str(prev.to_str().map_err(|_| fmt::Error)?)
        }
    }
    fail(SLP_E_INVALID, "warm up");
    let (n, _) = allocations(|| {
        fail(SLP_E_CLOSED, "channel shut down while sending");
        fail(SLP_E_CLOSED, format_args!("stopped after {} of {} values: {}", 2, 5, Quote))
    });
    assert_eq!(n, 0);
    assert_eq!(
        text(last_error_ptr()),
        b"stopped after 2 of 5 values: channel shut down while sending"
    );
}

/// A NULL argument rejected at the C boundary: the whole call allocates nothing.
#[test]
fn null_argument_error_does_not_allocate() {
    fail(SLP_E_INVALID, "warm up");
    let (n, st) = allocations(|| unsafe {
        slp::ffi::channel::slp_channel_send(ptr::null_mut(), ptr::null_mut())
    });
    assert_eq!(n, 0);
    assert_eq!(st, SLP_E_INVALID);
    assert_eq!(text(slp_last_error()), b"slp_channel_send: ch is NULL");
}
