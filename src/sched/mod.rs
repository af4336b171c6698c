//! The per-thread scheduler (Stackless's, one per OS thread), in named parts:
//!
//! | file          | what it holds                                                          |
//! |---------------|------------------------------------------------------------------------|
//! | `mod.rs`      | the `Scheduler` struct and the thread-local access to it               |
//! | `queue.rs`    | the circular run queue and the list of started tasklets, as types      |
//! | `dispatch.rs` | the switch, the dispatch loop (drain, decide, switch), a tasklet's end |
//! | `run.rs`      | slp_run / run_n / run_for / run_wait and their limits (`RunState`)      |
//! | `ops.rs`      | tasklet operations: create, insert, remove, run, switch, kill, throw   |
//! | `remote.rs`   | requests for another thread's tasklets, and the inbox they arrive in   |
//! | `inbox.rs`    | a scheduler's cross-thread part (`Shared`): mail, wake-ups, parking    |
//! | `census.rs`   | deadlock detection: who participates, who could still wake whom        |
//! | `callback.rs` | the callback scope that refuses re-entry from libslp's own callbacks   |
//! | `exit.rs`     | thread exit and slp_scheduler_shutdown                                 |
//!
//! Switching model. The thread's own stack is the main tasklet. Every other tasklet is a
//! corosensei coroutine, and all of them are resumed from one place: the dispatch loop, running
//! on the main stack inside whatever libslp call the main tasklet is in (slp_run, a blocking
//! receive, slp_schedule, ...). A tasklet that switches away sets the queue's head to whoever
//! must run next and suspends back to that loop, which resumes the head (or returns to the
//! main tasklet's code when the head is main). A tasklet-to-tasklet switch is therefore one
//! suspend plus one resume.
//!
//! Other threads never touch a run queue: they post messages to the owner's inbox, which the
//! dispatch loop drains; with nothing to run, the thread sleeps there.
//!
//! Lock order (never acquire against it): a channel's lock → the inbox lock of a scheduler
//! (`Shared::inbox`) → the census lock (`census::global`). The channel-free lock
//! (`channel::FREE_LOCK`, read side) is taken before a channel's lock and never while one is
//! held.

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::mem::BlockCache;
use crate::stack::{self, StackPool};
use crate::status::*;
use crate::tasklet::{State, Tasklet};

pub mod callback;
pub mod census;
mod dispatch;
pub mod exit;
pub mod inbox;
pub mod ops;
pub mod queue;
pub mod remote;
mod run;

pub use inbox::Shared;
use inbox::Msg;
use queue::{RunQueue, TaskletList};
use run::RunState;

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

/// A thread's scheduler. Used only by its own thread (`!Sync` through its `Cell`s); other
/// threads reach it through `shared`.
pub struct Scheduler {
    pub shared: Arc<Shared>,
    pub main: *mut Tasklet,
    pub(crate) queue: RunQueue,
    /// Every live tasklet of this thread but main (for thread exit and dumps).
    pub(crate) tasklets: TaskletList,
    /// The run call the main tasklet is in, if any.
    pub(crate) run: RunState,
    /// An uncaught error reported by a pending throw to a never-started tasklet, for the next
    /// slp_run.
    deferred_error: Cell<Status>,
    switch_trap: Cell<i32>,
    /// The libslp callback running on this thread, if any (re-entry guard, `callback.rs`).
    pub(crate) in_callback: Cell<Option<callback::Callback>>,
    /// Why calls may be refused (`REFUSE_*` bits): one byte the hot paths test at once.
    refusals: Cell<u8>,
    /// Thread exit or slp_scheduler_shutdown is in progress: tasklets created now are
    /// discarded instead of run.
    pub(crate) tearing_down: Cell<bool>,
    /// Registered with slp_thread_register.
    registered: Cell<bool>,
    pub pool: RefCell<StackPool>,
    /// Freed tasklet blocks for reuse (see mem::BlockCache).
    pub(crate) tasklet_blocks: BlockCache<Tasklet>,
    /// Pending timers (sleeps and deadlines of timed waits), and how many (read on hot paths).
    pub(crate) timers: RefCell<crate::timer::Timers>,
    pub(crate) armed: Cell<usize>,
    /// The host clock (slp_set_clock), or None for the monotonic clock.
    pub(crate) clock: Cell<Option<(crate::timer::ClockFn, usize)>>,
    pub switches: Cell<u64>,
    /// Reused buffer for draining the inbox (no allocation per drain).
    mail: RefCell<Vec<Msg>>,
    /// Introspection: callbacks and counters of this thread.
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

/// `refusals` bits: poisoned by a caught panic, inside a libslp callback, switch_trap > 0.
pub(crate) const REFUSE_POISONED: u8 = 1;
pub(crate) const REFUSE_CALLBACK: u8 = 2;
pub(crate) const REFUSE_TRAP: u8 = 4;

static NEXT_THREAD_ID: AtomicI64 = AtomicI64::new(1);

thread_local! {
    static THREAD_ID: Cell<i64> = const { Cell::new(0) };
    /// Its destructor tears the thread's scheduler down when the thread exits.
    static EXIT_GUARD: ExitGuard = const { ExitGuard };
}

/// The calling thread's scheduler pointer (null when it has none): see arch::tls_sched.
#[inline(always)]
pub(crate) fn current_raw() -> *mut Scheduler {
    crate::arch::tls_sched() as *mut Scheduler
}
#[inline(always)]
pub(crate) fn set_current(s: *mut Scheduler) {
    crate::arch::set_tls_sched(s as *mut u8)
}

struct ExitGuard;
impl Drop for ExitGuard {
    fn drop(&mut self) {
        // SAFETY: runs once, on the exiting thread, on its own stack (main tasklet).
        let _ = std::panic::catch_unwind(|| unsafe { exit::teardown_current(true) });
    }
}

/// For the fault handler: the guard-page range `[lo, hi)` of the calling thread's running
/// tasklet, and the tasklet. Async-signal-safe: reads thread-locals that already exist.
pub fn running_guard_range() -> Option<(usize, usize, *const Tasklet)> {
    let s = current_raw();
    if s.is_null() {
        return None;
    }
    // SAFETY: the scheduler of this thread is live (it is freed only at thread exit).
    let t = unsafe { (*s).running() };
    if t.is_null() {
        return None;
    }
    // SAFETY: the running tasklet is live while it runs.
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

/// The calling thread's scheduler, created on first use; `Err(SLP_E_NOMEM)` when it cannot
/// be allocated.
#[inline]
pub fn sched() -> Result<&'static Scheduler, Status> {
    let p = current_raw();
    if !p.is_null() {
        // SAFETY: the scheduler lives as long as its thread and is only used from it.
        return Ok(unsafe { &*p });
    }
    create_sched()
}

/// The calling thread's scheduler for a call that needs it: created on first use, refused
/// with SLP_E_PANIC once a caught panic poisoned it.
#[inline]
pub fn usable() -> Result<&'static Scheduler, Status> {
    let s = sched()?;
    s.check_usable()?;
    Ok(s)
}

/// The calling thread's scheduler if it has one (for pure queries).
#[inline]
pub fn sched_opt() -> Option<&'static Scheduler> {
    let p = current_raw();
    if p.is_null() {
        None
    } else {
        // SAFETY: as in `sched`.
        Some(unsafe { &*p })
    }
}

#[cold]
fn create_sched() -> Result<&'static Scheduler, Status> {
    let id = thread_id();
    let shared = Shared::join(id);
    let name = CString::new("main").ok();
    let Some(main) = Tasklet::new_raw(shared.clone(), true, ptr::null_mut(), None, name, 0, 1, State::Runnable)
    else {
        shared.leave();
        return Err(fail(E_NOMEM, "out of memory creating this thread's scheduler"));
    };
    let s = Box::into_raw(Box::new(Scheduler {
        shared: shared.clone(),
        main,
        queue: RunQueue::new(),
        tasklets: TaskletList::new(),
        run: RunState::new(),
        deferred_error: Cell::new(0),
        switch_trap: Cell::new(0),
        in_callback: Cell::new(None),
        refusals: Cell::new(0),
        tearing_down: Cell::new(false),
        registered: Cell::new(false),
        pool: RefCell::new(StackPool::default()),
        tasklet_blocks: BlockCache::new(),
        timers: RefCell::new(crate::timer::Timers::default()),
        armed: Cell::new(0),
        clock: Cell::new(None),
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
    // SAFETY: main is live and in no queue.
    unsafe { sref.queue.append(main) };
    set_current(s);
    EXIT_GUARD.with(|_| ());
    Ok(sref)
}

impl Scheduler {
    #[inline]
    pub fn running(&self) -> *mut Tasklet {
        self.shared.running.load(Ordering::Relaxed)
    }
    #[inline]
    fn set_running(&self, t: *mut Tasklet) {
        self.shared.running.store(t, Ordering::Relaxed)
    }
    pub fn runcount(&self) -> i32 {
        self.queue.len()
    }
    pub fn set_registered(&self, on: bool) -> bool {
        self.registered.replace(on)
    }

    /// Is `t` one of this thread's tasklets?
    #[inline]
    pub fn owns(&self, t: &Tasklet) -> bool {
        t.owned_by(&self.shared)
    }

    /// A panic was caught in a call on this thread: the scheduler may be inconsistent, so
    /// every later call that needs it is refused with SLP_E_PANIC.
    pub(crate) fn poison(&self) {
        self.set_refusal(REFUSE_POISONED, true);
    }

    #[inline]
    pub(crate) fn poisoned(&self) -> bool {
        self.refusals.get() & REFUSE_POISONED != 0
    }

    #[inline]
    pub(crate) fn refusals(&self) -> u8 {
        self.refusals.get()
    }

    pub(crate) fn set_refusal(&self, bit: u8, on: bool) {
        let r = self.refusals.get();
        self.refusals.set(if on { r | bit } else { r & !bit });
    }

    /// Refuses a call made while the scheduler is poisoned by a caught panic.
    #[inline]
    pub fn check_usable(&self) -> Result<(), Status> {
        if self.poisoned() {
            return Err(fail(
                E_PANIC,
                "an internal error (panic) was caught earlier on this thread; its libslp \
                 scheduler is no longer usable",
            ));
        }
        Ok(())
    }

    pub(crate) fn check_trap(&self) -> Result<(), Status> {
        if self.refusals.get() & REFUSE_TRAP != 0 {
            Err(fail(E_SWITCH_TRAP, "switch_trap is set on this thread: no switch allowed"))
        } else {
            Ok(())
        }
    }

    pub fn switch_trap(&self, delta: i32) -> i32 {
        let old = self.switch_trap.get();
        let new = old.saturating_add(delta);
        self.switch_trap.set(new);
        self.set_refusal(REFUSE_TRAP, new > 0);
        old
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

    /// Calls the schedule callback for a switch to `next` (never with a dangling `prev`).
    ///
    /// # Safety
    /// `next` is a live tasklet of this thread; `f` is the callback the host installed.
    unsafe fn fire_schedule_callback(&self, f: ScheduleFn, ud: usize, next: *mut Tasklet) {
        let prev = self.cb_prev.get();
        let _scope = callback::enter_on(self, callback::Callback::Schedule);
        f(prev, next, ud as *mut c_void);
    }

    /// The switch to `t` happens: it becomes the `prev` of the next schedule callback, and the
    /// reference kept for the old `prev` (a tasklet that ended) goes.
    fn advance_cb_prev(&self, t: *mut Tasklet) {
        let old = self.cb_prev.replace(t);
        if self.cb_prev_ref.replace(false) {
            // SAFETY: the reference was taken in `on_end` for exactly this.
            unsafe { crate::tasklet::release(old) };
        }
    }

    /// Drops the reference kept for the schedule callback's `prev` (callback removed).
    pub fn clear_callback_prev(&self) {
        if self.cb_prev_ref.replace(false) {
            // SAFETY: the reference was taken in `on_end` for exactly this.
            unsafe { crate::tasklet::release(self.cb_prev.get()) };
        }
        self.cb_prev.set(self.running());
    }
}

pub fn set_default_stack_size(bytes: usize) -> Status {
    match stack::normalize_size(bytes) {
        Some(n) => {
            stack::set_default_size(n);
            OK
        }
        None => fail(
            E_INVALID,
            format_args!(
                "stack size {bytes} is out of range ({}..={} bytes)",
                stack::MIN_STACK_SIZE,
                stack::MAX_STACK_SIZE
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
