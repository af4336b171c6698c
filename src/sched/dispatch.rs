//! Switching: the dispatch loop on the main stack, the switch away from a tasklet, a
//! tasklet's resumption and its end. The loop reads top-down: drain the inbox, decide who runs,
//! switch to it (or wait for work when nobody can run).

use std::ffi::c_void;
use std::ptr;

use corosensei::CoroutineResult;

use crate::channel;
use crate::status::*;
use crate::tasklet::{self, State, States, Tasklet, WaitOn};

use super::census::Woke;
use super::Scheduler;

/// What the dispatch loop does next.
enum Decision {
    /// Switch into this tasklet.
    Resume(*mut Tasklet),
    /// Return to the main tasklet's code with this status.
    Return(Status),
    /// Nothing can run: wait for work from other threads.
    Idle,
}

impl Scheduler {
    /// Switches away from the running tasklet, which has already arranged the queue's head
    /// (and left the queue if it blocks or pauses). Returns when the running tasklet is resumed,
    /// with its pending delivery (kill, throw, uncaught error for main) or `OK`.
    ///
    /// # Safety
    /// Called on the owner thread by the running tasklet, outside any callback scope, with the
    /// queue consistent (its head is who must run next, or null).
    #[inline(always)]
    pub(crate) unsafe fn switch_away(&self) -> Status {
        let me = self.running();
        if me == self.main {
            self.main_loop()
        } else {
            (*me).record_debug_context();
            let y = (*me).yielder.get();
            (*y).suspend(());
            (*me).take_pending()
        }
    }

    /// Like `switch_away`, but leaves a pending delivery for the next blocking call (used
    /// after an operation that already completed, so that its result is not lost).
    ///
    /// # Safety
    /// As `switch_away`.
    #[inline(always)]
    pub(crate) unsafe fn switch_away_keep_pending(&self) {
        let me = self.running();
        if me == self.main {
            let s = self.main_loop();
            if s != OK {
                (*me).pending.set(s);
            }
        } else {
            (*me).record_debug_context();
            let y = (*me).yielder.get();
            (*y).suspend(());
        }
    }

    /// The dispatch loop on the main stack: runs tasklets until it is the main tasklet's turn,
    /// or (inside a run call) until the run stops. Returns main's status.
    ///
    /// # Safety
    /// Called on the main stack by `switch_away` or a run call.
    pub(crate) unsafe fn main_loop(&self) -> Status {
        loop {
            self.shared.enter();
            let s = self.dispatch();
            self.announce_switch_to_main();
            if !self.shared.leave_loop() {
                return s;
            }
            // Work arrived from another thread while this thread was inside (so its wake-up
            // callback was not rung). A run that ended for lack of work goes back and serves
            // it; otherwise the host is told through its own callback.
            if self.run.ended_idle(self.queue.head(), s) {
                continue;
            }
            let _scope = super::callback::enter_on(self, super::callback::Callback::Wakeup);
            self.shared.notify_self();
            return s;
        }
    }

    /// Drain, decide, switch — until the main tasklet's code is to run again.
    ///
    /// # Safety
    /// On the main stack, inside `main_loop`.
    #[inline(always)]
    unsafe fn dispatch(&self) -> Status {
        loop {
            if self.shared.has_mail() {
                self.drain_inbox();
            }
            if self.armed.get() != 0 {
                self.fire_due();
            }
            match self.decide() {
                Decision::Resume(t) => self.resume(t),
                Decision::Return(s) => return s,
                Decision::Idle => {
                    if let Some(s) = self.idle() {
                        return s;
                    }
                }
            }
        }
    }

    /// # Safety
    /// On the main stack, inside `main_loop`.
    #[inline(always)]
    unsafe fn decide(&self) -> Decision {
        let main = self.main;
        let next = self.queue.head();
        if next == main {
            return Decision::Return((*main).take_pending());
        }
        if self.run.active() {
            if let Some(s) = self.run.stop_before(&self.shared, next.is_null()) {
                return Decision::Return(s);
            }
        }
        if next.is_null() {
            Decision::Idle
        } else {
            Decision::Resume(next)
        }
    }

    /// Nothing is runnable: sleep until another thread sends work. Returns the status to hand
    /// back to main, or None to go on dispatching.
    ///
    /// # Safety
    /// On the main stack, inside `main_loop`, with nothing runnable.
    unsafe fn idle(&self) -> Option<Status> {
        let run_deadline = self.run.wait_deadline();
        let timer = self.timer_os_deadline();
        let deadline = match (run_deadline, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // The stack pool gives memory back while the thread sleeps (see StackPool).
        let mut chore = || self.pool.borrow_mut().next_decay(std::time::Instant::now);
        match self.shared.wait_for_work(deadline, self.run.waiting(), &mut chore) {
            Woke::Mail => None,
            Woke::WakeupRequest => Some(OK),
            Woke::Deadline if run_deadline.is_some_and(|d| std::time::Instant::now() >= d) => {
                Some(E_TIMEOUT)
            }
            // A timer's deadline (or a host clock that has not reached it yet): fire what is
            // due and decide again.
            Woke::Deadline => None,
            Woke::Deadlock => Some(self.deadlock()),
        }
    }

    /// Nothing could ever wake this thread (§5.3).
    ///
    /// # Safety
    /// On the main stack, inside `main_loop`.
    #[cold]
    unsafe fn deadlock(&self) -> Status {
        if self.run.active() {
            return fail(
                E_DEADLOCK,
                "deadlock: slp_run_wait has nothing to run and no other participating thread \
                 could send it work",
            );
        }
        // Rules 2-3: main is blocked (or paused) and nothing can wake it: it gets its pending
        // delivery or SLP_E_DEADLOCK, and leaves what it waited on.
        let main = self.main;
        let pending = (*main).take_pending();
        let code = if pending != OK {
            pending
        } else {
            fail(
                E_DEADLOCK,
                format_args!(
                    "deadlock: the main tasklet is blocked, no tasklet on this thread is \
                     runnable and no other participating thread could wake it {}",
                    super::census::Census
                ),
            )
        };
        self.unblock(main);
        (*main).transition(States::of(&[State::Blocked, State::Paused, State::Runnable]), State::Runnable);
        self.queue.append(main);
        code
    }

    /// Runs `t` (never main, Runnable, the head) until it suspends or ends.
    ///
    /// # Safety
    /// On the main stack, inside `main_loop`; `t` is the head of the queue, Runnable, not main.
    #[inline(always)]
    unsafe fn resume(&self, t: *mut Tasklet) {
        if let Some((f, ud)) = self.sched_cb.get() {
            self.fire_schedule_callback(f, ud, t);
            // The callback may have removed `t` or killed it before it started: then it does
            // not run, and the scheduler decides again.
            if self.queue.head() != t || (*t).stored() != State::Runnable {
                return;
            }
        }
        self.advance_cb_prev(t);
        if !(*t).started() {
            if self.tearing_down.get() {
                // Created while the thread tears down (a killed tasklet spawned it): it is
                // discarded, never started, so that teardown ends.
                self.discard_fresh(t);
                return;
            }
            (*t).mark_started();
        }
        if self.run.watchdog.active() {
            self.run.watchdog.on_switch(self);
        }
        #[cfg(test)]
        super::tests::maybe_panic_in_dispatch();
        self.set_running(t);
        self.switches.set(self.switches.get() + 1);
        let Some(coro) = (*(*t).coro.get()).as_mut() else {
            unreachable!("libslp internal error: {} is runnable but has no coroutine", (*t).describe())
        };
        let r = coro.resume(());
        self.set_running(self.main);
        if let CoroutineResult::Return(rc) = r {
            self.on_end(t, rc);
        }
    }

    /// The schedule callback's call for the switch back to the main tasklet.
    fn announce_switch_to_main(&self) {
        if self.cb_prev.get() != self.main {
            if let Some((f, ud)) = self.sched_cb.get() {
                // SAFETY: main is live; the callback is the host's.
                unsafe { self.fire_schedule_callback(f, ud, self.main) };
            }
            self.advance_cb_prev(self.main);
        }
    }

    /// A tasklet's function returned `rc`: it leaves the queue, its stack goes back to the
    /// pool, and an uncaught error goes to the main tasklet.
    ///
    /// # Safety
    /// On the main stack, right after `t`'s coroutine returned.
    unsafe fn on_end(&self, t: *mut Tasklet, rc: i32) {
        if self.queue.contains(t) {
            self.queue.unlink(t);
        }
        if self.tasklets.contains(t) {
            self.tasklets.remove(t);
        }
        (*t).transition(States::of(&[State::Runnable]), State::Dead);
        self.died.set(self.died.get() + 1);
        (*t).result.set(rc);
        (*t).atomic.store(false, std::sync::atomic::Ordering::Relaxed);
        if self.sched_cb.get().is_some() && self.cb_prev.get() == t && !self.cb_prev_ref.get() {
            // The next schedule callback names it as `prev`: keep it alive until then.
            tasklet::retain(t);
            self.cb_prev_ref.set(true);
        }
        if let Some(c) = (*(*t).coro.get()).take() {
            self.pool.borrow_mut().give(c.into_stack());
        }
        if rc != OK && rc != E_KILLED {
            fail(
                rc,
                format_args!(
                    "{} ended with uncaught error {} ({})",
                    (*t).describe(),
                    rc,
                    StatusName(rc)
                ),
            );
            self.deliver_to_main(rc, ptr::null_mut());
        }
        // The runtime's reference (it held one while the tasklet was scheduled).
        tasklet::release(t);
    }

    /// Delivers `code` (an uncaught error) to the main tasklet: the run call returns it, or
    /// main's pending call does, main running next.
    ///
    /// # Safety
    /// On the main stack, inside `main_loop`.
    unsafe fn deliver_to_main(&self, code: Status, data: *mut c_void) {
        if self.run.active() {
            self.run.set_error(code);
            return;
        }
        let main = self.main;
        (*main).pending.set(code);
        (*main).pending_data.set(data);
        (*main).pending_is_exc.set(false);
        self.unblock(main);
        if self.queue.contains(main) {
            // Stackless switches to main where it stands (as slp_tasklet_run rotates).
            self.queue.set_head(main);
        } else {
            (*main).transition(States::of(&[State::Blocked, State::Paused, State::Runnable]), State::Runnable);
            self.queue.move_to_front(main);
        }
    }

    /// A kill or throw of the main tasklet: main's pending (or next blocking) call returns
    /// `code` — or, while main is inside slp_run, the run does. Returns false in that case
    /// (main cannot be switched to).
    ///
    /// # Safety
    /// On this scheduler's thread, not from the main tasklet's own code (main is suspended in a libslp call or not running).
    pub(crate) unsafe fn throw_to_main(&self, code: Status, data: *mut c_void) -> bool {
        if self.run.active() {
            self.run.set_error(code);
            return false;
        }
        let main = self.main;
        (*main).pending.set(code);
        (*main).pending_data.set(data);
        (*main).pending_is_exc.set(code > 0);
        self.unblock(main);
        if !self.queue.contains(main) {
            (*main).transition(States::of(&[State::Blocked, State::Paused, State::Runnable]), State::Runnable);
            self.queue.append(main);
        }
        true
    }

    /// Removes `t` from whatever it is blocked on — its channel (the balance follows), the
    /// channels of its select, its sleep — and disarms its timer; a blocked `t` becomes
    /// Runnable (not yet linked: the caller links it).
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread (the caller holds a reference); no channel lock is
    /// held.
    pub(crate) unsafe fn unblock(&self, t: *mut Tasklet) {
        self.disarm(t);
        match (*t).waiting.get() {
            WaitOn::Sleep => {
                if (*t).stored() == State::Blocked {
                    (*t).transition(States::of(&[State::Blocked]), State::Runnable);
                }
            }
            WaitOn::Select => {
                channel::select::cancel_wait(t);
            }
            WaitOn::Signal => {
                crate::signal::remove_waiter(t);
            }
            WaitOn::Lock => {
                crate::lock::remove_waiter(t);
            }
            WaitOn::Channel | WaitOn::Nothing => {
                channel::remove_waiter(t);
            }
        }
    }
}

/// `Display` of a status's name for messages ("SLP_E_CLOSED: channel closed").
struct StatusName(Status);

impl std::fmt::Display for StatusName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = status_str(self.0);
        f.write_str(std::str::from_utf8(&s[..s.len() - 1]).unwrap_or("?"))
    }
}
