//! Core micro-benchmarks (SPEC §11), all measured in one process run:
//!
//! (a) raw corosensei resume + suspend round trip (the floor every number is compared with);
//! (b) one `slp_schedule()` switch between two tasklets;
//! (c) create + run + end + release of a tasklet (stack from the warmed-up pool);
//! (d) one same-thread channel message: a send to a blocked receiver with the default
//!     preference (-1), the switch to the receiver and back included.
//!
//! An extra row after (a) repeats the round trip with the suspend one non-inlined call deep,
//! the shape of any real scheduler's switch path (see `bench_corosensei_nested`).
//!
//! Each measurement runs once to warm up, then 5 times; the table shows the median in ns per
//! operation and its ratio to (a). Run with `cargo bench --bench core` (or scripts/bench.sh).
//! The libslp calls go through the crate's `extern "C"` functions, exactly those a C host
//! calls, on the main thread.

// Some exports are safe `extern "C" fn`s, others `unsafe`: call them all in `unsafe` blocks.
#![allow(unused_unsafe)]

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, Yielder};

use slp::channel::Channel;
use slp::ffi::channel::{
    slp_channel_balance, slp_channel_new, slp_channel_receive, slp_channel_release, slp_channel_send,
};
use slp::ffi::scheduler::{slp_run, slp_schedule};
use slp::ffi::slp_last_error;
use slp::ffi::tasklet::{slp_tasklet_new, slp_tasklet_release};

const RUNS: usize = 5;

/// Errors seen inside tasklets (they cannot panic across the C boundary).
static TASKLET_ERRORS: AtomicU32 = AtomicU32::new(0);

fn check(what: &str, st: i32) {
    if st != 0 {
        let msg = unsafe { std::ffi::CStr::from_ptr(slp_last_error()) };
        panic!("{what} failed with {st}: {}", msg.to_string_lossy());
    }
}

fn tasklet_check(st: i32) {
    if st != 0 {
        TASKLET_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `f(n)` (which returns elapsed nanoseconds for `n` operations) once to warm up, then
/// `RUNS` times, and returns the median ns per operation plus the min and max.
fn measure(n: u64, mut f: impl FnMut(u64) -> f64) -> (f64, f64, f64) {
    f(n / 10 + 1);
    let mut v: Vec<f64> = (0..RUNS).map(|_| f(n) / n as f64).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[RUNS / 2], v[0], v[RUNS - 1])
}

// ---- (a) raw corosensei -------------------------------------------------------------------

fn bench_corosensei(n: u64) -> f64 {
    let stack = DefaultStack::new(256 * 1024).expect("stack");
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| loop {
        y.suspend(());
    });
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(co.resume(()));
    }
    // The coroutine never returns; dropping it unwinds its stack (outside the timed part).
    t0.elapsed().as_nanos() as f64
}

/// The same round trip, but the coroutine suspends from inside a (non-inlined) function, as
/// any real scheduler does (tasklet code -> slp_schedule -> ... -> suspend). Not one of the
/// SPEC's rows: it shows how much of a library's cost is the CPU's return prediction across
/// the stack switch rather than the library's bookkeeping.
#[inline(never)]
fn suspend_in_call(y: &Yielder<(), ()>) {
    y.suspend(());
}

fn bench_corosensei_nested(n: u64) -> f64 {
    let stack = DefaultStack::new(256 * 1024).expect("stack");
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| loop {
        suspend_in_call(y);
    });
    let t0 = Instant::now();
    for _ in 0..n {
        black_box(co.resume(()));
    }
    t0.elapsed().as_nanos() as f64
}

// ---- (b) slp_schedule between two tasklets -------------------------------------------------

extern "C" fn schedule_loop(arg: *mut c_void) -> i32 {
    let n = arg as usize;
    for _ in 0..n {
        tasklet_check(unsafe { slp_schedule() });
    }
    0
}

/// `n` switches: two tasklets calling slp_schedule() n/2 times each.
fn bench_schedule(n: u64) -> f64 {
    let per = (n / 2) as usize as *mut c_void;
    unsafe {
        check("slp_tasklet_new", slp_tasklet_new(Some(schedule_loop), per, ptr::null_mut()));
        check("slp_tasklet_new", slp_tasklet_new(Some(schedule_loop), per, ptr::null_mut()));
        let t0 = Instant::now();
        check("slp_run", slp_run());
        t0.elapsed().as_nanos() as f64
    }
}

// ---- (c) create + run + end + release ------------------------------------------------------

extern "C" fn noop(_arg: *mut c_void) -> i32 {
    0
}

fn bench_lifecycle(n: u64) -> f64 {
    unsafe {
        let t0 = Instant::now();
        for _ in 0..n {
            let mut t = ptr::null_mut();
            check("slp_tasklet_new", slp_tasklet_new(Some(noop), ptr::null_mut(), &mut t));
            check("slp_run", slp_run());
            slp_tasklet_release(t);
        }
        t0.elapsed().as_nanos() as f64
    }
}

// ---- (d) same-thread channel message ---------------------------------------------------------

struct ChanArg {
    ch: *mut Channel,
    n: u64,
}

extern "C" fn receiver(arg: *mut c_void) -> i32 {
    let a = unsafe { &*(arg as *const ChanArg) };
    for _ in 0..a.n {
        let mut v = ptr::null_mut();
        tasklet_check(unsafe { slp_channel_receive(a.ch, &mut v) });
        black_box(v);
    }
    0
}

extern "C" fn sender(arg: *mut c_void) -> i32 {
    let a = unsafe { &*(arg as *const ChanArg) };
    for i in 0..a.n {
        tasklet_check(unsafe { slp_channel_send(a.ch, i as usize as *mut c_void) });
    }
    0
}

/// `n` messages: the receiver starts first and blocks, so every send finds it waiting.
fn bench_channel(n: u64) -> f64 {
    unsafe {
        let mut ch = ptr::null_mut();
        check("slp_channel_new", slp_channel_new(&mut ch));
        let arg = ChanArg { ch, n };
        let p = &arg as *const ChanArg as *mut c_void;
        check("slp_tasklet_new", slp_tasklet_new(Some(receiver), p, ptr::null_mut()));
        check("slp_tasklet_new", slp_tasklet_new(Some(sender), p, ptr::null_mut()));
        let t0 = Instant::now();
        check("slp_run", slp_run());
        let ns = t0.elapsed().as_nanos() as f64;
        assert_eq!(slp_channel_balance(ch), 0);
        slp_channel_release(ch);
        ns
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let raw_n = 20_000_000;
    let rows: Vec<(&str, u64, (f64, f64, f64))> = vec![
        ("corosensei resume+suspend round trip", raw_n, measure(raw_n, bench_corosensei)),
        ("  (same, suspend from a non-inlined call)", raw_n, measure(raw_n, bench_corosensei_nested)),
        ("slp_schedule switch (2 tasklets)", 20_000_000, measure(20_000_000, bench_schedule)),
        ("tasklet create+run+end+release", 2_000_000, measure(2_000_000, bench_lifecycle)),
        ("channel message (blocked receiver, pref -1)", 10_000_000, measure(10_000_000, bench_channel)),
    ];
    assert_eq!(TASKLET_ERRORS.load(Ordering::Relaxed), 0, "a libslp call failed inside a tasklet");

    let raw = rows[0].2 .0;
    println!();
    println!("libslp core benchmarks: median of {RUNS} runs (after a warm-up run), ns per operation");
    println!("{:<46} {:>11} {:>9} {:>9} {:>9} {:>10}", "operation", "iterations", "median", "min", "max", "x raw");
    for (name, n, (med, min, max)) in &rows {
        println!("{:<46} {:>11} {:>9.2} {:>9.2} {:>9.2} {:>10.2}", name, n, med, min, max, med / raw);
    }
    println!();
    println!("x raw = median / median of the corosensei round trip (one resume + one suspend).");
}
