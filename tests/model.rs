//! Model-based random testing of libslp's single-thread semantics (issue 4).
//!
//! A reference model of Stackless's single-thread semantics (tests/model/spec.rs: the run
//! queue, tasklet states, channels with balance, preference, schedule_all, buffering,
//! close/open/shutdown, kill and throw, uncaught errors, block_trap, switch_trap and the §5.3
//! deadlock rules with only this thread participating; since API 8 also slp_run_watchdog with
//! tick budgets (hard, SLP_WATCHDOG_SOFT, SLP_WATCHDOG_TOTAL, budget 0), slp_tick and the
//! atomic deferral, polls (send/receive with timeout 0), slp_select over 1-3 cases (blocking
//! or polling, NULL channels) and slp_channel_send_sequence — deterministic: ticks, never
//! time or finite timeouts) and random operation sequences
//! (tests/model/case.rs) executed against both the model and libslp through its C ABI
//! (tests/model/real.rs). After every step of the main tasklet the event logs (who did what,
//! with which status and value), flags, runcount, balances, channel states, switch_trap and
//! arg_free counts must be equal; a failing case is shrunk (tests/model/check.rs) and printed.
//!
//! Environment:
//!   SLP_MODEL_CASES=n        number of random cases (default 20000 in release builds, about
//!                            2 s; 5000 in debug builds)
//!   SLP_MODEL_SEED=x         base seed, decimal or 0x-hex (default fixed: runs are reproducible)
//!   SLP_MODEL_CASE=x         run only the case with this case seed (printed on failure)
//!   SLP_MODEL_KEEP_GOING=1   do not stop at the first failure: shrink each, print one shrunk
//!                            case per kind of difference (exception data, status, order,
//!                            state field, leak), count the cases of each, fail at the end
//!   SLP_MODEL_STATS=1        print how often each operation returned each status
//!   SLP_MODEL_VERBOSE=1      print every case's model event log (with SLP_MODEL_CASE)
//!   SLP_MODEL_DEFERRAL_DROPPED_ON_SWITCH=1
//!                            the model drops an interrupt deferred by atomic when its
//!                            tasklet switches away (libslp follows the header: it fires in
//!                            the set_atomic(false) call; expect disagreements)
//!   SLP_MODEL_SELECT_BOTH_WAYS=1
//!                            also generate selects with a send and a receive case on one
//!                            channel (the model waits on both; libslp refuses such a select
//!                            with SLP_E_INVALID, documented: expect disagreements)
//!
//! Run more: SLP_MODEL_CASES=1000000 SLP_MODEL_SEED=0x1234 cargo test --release --test model
//! (about 45 s per million cases). A fuzz target drives the same code from fuzz bytes:
//! fuzz/fuzz_targets/model.rs (cargo +nightly fuzz run model).
//!
//! Every libslp object is released after each case (slp_scheduler_shutdown, then every handle
//! and channel), and a counting allocator checks that the case leaked no heap memory.
//!
//! Only one test in this binary touches libslp: deadlock detection (§5.3) counts every
//! participating thread of the process, so a second thread with a scheduler would change what
//! a blocked main tasklet gets.

#[path = "model/case.rs"]
mod case;
#[path = "model/check.rs"]
mod check;
#[path = "model/real.rs"]
mod real;
#[path = "model/spec.rs"]
mod spec;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use case::{gen_case, Case, Rng};

// ----- a per-thread counting allocator (leak check) -------------------------------------------

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static NET: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    let _ = NET.try_with(|n| n.set(n.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            count(l.size() as i64);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(l);
        if !p.is_null() {
            count(l.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        count(-(l.size() as i64));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            count(new as i64 - l.size() as i64);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Net heap bytes of this thread, with libslp's last-error message set to a fixed one first
/// (the message is a per-thread allocation whose size follows the last failure).
fn net_heap() -> i64 {
    unsafe {
        let _ = slp::ffi::tasklet::slp_tasklet_insert(std::ptr::null_mut());
    }
    NET.with(|n| n.get())
}

// ----- a watchdog for hangs ---------------------------------------------------------------------

static CURRENT: Mutex<u64> = Mutex::new(0);

fn start_watchdog(base_seed: u64) {
    std::thread::spawn(move || {
        let mut last = u64::MAX;
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let h = check::HEARTBEAT.load(Ordering::Relaxed);
            if h != last {
                last = h;
                since = Instant::now();
            } else if since.elapsed() > Duration::from_secs(60) {
                let cs = *CURRENT.lock().unwrap();
                eprintln!(
                    "model test: a case has hung for 60 s (base seed {base_seed:#x}, case seed {cs:#x});\n\
                     reproduce with SLP_MODEL_CASE={cs:#x} cargo test --release --test model"
                );
                std::process::abort();
            }
        }
    });
}

// ----- the test ---------------------------------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let r = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        v.parse()
    };
    Some(r.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn case_seed(base: u64, i: u64) -> u64 {
    let mut r = Rng::new(base ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
    r.next_u64()
}

/// Runs one case, checking for leaks; Err with (signature, printed report).
fn run_one(
    case: &Case,
    cs: u64,
    base: u64,
    stats: &mut check::Stats,
    seen: &[String],
) -> Result<(), (String, String)> {
    *CURRENT.lock().unwrap() = cs;
    let before = net_heap();
    let r = check::check(case);
    let f = match r {
        Ok(()) => {
            let leaked = net_heap() - before;
            if leaked != 0 {
                return Err((
                    "leak".into(),
                    format!(
                        "case seed {cs:#x}: {leaked} heap bytes not freed after the case was torn down\n{case}\n\
                         reproduce: SLP_MODEL_CASE={cs:#x} cargo test --release --test model"
                    ),
                ));
            }
            stats.add(case);
            return Ok(());
        }
        Err(f) => f,
    };
    let sig = f.signature(case);
    if seen.contains(&sig) {
        // Keep-going mode: a kind already shown is only counted (shrinking costs ~100 runs).
        return Err((sig, String::new()));
    }
    let (small, tries) = check::shrink(case, &f);
    let report = match check::check(&small) {
        Err(g) => g.report(&small),
        Ok(()) => f.report(case), // cannot happen: shrinking keeps failing cases
    };
    Err((
        sig,
        format!(
            "libslp and the model disagree (base seed {base:#x}, case seed {cs:#x}; shrunk from {} ops in {tries} tries).\n\
             reproduce: SLP_MODEL_CASE={cs:#x} cargo test --release --test model -- --nocapture\n\n{report}",
            case.ops.len()
        ),
    ))
}

#[test]
fn model_matches_libslp() {
    let base = env_u64("SLP_MODEL_SEED").unwrap_or(0x5d1c_2024_0000_0004);
    let default_cases = if cfg!(debug_assertions) {
        5_000
    } else {
        20_000
    };
    let cases = env_u64("SLP_MODEL_CASES").unwrap_or(default_cases);
    let only = env_u64("SLP_MODEL_CASE");
    let keep_going = std::env::var("SLP_MODEL_KEEP_GOING").is_ok_and(|v| v == "1");
    let verbose = std::env::var("SLP_MODEL_VERBOSE").is_ok_and(|v| v == "1");
    if std::env::var("SLP_MODEL_DEFERRAL_DROPPED_ON_SWITCH").is_ok_and(|v| v == "1") {
        spec::DEFERRAL_DROPPED_ON_SWITCH.store(true, Ordering::Relaxed);
    }
    if std::env::var("SLP_MODEL_SELECT_BOTH_WAYS").is_ok_and(|v| v == "1") {
        case::SELECT_BOTH_WAYS.store(true, Ordering::Relaxed);
    }
    start_watchdog(base);

    // Warm-up: the first scheduler of the thread allocates thread-locals that stay.
    let mut stats = check::Stats::default();
    let warm = gen_case(&mut Rng::new(1));
    let _ = check::check(&warm);
    let _ = check::check(&warm);

    let t0 = Instant::now();
    let seeds: Vec<u64> = match only {
        Some(cs) => vec![cs],
        None => (0..cases).map(|i| case_seed(base, i)).collect(),
    };
    let mut failures: Vec<(String, u64, String)> = Vec::new();
    for &cs in &seeds {
        let case = gen_case(&mut Rng::new(cs));
        if verbose {
            println!("case seed {cs:#x}:\n{case}");
            let mut m = spec::Model::new(&case);
            for i in 0..case.ops.len() {
                m.step(i);
            }
            for e in &m.events {
                println!("  {}", case::describe_event(&case, e, &|t| m.prog_of(t)));
            }
        }
        let seen: Vec<String> = failures.iter().map(|f| f.0.clone()).collect();
        if let Err((sig, report)) = run_one(&case, cs, base, &mut stats, &seen) {
            if !keep_going {
                panic!("{report}");
            }
            match failures.iter_mut().find(|(s, _, _)| *s == sig) {
                Some(f) => f.1 += 1,
                None => {
                    println!("---- failure {}: {sig} ----\n{report}", failures.len() + 1);
                    failures.push((sig, 1, report));
                }
            }
        }
    }
    let took = t0.elapsed();
    println!(
        "model test: {} cases ({} agreed: {} main steps, {} events) in {:.2?} (base seed {base:#x})",
        seeds.len(),
        stats.cases,
        stats.steps,
        stats.events,
        took
    );
    if verbose || std::env::var("SLP_MODEL_STATS").is_ok_and(|v| v == "1") {
        for ((a, st), n) in &stats.outcomes {
            println!("  {a:<16} {st:<28} {n}");
        }
    }
    if !failures.is_empty() {
        let list: Vec<String> = failures
            .iter()
            .map(|(s, n, _)| format!("  {n:6} cases: {s}"))
            .collect();
        panic!(
            "{} distinct kinds of failure (each shown above, shrunk):\n{}",
            failures.len(),
            list.join("\n")
        );
    }
}
