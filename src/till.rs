//! Tills (mo-threads `Till`): signals that go at a time. One process-wide timer thread serves
//! them all: a binary heap of deadlines and a condition variable it sleeps on until the
//! earliest — no polling. Each pending Till is held by a reference until it fires.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::signal::{self, Signal};
use crate::status::*;

/// Tills not yet fired: each is a possible waker for deadlock detection (its signal will go).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Set by `slp_shutdown`: every pending Till fired, and later Tills are born fired.
static SHUT: AtomicBool = AtomicBool::new(false);

/// `slp_shutdown`'s step: fires every pending Till now; Tills made later are born fired.
pub fn shut_down() {
    SHUT.store(true, Ordering::SeqCst);
    let pending: Vec<Pending> = {
        let mut h = timer().heap.lock();
        std::mem::take(&mut h.pending).into_iter().map(|Reverse(p)| p).collect()
    };
    let n = pending.len();
    for p in pending {
        // SAFETY: the heap held a reference to each signal until now.
        unsafe {
            signal::go(p.s);
            signal::release(p.s);
        }
    }
    if n > 0 && PENDING.fetch_sub(n, Ordering::SeqCst) == n {
        crate::sched::census::recheck_all();
    }
}

/// How many Tills are pending (deadlock detection counts them as possible wakers).
pub fn pending() -> usize {
    PENDING.load(Ordering::SeqCst)
}

struct Pending {
    at: Instant,
    seq: u64,
    s: *mut Signal,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Heap {
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// The timer thread runs.
    started: bool,
}

// SAFETY: the signal pointers are references owned by the heap; signals are thread-safe.
unsafe impl Send for Heap {}

struct Timer {
    heap: Mutex<Heap>,
    cv: Condvar,
}

fn timer() -> &'static Timer {
    static T: OnceLock<Timer> = OnceLock::new();
    T.get_or_init(|| Timer {
        heap: Mutex::new(Heap { pending: BinaryHeap::new(), seq: 0, started: false }),
        cv: Condvar::new(),
    })
}

/// `slp_till_new(ns)`: a signal that goes `ns` nanoseconds from now (monotonic clock); at
/// once for `ns` <= 0.
pub fn till_new(ns: i64) -> Result<*mut Signal, Status> {
    let Some(s) = signal::new() else {
        return Err(fail(E_NOMEM, "slp_till_new: out of memory"));
    };
    if ns <= 0 || SHUT.load(Ordering::SeqCst) {
        // SAFETY: `s` is a fresh signal.
        unsafe { signal::go(s) };
        return Ok(s);
    }
    let at = Instant::now() + Duration::from_nanos(ns as u64);
    let t = timer();
    let mut h = t.heap.lock();
    if SHUT.load(Ordering::SeqCst) {
        // slp_shutdown drained the heap meanwhile: born fired.
        drop(h);
        // SAFETY: `s` is ours.
        unsafe { signal::go(s) };
        return Ok(s);
    }
    if !h.started {
        let spawned = std::thread::Builder::new().name("libslp-till".into()).spawn(run);
        if spawned.is_err() {
            drop(h);
            // SAFETY: `s` is ours.
            unsafe { signal::release(s) };
            return Err(fail(E_NOMEM, "slp_till_new: cannot start the timer thread"));
        }
        h.started = true;
    }
    if h.pending.try_reserve(1).is_err() {
        drop(h);
        // SAFETY: `s` is ours.
        unsafe { signal::release(s) };
        return Err(fail(E_NOMEM, "slp_till_new: out of memory"));
    }
    // SAFETY: `s` is live; the heap's reference.
    unsafe { signal::retain(s) };
    h.seq += 1;
    let seq = h.seq;
    let earliest = h.pending.peek().is_none_or(|Reverse(p)| at < p.at);
    PENDING.fetch_add(1, Ordering::SeqCst);
    h.pending.push(Reverse(Pending { at, seq, s }));
    drop(h);
    if earliest {
        t.cv.notify_one();
    }
    Ok(s)
}

/// The timer thread: fires each Till at its time.
fn run() {
    let t = timer();
    let mut h = t.heap.lock();
    loop {
        let Some(Reverse(first)) = h.pending.peek() else {
            t.cv.wait(&mut h);
            continue;
        };
        if first.at > Instant::now() {
            let at = first.at;
            let _ = t.cv.wait_until(&mut h, at);
            continue;
        }
        let Reverse(p) = h.pending.pop().unwrap();
        drop(h);
        // SAFETY: the heap held a reference to the signal until now.
        unsafe {
            signal::go(p.s);
            signal::release(p.s);
        }
        if PENDING.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last possible waker of this kind is gone: blocked threads re-check.
            crate::sched::census::recheck_all();
        }
        h = t.heap.lock();
    }
}
