//! The raw corosensei baseline of the side-by-side suite (scripts/bench-suite.sh), speaking
//! the suite's protocol: `raw_switch raw_switch N` resumes a corosensei coroutine N times, and
//! the coroutine suspends back each time (the floor under any tasklet switch), then prints
//!
//!     RESULT raw_switch ns_per_switch <elapsed / 2N>
//!
//! Same stack kind and size as benches/core.rs: corosensei's `DefaultStack` of 256 KiB. Each
//! suspend yields a counter that the resumer checks. Exit 1 on an error (a wrong value, a
//! coroutine that ended), 2 on a usage error, 3 for any other workload ("unsupported
//! workload"). `cargo bench` passes `--bench`: arguments starting with `--` are ignored.
//! Built by `cargo bench --bench raw_switch --no-run`; the script runs the binary directly.

use std::hint::black_box;
use std::process::exit;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.len() != 2 {
        eprintln!("usage: raw_switch raw_switch N");
        exit(2);
    }
    if args[0] != "raw_switch" {
        eprintln!("raw_switch: {}: unsupported workload", args[0]);
        exit(3);
    }
    let n: u64 = match args[1].parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("raw_switch: N must be a positive integer, not '{}'", args[1]);
            exit(2);
        }
    };

    let stack = match DefaultStack::new(256 * 1024) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("raw_switch: cannot allocate the coroutine stack: {e}");
            exit(1);
        }
    };
    let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), u64>, ()| {
        let mut i: u64 = 0;
        loop {
            i += 1;
            y.suspend(i);
        }
    });
    let t0 = Instant::now();
    for i in 1..=n {
        match black_box(co.resume(())) {
            CoroutineResult::Yield(v) if v == i => {}
            CoroutineResult::Yield(v) => {
                eprintln!("raw_switch: resume {i} got {v} back");
                exit(1);
            }
            CoroutineResult::Return(()) => {
                eprintln!("raw_switch: the coroutine ended");
                exit(1);
            }
        }
    }
    let elapsed = t0.elapsed().as_nanos() as f64;
    // The coroutine never returns; dropping it unwinds its stack (outside the timed part).
    drop(co);
    println!("RESULT raw_switch ns_per_switch {:.3}", elapsed / (2.0 * n as f64));
}
