//! The tasklet object: a C function running on its own stack (a corosensei coroutine), with
//! Stackless's flags, one explicit state, and reference counting.
//!
//! # State
//! A tasklet is in exactly one [`State`], kept in one atomic byte. The flag queries of the C API (`alive`, `blocked`, `scheduled`, `paused`) derive from
//! it, and every change goes through [`Tasklet::transition`] (owner thread) or
//! [`Tasklet::try_transition`] (any thread), which check the state they leave in debug builds.
//!
//! ```text
//!            create(paused)                      create
//!   Fresh <───────────────── new ─────────────────────────> Runnable
//!     │  insert / run / remote insert (CAS)                   │  ▲
//!     └──────────────────────────────────────────────────────>│  │ schedule / preempted
//!                                                   resume    ▼  │
//!   Paused <──── remove / schedule_remove / switch ───── Running ─┘
//!     │ insert (CAS)                                  │  block │ ▲
//!     └──> Runnable                                   ▼        │ │ partner / kill / shutdown
//!                                                   Blocked ───┘ │ (under the channel lock,
//!   every alive state ──── end / discard / thread exit ──> Dead  │  any thread) → Runnable
//! ```
//!
//! Running is never stored: the tasklet its thread runs right now stays Runnable in memory
//! and `state()` reports it as Running, so a switch writes no state.
//!
//! Who writes: the owner thread makes every transition except two, which other threads make
//! too: Fresh/Paused → Runnable by a remote insert (a compare-and-swap, so it races safely with
//! the owner's own CAS out of Fresh/Paused), and Blocked → Runnable by a channel partner, a
//! remote kill or a channel shutdown, always under the lock of the channel the tasklet waits
//! on (the owner enters Blocked under that same lock). A tasklet that is Runnable but not
//! linked into its owner's run queue is on its way there in a message (`sched::remote`).
//!
//! # Threading of the other fields
//! `Cell` fields are touched only by the owner thread. The channel transfer fields
//! (`blocked_on`, `xfer`, `xfer_status`, `xfer_data`) are written under the lock of the channel
//! the tasklet waits on and read by the owner after it is woken (the channel lock orders
//! them). `refs`, `state`, the flags (`atomic`, `block_trap`) and the debug context are atomics
//! usable from any thread. `owner` changes only through `bind_thread` on a Fresh tasklet.

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_void, CString};
use std::fmt;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use crate::channel::Channel;
use crate::sched::inbox::Shared;
use crate::stack::SlpStack;
use crate::status::Status;

/// `int32_t fn(void *arg)`.
pub type TaskletFn = unsafe extern "C" fn(arg: *mut c_void) -> i32;
/// `void arg_free(void *arg)`.
pub type ArgFree = unsafe extern "C" fn(arg: *mut c_void);

/// A tasklet's coroutine: resumed with nothing, suspends with nothing, returns the function's
/// return value.
pub type Coro = Coroutine<(), (), i32, SlpStack>;

/// Where a tasklet is (see the module docs for the transitions).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum State {
    /// Created paused (or removed) before it ever ran; in no queue.
    Fresh = 0,
    /// In its owner's run queue, or on its way there in a message.
    Runnable = 1,
    /// Running on its thread (for a main tasklet: its own code runs, outside any run call).
    /// Never stored: `state()` reports a Runnable tasklet that its thread runs right now as
    /// Running, so a switch costs no state write.
    Running = 2,
    /// Waiting on a channel.
    Blocked = 3,
    /// Has run, in no queue, not blocked: waits for an insert (a main tasklet inside a run
    /// call is Paused too).
    Paused = 4,
    /// Ended (returned, killed, discarded, or its thread exited).
    Dead = 5,
}

impl State {
    const fn bit(self) -> u8 {
        1 << self as u8
    }
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Fresh,
            1 => State::Runnable,
            2 => State::Running,
            3 => State::Blocked,
            4 => State::Paused,
            _ => State::Dead,
        }
    }
}

/// What a Blocked tasklet waits on.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum WaitOn {
    Nothing,
    /// One channel (`blocked_on`), possibly with a deadline (a timer).
    Channel,
    /// Its timer only (slp_sleep).
    Sleep,
    /// Several channels or signals (slp_select), possibly with a deadline.
    Select,
    /// A signal (`blocked_sig`), possibly with a deadline.
    Signal,
    /// A lock (`blocked_lock`): acquiring it, or waiting on it (possibly with a deadline).
    Lock,
}

/// A set of states, the `from` side of a transition.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct States(u8);

impl States {
    pub const fn of(states: &[State]) -> States {
        let mut bits = 0;
        let mut i = 0;
        while i < states.len() {
            bits |= states[i].bit();
            i += 1;
        }
        States(bits)
    }
    #[inline]
    pub fn contains(self, s: State) -> bool {
        self.0 & s.bit() != 0
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = [State::Fresh, State::Runnable, State::Running, State::Blocked, State::Paused, State::Dead];
        f.debug_set().entries(all.iter().filter(|s| self.contains(**s))).finish()
    }
}

/// Alive and not scheduled: what insert, run and bind_thread start from.
pub const UNSCHEDULED: States = States::of(&[State::Fresh, State::Paused]);
/// In the run queue (or running).
pub const QUEUED: States = States::of(&[State::Runnable, State::Running]);
/// Any state but Dead.
pub const ALIVE: States = States::of(&[
    State::Fresh,
    State::Runnable,
    State::Running,
    State::Blocked,
    State::Paused,
]);


/// A tasklet (`slp_tasklet`): a function running on its own stack, owned by the thread that
/// created it (Stackless `tasklet`). Opaque; reference counted (slp_tasklet_retain /
/// slp_tasklet_release). A thread's main tasklet is its own native stack (slp_main()).
pub struct Tasklet {
    pub(crate) refs: AtomicUsize,
    /// The owner's cross-thread part (an `Arc<Shared>` turned into a raw pointer; this
    /// tasklet holds one strong count). Replaced only by `bind_thread`.
    owner: AtomicPtr<Shared>,
    /// Owners replaced by `bind_thread`, kept until the tasklet is freed: a thread that read
    /// the old pointer just before the swap may still be using it (it holds a reference to
    /// this tasklet, so the tasklet outlives that use). Written only in the transient Binding
    /// window, which bind_thread owns exclusively.
    retired_owners: UnsafeCell<Vec<Arc<Shared>>>,
    /// The `State` (or the transient `BINDING`).
    state: AtomicU8,
    /// Has been switched into at least once (owner only; other threads tell a never-started
    /// tasklet by its Fresh state).
    started: Cell<bool>,
    // Run-queue links (circular, intrusive; owner only). Null when not linked.
    pub(crate) next: Cell<*mut Tasklet>,
    pub(crate) prev: Cell<*mut Tasklet>,
    // Links of the owner's list of live tasklets (for thread exit and dumps), and which list
    // holds it (null for none). A re-bound tasklet moves between lists through messages, so
    // only one thread touches these at a time.
    pub(crate) all_next: Cell<*mut Tasklet>,
    pub(crate) all_prev: Cell<*mut Tasklet>,
    pub(crate) listed_in: Cell<usize>,
    pub(crate) is_main: bool,
    pub(crate) atomic: AtomicBool,
    pub(crate) block_trap: AtomicBool,
    pub(crate) coro: UnsafeCell<Option<Coro>>,
    pub(crate) yielder: Cell<*const Yielder<(), ()>>,
    pub(crate) arg: *mut c_void,
    pub(crate) arg_free: Option<ArgFree>,
    /// None when unnamed (no allocation for the common case).
    pub(crate) name: Option<CString>,
    /// Usable stack bytes (for dumps and stack-overflow reports).
    pub(crate) stack_size: usize,
    /// Lowest address of the stack's guard page (0 for the main tasklet).
    pub(crate) guard_lo: Cell<usize>,
    /// A delivery for the tasklet's pending (or next blocking) call: 0 = none, `E_KILLED`, or a
    /// user exception code > 0 (with `pending_data`).
    pub(crate) pending: Cell<Status>,
    pub(crate) pending_data: Cell<*mut c_void>,
    /// The pending delivery is a user exception with data (a throw), not an uncaught error
    /// passed on to main (which carries no data and leaves `exc_data` alone).
    pub(crate) pending_is_exc: Cell<bool>,
    /// Data of the last user exception delivered to this tasklet (`slp_exception_data`).
    pub(crate) exc_data: Cell<*mut c_void>,
    /// The case of its select that a partner completed (written by the claiming partner
    /// under that channel's lock).
    pub(crate) xfer_case: AtomicUsize,
    /// The cases of the select it is blocked in (owner only; null when not selecting).
    pub(crate) sel_cases: Cell<(*mut crate::channel::select::SelectCase, usize)>,
    /// The lock it waits for (slp_lock_acquire / slp_lock_wait), or null.
    pub(crate) blocked_lock: AtomicPtr<crate::lock::Lock>,
    /// The signal it waits on (slp_signal_wait), or null.
    pub(crate) blocked_sig: AtomicPtr<crate::signal::Signal>,
    /// The watchdog run (its number) in which an interrupt came due while `atomic` was set,
    /// 0 for none: it fires when the tasklet clears `atomic` in that run (owner only).
    pub(crate) deferred_run: Cell<u64>,
    /// Its timer's index in the owner's timer heap + 1, 0 for none (owner only).
    pub(crate) timer_slot: Cell<usize>,
    /// What a Blocked tasklet waits on (owner only).
    pub(crate) waiting: Cell<WaitOn>,
    /// Channel this tasklet waits on (null if not blocked on a channel).
    pub(crate) blocked_on: AtomicPtr<Channel>,
    /// Value handed over by a channel partner, and the status of the transfer.
    pub(crate) xfer: AtomicPtr<c_void>,
    pub(crate) xfer_status: AtomicI32,
    pub(crate) xfer_data: AtomicPtr<c_void>,
    /// Return value of the function once dead.
    pub(crate) result: Cell<i32>,
    /// Where a suspended tasklet switched away: instruction, stack and frame pointer (for
    /// debuggers, `slp_tasklet_debug_context`; read from any thread, so atomics).
    pub(crate) dbg_ctx: [AtomicUsize; 3],
}

/// The transient word bind_thread holds while it replaces the owner: `state()` reads it as
/// Fresh, and every transition out of Fresh fails until bind_thread is done.
const BINDING: u8 = 6;

impl Tasklet {
    /// Allocates a tasklet (None when memory is exhausted).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_raw(
        owner: Arc<Shared>,
        is_main: bool,
        arg: *mut c_void,
        arg_free: Option<ArgFree>,
        name: Option<CString>,
        stack_size: usize,
        refs: usize,
        state: State,
    ) -> Option<*mut Tasklet> {
        // Written straight into the heap block (a Box::new of this struct would build it on
        // the stack first and copy it), and fallible: out of memory is SLP_E_NOMEM.
        let cached = crate::sched::sched_opt().and_then(|s| s.tasklet_blocks.take());
        let p = match cached {
            Some(p) => p,
            None => crate::mem::alloc_uninit::<Tasklet>()?,
        };
        // SAFETY: `p` is a fresh allocation of the right layout; `write` initialises it whole.
        unsafe {
            p.write(Tasklet {
                refs: AtomicUsize::new(refs),
                owner: AtomicPtr::new(Arc::into_raw(owner) as *mut Shared),
                retired_owners: UnsafeCell::new(Vec::new()),
                state: AtomicU8::new(state as u8),
                started: Cell::new(is_main),
                next: Cell::new(ptr::null_mut()),
                prev: Cell::new(ptr::null_mut()),
                all_next: Cell::new(ptr::null_mut()),
                all_prev: Cell::new(ptr::null_mut()),
                listed_in: Cell::new(0),
                is_main,
                atomic: AtomicBool::new(false),
                block_trap: AtomicBool::new(false),
                coro: UnsafeCell::new(None),
                yielder: Cell::new(ptr::null()),
                arg,
                arg_free,
                name,
                stack_size,
                guard_lo: Cell::new(0),
                pending: Cell::new(0),
                pending_data: Cell::new(ptr::null_mut()),
                pending_is_exc: Cell::new(false),
                exc_data: Cell::new(ptr::null_mut()),
                xfer_case: AtomicUsize::new(0),
                blocked_sig: AtomicPtr::new(ptr::null_mut()),
                blocked_lock: AtomicPtr::new(ptr::null_mut()),
                sel_cases: Cell::new((ptr::null_mut(), 0)),
                deferred_run: Cell::new(0),
                timer_slot: Cell::new(0),
                waiting: Cell::new(WaitOn::Nothing),
                blocked_on: AtomicPtr::new(ptr::null_mut()),
                xfer: AtomicPtr::new(ptr::null_mut()),
                xfer_status: AtomicI32::new(0),
                xfer_data: AtomicPtr::new(ptr::null_mut()),
                result: Cell::new(0),
                dbg_ctx: [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)],
            });
        }
        Some(p)
    }

    /// The owner thread's shared part.
    #[inline]
    pub(crate) fn owner(&self) -> &Shared {
        // SAFETY: the pointer came from Arc::into_raw and its strong count is held by this
        // tasklet (or by `retired_owners` once replaced), so it lives as long as `self`.
        unsafe { &*self.owner.load(Ordering::Acquire) }
    }

    /// A new strong reference to the owner's shared part.
    pub(crate) fn owner_arc(&self) -> Arc<Shared> {
        let p = self.owner.load(Ordering::Acquire);
        // SAFETY: as in `owner`; the count taken here is the caller's.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// Is `shared` this tasklet's owner?
    #[inline]
    pub(crate) fn owned_by(&self, shared: &Shared) -> bool {
        ptr::eq(self.owner.load(Ordering::Acquire), shared)
    }

    /// Re-binds a Fresh tasklet to another thread (`slp_tasklet_bind_thread`). Returns false,
    /// changing nothing, unless the tasklet is Fresh (never ran, not scheduled, not blocked).
    /// Returns the old owner (None: refused).
    pub(crate) fn bind_owner(&self, to: Arc<Shared>) -> Option<Arc<Shared>> {
        if self
            .state
            .compare_exchange(State::Fresh as u8, BINDING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let old = self.owner.swap(Arc::into_raw(to) as *mut Shared, Ordering::AcqRel);
        // SAFETY: `old` carries the strong count this tasklet held; only the thread that won
        // the CAS into BINDING touches `retired_owners`.
        let old = unsafe { Arc::from_raw(old) };
        let ret = old.clone();
        unsafe { (*self.retired_owners.get()).push(old) };
        self.state.store(State::Fresh as u8, Ordering::Release);
        Some(ret)
    }

    #[inline]
    fn word(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// The current state (exact on the owner thread; a snapshot elsewhere).
    #[inline]
    pub fn state(&self) -> State {
        match self.stored() {
            State::Runnable if ptr::eq(self.owner().running.load(Ordering::Relaxed), self) => {
                State::Running
            }
            s => s,
        }
    }

    /// The stored state: Running shows as Runnable (see `State::Running`).
    #[inline]
    pub(crate) fn stored(&self) -> State {
        let w = self.word();
        if w == BINDING {
            State::Fresh
        } else {
            State::from_u8(w)
        }
    }

    /// Has been switched into at least once (owner thread).
    #[inline]
    pub fn started(&self) -> bool {
        self.started.get()
    }

    /// Owner-thread transition: moves from one of `from` to `to`. A transition out of Fresh
    /// or Paused must use `try_transition` (remote inserts race for those).
    #[inline]
    #[track_caller]
    pub(crate) fn transition(&self, from: States, to: State) {
        let w = self.word();
        debug_assert!(
            from.contains(State::from_u8(w)) && w != BINDING,
            "libslp internal error: {} is {:?}, expected one of {:?} before becoming {:?}",
            self.describe(),
            State::from_u8(w),
            from,
            to
        );
        let _ = (from, w);
        self.state.store(to as u8, Ordering::Release);
    }

    /// Compare-and-swap transition, safe against other threads: moves to `to` if the state
    /// is one of `from` and returns the state it left, else returns the state found.
    #[inline]
    pub(crate) fn try_transition(&self, from: States, to: State) -> Result<State, State> {
        let mut w = self.word();
        loop {
            if w == BINDING || !from.contains(State::from_u8(w)) {
                return Err(State::from_u8(if w == BINDING { 0 } else { w }));
            }
            match self.state.compare_exchange_weak(
                w,
                to as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(State::from_u8(w)),
                Err(now) => w = now,
            }
        }
    }

    /// First switch into the tasklet: it counts as started from now on.
    #[inline]
    pub(crate) fn mark_started(&self) {
        self.started.set(true);
    }

    /// Is it in one of `set`?
    #[inline]
    pub fn is(&self, set: States) -> bool {
        set.contains(self.state())
    }

    /// Blocked on a channel.
    #[inline]
    pub fn is_blocked(&self) -> bool {
        self.state() == State::Blocked
    }
    /// In its run queue or on its way there (scheduled but not blocked).
    #[inline]
    pub fn is_queued(&self) -> bool {
        self.is(QUEUED)
    }
    /// Not ended, and its thread still exists.
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.state() != State::Dead && self.owner().alive.load(Ordering::Acquire)
    }
    /// Owner thread id, or -1 once that thread's scheduler is gone.
    pub fn thread_id(&self) -> i64 {
        let o = self.owner();
        if o.alive.load(Ordering::Acquire) {
            o.thread_id
        } else {
            -1
        }
    }

    /// A printable name for messages, without allocating: the user's name or the address.
    pub fn describe(&self) -> Describe<'_> {
        Describe(self)
    }

    /// Takes the pending delivery, recording user-exception data where it belongs.
    #[inline]
    pub(crate) fn take_pending(&self) -> Status {
        let p = self.pending.replace(0);
        if p > 0 && self.pending_is_exc.replace(false) {
            self.exc_data.set(self.pending_data.replace(ptr::null_mut()));
        }
        p
    }

    /// Runs `arg_free`, inside a callback scope (no switching, blocking or teardown from it).
    ///
    /// # Safety
    /// Called exactly once per tasklet, when it is done with `arg` (it ended or was
    /// discarded), on a thread where re-entry into libslp is guarded by the callback scope.
    pub(crate) unsafe fn free_arg(&self) {
        if let Some(f) = self.arg_free {
            let _scope = crate::sched::callback::enter(crate::sched::callback::Callback::ArgFree);
            f(self.arg);
        }
    }

    /// Records where the tasklet switches away, for debuggers.
    #[inline(always)]
    pub(crate) fn record_debug_context(&self) {
        let [pc, sp, fp] = crate::arch::current_context();
        self.dbg_ctx[0].store(pc, Ordering::Relaxed);
        self.dbg_ctx[1].store(sp, Ordering::Relaxed);
        self.dbg_ctx[2].store(fp, Ordering::Relaxed);
    }

    /// The saved context of a suspended tasklet (pc, sp, fp).
    pub(crate) fn debug_context(&self) -> [usize; 3] {
        [
            self.dbg_ctx[0].load(Ordering::Relaxed),
            self.dbg_ctx[1].load(Ordering::Relaxed),
            self.dbg_ctx[2].load(Ordering::Relaxed),
        ]
    }
}

impl Drop for Tasklet {
    fn drop(&mut self) {
        // SAFETY: the owner pointer holds one strong count (see `owner`).
        unsafe { drop(Arc::from_raw(*self.owner.get_mut())) };
    }
}

/// `Display` for a tasklet in messages ("tasklet 'name'", "the main tasklet", "tasklet 0x…").
pub struct Describe<'a>(&'a Tasklet);

impl fmt::Display for Describe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        match &t.name {
            Some(n) if !n.as_bytes().is_empty() => {
                write!(f, "tasklet '{}'", String::from_utf8_lossy(n.as_bytes()))
            }
            _ if t.is_main => f.write_str("the main tasklet"),
            _ => write!(f, "tasklet {:p}", t as *const Tasklet),
        }
    }
}

/// Adds a reference.
///
/// # Safety
/// `t` points to a live tasklet (the caller holds a reference to it).
#[inline]
pub unsafe fn retain(t: *const Tasklet) {
    (*t).refs.fetch_add(1, Ordering::Relaxed);
}

/// Adds a reference unless the count already reached zero (a tasklet whose last reference
/// went on another thread, with its discard message on the way): returns whether it did.
///
/// # Safety
/// `t` points to a tasklet not yet freed (its owner thread frees it).
pub(crate) unsafe fn try_retain(t: *const Tasklet) -> bool {
    crate::mem::retain_if_live(&(*t).refs)
}

/// Drops a reference; the last one frees a dead tasklet, discards a never-started one, and
/// kills (pending) a started, paused one so that it can clean up (Stackless).
///
/// # Safety
/// `t` points to a live tasklet and the caller owns the reference it gives up.
#[inline]
pub unsafe fn release(t: *mut Tasklet) {
    if (*t).refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        crate::sched::remote::last_ref_gone(t);
    }
}

/// Frees the memory of a tasklet that has no references. A coroutine still suspended in it
/// (its thread exited while it refused to end) is leaked, never unwound: its frames are C code.
///
/// # Safety
/// `t` has no references left and no queue, channel or message points to it.
pub(crate) unsafe fn free(t: *mut Tasklet) {
    if let Some(c) = (*(*t).coro.get()).take() {
        std::mem::forget(c);
    }
    ptr::drop_in_place(t);
    // The block goes to the freeing thread's cache (any thread's blocks are alike).
    match crate::sched::sched_opt() {
        Some(s) => s.tasklet_blocks.put(t),
        None => std::alloc::dealloc(t as *mut u8, std::alloc::Layout::new::<Tasklet>()),
    }
}
