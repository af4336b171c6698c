//! The per-thread scheduler: Stackless's circular run queue, the switch primitive, the run /
//! run_n / run_for / run_wait loops, cross-thread requests, and thread exit (SPEC §1, §3,
//! §4.1, §5.2-§5.4).
//!
//! Switching model. The thread's own stack is the main tasklet. Every other tasklet is a
//! corosensei coroutine, and all of them are resumed from one place: `main_loop`, running on
//! the main stack inside whatever libslp call the main tasklet is in (slp_run, a blocking
//! receive, slp_schedule, ...). A tasklet that switches away sets `head` to whoever must run
//! next and suspends back to that loop, which resumes `head` (or returns to the main tasklet's
//! code when `head` is main). A tasklet-to-tasklet switch is therefore one suspend plus one
//! resume: the cost of a raw corosensei round trip.
//!
//! Run queue. `head` is the tasklet that runs (or runs next); the queue is circular through
//! `next`/`prev`; "append" inserts just before `head`. Whenever user code runs, the running
//! tasklet is `head` (or it is main inside slp_run, which is not in the queue).
//!
//! Other threads never touch the run queue: they post messages to the owner's inbox
//! (`wake::Shared`), which `main_loop` drains; with nothing to run, it sleeps there.

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use crate::channel;
use crate::stack::{self, StackPool};
use crate::status::*;
use crate::tasklet::{self, ArgFree, Coro, Life, Tasklet, TaskletFn};
pub use crate::wake::Shared;
use crate::wake::{Msg, Woke};

/// `void fn(slp_tasklet *prev, slp_tasklet *next, void *user_data)`.
pub type ScheduleFn = unsafe extern "C" fn(prev: *mut Tasklet, next: *mut Tasklet, user_data: *mut c_void);
/// `void fn(slp_channel *ch, slp_tasklet *t, bool sending, bool will_block, void *user_data)`.
pub type ChannelFn = unsafe extern "C" fn(
    ch: *mut crate::channel::Channel,
    t: *mut Tasklet,
    sending: bool,
    will_block: bool,
    user_data: *mut c_void,
);

#[derive(Copy, Clone)]
enum Limit {
    None,
    Count(u32),
    Deadline(Instant),
}

/// How a run call waits when nothing is runnable.
#[derive(Copy, Clone, PartialEq)]
enum Wait {
    /// slp_run: return.
    No,
    /// slp_run_wait: sleep for cross-thread work until the deadline (None = forever).
    Until(Option<Instant>),
}

pub struct Scheduler {
    pub shared: Arc<Shared>,
    pub main: *mut Tasklet,
    head: Cell<*mut Tasklet>,
    ring_len: Cell<i32>,
    /// The main tasklet is inside slp_run* (and not in the queue).
    in_run: Cell<bool>,
    limit: Cell<Limit>,
    /// Inside slp_run_wait: sleep for cross-thread work instead of returning, until
    /// `wait_deadline` (None = no limit).
    waiting_run: Cell<bool>,
    wait_deadline: Cell<Option<Instant>>,
    /// Tasklets switched into during the current run call.
    run_switched: Cell<u32>,
    /// An uncaught error (or a kill/throw of main) to be returned by the run call.
    run_error: Cell<Status>,
    /// An uncaught error reported by a pending throw to a never-started tasklet, for the next
    /// slp_run.
    deferred_error: Cell<Status>,
    switch_trap: Cell<i32>,
    /// Started, not yet dead tasklets of this thread (intrusive list head), for thread exit.
    started: Cell<*mut Tasklet>,
    /// Registered with slp_thread_register.
    registered: Cell<bool>,
    pub pool: RefCell<StackPool>,
    pub switches: Cell<u64>,
    mail: RefCell<Vec<Msg>>,
    /// Introspection (SPEC §8): callbacks and counters of this thread.
    pub sched_cb: Cell<Option<(ScheduleFn, usize)>>,
    pub chan_cb: Cell<Option<(ChannelFn, usize)>>,
    /// The tasklet that ran last (the `prev` of the next schedule callback), and whether the
    /// scheduler holds a reference to it (it ended while a callback was installed).
    cb_prev: Cell<*mut Tasklet>,
    cb_prev_ref: Cell<bool>,
    pub created: Cell<u64>,
    pub died: Cell<u64>,
    /// The alternate signal stack libslp gave this thread for overflow reports (None when the
    /// host has its own).
    _alt_stack: Option<crate::overflow::AltStack>,
}

static NEXT_THREAD_ID: AtomicI64 = AtomicI64::new(1);

thread_local! {
    static THREAD_ID: Cell<i64> = const { Cell::new(0) };
    static SCHED: Cell<*mut Scheduler> = const { Cell::new(ptr::null_mut()) };
    /// Its destructor tears the thread's scheduler down when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

struct ExitGuard;
impl Drop for ExitGuard {
    fn drop(&mut self) {
        // SAFETY: runs once, on the exiting thread, on its own stack (main tasklet).
        let _ = std::panic::catch_unwind(|| unsafe { teardown_current(true) });
    }
}

/// For the fault handler: the guard-page range `[lo, hi)` of the calling thread's running
/// tasklet, and the tasklet. Async-signal-safe: reads thread-locals that already exist.
pub fn running_guard_range() -> Option<(usize, usize, *const Tasklet)> {
    let s = SCHED.try_with(|c| c.get()).ok()?;
    if s.is_null() {
        return None;
    }
    // SAFETY: the scheduler of this thread is live (it is freed only at thread exit).
    let t = unsafe { (*s).running() };
    if t.is_null() {
        return None;
    }
    let lo = unsafe { (*t).guard_lo.get() };
    if lo == 0 {
        return None;
    }
    Some((lo, lo + stack::page_size(), t))
}

/// This thread's id: > 0, never reused. Creates no scheduler.
pub fn thread_id() -> i64 {
    THREAD_ID.with(|c| {
        let v = c.get();
        if v != 0 {
            return v;
        }
        let v = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        c.set(v);
        v
    })
}

/// The calling thread's scheduler, created on first use.
#[inline]
pub fn sched() -> &'static Scheduler {
    let p = SCHED.with(|c| c.get());
    if !p.is_null() {
        // SAFETY: the scheduler lives as long as its thread and is only used from it.
        return unsafe { &*p };
    }
    create_sched()
}

/// The calling thread's scheduler if it has one (for pure queries).
#[inline]
pub fn sched_opt() -> Option<&'static Scheduler> {
    let p = SCHED.try_with(|c| c.get()).unwrap_or(ptr::null_mut());
    if p.is_null() {
        None
    } else {
        // SAFETY: as in `sched`.
        Some(unsafe { &*p })
    }
}

#[cold]
fn create_sched() -> &'static Scheduler {
    let id = thread_id();
    let shared = Shared::join(id);
    let main = Tasklet::new_raw(
        shared.clone(),
        true,
        ptr::null_mut(),
        None,
        Some(CString::new("main").unwrap()),
        0,
        1,
    );
    let s = Box::into_raw(Box::new(Scheduler {
        shared: shared.clone(),
        main,
        head: Cell::new(ptr::null_mut()),
        ring_len: Cell::new(0),
        in_run: Cell::new(false),
        limit: Cell::new(Limit::None),
        waiting_run: Cell::new(false),
        wait_deadline: Cell::new(None),
        run_switched: Cell::new(0),
        run_error: Cell::new(0),
        deferred_error: Cell::new(0),
        switch_trap: Cell::new(0),
        started: Cell::new(ptr::null_mut()),
        registered: Cell::new(false),
        pool: RefCell::new(StackPool::default()),
        switches: Cell::new(0),
        mail: RefCell::new(Vec::new()),
        sched_cb: Cell::new(None),
        chan_cb: Cell::new(None),
        cb_prev: Cell::new(main),
        cb_prev_ref: Cell::new(false),
        created: Cell::new(0),
        died: Cell::new(0),
        _alt_stack: crate::overflow::AltStack::install(),
    }));
    crate::overflow::install_handler();
    // SAFETY: freshly allocated, owned by this thread from now on.
    let sref = unsafe { &*s };
    shared.running.store(main, Ordering::Relaxed);
    sref.ring_append(main);
    SCHED.with(|c| c.set(s));
    EXIT_GUARD.with(|_| ());
    sref
}

impl Scheduler {
    // ----- run queue ------------------------------------------------------------------------

    #[inline]
    pub fn running(&self) -> *mut Tasklet {
        self.shared.running.load(Ordering::Relaxed)
    }
    #[inline]
    fn set_running(&self, t: *mut Tasklet) {
        self.shared.running.store(t, Ordering::Relaxed)
    }
    pub fn runcount(&self) -> i32 {
        self.ring_len.get()
    }
    pub fn set_registered(&self, on: bool) -> bool {
        self.registered.replace(on)
    }

    /// Inserts `t` before `pos` (or as the only element when the queue is empty).
    #[inline]
    unsafe fn ring_insert_before(&self, pos: *mut Tasklet, t: *mut Tasklet) {
        if pos.is_null() {
            (*t).next.set(t);
            (*t).prev.set(t);
            self.head.set(t);
        } else {
            let p = (*pos).prev.get();
            (*p).next.set(t);
            (*t).prev.set(p);
            (*t).next.set(pos);
            (*pos).prev.set(t);
        }
        (*t).queued.store(true, Ordering::Relaxed);
        self.ring_len.set(self.ring_len.get() + 1);
    }

    /// Append: the tail of the queue is just before `head`.
    #[inline]
    pub fn ring_append(&self, t: *mut Tasklet) {
        // SAFETY: t is a live tasklet of this thread, not in the queue.
        unsafe { self.ring_insert_before(self.head.get(), t) }
    }

    /// Inserts `t` right after `head` (it runs next).
    #[inline]
    unsafe fn ring_insert_next(&self, t: *mut Tasklet) {
        let h = self.head.get();
        if h.is_null() {
            self.ring_insert_before(h, t);
        } else {
            self.ring_insert_before((*h).next.get(), t);
        }
    }

    #[inline]
    unsafe fn ring_unlink(&self, t: *mut Tasklet) {
        let n = (*t).next.get();
        let p = (*t).prev.get();
        if n == t {
            self.head.set(ptr::null_mut());
        } else {
            (*p).next.set(n);
            (*n).prev.set(p);
            if self.head.get() == t {
                self.head.set(n);
            }
        }
        (*t).next.set(ptr::null_mut());
        (*t).prev.set(ptr::null_mut());
        (*t).queued.store(false, Ordering::Relaxed);
        self.ring_len.set(self.ring_len.get() - 1);
    }

    /// Puts a tasklet that is not in the queue at the tail, taking the runtime's reference
    /// for it unless the runtime already holds one (it was blocked).
    unsafe fn make_runnable(&self, t: *mut Tasklet) {
        if !(*t).is_main && !(*t).rt_ref.replace(true) {
            tasklet::retain(t);
        }
        self.ring_append(t);
    }

    /// Drops the runtime's reference of a tasklet that left the queue for good or paused.
    unsafe fn drop_runtime_ref(&self, t: *mut Tasklet) {
        if !(*t).is_main && (*t).rt_ref.replace(false) {
            tasklet::release(t);
        }
    }

    /// Moves `t` (in the queue or not) to the front: it runs next, everything else keeps its
    /// order.
    unsafe fn move_to_front(&self, t: *mut Tasklet) {
        if (*t).in_ring() {
            if self.head.get() == t {
                return;
            }
            self.ring_unlink(t);
        }
        let h = self.head.get();
        self.ring_insert_before(h, t);
        self.head.set(t);
    }

    unsafe fn started_push(&self, t: *mut Tasklet) {
        let h = self.started.get();
        (*t).all_prev.set(ptr::null_mut());
        (*t).all_next.set(h);
        if !h.is_null() {
            (*h).all_prev.set(t);
        }
        self.started.set(t);
    }

    unsafe fn started_remove(&self, t: *mut Tasklet) {
        let n = (*t).all_next.get();
        let p = (*t).all_prev.get();
        if !n.is_null() {
            (*n).all_prev.set(p);
        }
        if p.is_null() {
            self.started.set(n);
        } else {
            (*p).all_next.set(n);
        }
        (*t).all_next.set(ptr::null_mut());
        (*t).all_prev.set(ptr::null_mut());
    }

    // ----- cross-thread messages ------------------------------------------------------------

    /// Applies the messages other threads posted (owner thread only).
    unsafe fn drain_inbox(&self) {
        let mut msgs = std::mem::take(&mut *self.mail.borrow_mut());
        self.shared.take_mail(&mut msgs);
        for m in msgs.drain(..) {
            match m {
                Msg::Ready(t) => {
                    // Its wait ended on another thread; the runtime reference came with it.
                    if !(*t).in_ring() && (*t).life() != Life::Dead {
                        self.ring_append(t);
                    }
                }
                Msg::Insert(t) => {
                    if (*t).life() != Life::Dead
                        && !(*t).in_ring()
                        && !(*t).is_blocked()
                        && !((*t).is_main && self.in_run.get())
                    {
                        self.make_runnable(t);
                    }
                    tasklet::release(t);
                }
                Msg::Throw(t, code, data) => {
                    if (*t).life() == Life::Dead {
                    } else if (*t).is_main {
                        // A kill or throw of this thread's main tasklet (always pending).
                        self.throw_to_main(code, data);
                    } else {
                        let _ = self.throw_local(t, code, data, true);
                    }
                    tasklet::release(t);
                }
            }
        }
        *self.mail.borrow_mut() = msgs;
    }

    /// Applies requests other threads have posted, so that a query made on this thread sees
    /// them (a remote insert shows in runcount as soon as the call that made it returned).
    #[inline]
    pub fn sync(&self) {
        if self.shared.has_mail() {
            // SAFETY: called at the start of an API call on the owner thread, outside any
            // run-queue manipulation; applying messages never switches.
            unsafe { self.drain_inbox() }
        }
    }

    // ----- switching ------------------------------------------------------------------------

    #[inline]
    fn limited(&self) -> bool {
        self.in_run.get() && !matches!(self.limit.get(), Limit::None)
    }

    /// Switches away from the running tasklet, which has already arranged `head` (and left the
    /// queue if it blocks). Returns when the running tasklet is resumed, with its pending
    /// delivery (kill, throw, uncaught error for main) or `OK`.
    #[inline(always)]
    unsafe fn switch_away(&self) -> Status {
        let me = self.running();
        if me == self.main {
            self.main_loop()
        } else {
            record_debug_context(me);
            let y = (*me).yielder.get();
            (*y).suspend(());
            (*me).take_pending()
        }
    }

    /// Like `switch_away`, but leaves a pending delivery for the next blocking call (used
    /// after an operation that already completed, so that its result is not lost).
    #[inline(always)]
    unsafe fn switch_away_keep_pending(&self) {
        let me = self.running();
        if me == self.main {
            let s = self.main_loop();
            if s != OK {
                (*me).pending.set(s);
            }
        } else {
            record_debug_context(me);
            let y = (*me).yielder.get();
            (*y).suspend(());
        }
    }

    /// The dispatch loop on the main stack. Resumes `head` until it is the main tasklet's
    /// turn, or (inside a run call) until nothing is runnable, the run's budget is spent or an
    /// uncaught error arrives. With nothing runnable and main blocked, or inside slp_run_wait,
    /// the thread sleeps until another thread sends work.
    unsafe fn main_loop(&self) -> Status {
        loop {
            self.shared.enter();
            let s = self.main_loop_inner();
            if self.cb_prev.get() != self.main {
                if let Some((f, ud)) = self.sched_cb.get() {
                    self.fire_schedule_callback(f, ud, self.main);
                }
                self.cb_prev.set(self.main);
            }
            if !self.shared.leave_loop() {
                return s;
            }
            // Work arrived from another thread while this thread was inside (so its wake-up
            // callback was not rung). A run that ended for lack of work goes back and serves
            // it; otherwise the host is told through its own callback.
            if self.in_run.get() && self.head.get().is_null() && s == OK && self.run_error.get() == OK {
                continue;
            }
            self.shared.notify_self();
            return s;
        }
    }

    #[inline(always)]
    unsafe fn main_loop_inner(&self) -> Status {
        let main = self.main;
        loop {
            if self.shared.has_mail() {
                self.drain_inbox();
            }
            let next = self.head.get();
            if next == main {
                return (*main).take_pending();
            }
            if self.in_run.get() {
                if self.run_error.get() != OK {
                    return OK; // the run call reports it
                }
                if self.waiting_run.get() && self.shared.take_wakeup_request() {
                    return OK;
                }
            }
            if next.is_null() {
                let waiting_run = self.in_run.get() && self.waiting_run.get();
                if self.in_run.get() && !waiting_run {
                    return OK; // §5.3 rule 1: the run returns, blockers stay blocked.
                }
                let deadline = if waiting_run { self.wait_deadline.get() } else { None };
                let want_wakeup = waiting_run;
                match self.shared.wait_for_work(deadline, want_wakeup) {
                    Woke::Mail => continue,
                    Woke::WakeupRequest => return OK,
                    Woke::Deadline => return E_TIMEOUT,
                    Woke::Deadlock => {
                        if self.in_run.get() {
                            return fail(
                                E_DEADLOCK,
                                "deadlock: slp_run_wait has nothing to run and no other \
                                 participating thread is awake to send it work",
                            );
                        }
                        // §5.3 rules 2-3: main is blocked (or paused) and nothing can wake
                        // it: it gets its pending delivery or SLP_E_DEADLOCK, and leaves what
                        // it waited on.
                        let code = (*main).take_pending();
                        let code = if code != OK {
                            code
                        } else {
                            fail(
                                E_DEADLOCK,
                                format!(
                                    "deadlock: the main tasklet is blocked, no tasklet on this \
                                     thread is runnable and no other participating thread is \
                                     awake {}",
                                    Shared::census()
                                ),
                            )
                        };
                        self.unblock(main);
                        self.ring_append(main);
                        return code;
                    }
                }
            }
            if self.in_run.get() {
                match self.limit.get() {
                    Limit::None => {}
                    Limit::Count(n) => {
                        if self.run_switched.get() >= n {
                            return OK;
                        }
                    }
                    Limit::Deadline(d) => {
                        if self.run_switched.get() > 0 && Instant::now() >= d {
                            return OK;
                        }
                    }
                }
                self.run_switched.set(self.run_switched.get() + 1);
            }
            self.resume(next);
        }
    }

    /// Runs `t` (never main) until it suspends or ends.
    #[inline(always)]
    unsafe fn resume(&self, t: *mut Tasklet) {
        if (*t).life() == Life::Fresh {
            (*t).set_life(Life::Started);
            self.started_push(t);
        }
        if let Some((f, ud)) = self.sched_cb.get() {
            self.fire_schedule_callback(f, ud, t);
        }
        self.cb_prev.set(t);
        self.set_running(t);
        self.switches.set(self.switches.get() + 1);
        let coro = (*(*t).coro.get()).as_mut().expect("a runnable tasklet has a coroutine");
        let r = coro.resume(());
        self.set_running(self.main);
        if let CoroutineResult::Return(rc) = r {
            self.on_end(t, rc);
        }
    }

    /// A tasklet's function returned `rc`: it leaves the queue, its stack goes back to the
    /// pool, and an uncaught error goes to the main tasklet.
    unsafe fn on_end(&self, t: *mut Tasklet, rc: i32) {
        if (*t).in_ring() {
            self.ring_unlink(t);
        }
        self.started_remove(t);
        (*t).set_life(Life::Dead);
        self.died.set(self.died.get() + 1);
        (*t).result.set(rc);
        (*t).atomic.set(false);
        if self.sched_cb.get().is_some() && self.cb_prev.get() == t && !self.cb_prev_ref.get() {
            // The next schedule callback names it as `prev`: keep it alive until then.
            tasklet::retain(t);
            self.cb_prev_ref.set(true);
        }
        if let Some(c) = (*(*t).coro.get()).take() {
            self.pool.borrow_mut().give(c.into_stack());
        }
        if rc != OK && rc != E_KILLED {
            let msg = format!(
                "{} ended with uncaught error {} ({})",
                (*t).describe(),
                rc,
                String::from_utf8_lossy(&status_str(rc)[..status_str(rc).len() - 1])
            );
            fail(rc, msg);
            self.deliver_to_main(rc, ptr::null_mut());
        }
        self.drop_runtime_ref(t);
    }

    /// Delivers `code` (an uncaught error, a kill or a throw) to the main tasklet: the run call
    /// returns it, or main's pending call does, main running next.
    unsafe fn deliver_to_main(&self, code: Status, data: *mut c_void) {
        if self.in_run.get() {
            if self.run_error.get() == OK {
                self.run_error.set(code);
            }
            return;
        }
        let main = self.main;
        (*main).pending.set(code);
        (*main).pending_data.set(data);
        (*main).pending_is_exc.set(false);
        self.unblock(main);
        if (*main).in_ring() {
            // Stackless switches to main where it stands (as slp_tasklet_run rotates).
            self.head.set(main);
        } else {
            self.move_to_front(main);
        }
    }

    /// A kill or throw of the main tasklet: main's pending (or next blocking) call returns
    /// `code` — or, while main is inside slp_run, the run does. Returns false in that case
    /// (main cannot be switched to).
    unsafe fn throw_to_main(&self, code: Status, data: *mut c_void) -> bool {
        if self.in_run.get() {
            if self.run_error.get() == OK {
                self.run_error.set(code);
            }
            return false;
        }
        let main = self.main;
        (*main).pending.set(code);
        (*main).pending_data.set(data);
        (*main).pending_is_exc.set(code > 0);
        self.unblock(main);
        if !(*main).in_ring() {
            self.ring_append(main);
        }
        true
    }

    /// Removes `t` from whatever it is blocked on (the channel's balance follows).
    unsafe fn unblock(&self, t: *mut Tasklet) {
        channel::remove_waiter(t);
    }

    /// Calls the schedule callback for a switch to `next` (never with a dangling `prev`).
    unsafe fn fire_schedule_callback(&self, f: ScheduleFn, ud: usize, next: *mut Tasklet) {
        let prev = self.cb_prev.get();
        f(prev, next, ud as *mut c_void);
        if self.cb_prev_ref.replace(false) {
            tasklet::release(prev);
        }
    }

    /// Drops the reference kept for the schedule callback's `prev` (callback removed).
    pub unsafe fn clear_callback_prev(&self) {
        if self.cb_prev_ref.replace(false) {
            tasklet::release(self.cb_prev.get());
        }
        self.cb_prev.set(self.running());
    }

    /// Tasklets of this thread not yet dead (main excluded). Tasklets discarded by another
    /// thread (an unreferenced, never-started paused tasklet released there) are counted by
    /// `Shared::foreign_discards`.
    pub fn live_tasklets(&self) -> u64 {
        self.created
            .get()
            .saturating_sub(self.died.get())
            .saturating_sub(self.shared.foreign_discards())
    }

    /// The text dump of this thread's tasklets (SPEC §8). Read-only (it applies no pending
    /// cross-thread request and never waits for a lock), so a debugger may call it while the
    /// thread is stopped anywhere.
    pub unsafe fn dump(&self) -> String {
        use std::fmt::Write;
        let mut lines = Vec::new();
        let describe = |t: *mut Tasklet| -> String {
            match &(*t).name {
                Some(n) if !n.as_bytes().is_empty() => format!("'{}' ({:p})", n.to_string_lossy(), t),
                _ => format!("{:p}", t),
            }
        };
        let running = self.running();
        lines.push(format!("  * {} running", describe(running)));
        // The run queue in order, from the tasklet that runs next.
        let h = self.head.get();
        if !h.is_null() {
            let mut t = h;
            loop {
                if t != running {
                    lines.push(format!("    {} runnable", describe(t)));
                }
                t = (*t).next.get();
                if t == h {
                    break;
                }
            }
        }
        if running != self.main && !(*self.main).in_ring() {
            let st = if (*self.main).is_blocked() {
                channel::describe_wait(self.main)
            } else if self.in_run.get() {
                "waiting in slp_run".to_string()
            } else {
                "paused".to_string()
            };
            lines.push(format!("    {} {}", describe(self.main), st));
        }
        let mut t = self.started.get();
        while !t.is_null() {
            if t != running && !(*t).in_ring() {
                let st = if (*t).is_blocked() {
                    channel::describe_wait(t)
                } else if (*t).rt_ref.get() {
                    "runnable (woken by another thread)".to_string()
                } else {
                    "paused".to_string()
                };
                lines.push(format!("    {} {}", describe(t), st));
            }
            t = (*t).all_next.get();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "thread {}: {} tasklet{}, runcount {}",
            self.shared.thread_id,
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            self.ring_len.get()
        );
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    // ----- operations used by the C API -----------------------------------------------------

    fn check_trap(&self) -> Result<(), Status> {
        if self.switch_trap.get() > 0 {
            Err(fail(E_SWITCH_TRAP, "switch_trap is set on this thread: no switch allowed"))
        } else {
            Ok(())
        }
    }

    pub fn switch_trap(&self, delta: i32) -> i32 {
        let old = self.switch_trap.get();
        self.switch_trap.set(old.saturating_add(delta));
        old
    }

    /// Creates a tasklet owned by this thread.
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
                    format!("cannot map a {stack_size}-byte tasklet stack: {e}"),
                ))
            }
        };
        let refs = usize::from(user_ref) + usize::from(!paused);
        let t = Tasklet::new_raw(
            self.shared.clone(),
            false,
            arg,
            arg_free,
            name,
            stack_size,
            refs,
        );
        (*t).guard_lo.set(stack.guard_start());
        self.created.set(self.created.get() + 1);
        let tp = t as usize;
        let coro = Coro::with_stack(stack, move |y, ()| {
            let t = tp as *mut Tasklet;
            // SAFETY: the tasklet outlives its coroutine (it is freed only once dead).
            unsafe {
                (*t).yielder.set(y);
                let rc = func((*t).arg);
                (*t).free_arg();
                rc
            }
        });
        *(*t).coro.get() = Some(coro);
        if !paused {
            (*t).rt_ref.set(true);
            self.ring_append(t);
        }
        Ok(t)
    }

    /// Ends a never-started tasklet without running it: `arg_free` runs, its stack returns
    /// to the pool, and the runtime's reference (if it held one) goes.
    pub unsafe fn discard_fresh(&self, t: *mut Tasklet) {
        if (*t).in_ring() {
            self.ring_unlink(t);
        }
        (*t).set_life(Life::Dead);
        self.died.set(self.died.get() + 1);
        if let Some(mut c) = (*(*t).coro.get()).take() {
            c.force_unwind(); // never started: only drops the initial closure
            self.pool.borrow_mut().give(c.into_stack());
        }
        (*t).free_arg();
        self.drop_runtime_ref(t);
    }

    pub unsafe fn insert(&self, t: *mut Tasklet) -> Status {
        if !(*t).is_alive() {
            return fail(E_DEAD, format!("insert: {} is dead", (*t).describe()));
        }
        if (*t).is_blocked() {
            return fail(E_STATE, format!("insert: {} is blocked", (*t).describe()));
        }
        if (*t).in_ring() {
            return OK;
        }
        if (*t).is_main && self.in_run.get() {
            return fail(E_STATE, "insert: the main tasklet is inside slp_run");
        }
        self.make_runnable(t);
        OK
    }

    pub unsafe fn remove(&self, t: *mut Tasklet) -> Status {
        if !(*t).is_alive() {
            return fail(E_DEAD, format!("remove: {} is dead", (*t).describe()));
        }
        if t == self.running() {
            return fail(E_STATE, "remove: cannot remove the current tasklet (use slp_schedule_remove)");
        }
        if (*t).is_blocked() {
            return fail(E_STATE, format!("remove: {} is blocked", (*t).describe()));
        }
        if (*t).in_ring() {
            self.ring_unlink(t);
            self.drop_runtime_ref(t);
        }
        OK
    }

    /// Common checks of run / switch / kill-now targets: returns Ok(true) when `t` is the
    /// running tasklet.
    unsafe fn check_target(&self, t: *mut Tasklet, what: &str) -> Result<bool, Status> {
        if !(*t).is_alive() {
            return Err(fail(E_DEAD, format!("{what}: {} is dead", (*t).describe())));
        }
        if t == self.running() {
            return Ok(true);
        }
        if (*t).is_blocked() {
            return Err(fail(E_STATE, format!("{what}: {} is blocked", (*t).describe())));
        }
        if (*t).is_main && self.in_run.get() {
            return Err(fail(E_STATE, format!("{what}: the main tasklet is inside slp_run")));
        }
        self.check_trap()?;
        Ok(false)
    }

    /// `slp_tasklet_run` (`pause_caller` false): append `t` if needed and switch to it now;
    /// the caller keeps its place. `slp_tasklet_switch` (true): the same, but the caller is
    /// paused.
    pub unsafe fn run_tasklet(&self, t: *mut Tasklet, pause_caller: bool) -> Status {
        match self.check_target(t, if pause_caller { "switch" } else { "run" }) {
            Err(s) => return s,
            Ok(true) => return OK,
            Ok(false) => {}
        }
        if !(*t).in_ring() {
            self.make_runnable(t);
        }
        self.head.set(t);
        if pause_caller {
            let me = self.running();
            self.ring_unlink(me);
            // The caller is paused now: the runtime's reference goes (an unreferenced paused
            // tasklet is killed, pending, as in schedule_remove).
            self.drop_runtime_ref(me);
        }
        self.switch_away()
    }

    /// `slp_schedule`. Inlined into the C entry point: every call frame between the entry and
    /// the stack switch costs a mispredicted return after the switch.
    #[inline(always)]
    pub unsafe fn schedule(&self) -> Status {
        let me = self.running();
        let next = (*me).next.get();
        // Alone: returns at once — unless another thread posted work (a woken partner must get
        // its turn even while this tasklet keeps yielding).
        if next == me && !self.limited() && !self.shared.has_mail() {
            return OK;
        }
        if let Err(s) = self.check_trap() {
            return s;
        }
        self.head.set(next);
        self.switch_away()
    }

    /// `slp_schedule_remove`: like schedule, but the caller is paused until inserted.
    pub unsafe fn schedule_remove(&self) -> Status {
        if let Err(s) = self.check_trap() {
            return s;
        }
        let me = self.running();
        if me == self.main && (*me).next.get() == me && !self.shared.others_awake() {
            return fail(
                E_DEADLOCK,
                "deadlock: the main tasklet would pause with nothing else runnable and no other \
                 participating thread awake",
            );
        }
        self.ring_unlink(me);
        // The runtime's reference goes; if it was the last, the tasklet is killed (pending)
        // and comes back, as Stackless does for an unreferenced paused tasklet.
        self.drop_runtime_ref(me);
        self.switch_away()
    }

    /// Checks that the running tasklet may block now (SPEC §5.1 "no partner", §5.3 rules 2
    /// and 4). Called by the channel layer before it queues the caller; changes nothing.
    pub unsafe fn check_block(&self) -> Result<(), Status> {
        let me = self.running();
        let p = (*me).pending.get();
        if p != OK {
            return Err((*me).take_pending());
        }
        self.check_trap()?;
        let alone = (*me).next.get() == me;
        if alone && !self.in_run.get() && !self.shared.has_mail() {
            // Nothing else on this thread can run and no main waits in slp_run to take control
            // back: only another participating thread could wake the caller.
            let main_waits = me != self.main && !(*self.main).in_ring();
            if (me == self.main || main_waits) && !self.shared.others_awake() {
                let what = if me == self.main {
                    "the main tasklet would block, no tasklet on this thread can run and no \
                     other participating thread is awake to wake it"
                } else {
                    "this tasklet would block while the main tasklet is blocked, nothing else \
                     can run and no other participating thread is awake"
                };
                return Err(fail(E_DEADLOCK, format!("deadlock: {what} {}", Shared::census())));
            }
        }
        Ok(())
    }

    /// Parks the running tasklet (already queued on what it waits for) and switches away.
    /// Returns `Err` with its pending delivery (kill, throw, uncaught error for main) or `Ok`
    /// with the status its partner left (OK, a user code sent as an exception, E_CLOSED).
    #[inline(always)]
    pub unsafe fn park(&self) -> Result<Status, Status> {
        let me = self.running();
        self.ring_unlink(me);
        if !(*me).is_main {
            (*me).rt_ref.set(true); // blocked: the runtime keeps its reference
        }
        let s = self.switch_away();
        if s != OK {
            return Err(s);
        }
        Ok((*me).xfer_status.load(Ordering::Acquire))
    }

    /// Makes a channel partner runnable after a completed transfer, and applies the channel's
    /// preference (§5.1): `partner_first` switches to it now (the caller keeps its place),
    /// `schedule_all` appends it and schedules. A partner of another thread goes back to its
    /// owner's queue and the caller continues (§5.2).
    #[inline(always)]
    pub unsafe fn wake_partner(&self, partner: *mut Tasklet, partner_first: bool, schedule_all: bool) {
        if !ptr::eq(&**(*partner).owner(), &*self.shared) {
            wake_remote(partner);
        } else if schedule_all {
            self.ring_append(partner);
            let me = self.running();
            self.head.set((*me).next.get());
            self.switch_away_keep_pending();
        } else if partner_first {
            self.ring_insert_next(partner);
            self.head.set(partner);
            self.switch_away_keep_pending();
        } else {
            self.ring_append(partner);
        }
    }

    /// Wakes a tasklet whose wait ended without a partner switch (channel shutdown).
    pub unsafe fn wake_appended(&self, t: *mut Tasklet) {
        if !ptr::eq(&**(*t).owner(), &*self.shared) {
            wake_remote(t);
        } else {
            self.ring_append(t);
        }
    }

    /// Would this channel operation switch now (so switch_trap must refuse it)?
    pub fn would_switch(&self, partner_first: bool, schedule_all: bool) -> Result<(), Status> {
        if partner_first || schedule_all {
            self.check_trap()
        } else {
            Ok(())
        }
    }

    /// `slp_tasklet_kill` / `slp_tasklet_throw` on a tasklet of this thread (also applies a
    /// kill or throw posted by another thread, always pending).
    pub unsafe fn throw_local(&self, t: *mut Tasklet, code: Status, data: *mut c_void, pending: bool) -> Status {
        let is_kill = code == E_KILLED;
        if (*t).life() == Life::Dead {
            return if is_kill {
                OK
            } else {
                fail(E_DEAD, format!("throw: {} is dead", (*t).describe()))
            };
        }
        let me = self.running();
        if t == me {
            if code > 0 {
                (*me).exc_data.set(data);
            }
            return code;
        }
        if (*t).life() == Life::Fresh {
            self.discard_fresh(t);
            if is_kill {
                return OK;
            }
            let msg = format!("{} was thrown user exception {} before it started", (*t).describe(), code);
            if pending {
                if self.deferred_error.get() == OK {
                    self.deferred_error.set(code);
                }
                fail(code, msg);
                return OK;
            }
            return fail(code, msg);
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
            if !(*t).in_ring() {
                self.make_runnable(t);
            }
        }
        if pending {
            return OK;
        }
        self.head.set(t);
        self.switch_away()
    }

    // ----- running -------------------------------------------------------------------------

    /// slp_run / slp_run_n / slp_run_for / slp_run_wait. Only the main tasklet may call it.
    unsafe fn run_with(&self, limit: Limit, wait: Wait) -> Status {
        let main = self.main;
        if self.running() != main {
            return fail(
                E_STATE,
                "slp_run may only be called by the thread's main tasklet (libslp schedules flat)",
            );
        }
        if self.shared.has_mail() {
            self.drain_inbox();
        }
        let d = self.deferred_error.replace(OK);
        if d != OK {
            return d; // slp_last_error was set when the throw happened
        }
        let p = (*main).take_pending();
        if p != OK {
            return p;
        }
        if (*main).next.get() == main && wait == Wait::No {
            return OK; // nothing to run
        }
        if (*main).next.get() != main {
            if let Err(s) = self.check_trap() {
                return s;
            }
        }
        self.ring_unlink(main);
        self.in_run.set(true);
        self.limit.set(limit);
        if let Wait::Until(d) = wait {
            self.wait_deadline.set(d);
        }
        self.waiting_run.set(wait != Wait::No);
        self.run_switched.set(0);
        self.run_error.set(OK);
        let s = self.main_loop();
        self.in_run.set(false);
        self.limit.set(Limit::None);
        self.waiting_run.set(false);
        self.wait_deadline.set(None);
        // Main takes its place just before the tasklet that would have run next, so that one
        // is first in the next call.
        let h = self.head.get();
        self.ring_insert_before(h, main);
        self.head.set(main);
        let e = self.run_error.replace(OK);
        if e != OK {
            return e;
        }
        s
    }

    pub unsafe fn run(&self) -> Status {
        self.run_with(Limit::None, Wait::No)
    }
    pub unsafe fn run_n(&self, n: u32) -> Status {
        if n == 0 {
            return OK;
        }
        self.run_with(Limit::Count(n), Wait::No)
    }
    pub unsafe fn run_for(&self, budget_ns: i64) -> Status {
        let d = Duration::from_nanos(budget_ns.max(0) as u64);
        match Instant::now().checked_add(d) {
            Some(dl) => self.run_with(Limit::Deadline(dl), Wait::No),
            None => self.run_with(Limit::None, Wait::No),
        }
    }
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
}

/// Records where a tasklet switches away, for debuggers (three register reads and stores).
#[inline(always)]
unsafe fn record_debug_context(t: *mut Tasklet) {
    #[cfg(target_arch = "x86_64")]
    {
        let (pc, sp, fp): (usize, usize, usize);
        // SAFETY: reads registers only. The captured pc is the next instruction and sp the
        // stack pointer at it, so a debugger can unwind from this point with the function's
        // CFI.
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {fp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            fp = out(reg) fp,
            options(nomem, nostack, preserves_flags)
        );
        (*t).dbg_ctx.set([pc, sp, fp]);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = t;
}

/// Sends a tasklet whose wait ended (its partner or a shutdown was on this thread) back to
/// its owner's run queue. The runtime reference travels with the message.
unsafe fn wake_remote(t: *mut Tasklet) {
    let owner = (*t).owner().clone();
    if !owner.post(Msg::Ready(t)) {
        // The owner's scheduler is gone; its exit already took the tasklet off every channel,
        // so this cannot happen for a waiter. Nothing to do.
    }
}

/// `slp_tasklet_insert` / `slp_tasklet_run` on another thread's tasklet: appended to its
/// owner's queue, the owner is woken.
pub unsafe fn insert_remote(t: *mut Tasklet) -> Status {
    if (*t).life() == Life::Dead || !(*t).owner().alive.load(Ordering::Relaxed) {
        return fail(E_DEAD, format!("insert: {} is dead or its thread has exited", (*t).describe()));
    }
    if (*t).is_blocked() {
        return fail(E_STATE, format!("insert: {} is blocked", (*t).describe()));
    }
    tasklet::retain(t);
    let owner = (*t).owner().clone();
    if !owner.post(Msg::Insert(t)) {
        tasklet::release(t);
        return fail(E_DEAD, "insert: the tasklet's thread has exited");
    }
    OK
}

/// `slp_tasklet_kill` / `slp_tasklet_throw` on another thread's tasklet: always pending. A
/// blocked target leaves its channel (balance corrected) before this returns; the owner
/// applies the rest.
pub unsafe fn throw_remote(t: *mut Tasklet, code: Status, data: *mut c_void) -> Status {
    if (*t).life() == Life::Dead || !(*t).owner().alive.load(Ordering::Relaxed) {
        return if code == E_KILLED {
            OK
        } else {
            fail(E_DEAD, format!("throw: {} is dead or its thread has exited", (*t).describe()))
        };
    }
    channel::remove_waiter(t);
    tasklet::retain(t);
    let owner = (*t).owner().clone();
    if !owner.post(Msg::Throw(t, code, data)) {
        tasklet::release(t);
    }
    OK
}

/// The last reference to `t` went (SPEC §3 ownership).
pub(crate) unsafe fn last_ref_gone(t: *mut Tasklet) {
    if (*t).is_main && (*t).life() != Life::Dead {
        // The main tasklet belongs to its live thread; an over-release must not free it.
        (*t).refs.store(1, Ordering::Relaxed);
        return;
    }
    let owner_alive = (*t).owner().alive.load(Ordering::Relaxed);
    match (*t).life() {
        Life::Dead => tasklet::free(t),
        Life::Fresh => {
            // Paused and never started: discard it without running.
            match sched_opt() {
                Some(s) if ptr::eq(&*s.shared, &**(*t).owner()) => s.discard_fresh(t),
                _ => discard_fresh_foreign(t),
            }
            tasklet::free(t);
        }
        Life::Started if !owner_alive => {
            // Its thread is gone and it refused to end: its stack stays leaked (never freed
            // under frames that may still be referenced); the handle memory can go.
            tasklet::free(t);
        }
        Life::Started => {
            // Paused after running: kill it (pending) so that it can clean up; the runtime
            // holds it until it ends.
            (*t).refs.store(1, Ordering::Relaxed);
            match sched_opt() {
                Some(s) if ptr::eq(&*s.shared, &**(*t).owner()) => {
                    (*t).pending.set(E_KILLED);
                    (*t).rt_ref.set(true);
                    s.ring_append(t);
                }
                _ => {
                    // The message holds the reference; the owner applies the kill.
                    let owner = (*t).owner().clone();
                    if !owner.post(Msg::Throw(t, E_KILLED, ptr::null_mut())) {
                        tasklet::free(t);
                    }
                }
            }
        }
    }
}

/// Discards a never-started tasklet from a thread other than its owner (its stack is simply
/// unmapped: never-started stacks hold no frames).
unsafe fn discard_fresh_foreign(t: *mut Tasklet) {
    (*t).set_life(Life::Dead);
    (*t).owner().count_foreign_discard();
    if let Some(mut c) = (*(*t).coro.get()).take() {
        c.force_unwind();
        drop(c.into_stack());
    }
    (*t).free_arg();
}

/// How many rounds of kills a thread's exit gives its tasklets before it gives up on them.
const EXIT_KILL_ROUNDS: usize = 16;

/// Tears down the calling thread's scheduler (SPEC §5.4): every tasklet is killed —
/// never-started ones discarded, blocked ones taken off their channels, started ones resumed
/// with SLP_E_KILLED until they end (bounded) — then the scheduler stops participating and
/// its memory goes. Surviving handles report thread_id -1 and not alive. Returns false if it
/// cannot run now (not on the main tasklet, or inside a run).
pub unsafe fn teardown_current(thread_exit: bool) -> bool {
    let p = SCHED.try_with(|c| c.get()).unwrap_or(ptr::null_mut());
    if p.is_null() {
        return true;
    }
    let s = &*p;
    if s.running() != s.main || s.in_run.get() {
        return false;
    }
    s.switch_trap.set(0);
    for _round in 0..EXIT_KILL_ROUNDS {
        if s.shared.has_mail() {
            s.drain_inbox();
        }
        let mut victims = Vec::new();
        let mut t = s.started.get();
        while !t.is_null() {
            victims.push(t);
            t = (*t).all_next.get();
        }
        let mut t = (*s.main).next.get();
        while !t.is_null() && t != s.main {
            if (*t).life() == Life::Fresh {
                victims.push(t);
            }
            t = (*t).next.get();
        }
        if victims.is_empty() {
            break;
        }
        for &t in &victims {
            tasklet::retain(t);
        }
        for &t in &victims {
            if (*t).life() == Life::Fresh {
                s.discard_fresh(t);
            } else if (*t).life() == Life::Started {
                s.throw_local(t, E_KILLED, ptr::null_mut(), true);
            }
        }
        for &t in &victims {
            tasklet::release(t);
        }
        let _ = s.run();
    }
    // Tasklets that refused to end: off every queue and channel, their stacks leaked.
    let mut stubborn = Vec::new();
    let mut t = s.started.get();
    while !t.is_null() {
        stubborn.push(t);
        let n = (*t).all_next.get();
        channel::remove_waiter(t);
        if (*t).in_ring() {
            s.ring_unlink(t);
        }
        s.started_remove(t);
        t = n;
    }
    if !stubborn.is_empty() {
        eprintln!(
            "libslp: thread {} {}: {} tasklet(s) kept running after {EXIT_KILL_ROUNDS} kills; \
             their stacks are leaked",
            s.shared.thread_id,
            if thread_exit { "exits" } else { "shuts its scheduler down" },
            stubborn.len()
        );
    }
    s.clear_callback_prev();
    SCHED.with(|c| c.set(ptr::null_mut()));
    // From here on the scheduler refuses messages and its tasklets report thread_id -1.
    let leftovers = s.shared.leave();
    for t in stubborn {
        s.drop_runtime_ref(t);
    }
    for m in leftovers {
        match m {
            Msg::Ready(t) => s.drop_runtime_ref(t),
            Msg::Insert(t) | Msg::Throw(t, _, _) => tasklet::release(t),
        }
    }
    s.shared.running.store(ptr::null_mut(), Ordering::Relaxed);
    let main = s.main;
    (*main).set_life(Life::Dead);
    (*main).next.set(ptr::null_mut());
    (*main).prev.set(ptr::null_mut());
    drop(Box::from_raw(p));
    tasklet::release(main);
    true
}

pub fn set_default_stack_size(bytes: usize) -> Status {
    match stack::normalize_size(bytes) {
        Some(n) => {
            stack::set_default_size(n);
            OK
        }
        None => fail(
            E_INVALID,
            format!(
                "stack size {bytes} is out of range ({}..={} bytes)",
                stack::MIN_STACK_SIZE,
                stack::MAX_STACK_SIZE
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    //! Run-queue internals. Each test runs on its own thread, so it has its own scheduler.
    use super::*;
    use crate::ffi::scheduler::*;
    use crate::ffi::tasklet::*;
    use std::cell::RefCell;

    thread_local! {
        static LOG: RefCell<String> = const { RefCell::new(String::new()) };
    }
    fn log(c: char) {
        LOG.with(|l| l.borrow_mut().push(c));
    }
    fn take_log() -> String {
        LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }
    unsafe extern "C" fn logger(arg: *mut c_void) -> i32 {
        log(arg as u8 as char);
        0
    }
    unsafe extern "C" fn yielder(arg: *mut c_void) -> i32 {
        for _ in 0..2 {
            log(arg as u8 as char);
            assert_eq!(slp_schedule(), OK);
        }
        0
    }
    fn spawn(f: unsafe extern "C" fn(*mut c_void) -> i32, c: char) -> *mut Tasklet {
        let mut t = ptr::null_mut();
        assert_eq!(unsafe { slp_tasklet_new(Some(f), c as usize as *mut c_void, &mut t) }, OK);
        t
    }

    /// Walks the ring from head and returns the names of the tasklets (main = 'M').
    fn ring(s: &Scheduler, names: &[(*mut Tasklet, char)]) -> String {
        let mut out = String::new();
        let h = s.head.get();
        if h.is_null() {
            return out;
        }
        let mut t = h;
        loop {
            let c = if t == s.main {
                'M'
            } else {
                names.iter().find(|(p, _)| *p == t).map(|(_, c)| *c).unwrap_or('?')
            };
            out.push(c);
            // SAFETY: ring members are live tasklets of this thread.
            t = unsafe { (*t).next.get() };
            if t == h {
                break;
            }
        }
        out
    }

    #[test]
    fn append_goes_before_current_and_run_keeps_order() {
        let s = sched();
        let (a, b, c) = (spawn(logger, 'a'), spawn(logger, 'b'), spawn(logger, 'c'));
        let names = [(a, 'a'), (b, 'b'), (c, 'c')];
        assert_eq!(ring(s, &names), "Mabc");
        assert_eq!(s.runcount(), 4);
        // SPEC §10.14: run(b) from M -> b, c, M; a later.
        assert_eq!(unsafe { slp_tasklet_run(b) }, OK);
        assert_eq!(take_log(), "bc");
        assert_eq!(ring(s, &names), "Ma");
        assert_eq!(slp_run(), OK);
        assert_eq!(take_log(), "a");
        assert_eq!(ring(s, &names), "M");
        for t in [a, b, c] {
            unsafe { slp_tasklet_release(t) };
        }
    }

    #[test]
    fn main_leaves_the_queue_inside_run_and_round_robin() {
        let s = sched();
        let (x, y) = (spawn(yielder, 'x'), spawn(yielder, 'y'));
        assert_eq!(slp_run(), OK);
        assert_eq!(take_log(), "xyxy");
        assert_eq!(s.runcount(), 1);
        assert!(s.head.get() == s.main);
        unsafe {
            slp_tasklet_release(x);
            slp_tasklet_release(y);
        }
    }

    #[test]
    fn run_n_resumes_where_it_stopped() {
        let (x, y) = (spawn(yielder, 'x'), spawn(yielder, 'y'));
        assert_eq!(slp_run_n(1), OK);
        assert_eq!(take_log(), "x");
        assert_eq!(slp_run_n(2), OK);
        assert_eq!(take_log(), "yx");
        assert_eq!(slp_run(), OK);
        assert_eq!(take_log(), "y");
        unsafe {
            slp_tasklet_release(x);
            slp_tasklet_release(y);
        }
    }

    #[test]
    fn stacks_are_recycled_through_the_pool() {
        let s = sched();
        for _ in 0..3 {
            spawn(logger, 'p');
            assert_eq!(slp_run(), OK);
        }
        assert_eq!(take_log(), "ppp");
        assert_eq!(s.pool.borrow().len(), 1, "one stack serves every tasklet in turn");
    }
}
