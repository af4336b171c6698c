//! The tasklet object: a C function running on its own stack (a corosensei coroutine), with
//! Stackless's flags and reference counting (SPEC §1, §2, §3).
//!
//! Threading rule: every `Cell` field is touched only by the owner thread. The channel
//! transfer fields (`blocked_on`, `xfer`, `xfer_status`, `xfer_data`) are atomics written under
//! the lock of the channel the tasklet waits on (by a partner or a killer on any thread) and
//! read by the owner after it is woken; `refs` is an atomic usable anywhere.

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use corosensei::{Coroutine, Yielder};

use crate::channel::Channel;
use crate::wake::Shared;
use crate::stack::SlpStack;
use crate::status::Status;

/// `int32_t fn(void *arg)`.
pub type TaskletFn = unsafe extern "C" fn(arg: *mut c_void) -> i32;
/// `void arg_free(void *arg)`.
pub type ArgFree = unsafe extern "C" fn(arg: *mut c_void);

/// A tasklet's coroutine: resumed with nothing, suspends with nothing, returns the function's
/// return value.
pub type Coro = Coroutine<(), (), i32, SlpStack>;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Life {
    /// Created, never switched into.
    Fresh,
    /// Has run at least once and has not ended.
    Started,
    /// Ended (returned, killed, discarded, or its thread exited).
    Dead,
}

/// A tasklet (`slp_tasklet`): a function running on its own stack, owned by the thread that
/// created it (Stackless `tasklet`). Opaque; reference counted (slp_tasklet_retain /
/// slp_tasklet_release). A thread's main tasklet is its own native stack (slp_main()).
pub struct Tasklet {
    pub(crate) refs: AtomicUsize,
    /// The owner's cross-thread state (its scheduler's shared part).
    pub(crate) owner: UnsafeCell<Arc<Shared>>,
    // Run-queue links (circular, intrusive). Null when not in the run queue.
    pub(crate) next: Cell<*mut Tasklet>,
    pub(crate) prev: Cell<*mut Tasklet>,
    /// Mirrors "in the run queue" for queries from any thread (the links are owner-only).
    pub(crate) queued: AtomicBool,
    /// The runtime holds a reference: the tasklet is in the run queue, blocked, or on its way
    /// back to the queue from another thread.
    pub(crate) rt_ref: Cell<bool>,
    // Links of the owner's list of started, not yet dead tasklets (for thread exit).
    pub(crate) all_next: Cell<*mut Tasklet>,
    pub(crate) all_prev: Cell<*mut Tasklet>,
    /// A `Life`, written by the owner thread, read by any thread (alive queries, kills).
    life: AtomicU8,
    pub(crate) is_main: bool,
    pub(crate) atomic: Cell<bool>,
    pub(crate) block_trap: Cell<bool>,
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
    /// Channel this tasklet waits on (null if not blocked on a channel).
    pub(crate) blocked_on: AtomicPtr<Channel>,
    /// Value handed over by a channel partner, and the status of the transfer.
    pub(crate) xfer: AtomicPtr<c_void>,
    pub(crate) xfer_status: AtomicI32,
    pub(crate) xfer_data: AtomicPtr<c_void>,
    /// Return value of the function once dead.
    pub(crate) result: Cell<i32>,
    /// Where a suspended tasklet switched away: instruction, stack and frame pointer (for
    /// debuggers, `slp_tasklet_debug_context`).
    pub(crate) dbg_ctx: Cell<[usize; 3]>,
}

impl Tasklet {
    pub(crate) fn new_raw(
        owner: Arc<Shared>,
        is_main: bool,
        arg: *mut c_void,
        arg_free: Option<ArgFree>,
        name: Option<CString>,
        stack_size: usize,
        refs: usize,
    ) -> *mut Tasklet {
        // Written straight into the heap block: a Box::new of this struct would build it on
        // the stack first and copy it (a visible memmove on the create path).
        let mut b = Box::<Tasklet>::new_uninit();
        b.write(Tasklet {
            refs: AtomicUsize::new(refs),
            owner: UnsafeCell::new(owner),
            next: Cell::new(ptr::null_mut()),
            prev: Cell::new(ptr::null_mut()),
            queued: AtomicBool::new(false),
            rt_ref: Cell::new(false),
            all_next: Cell::new(ptr::null_mut()),
            all_prev: Cell::new(ptr::null_mut()),
            life: AtomicU8::new(if is_main { Life::Started } else { Life::Fresh } as u8),
            is_main,
            atomic: Cell::new(false),
            block_trap: Cell::new(false),
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
            blocked_on: AtomicPtr::new(ptr::null_mut()),
            xfer: AtomicPtr::new(ptr::null_mut()),
            xfer_status: AtomicI32::new(0),
            xfer_data: AtomicPtr::new(ptr::null_mut()),
            result: Cell::new(0),
            dbg_ctx: Cell::new([0; 3]),
        });
        // SAFETY: fully initialised by the write above.
        Box::into_raw(unsafe { b.assume_init() })
    }

    #[inline]
    pub(crate) fn owner(&self) -> &Arc<Shared> {
        // SAFETY: `owner` is only replaced by bind_thread on a never-started, unscheduled
        // tasklet, which no other thread is using at that moment.
        unsafe { &*self.owner.get() }
    }

    #[inline]
    pub fn life(&self) -> Life {
        match self.life.load(Ordering::Acquire) {
            0 => Life::Fresh,
            1 => Life::Started,
            _ => Life::Dead,
        }
    }
    #[inline]
    pub(crate) fn set_life(&self, l: Life) {
        self.life.store(l as u8, Ordering::Release);
    }

    /// In its run queue (owner thread: exact).
    #[inline]
    pub fn in_ring(&self) -> bool {
        !self.next.get().is_null()
    }
    /// In its run queue, readable from any thread (may be out of date there).
    #[inline]
    pub fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Relaxed)
    }
    #[inline]
    pub fn is_blocked(&self) -> bool {
        !self.blocked_on.load(Ordering::Acquire).is_null()
    }
    /// Not ended, and its thread still exists.
    #[inline]
    pub fn is_alive(&self) -> bool {
        self.life() != Life::Dead && self.owner().alive.load(Ordering::Relaxed)
    }
    /// Owner thread id, or -1 once that thread's scheduler is gone.
    pub fn thread_id(&self) -> i64 {
        if self.owner().alive.load(Ordering::Relaxed) {
            self.owner().thread_id
        } else {
            -1
        }
    }

    /// A printable name for messages: the user's name or the address.
    pub fn describe(&self) -> String {
        match &self.name {
            Some(n) if !n.as_bytes().is_empty() => format!("tasklet '{}'", n.to_string_lossy()),
            _ if self.is_main => "the main tasklet".to_string(),
            _ => format!("tasklet {:p}", self as *const Tasklet),
        }
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

    /// Runs `arg_free` once (it is cleared by taking the function out of `life` handling:
    /// callers make sure this is reached exactly once, when the tasklet dies).
    pub(crate) unsafe fn free_arg(&self) {
        if let Some(f) = self.arg_free {
            f(self.arg);
        }
    }
}

/// Adds a reference.
#[inline]
pub unsafe fn retain(t: *const Tasklet) {
    (*t).refs.fetch_add(1, Ordering::Relaxed);
}

/// Drops a reference; the last one frees a dead tasklet, discards a never-started one, and
/// kills (pending) a started, paused one so that it can clean up (SPEC §3).
#[inline]
pub unsafe fn release(t: *mut Tasklet) {
    if (*t).refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        crate::scheduler::last_ref_gone(t);
    }
}

/// Frees the memory of a tasklet that has no references. A coroutine still suspended in it
/// (its thread exited while it refused to end) is leaked, never unwound: its frames are C code.
pub(crate) unsafe fn free(t: *mut Tasklet) {
    if let Some(c) = (*(*t).coro.get()).take() {
        std::mem::forget(c);
    }
    drop(Box::from_raw(t));
}
