//! The watchdog (Stackless's `run(instructionCount)`, the seed "Pre-emptive Multitasking"):
//! `slp_run_watchdog` runs like slp_run, and a tasklet that uses its budget of ticks (or
//! nanoseconds) at its `slp_tick` points is interrupted there — paused and handed back to the
//! caller — or, with SLP_WATCHDOG_SOFT, the run returns at its next switch. C code has no
//! bytecodes to count: the host supplies the ticks (an interpreter's instruction hook, a long
//! loop).
//!
//! `slp_tick` outside a watchdog run costs one load of a process-wide counter and a compare.

use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sched::{sched_opt, Scheduler};
use crate::status::*;
use crate::tasklet::{self, Tasklet};

/// `slp_run_watchdog` flags.
pub(crate) const TIME: u32 = 1;
pub(crate) const SOFT: u32 = 2;
pub(crate) const TOTAL: u32 = 4;

/// Threads inside a watchdog run, process-wide: `slp_tick`'s fast path.
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The watchdog of the run call in progress on a thread (part of its `RunState`).
pub(crate) struct Watchdog {
    active: Cell<bool>,
    budget: Cell<u64>,
    flags: Cell<u32>,
    /// Ticks used in this slice (or this call, with TOTAL).
    used: Cell<u64>,
    /// TIME: when this slice (or call) started, on the scheduler's clock.
    start_ns: Cell<i64>,
    /// The run returns at its next decision (an interrupt happened or a soft stop is due).
    stop: Cell<bool>,
    /// The tasklet interrupted by this call (the caller gets a reference), or null.
    interrupted: Cell<*mut Tasklet>,
    /// This call's number: a tasklet whose budget ran out while `atomic` was set records it
    /// (`Tasklet::deferred_run`) and is interrupted when it clears the flag in the same call.
    run_id: Cell<u64>,
}

impl Watchdog {
    pub(crate) const fn new() -> Watchdog {
        Watchdog {
            active: Cell::new(false),
            budget: Cell::new(0),
            flags: Cell::new(0),
            used: Cell::new(0),
            start_ns: Cell::new(0),
            stop: Cell::new(false),
            interrupted: Cell::new(ptr::null_mut()),
            run_id: Cell::new(0),
        }
    }

    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.get()
    }

    /// The run must return now (an interrupt happened, or a soft stop came due).
    #[inline]
    pub(crate) fn stopping(&self) -> bool {
        self.stop.get()
    }

    /// A switch into a tasklet: a new slice starts (unless one budget covers the call). A
    /// deferred interrupt stays due: it fires inside the call that clears `atomic`.
    #[inline]
    pub(crate) fn on_switch(&self, s: &Scheduler) {
        if self.flags.get() & TOTAL == 0 {
            self.used.set(0);
            if self.flags.get() & TIME != 0 {
                self.start_ns.set(s.now());
            }
        }
    }

    /// Adds `n` ticks; true when the budget is used up.
    fn spend(&self, s: &Scheduler, n: u32) -> bool {
        if self.flags.get() & TIME != 0 {
            s.now().saturating_sub(self.start_ns.get()) as u64 >= self.budget.get()
        } else {
            let used = self.used.get().saturating_add(n as u64);
            self.used.set(used);
            used >= self.budget.get()
        }
    }
}

impl Scheduler {
    /// `slp_run_watchdog`: returns the run's status and the interrupted tasklet (a new
    /// reference), if any.
    ///
    /// # Safety
    /// On this scheduler's thread (checked: main tasklet only, as every run call).
    pub unsafe fn run_watchdog(&self, budget: u64, flags: u32) -> (Status, *mut Tasklet) {
        if budget == 0 {
            return (self.run(), ptr::null_mut());
        }
        let w = &self.run.watchdog;
        if w.active() {
            return (fail(E_STATE, "slp_run_watchdog: a watchdog run is already in progress"), ptr::null_mut());
        }
        w.budget.set(budget);
        w.flags.set(flags);
        w.used.set(0);
        w.start_ns.set(if flags & TIME != 0 { self.now() } else { 0 });
        w.stop.set(false);
        w.interrupted.set(ptr::null_mut());
        w.run_id.set(w.run_id.get() + 1);
        w.active.set(true);
        RUNS.fetch_add(1, Ordering::Relaxed);
        let st = self.run_budgeted();
        RUNS.fetch_sub(1, Ordering::Relaxed);
        w.active.set(false);
        w.stop.set(false);
        let t = w.interrupted.replace(ptr::null_mut());
        if st != OK && !t.is_null() {
            // The run failed after the interrupt (an uncaught error): the caller gets no handle,
            // so the reference taken for it goes (the tasklet stays paused, or is killed if
            // nothing else holds it).
            tasklet::release(t);
            return (st, ptr::null_mut());
        }
        (st, t)
    }

    /// `slp_tick(n)` on this thread, in a watchdog run, from the running tasklet `me`.
    ///
    /// # Safety
    /// On this scheduler's thread, by the running tasklet `me` (not main).
    unsafe fn tick(&self, me: *mut Tasklet, n: u32) -> Status {
        let w = &self.run.watchdog;
        if w.stop.get() || !w.spend(self, n) {
            return OK;
        }
        if (*me).atomic.load(Ordering::Relaxed) {
            (*me).deferred_run.set(w.run_id.get()); // fires when atomic is cleared
            return OK;
        }
        self.interrupt(me, false)
    }

    /// The budget of `me` (the running tasklet) is used up: soft, the run returns at its next
    /// switch; hard, it is paused and handed to the run's caller, and this returns when it is
    /// resumed — with its pending delivery, or OK leaving that delivery for its next blocking
    /// call (`keep_pending`, for calls that cannot return a status).
    ///
    /// # Safety
    /// On this scheduler's thread, by the running tasklet `me` (not main), in a watchdog run.
    unsafe fn interrupt(&self, me: *mut Tasklet, keep_pending: bool) -> Status {
        let w = &self.run.watchdog;
        (*me).deferred_run.set(0);
        w.stop.set(true);
        if w.flags.get() & SOFT != 0 {
            return OK;
        }
        tasklet::retain(me); // the caller's reference
        w.interrupted.set(me);
        self.pause_running();
        if keep_pending {
            self.switch_away_keep_pending();
            OK
        } else {
            self.switch_away()
        }
    }
}

/// `slp_tick(n)`: a preemption point. Outside a watchdog run, or on a main tasklet, it does
/// nothing.
pub fn tick(n: u32) -> Status {
    if RUNS.load(Ordering::Relaxed) == 0 {
        return OK;
    }
    tick_slow(n)
}

#[cold]
fn tick_slow(n: u32) -> Status {
    let Some(s) = sched_opt() else { return OK };
    if !s.run.watchdog.active() || s.poisoned() {
        return OK;
    }
    let me = s.running();
    if me == s.main || s.in_callback.get().is_some() {
        return OK;
    }
    // SAFETY: on the owner thread, from the running tasklet.
    unsafe { s.tick(me, n) }
}

/// `slp_tasklet_set_atomic(t, on)`: returns the old value. Clearing it on the running tasklet
/// fires an interrupt the watchdog deferred meanwhile, inside this call.
///
/// # Safety
/// `t` is a live tasklet handle.
pub unsafe fn set_atomic(t: *mut Tasklet, on: bool) -> bool {
    let old = (*t).atomic.swap(on, Ordering::AcqRel);
    if !on && old && RUNS.load(Ordering::Relaxed) != 0 {
        if let Some(s) = sched_opt() {
            let w = &s.run.watchdog;
            if w.active()
                && (*t).deferred_run.get() == w.run_id.get()
                && s.running() == t
                && s.in_callback.get().is_none()
            {
                let _ = s.interrupt(t, true);
            }
        }
    }
    old
}
