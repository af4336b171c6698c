//! A scheduler's cross-thread part (`Shared`): the inbox of messages other threads post for
//! it, the wake-up of its thread (condition variable or the host's wake-up callback), and its
//! standing in the deadlock census (`census.rs`).
//!
//! What orders each cross-thread access: the inbox vector is behind `inbox` (a lock);
//! `mail` is a hint set under that lock with SeqCst and re-checked under the census lock
//! before the owner sleeps; `sleep` changes only under the census lock; `running`, `alive`,
//! `inside` and `wakeup_req` are atomics read without a lock (documented per field).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::census::{self, global};
use crate::tasklet::Tasklet;

/// A message for a scheduler, sent by another thread. Each holds a reference to its tasklet
/// (a Discard owns its unreferenced tasklet).
pub enum Msg {
    /// The tasklet's wait ended (a partner took or gave its value, or the channel shut down):
    /// put it back in the run queue.
    Ready(*mut Tasklet),
    /// `slp_tasklet_insert` / `slp_tasklet_run` from another thread.
    Insert(*mut Tasklet),
    /// `slp_tasklet_kill` / `slp_tasklet_throw` from another thread.
    Throw(*mut Tasklet, i32, *mut c_void),
    /// The last reference to a never-started tasklet went on another thread: the owner
    /// discards it (arg_free runs there) and frees it. The message owns the tasklet.
    Discard(*mut Tasklet),
    /// The tasklet was re-bound to another thread (slp_tasklet_bind_thread): take it off this
    /// thread's list, then tell its new owner to adopt it.
    Unlist(*mut Tasklet),
    /// A re-bound tasklet arrives: add it to this thread's list.
    Adopt(*mut Tasklet),
}

/// `void fn(int64_t thread_id, void *user_data)`.
pub type WakeFn = unsafe extern "C" fn(thread_id: i64, user_data: *mut c_void);

pub struct Shared {
    pub thread_id: i64,
    /// The tasklet running on this thread (for `slp_tasklet_is_current` from anywhere;
    /// written by the owner, a snapshot elsewhere).
    pub running: AtomicPtr<Tasklet>,
    /// Set while the owner thread's scheduler exists (cleared under the inbox lock, so a
    /// post either lands before the scheduler leaves or is refused).
    pub alive: AtomicBool,
    /// Messages for the owner (guarded by this lock).
    inbox: Mutex<Vec<Msg>>,
    /// The inbox is (probably) not empty.
    mail: AtomicBool,
    /// The thread's standing in the census (`census::AWAKE`, `ASLEEP`, `ASLEEP_TIMED`),
    /// changed only under the census lock (by the thread itself, or by a waker that counts it
    /// back in).
    pub(crate) sleep: AtomicU8,
    /// The thread is inside libslp's dispatch loop (running tasklets or waiting for work): it
    /// will see new mail by itself, no wake-up callback needed.
    inside: AtomicBool,
    /// slp_scheduler_wakeup was called: the waiting run returns.
    wakeup_req: AtomicBool,
    /// Signalled (under the census lock) when the sleeping owner is counted back in.
    pub(crate) cv: Condvar,
    wake_cb: Mutex<Option<(WakeFn, usize)>>,
    has_cb: AtomicBool,
    /// Never-started tasklets of this thread discarded by another thread (for counters).
    foreign_discards: AtomicU64,
    /// The idle spin does not yield before this time (see `census.rs`), set after a slow yield.
    pub(crate) no_yield_until: AtomicU64,
}

// SAFETY: the raw tasklet pointers in the inbox are only dereferenced by the owner thread,
// and each message holds a reference to its tasklet; everything else is atomics and locks.
unsafe impl Send for Shared {}
// SAFETY: as above: shared access goes through atomics and locks only.
unsafe impl Sync for Shared {}

impl Shared {
    /// Registers a new participating scheduler.
    pub fn join(thread_id: i64) -> Arc<Shared> {
        let s = Arc::new(Shared {
            thread_id,
            running: AtomicPtr::new(std::ptr::null_mut()),
            alive: AtomicBool::new(true),
            inbox: Mutex::new(Vec::new()),
            mail: AtomicBool::new(false),
            sleep: AtomicU8::new(census::AWAKE),
            inside: AtomicBool::new(false),
            wakeup_req: AtomicBool::new(false),
            cv: Condvar::new(),
            wake_cb: Mutex::new(None),
            has_cb: AtomicBool::new(false),
            foreign_discards: AtomicU64::new(0),
            no_yield_until: AtomicU64::new(0),
        });
        global().join(s.clone());
        s
    }

    /// The scheduler is going away: it stops participating, refuses further messages, and
    /// every sleeper re-checks for deadlock. Returns the messages still queued.
    pub fn leave(&self) -> Vec<Msg> {
        let rest = {
            let mut ib = self.inbox.lock();
            self.alive.store(false, Ordering::SeqCst);
            self.mail.store(false, Ordering::Relaxed);
            std::mem::take(&mut *ib)
        };
        global().leave(self);
        rest
    }

    pub fn lookup(thread_id: i64) -> Option<Arc<Shared>> {
        global().threads.iter().find(|t| t.thread_id == thread_id).cloned()
    }

    /// Queues `m` for the owner thread and wakes it. Returns false (message not queued) when
    /// the owner's scheduler is gone.
    pub fn post(&self, m: Msg) -> bool {
        {
            let mut ib = self.inbox.lock();
            if !self.alive.load(Ordering::Relaxed) {
                return false;
            }
            ib.push(m);
            self.mail.store(true, Ordering::SeqCst);
        }
        self.wake();
        true
    }

    /// Wakes the owner if it sleeps in libslp, or calls its wake-up callback if it is outside
    /// libslp.
    pub fn wake(&self) {
        if self.sleep.load(Ordering::SeqCst) != census::AWAKE {
            let mut g = global();
            if g.count_in(self) {
                self.cv.notify_one();
            }
        } else if !self.inside.load(Ordering::SeqCst) && self.has_cb.load(Ordering::Acquire) {
            let _scope = super::callback::enter(super::callback::Callback::Wakeup);
            self.call_callback();
        }
    }

    fn call_callback(&self) {
        let cb = *self.wake_cb.lock();
        if let Some((f, ud)) = cb {
            // SAFETY: the host registered this callback for exactly this use.
            unsafe { f(self.thread_id, ud as *mut c_void) };
        }
    }

    /// The owner enters its dispatch loop.
    #[inline]
    pub fn enter(&self) {
        self.inside.store(true, Ordering::Relaxed);
    }

    /// The owner leaves its dispatch loop. Returns true when a wake-up callback is installed
    /// and mail arrived while the thread was inside (so no callback was rung for it): the
    /// caller must serve it or announce it with `notify_self`.
    #[inline]
    pub fn leave_loop(&self) -> bool {
        if self.has_cb.load(Ordering::Relaxed) {
            self.inside.store(false, Ordering::SeqCst);
            self.mail.load(Ordering::SeqCst)
        } else {
            self.inside.store(false, Ordering::Relaxed);
            false
        }
    }

    /// Calls this thread's own wake-up callback (work is waiting that the current libslp call
    /// will not serve). The caller holds the callback scope.
    pub fn notify_self(&self) {
        self.call_callback();
    }

    pub fn count_foreign_discard(&self) {
        self.foreign_discards.fetch_add(1, Ordering::Relaxed);
    }

    pub fn foreign_discards(&self) -> u64 {
        self.foreign_discards.load(Ordering::Relaxed)
    }

    pub fn request_wakeup(&self) {
        self.wakeup_req.store(true, Ordering::SeqCst);
        self.wake();
    }

    #[inline]
    pub(crate) fn wakeup_requested(&self) -> bool {
        self.wakeup_req.load(Ordering::Relaxed)
    }

    pub fn take_wakeup_request(&self) -> bool {
        self.wakeup_req.load(Ordering::Relaxed) && self.wakeup_req.swap(false, Ordering::SeqCst)
    }

    pub fn set_callback(&self, cb: Option<(WakeFn, usize)>) {
        *self.wake_cb.lock() = cb;
        self.has_cb.store(cb.is_some(), Ordering::Release);
    }

    #[inline]
    pub fn has_mail(&self) -> bool {
        self.mail.load(Ordering::Acquire)
    }

    /// Takes every queued message (owner thread only).
    pub fn take_mail(&self, into: &mut Vec<Msg>) {
        let mut ib = self.inbox.lock();
        self.mail.store(false, Ordering::Relaxed);
        std::mem::swap(&mut *ib, into);
    }
}
