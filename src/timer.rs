//! Timers: one binary min-heap per scheduler of (deadline, sequence, tasklet), and the clock
//! deadlines are read on (the monotonic clock, or a host clock such as game time).
//!
//! A tasklet has at most one timer (a sleep, or the deadline of a timed wait); it records its
//! index in the heap (`Tasklet::timer_slot`, index + 1, 0 for none), so that cancelling is
//! O(log n) like inserting. Equal deadlines fire in insertion order (the sequence number).
//! Owner thread only: other threads never touch a scheduler's timers.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use crate::tasklet::Tasklet;

/// `int64_t fn(void *user_data)`: a host clock in nanoseconds, never decreasing.
pub type ClockFn = unsafe extern "C" fn(user_data: *mut c_void) -> i64;

/// The process's monotonic clock in nanoseconds (CLOCK_MONOTONIC: a vDSO read, no syscall).
#[inline]
pub fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-parameter; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    #[allow(clippy::unnecessary_cast)] // time_t and c_long are not i64 everywhere
    (ts.tv_sec as i64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as i64)
}

/// A thread parked in the OS on a host-clock deadline re-reads the clock at most this often.
const HOST_CLOCK_MIN_WAIT_NS: i64 = 1_000_000;

/// The OS instant at which `remaining_ns` of the scheduler's clock will have passed, counting
/// host-clock time as real time (1:1).
pub fn os_deadline(remaining_ns: i64) -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_nanos(remaining_ns.max(0) as u64))
        .unwrap_or(now + Duration::from_secs(86_400 * 365))
}

struct Entry {
    at: i64,
    seq: u64,
    t: *mut Tasklet,
}

impl Entry {
    #[inline]
    fn before(&self, other: &Entry) -> bool {
        (self.at, self.seq) < (other.at, other.seq)
    }
}

/// The pending timers of one scheduler.
#[derive(Default)]
pub struct Timers {
    heap: Vec<Entry>,
    seq: u64,
}

impl Timers {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// The earliest deadline, if any.
    #[inline]
    pub fn earliest(&self) -> Option<i64> {
        self.heap.first().map(|e| e.at)
    }

    /// Makes room for one more timer; false when memory is exhausted.
    pub fn reserve(&mut self) -> bool {
        self.heap.len() < self.heap.capacity() || self.heap.try_reserve(1).is_ok()
    }

    /// Arms `t`'s timer for `at`.
    ///
    /// # Safety
    /// `t` is a live tasklet of this scheduler without a timer; `reserve` returned true since
    /// the last insert (so this does not allocate).
    pub unsafe fn insert(&mut self, t: *mut Tasklet, at: i64) {
        debug_assert_eq!((*t).timer_slot.get(), 0, "a tasklet has one timer at most");
        self.seq += 1;
        self.heap.push(Entry { at, seq: self.seq, t });
        let i = self.heap.len() - 1;
        self.set_slot(i);
        self.sift_up(i);
    }

    /// Disarms `t`'s timer if it has one; returns whether it had.
    ///
    /// # Safety
    /// `t` is a live tasklet of this scheduler.
    pub unsafe fn cancel(&mut self, t: *mut Tasklet) -> bool {
        let slot = (*t).timer_slot.get();
        if slot == 0 {
            return false;
        }
        self.remove_at(slot - 1);
        true
    }

    /// Takes the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: i64) -> Option<*mut Tasklet> {
        match self.heap.first() {
            Some(e) if e.at <= now => {
                let t = e.t;
                // SAFETY: heap entries are live tasklets of this scheduler (a tasklet cancels
                // its timer before it can end).
                unsafe { self.remove_at(0) };
                Some(t)
            }
            _ => None,
        }
    }

    /// # Safety
    /// `i` is a valid index.
    unsafe fn remove_at(&mut self, i: usize) {
        let last = self.heap.len() - 1;
        (*self.heap[i].t).timer_slot.set(0);
        self.heap.swap(i, last);
        self.heap.pop();
        if i < self.heap.len() {
            self.set_slot(i);
            if i > 0 && self.heap[i].before(&self.heap[(i - 1) / 2]) {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
        }
    }

    #[inline]
    fn set_slot(&self, i: usize) {
        // SAFETY: heap entries are live tasklets (see `pop_due`).
        unsafe { (*self.heap[i].t).timer_slot.set(i + 1) };
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if !self.heap[i].before(&self.heap[p]) {
                break;
            }
            self.heap.swap(i, p);
            self.set_slot(i);
            self.set_slot(p);
            i = p;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.heap[r].before(&self.heap[l]) { r } else { l };
            if !self.heap[c].before(&self.heap[i]) {
                break;
            }
            self.heap.swap(i, c);
            self.set_slot(i);
            self.set_slot(c);
            i = c;
        }
    }
}

// ----- the scheduler's side: clock, arming, firing, slp_sleep ---------------------------------

use crate::channel;
use crate::sched::Scheduler;
use crate::status::*;
use crate::tasklet::{State, States, WaitOn};

const BLOCKED: States = States::of(&[State::Blocked]);

impl Scheduler {
    /// The scheduler's clock, in nanoseconds.
    #[inline]
    pub fn now(&self) -> i64 {
        match self.clock.get() {
            // SAFETY: the host installed this clock for this thread's scheduler.
            Some((f, ud)) => unsafe { f(ud as *mut c_void) },
            None => monotonic_ns(),
        }
    }

    /// Installs a host clock (None: the monotonic clock).
    pub fn set_clock(&self, clock: Option<(ClockFn, usize)>) {
        self.clock.set(clock);
    }

    /// The deadline `timeout_ns` from now on the scheduler's clock.
    pub(crate) fn deadline_after(&self, timeout_ns: i64) -> i64 {
        self.now().saturating_add(timeout_ns)
    }

    /// Makes room for one more timer, or SLP_E_NOMEM.
    pub(crate) fn reserve_timer(&self) -> Result<(), Status> {
        if self.timers.borrow_mut().reserve() {
            Ok(())
        } else {
            Err(fail(E_NOMEM, "out of memory arming a timer"))
        }
    }

    /// Arms `t`'s timer for `at` (after `reserve_timer` succeeded).
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread without a timer.
    pub(crate) unsafe fn arm(&self, t: *mut Tasklet, at: i64) {
        self.timers.borrow_mut().insert(t, at);
        self.armed.set(self.armed.get() + 1);
    }

    /// Disarms `t`'s timer if it has one.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread.
    #[inline]
    pub(crate) unsafe fn disarm(&self, t: *mut Tasklet) {
        if (*t).timer_slot.get() != 0 && self.timers.borrow_mut().cancel(t) {
            self.armed.set(self.armed.get() - 1);
        }
    }

    /// Fires every due timer: a sleeper or a waiter whose deadline passed becomes runnable
    /// (appended). Called by the dispatch loop whenever timers are armed.
    ///
    /// # Safety
    /// Owner thread, outside any run-queue manipulation.
    pub(crate) unsafe fn fire_due(&self) {
        let now = self.now();
        loop {
            let Some(t) = self.timers.borrow_mut().pop_due(now) else { break };
            self.armed.set(self.armed.get() - 1);
            self.timer_fired(t);
        }
    }

    /// `t`'s deadline passed.
    unsafe fn timer_fired(&self, t: *mut Tasklet) {
        match (*t).waiting.get() {
            WaitOn::Sleep => {
                if (*t).stored() == State::Blocked {
                    (*t).xfer_status.store(OK, std::sync::atomic::Ordering::Relaxed);
                    (*t).transition(BLOCKED, State::Runnable);
                    self.queue.append(t);
                }
            }
            WaitOn::Channel => {
                // Leaves the channel unless a partner took it first (then its wake-up is on
                // its way and the transfer stands).
                if channel::remove_waiter(t) {
                    (*t).xfer_status.store(E_TIMEOUT, std::sync::atomic::Ordering::Relaxed);
                    self.queue.append(t);
                }
            }
            WaitOn::Select => {
                if channel::select::cancel_wait(t) {
                    (*t).xfer_status.store(E_TIMEOUT, std::sync::atomic::Ordering::Relaxed);
                    self.queue.append(t);
                }
            }
            WaitOn::Signal => {
                if crate::signal::remove_waiter(t) {
                    (*t).xfer_status.store(E_TIMEOUT, std::sync::atomic::Ordering::Relaxed);
                    self.queue.append(t);
                }
            }
            WaitOn::Lock => {
                // It stops waiting and re-acquires: runnable now if the lock was free.
                if crate::lock::timed_out(t) {
                    self.queue.append(t);
                }
            }
            WaitOn::Nothing => {}
        }
    }

    /// Nothing is runnable and timers are armed: the OS instant to wake for the earliest.
    /// (The parked thread's timer slack is 1 ns while it waits: see `census::PreciseTimers`.)
    pub(crate) fn timer_os_deadline(&self) -> Option<Instant> {
        if self.armed.get() == 0 {
            return None;
        }
        let at = self.timers.borrow().earliest()?;
        let remaining = at.saturating_sub(self.now());
        if self.clock.get().is_some() {
            // A host clock may stand still (game time paused): at most one re-read per
            // HOST_CLOCK_MIN_WAIT_NS of real time.
            return Some(os_deadline(remaining.max(HOST_CLOCK_MIN_WAIT_NS)));
        }
        Some(os_deadline(remaining))
    }

    /// `slp_sleep`: blocks the running tasklet for at least `ns` on the scheduler's clock.
    ///
    /// # Safety
    /// On this scheduler's thread, by the running tasklet.
    pub unsafe fn sleep(&self, ns: i64) -> Status {
        if ns < 0 {
            return fail(E_INVALID, format_args!("slp_sleep: {ns} ns is negative"));
        }
        if ns == 0 {
            return self.schedule();
        }
        let me = self.running();
        if let Err(s) = self.check_not_in_callback("slp_sleep") {
            return s;
        }
        let p = (*me).pending.get();
        if p != OK {
            return (*me).take_pending();
        }
        if (*me).block_trap.load(std::sync::atomic::Ordering::Relaxed) {
            return fail(E_WOULD_BLOCK, "slp_sleep would block and block_trap is set");
        }
        if let Err(s) = self.check_trap() {
            return s;
        }
        if let Err(s) = self.reserve_timer() {
            return s;
        }
        let at = self.deadline_after(ns);
        (*me).waiting.set(WaitOn::Sleep);
        (*me).transition(States::of(&[State::Runnable]), State::Blocked);
        self.arm(me, at);
        match self.park() {
            Ok(_) => OK,
            Err(pending) => pending,
        }
    }
}
