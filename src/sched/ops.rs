//! Tasklet operations on the calling thread's scheduler: create, discard, insert, remove,
//! run, switch, schedule, schedule_remove, kill and throw, the channel layer's block / wake
//! hooks, and the routing of a call to the local scheduler or to the owner thread.
//!
//! Runtime reference: the scheduler holds one reference to every non-main tasklet that is
//! Runnable, Running or Blocked, taken when the tasklet enters those states from Fresh or
//! Paused and dropped when it leaves them for Fresh, Paused or Dead. Messages to another
//! thread hold a reference of their own.

use std::ffi::{c_void, CString};

use crate::status::*;
use crate::tasklet::{self, ArgFree, Coro, State, States, Tasklet, TaskletFn, UNSCHEDULED};

use super::{remote, Scheduler};

impl Scheduler {
    /// Makes `t` Runnable and links it at the tail, taking the runtime's reference when it
    /// comes from Fresh or Paused. A `t` already Runnable but not linked (on its way back from
    /// a channel partner, a kill or a remote insert) is just linked; a linked one stays.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread, not Blocked, Running or Dead.
    pub(crate) unsafe fn link_runnable(&self, t: *mut Tasklet) {
        if self.queue.contains(t) {
            return;
        }
        if (*t).try_transition(UNSCHEDULED, State::Runnable).is_ok() && !(*t).is_main {
            tasklet::retain(t);
        }
        debug_assert_eq!((*t).stored(), State::Runnable, "{}", (*t).describe());
        self.queue.append(t);
    }

    /// `t` (Runnable, possibly linked) leaves the queue for Fresh or Paused; the runtime's
    /// reference goes, and with it possibly the last one (an unreferenced paused tasklet is
    /// killed, pending, as Stackless does).
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread in a queued state.
    unsafe fn pause(&self, t: *mut Tasklet) {
        if self.queue.contains(t) {
            self.queue.unlink(t);
        }
        let to = if (*t).started() { State::Paused } else { State::Fresh };
        (*t).transition(States::of(&[State::Runnable]), to);
        if !(*t).is_main {
            tasklet::release(t);
        }
    }

    /// Pauses the running tasklet (the watchdog's interrupt): it leaves the queue, the head
    /// moves on.
    ///
    /// # Safety
    /// On this thread, by the running tasklet (not main).
    pub(crate) unsafe fn pause_running(&self) {
        self.pause(self.running());
    }

    /// Creates a tasklet owned by this thread: Runnable and appended, or Fresh when `paused`.
    ///
    /// # Safety
    /// `func` is a valid tasklet function; `arg` is passed to it and to `arg_free`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tasklet_new(
        &self,
        func: TaskletFn,
        arg: *mut c_void,
        arg_free: Option<ArgFree>,
        name: Option<CString>,
        stack_size: usize,
        paused: bool,
        user_ref: bool,
    ) -> Result<*mut Tasklet, Status> {
        let stack = match self.pool.borrow_mut().take(stack_size) {
            Ok(s) => s,
            Err(e) => {
                return Err(fail(
                    E_NOMEM,
                    format_args!(
                        "cannot map a {stack_size}-byte tasklet stack (errno {})",
                        e.raw_os_error().unwrap_or(0)
                    ),
                ))
            }
        };
        let guard = stack.guard_start();
        let refs = usize::from(user_ref) + usize::from(!paused);
        let state = if paused { State::Fresh } else { State::Runnable };
        let Some(t) =
            Tasklet::new_raw(self.shared.clone(), false, arg, arg_free, name, stack_size, refs, state)
        else {
            self.pool.borrow_mut().give(stack);
            return Err(fail(E_NOMEM, "out of memory allocating a tasklet"));
        };
        (*t).guard_lo.set(guard);
        self.created.set(self.created.get() + 1);
        let tp = t as usize;
        let coro = Coro::with_stack(stack, move |y, ()| {
            let t = tp as *mut Tasklet;
            // SAFETY: the tasklet outlives its coroutine (it is freed only once dead), and
            // arg_free runs once, here, when the function returned.
            unsafe {
                (*t).yielder.set(y);
                let rc = func((*t).arg);
                (*t).free_arg();
                rc
            }
        });
        *(*t).coro.get() = Some(coro);
        self.tasklets.push(t);
        if !paused {
            self.queue.append(t);
        }
        Ok(t)
    }

    /// Ends a never-started tasklet without running it: `arg_free` runs, its stack returns
    /// to the pool, and the runtime's reference (if it held one) goes. Returns false if `t`
    /// was not Fresh or Runnable (another path already ended it).
    ///
    /// # Safety
    /// `t` is a never-started tasklet of this thread, kept alive by the caller.
    pub unsafe fn discard_fresh(&self, t: *mut Tasklet) -> bool {
        let Ok(was) = (*t).try_transition(States::of(&[State::Fresh, State::Runnable]), State::Dead)
        else {
            return false;
        };
        if self.queue.contains(t) {
            self.queue.unlink(t);
        }
        if self.tasklets.contains(t) {
            self.tasklets.remove(t);
        }
        self.died.set(self.died.get() + 1);
        if let Some(mut c) = (*(*t).coro.get()).take() {
            c.force_unwind(); // never started: only drops the initial closure
            self.pool.borrow_mut().give(c.into_stack());
        }
        (*t).free_arg();
        if was == State::Runnable {
            tasklet::release(t);
        }
        true
    }

    /// `slp_tasklet_insert` on a tasklet of this thread.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread (the caller holds a reference).
    pub unsafe fn insert(&self, t: *mut Tasklet) -> Status {
        match (*t).state() {
            State::Dead => fail(E_DEAD, format_args!("insert: {} is dead", (*t).describe())),
            State::Blocked => fail(E_STATE, format_args!("insert: {} is blocked", (*t).describe())),
            _ if (*t).is_main && self.run.active() => {
                fail(E_STATE, "insert: the main tasklet is inside slp_run")
            }
            State::Running => OK,
            _ => {
                self.link_runnable(t);
                OK
            }
        }
    }

    /// `slp_tasklet_remove` on a tasklet of this thread.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread (the caller holds a reference).
    pub unsafe fn remove(&self, t: *mut Tasklet) -> Status {
        match (*t).state() {
            State::Dead => fail(E_DEAD, format_args!("remove: {} is dead", (*t).describe())),
            _ if t == self.running() => {
                fail(E_STATE, "remove: cannot remove the current tasklet (use slp_schedule_remove)")
            }
            State::Blocked => fail(E_STATE, format_args!("remove: {} is blocked", (*t).describe())),
            State::Runnable | State::Running => {
                self.pause(t);
                OK
            }
            State::Fresh | State::Paused => OK,
        }
    }

    /// Common checks of run / switch / kill-now targets: returns Ok(true) when `t` is the
    /// running tasklet.
    ///
    /// # Safety
    /// `t` is a live tasklet of this thread (the caller holds a reference).
    unsafe fn check_target(&self, t: *mut Tasklet, what: &str) -> Result<bool, Status> {
        if (*t).state() == State::Dead {
            return Err(fail(E_DEAD, format_args!("{what}: {} is dead", (*t).describe())));
        }
        if t == self.running() {
            return Ok(true);
        }
        if (*t).is_blocked() {
            return Err(fail(E_STATE, format_args!("{what}: {} is blocked", (*t).describe())));
        }
        if (*t).is_main && self.run.active() {
            return Err(fail(E_STATE, format_args!("{what}: the main tasklet is inside slp_run")));
        }
        self.check_not_in_callback(what)?;
        self.check_trap()?;
        Ok(false)
    }

    /// `slp_tasklet_run` (`pause_caller` false): append `t` if needed and switch to it now;
    /// the caller keeps its place. `slp_tasklet_switch` (true): the same, but the caller is
    /// paused.
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop); `t` is a live tasklet of this thread.
    pub unsafe fn run_tasklet(&self, t: *mut Tasklet, pause_caller: bool) -> Status {
        match self.check_target(t, if pause_caller { "switch" } else { "run" }) {
            Err(s) => return s,
            Ok(true) => return OK,
            Ok(false) => {}
        }
        self.link_runnable(t);
        self.queue.set_head(t);
        let me = self.running();
        if pause_caller {
            // The caller is paused now: the runtime's reference goes (an unreferenced paused
            // tasklet is killed, pending, as in schedule_remove).
            self.pause(me);
        }
        self.switch_away()
    }

    /// `slp_schedule`. Inlined into the C entry point: every call frame between the entry and
    /// the stack switch costs a mispredicted return after the switch.
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop), outside the dispatch loop's own bookkeeping.
    #[inline(always)]
    pub unsafe fn schedule(&self) -> Status {
        // One test covers a poisoned scheduler, a callback in progress and switch_trap.
        let refusals = self.refusals();
        if refusals & (super::REFUSE_POISONED | super::REFUSE_CALLBACK) != 0 {
            if let Err(s) = self.check_usable().and_then(|_| self.check_not_in_callback("slp_schedule")) {
                return s;
            }
        }
        let me = self.running();
        let next = (*me).next.get();
        // Alone: returns at once — unless another thread posted work (a woken partner must get
        // its turn even while this tasklet keeps yielding).
        if next == me && !self.run.limited() && !self.shared.has_mail() {
            return OK;
        }
        if refusals & super::REFUSE_TRAP != 0 {
            return self.check_trap().err().unwrap_or(OK);
        }
        self.queue.set_head(next);
        self.switch_away()
    }

    /// `slp_schedule_remove`: like schedule, but the caller is paused until inserted.
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop).
    pub unsafe fn schedule_remove(&self) -> Status {
        if let Err(s) = self.check_not_in_callback("slp_schedule_remove") {
            return s;
        }
        if let Err(s) = self.check_trap() {
            return s;
        }
        let me = self.running();
        if me == self.main
            && (*me).next.get() == me
            && self.armed.get() == 0
            && !self.shared.others_could_wake()
            && !self.shared.has_mail() // looked at after the wakers (see check_deadlock)
        {
            return fail(
                E_DEADLOCK,
                "deadlock: the main tasklet would pause with nothing else runnable and no other \
                 participating thread that could insert it",
            );
        }
        // The runtime's reference goes; if it was the last, the tasklet is killed (pending)
        // and comes back, as Stackless does for an unreferenced paused tasklet.
        self.pause(me);
        self.switch_away()
    }

    /// Checks that the running tasklet may block now ("no partner", and the rules of nothing
    /// runnable: main blocking with nobody to wake it, a tasklet blocking while main is
    /// blocked). Called by the channel layer before it queues the caller; changes nothing.
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop).
    pub unsafe fn check_block(&self, timed: bool) -> Result<(), Status> {
        let me = self.running();
        let p = (*me).pending.get();
        if p != OK {
            return Err((*me).take_pending());
        }
        if self.refusals() & (super::REFUSE_CALLBACK | super::REFUSE_TRAP) != 0 {
            self.check_not_in_callback("a blocking channel operation")?;
            self.check_trap()?;
        }
        self.check_deadlock(timed)
    }

    /// The deadlock part of `check_block`: would the running tasklet, blocking now, be
    /// certain never to wake? Must run while what it waits on cannot change unseen: under the
    /// channel's lock for a plain wait, after registering on every channel for a select.
    ///
    /// # Safety
    /// As `check_block`.
    pub unsafe fn check_deadlock(&self, timed: bool) -> Result<(), Status> {
        let me = self.running();
        let alone = (*me).next.get() == me;
        // A finite deadline (the caller's, or a timer of another tasklet here) will wake
        // someone: no deadlock.
        if alone && !timed && self.armed.get() == 0 && !self.run.active() && !self.shared.has_mail() {
            // Nothing else on this thread can run and no main waits in slp_run to take control
            // back: only another participating thread could wake the caller.
            let main_waits = me != self.main && !self.queue.contains(self.main);
            // Mail is looked at again after the wakers (see census::Global::others_could_wake).
            if (me == self.main || main_waits)
                && !self.shared.others_could_wake()
                && !self.shared.has_mail()
            {
                let what = if me == self.main {
                    "the main tasklet would block, no tasklet on this thread can run and no \
                     other participating thread could wake it"
                } else {
                    "this tasklet would block while the main tasklet is blocked, nothing else \
                     can run and no other participating thread could wake anyone"
                };
                return Err(fail(
                    E_DEADLOCK,
                    format_args!("deadlock: {what} {}", super::census::Census),
                ));
            }
        }
        Ok(())
    }

    /// Parks the running tasklet (already Blocked and queued on what it waits for) and
    /// switches away. Returns `Err` with its pending delivery (kill, throw, uncaught error for
    /// main) or `Ok` with the status its partner left (OK, a user code sent as an exception,
    /// E_CLOSED).
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop); the running tasklet is Blocked and queued on a channel (whose lock is released).
    #[inline(always)]
    pub unsafe fn park(&self) -> Result<Status, Status> {
        let me = self.running();
        self.queue.unlink(me);
        let s = self.switch_away();
        // Woken: by a partner, its deadline, a kill or a throw. A timer still armed goes.
        self.disarm(me);
        (*me).waiting.set(crate::tasklet::WaitOn::Nothing);
        if s != OK {
            return Err(s);
        }
        Ok((*me).xfer_status.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Makes a channel partner runnable after a completed transfer (the channel layer already
    /// moved it from Blocked to Runnable), and applies the channel's preference:
    /// `partner_first` switches to it now (the caller keeps its place), `schedule_all` appends
    /// it and schedules. A partner of another thread goes back to its owner's queue and the
    /// caller continues.
    ///
    /// # Safety
    /// On the owner thread of the scheduler, by the running tasklet (or main inside the dispatch loop); `partner` was just taken off a channel and made Runnable (with a message reference when it lives on another thread).
    #[inline(always)]
    pub unsafe fn wake_partner(&self, partner: *mut Tasklet, p: crate::channel::Pairing) {
        if !p.local {
            remote::wake_remote(partner);
            return;
        }
        let me = self.running();
        if p.all {
            self.queue.append(partner);
            self.queue.set_head((*me).next.get());
            self.switch_away_keep_pending();
        } else if p.first {
            self.queue.insert_next(partner);
            self.queue.set_head(partner);
            self.switch_away_keep_pending();
        } else {
            self.queue.append(partner);
        }
    }

    /// Appends a tasklet of this thread whose wait ended (a signal went): already Runnable.
    ///
    /// # Safety
    /// `t` is a tasklet of this thread, Runnable and not linked.
    pub(crate) unsafe fn queue_woken(&self, t: *mut Tasklet) {
        self.queue.append(t);
    }

    /// Wakes a tasklet whose wait ended without a partner switch (channel shutdown).
    ///
    /// # Safety
    /// On this scheduler's thread; `t` was just taken off a channel and made Runnable (with a message reference when it lives on another thread).
    pub unsafe fn wake_appended(&self, t: *mut Tasklet) {
        if !self.owns(&*t) {
            remote::wake_remote(t);
        } else {
            self.queue.append(t);
        }
    }

    /// Would this channel operation switch now (so switch_trap and callbacks must refuse it)?
    #[inline(always)]
    pub fn would_switch(&self, partner_first: bool, schedule_all: bool) -> Result<(), Status> {
        if (partner_first || schedule_all)
            && self.refusals() & (super::REFUSE_CALLBACK | super::REFUSE_TRAP) != 0
        {
            self.check_not_in_callback("a channel operation that switches to its partner")?;
            self.check_trap()
        } else {
            Ok(())
        }
    }

    /// `slp_tasklet_kill` / `slp_tasklet_throw` on a tasklet of this thread (also applies a
    /// kill or throw posted by another thread, always pending).
    ///
    /// # Safety
    /// On this scheduler's thread, by the running tasklet or while applying the inbox; `t` is a live tasklet of this thread kept alive by the caller.
    pub unsafe fn throw_local(&self, t: *mut Tasklet, code: Status, data: *mut c_void, pending: bool) -> Status {
        let is_kill = code == E_KILLED;
        if (*t).state() == State::Dead {
            return if is_kill {
                OK
            } else {
                fail(E_DEAD, format_args!("throw: {} is dead", (*t).describe()))
            };
        }
        let me = self.running();
        if t == me {
            if code > 0 {
                (*me).exc_data.set(data);
            }
            return code;
        }
        if !pending {
            if let Err(s) = self.check_not_in_callback(if is_kill { "kill" } else { "throw" }) {
                return s;
            }
        }
        if !(*t).started() && !(*t).is_main {
            self.discard_fresh(t);
            if is_kill {
                return OK;
            }
            let s = fail(
                code,
                format_args!("{} was thrown user exception {} before it started", (*t).describe(), code),
            );
            if pending {
                // Reported like an uncaught error by the next run call.
                self.defer_error(code);
                return OK;
            }
            return s;
        }
        if !pending {
            if let Err(s) = self.check_trap() {
                return s;
            }
        }
        if (*t).is_main {
            if !self.throw_to_main(code, data) {
                return OK; // main is inside slp_run: the run returns the code
            }
        } else {
            self.unblock(t);
            (*t).pending.set(code);
            (*t).pending_data.set(data);
            (*t).pending_is_exc.set(code > 0);
            self.link_runnable(t);
        }
        if pending {
            return OK;
        }
        self.queue.set_head(t);
        self.switch_away()
    }
}

// ----- routing: the calling thread's scheduler, or a message to the owner -------------------

/// Where a call on `t` is served: `Some(scheduler)` when the calling thread owns `t`, `None`
/// when it belongs to another live thread; `Err(SLP_E_DEAD)` when its thread has exited.
///
/// # Safety
/// `t` is a live tasklet handle (the caller holds a reference).
unsafe fn route(t: *mut Tasklet, func: &str) -> Result<Option<&'static Scheduler>, Status> {
    let s = super::usable()?;
    if s.owns(&*t) {
        return Ok(Some(s));
    }
    if (*t).thread_id() == -1 {
        return Err(fail(E_DEAD, format_args!("{func}: the tasklet's thread has exited")));
    }
    Ok(None)
}

/// # Safety
/// `t` is a live tasklet handle.
#[cold]
unsafe fn wrong_thread(t: *mut Tasklet, func: &str) -> Status {
    fail(
        E_WRONG_THREAD,
        format_args!(
            "{func}: {} belongs to thread {}, not the calling thread {}",
            (*t).describe(),
            (*t).thread_id(),
            super::thread_id()
        ),
    )
}

/// `slp_tasklet_insert` from any thread.
///
/// # Safety
/// `t` is a live tasklet handle (the caller holds a reference).
pub unsafe fn insert(t: *mut Tasklet) -> Status {
    match route(t, "slp_tasklet_insert") {
        Ok(Some(s)) => s.insert(t),
        Ok(None) => remote::insert_remote(t),
        Err(e) => e,
    }
}

/// `slp_tasklet_run` from any thread (another thread's tasklet: like insert).
///
/// # Safety
/// As `insert`.
pub unsafe fn run(t: *mut Tasklet) -> Status {
    match route(t, "slp_tasklet_run") {
        Ok(Some(s)) => s.run_tasklet(t, false),
        Ok(None) => remote::insert_remote(t),
        Err(e) => e,
    }
}

/// `slp_tasklet_switch` (owner thread only).
///
/// # Safety
/// As `insert`.
pub unsafe fn switch(t: *mut Tasklet) -> Status {
    match route(t, "slp_tasklet_switch") {
        Ok(Some(s)) => s.run_tasklet(t, true),
        Ok(None) => wrong_thread(t, "slp_tasklet_switch"),
        Err(e) => e,
    }
}

/// `slp_tasklet_remove` (owner thread only).
///
/// # Safety
/// As `insert`.
pub unsafe fn remove(t: *mut Tasklet) -> Status {
    match route(t, "slp_tasklet_remove") {
        Ok(Some(s)) => s.remove(t),
        Ok(None) => wrong_thread(t, "slp_tasklet_remove"),
        Err(e) => e,
    }
}

/// `slp_tasklet_kill` (`code` = E_KILLED) and `slp_tasklet_throw` from any thread; from
/// another thread always pending.
///
/// # Safety
/// As `insert`.
pub unsafe fn throw(t: *mut Tasklet, code: Status, data: *mut c_void, pending: bool) -> Status {
    let is_kill = code == E_KILLED;
    if !(*t).is_alive() {
        return if is_kill {
            OK
        } else {
            fail(E_DEAD, format_args!("slp_tasklet_throw: {} is dead", (*t).describe()))
        };
    }
    match route(t, if is_kill { "slp_tasklet_kill" } else { "slp_tasklet_throw" }) {
        Ok(Some(s)) => s.throw_local(t, code, data, pending),
        Ok(None) => remote::throw_remote(t, code, data),
        Err(_) if is_kill => OK, // its thread exited: it is dead
        Err(e) => e,
    }
}
