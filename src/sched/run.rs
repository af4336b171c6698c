//! The run calls — slp_run, slp_run_n, slp_run_for, slp_run_wait — and their limits, kept in
//! one `RunState` (carbon-scheduler's run_n_tasklets and RunWithTimeout, Stackless's run).
//! Only the main tasklet runs them; while it is inside one, it is not in the run queue.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::status::*;
use crate::tasklet::{State, States, Tasklet};

use super::inbox::Shared;
use super::Scheduler;

/// What bounds a run call.
#[derive(Copy, Clone, PartialEq)]
pub(crate) enum Limit {
    /// Until nothing is runnable.
    None,
    /// At most this many switches into tasklets.
    Count(u32),
    /// No new switch once this instant has passed (at least one tasklet runs).
    Deadline(Instant),
}

/// What a run call does when nothing is runnable.
#[derive(Copy, Clone, PartialEq)]
pub(crate) enum Wait {
    /// slp_run: return.
    No,
    /// slp_run_wait: sleep for cross-thread work until the deadline (None = forever).
    Until(Option<Instant>),
}

/// The run call in progress on a thread (`active` false outside one).
pub(crate) struct RunState {
    active: Cell<bool>,
    limit: Cell<Limit>,
    wait: Cell<Wait>,
    /// Tasklets switched into during this call.
    switched: Cell<u32>,
    /// An uncaught error (or a kill/throw of main) the call returns.
    error: Cell<Status>,
    /// slp_run_watchdog's state (inactive in other runs).
    pub(crate) watchdog: crate::watchdog::Watchdog,
}

impl RunState {
    pub(crate) const fn new() -> RunState {
        RunState {
            active: Cell::new(false),
            limit: Cell::new(Limit::None),
            wait: Cell::new(Wait::No),
            switched: Cell::new(0),
            error: Cell::new(OK),
            watchdog: crate::watchdog::Watchdog::new(),
        }
    }

    /// The main tasklet is inside a run call.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.get()
    }

    /// A budgeted run (n tasklets or a deadline): even a lone tasklet's slp_schedule must go
    /// back to the dispatch loop so that the budget is counted.
    #[inline]
    pub(crate) fn limited(&self) -> bool {
        self.active.get() && (!matches!(self.limit.get(), Limit::None) || self.watchdog.active())
    }

    /// Inside slp_run_wait: sleep for work instead of returning.
    #[inline]
    pub(crate) fn waiting(&self) -> bool {
        self.active.get() && self.wait.get() != Wait::No
    }

    pub(crate) fn wait_deadline(&self) -> Option<Instant> {
        match self.wait.get() {
            Wait::Until(d) if self.active.get() => d,
            _ => None,
        }
    }

    /// Records the first uncaught error (or kill/throw of main) of this call.
    pub(crate) fn set_error(&self, code: Status) {
        if self.error.get() == OK {
            self.error.set(code);
        }
    }

    /// Should the dispatch loop return to main instead of switching to the head
    /// (`nothing_runnable`: there is no head)? Counts the switch when it goes on.
    #[inline(always)]
    pub(crate) fn stop_before(&self, shared: &Shared, nothing_runnable: bool) -> Option<Status> {
        if self.error.get() != OK || self.watchdog.stopping() {
            return Some(OK); // the run call reports the error / the watchdog stopped the run
        }
        let waiting = self.wait.get() != Wait::No;
        if waiting && shared.take_wakeup_request() {
            return Some(OK);
        }
        if nothing_runnable {
            // Rule 1 of "nothing runnable": the run returns, blockers stay blocked. A waiting
            // run sleeps instead.
            return if waiting { None } else { Some(OK) };
        }
        match self.limit.get() {
            Limit::None => {}
            Limit::Count(n) => {
                if self.switched.get() >= n {
                    return Some(OK);
                }
            }
            Limit::Deadline(d) => {
                if self.switched.get() > 0 && Instant::now() >= d {
                    return Some(OK);
                }
            }
        }
        self.switched.set(self.switched.get() + 1);
        None
    }

    /// The run ended because nothing was runnable (so newly arrived work should be served).
    pub(crate) fn ended_idle(&self, head: *mut Tasklet, s: Status) -> bool {
        self.active.get() && head.is_null() && s == OK && self.error.get() == OK
    }
}

impl Scheduler {
    /// slp_run / slp_run_n / slp_run_for / slp_run_wait. Only the main tasklet may call it.
    ///
    /// # Safety
    /// Owner thread, from the main tasklet's own code (checked).
    unsafe fn run_with(&self, limit: Limit, wait: Wait) -> Status {
        let main = self.main;
        if let Err(s) = self.check_not_in_callback("slp_run") {
            return s;
        }
        if self.running() != main || self.run.active() {
            return fail(
                E_STATE,
                "slp_run may only be called by the thread's main tasklet, outside a run \
                 (libslp schedules flat)",
            );
        }
        if self.shared.has_mail() {
            self.drain_inbox();
        }
        // A host that never sleeps in libslp still gets pool memory back (one clock read per
        // 64 runs).
        self.pool.borrow_mut().event();
        let d = self.deferred_error.replace(OK);
        if d != OK {
            return d; // slp_last_error was set when the throw happened
        }
        let p = (*main).take_pending();
        if p != OK {
            return p;
        }
        if self.armed.get() != 0 {
            // Sleepers whose deadline passed run in this call, even if nothing else does.
            self.fire_due();
        }
        let alone = (*main).next.get() == main;
        if alone && wait == Wait::No {
            return OK; // nothing to run
        }
        if !alone {
            if let Err(s) = self.check_trap() {
                return s;
            }
        }
        self.queue.unlink(main);
        (*main).transition(States::of(&[State::Runnable]), State::Paused);
        let r = &self.run;
        r.active.set(true);
        r.limit.set(limit);
        r.wait.set(wait);
        r.switched.set(0);
        r.error.set(OK);
        // A panic inside leaves the run half-done: the boundary poisons the scheduler.
        let s = self.main_loop();
        r.active.set(false);
        r.limit.set(Limit::None);
        r.wait.set(Wait::No);
        // Main takes its place just before the tasklet that would have run next, so that one
        // is first in the next call. (A deadlock or kill may already have linked it.)
        if !self.queue.contains(main) {
            self.queue.move_to_front(main);
        } else {
            self.queue.set_head(main);
        }
        (*main).transition(States::of(&[State::Paused, State::Runnable]), State::Runnable);
        let e = r.error.replace(OK);
        if e != OK {
            return e;
        }
        s
    }

    /// # Safety
    /// On this scheduler's thread (checked: main tasklet only).
    pub unsafe fn run(&self) -> Status {
        self.run_with(Limit::None, Wait::No)
    }

    /// A plain run whose limits are the watchdog's (`watchdog.rs`).
    ///
    /// # Safety
    /// As `run`.
    pub(crate) unsafe fn run_budgeted(&self) -> Status {
        self.run_with(Limit::None, Wait::No)
    }

    /// # Safety
    /// On this scheduler's thread (checked: main tasklet only).
    pub unsafe fn run_n(&self, n: u32) -> Status {
        if n == 0 {
            return OK;
        }
        self.run_with(Limit::Count(n), Wait::No)
    }

    /// # Safety
    /// On this scheduler's thread (checked: main tasklet only).
    pub unsafe fn run_for(&self, budget_ns: i64) -> Status {
        if budget_ns < 0 {
            return self.run();
        }
        let d = Duration::from_nanos(budget_ns as u64);
        match Instant::now().checked_add(d) {
            Some(dl) => self.run_with(Limit::Deadline(dl), Wait::No),
            None => self.run_with(Limit::None, Wait::No),
        }
    }

    /// # Safety
    /// On this scheduler's thread (checked: main tasklet only).
    pub unsafe fn run_wait(&self, timeout_ns: i64) -> Status {
        let deadline = if timeout_ns < 0 {
            None
        } else {
            Instant::now().checked_add(Duration::from_nanos(timeout_ns as u64))
        };
        let s = self.run_with(Limit::None, Wait::Until(deadline));
        if s == E_TIMEOUT {
            return fail(E_TIMEOUT, "slp_run_wait: the timeout passed");
        }
        s
    }

    /// Takes the uncaught error a pending throw to a never-started tasklet left for the next
    /// run call.
    pub(crate) fn defer_error(&self, code: Status) {
        if self.deferred_error.get() == OK {
            self.deferred_error.set(code);
        }
    }
}
