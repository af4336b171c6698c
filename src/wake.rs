//! Cross-thread wake-ups, parking and deadlock detection (SPEC §5.2, §5.3).
//!
//! Each scheduler has a `Shared` part other threads may touch: an inbox of messages (a
//! partner's transfer completed, insert, kill/throw) and a parking slot. The owner drains its
//! inbox whenever its dispatch loop runs; when it has nothing to run it spins briefly, then
//! sleeps on its condition variable until a message or a re-check arrives.
//!
//! Deadlock detection counts *participating* threads (those with a scheduler) and how many of
//! them are awake (not asleep in libslp). A thread about to sleep with no deadline while it is
//! the only awake participant could never be woken: it gets SLP_E_DEADLOCK instead. A waker
//! marks the sleeper awake itself (under the global lock) before notifying it, so a wake-up in
//! flight is never mistaken for a deadlock. When a participant leaves, every sleeper is woken
//! to re-check.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::tasklet::Tasklet;

/// A message for a scheduler, sent by another thread. Each holds a reference to its tasklet.
pub enum Msg {
    /// The tasklet's wait ended (a partner took or gave its value, or the channel shut down):
    /// put it back in the run queue. The reference is the runtime's (it was blocked).
    Ready(*mut Tasklet),
    /// `slp_tasklet_insert` / `slp_tasklet_run` from another thread (a message reference).
    Insert(*mut Tasklet),
    /// `slp_tasklet_kill` / `slp_tasklet_throw` from another thread (a message reference).
    Throw(*mut Tasklet, i32, *mut c_void),
}

/// `void fn(int64_t thread_id, void *user_data)`.
pub type WakeFn = unsafe extern "C" fn(thread_id: i64, user_data: *mut c_void);

pub struct Shared {
    pub thread_id: i64,
    /// The tasklet running on this thread (for `slp_tasklet_is_current` from anywhere).
    pub running: AtomicPtr<Tasklet>,
    /// Set while the owner thread's scheduler exists.
    pub alive: AtomicBool,
    inbox: Mutex<Vec<Msg>>,
    /// The inbox is (probably) not empty.
    mail: AtomicBool,
    /// Waiting in libslp (spinning or asleep) and not counted as awake; changed only under the
    /// global lock (by the thread itself, or by a waker that counts it back in).
    sleeping: AtomicBool,
    /// The thread is inside libslp's dispatch loop (running tasklets or waiting for work): it
    /// will see new mail by itself, no wake-up callback needed.
    inside: AtomicBool,
    /// slp_scheduler_wakeup was called: the waiting run returns.
    wakeup_req: AtomicBool,
    cv: Condvar,
    wake_cb: Mutex<Option<(WakeFn, usize)>>,
    has_cb: AtomicBool,
    /// Never-started tasklets of this thread discarded by another thread (for counters).
    foreign_discards: AtomicU64,
    /// The idle spin does not yield before this time (`epoch_ns`), set after a slow yield.
    no_yield_until: AtomicU64,
}

// SAFETY: the raw tasklet pointers in the inbox are only dereferenced by the owner thread
// (or under the rules of tasklet.rs); everything else is atomics and locks.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

struct Global {
    participants: usize,
    awake: usize,
    /// Every live scheduler's shared part (for re-checks, bind_thread, wakeup by id).
    threads: Vec<Arc<Shared>>,
}

fn global() -> &'static Mutex<Global> {
    static G: OnceLock<Mutex<Global>> = OnceLock::new();
    G.get_or_init(|| Mutex::new(Global { participants: 0, awake: 0, threads: Vec::new() }))
}

static DETECT: AtomicBool = AtomicBool::new(true);

/// Turns deadlock detection on or off (process-wide); returns the old setting.
pub fn set_detection(on: bool) -> bool {
    DETECT.swap(on, Ordering::SeqCst)
}

/// How long an idle thread spins (and yields) for work before it sleeps.
const SPIN: Duration = Duration::from_micros(20);
/// Spins before the idle thread starts yielding the CPU on each round.
const PURE_SPINS: u32 = 16;
/// A yield slower than this means other work holds the CPU for whole time slices ...
const SLOW_YIELD: Duration = Duration::from_micros(100);
/// ... and the thread then sleeps without yielding for this long (nanoseconds).
const NO_YIELD_FOR: u64 = 20_000_000;

/// Monotonic nanoseconds since the first call (for the yield back-off).
fn epoch_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Why `wait_for_work` returned.
pub enum Woke {
    /// Messages arrived: drain the inbox.
    Mail,
    /// slp_scheduler_wakeup.
    WakeupRequest,
    /// The deadline passed.
    Deadline,
    /// Nothing could ever wake this thread.
    Deadlock,
}

impl Shared {
    /// Registers a new participating scheduler.
    pub fn join(thread_id: i64) -> Arc<Shared> {
        let s = Arc::new(Shared {
            thread_id,
            running: AtomicPtr::new(std::ptr::null_mut()),
            alive: AtomicBool::new(true),
            inbox: Mutex::new(Vec::new()),
            mail: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            inside: AtomicBool::new(false),
            wakeup_req: AtomicBool::new(false),
            cv: Condvar::new(),
            wake_cb: Mutex::new(None),
            has_cb: AtomicBool::new(false),
            foreign_discards: AtomicU64::new(0),
            no_yield_until: AtomicU64::new(0),
        });
        let mut g = global().lock();
        g.participants += 1;
        g.awake += 1;
        g.threads.retain(|t| t.thread_id != thread_id);
        g.threads.push(s.clone());
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
        let mut g = global().lock();
        g.participants -= 1;
        g.awake -= 1;
        g.threads.retain(|t| !std::ptr::eq(&**t, self));
        let mut woken = 0;
        for t in &g.threads {
            if t.sleeping.swap(false, Ordering::SeqCst) {
                woken += 1;
                t.cv.notify_one();
            }
        }
        g.awake += woken;
        rest
    }

    pub fn lookup(thread_id: i64) -> Option<Arc<Shared>> {
        global().lock().threads.iter().find(|t| t.thread_id == thread_id).cloned()
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
        if self.sleeping.load(Ordering::SeqCst) {
            let mut g = global().lock();
            if self.sleeping.swap(false, Ordering::SeqCst) {
                g.awake += 1;
                self.cv.notify_one();
            }
        } else if !self.inside.load(Ordering::SeqCst) && self.has_cb.load(Ordering::Acquire) {
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
    /// will not serve).
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

    /// Could any other participating thread still wake this one? (Owner thread, before it
    /// blocks with nothing runnable.)
    pub fn others_awake(&self) -> bool {
        if !DETECT.load(Ordering::Relaxed) {
            return true;
        }
        global().lock().awake > 1
    }

    /// "(participating threads: P, awake: A)" for deadlock messages.
    pub fn census() -> String {
        let g = global().lock();
        format!("(participating threads: {}, awake: {})", g.participants, g.awake)
    }

    /// Waits until there is mail, a wake-up request (when `want_wakeup`), the deadline, or
    /// a deadlock (owner thread only). From the moment it starts waiting — spinning first,
    /// then asleep — the thread counts as blocked in libslp, so when several threads block in
    /// turn, the last one to block is the one told SLP_E_DEADLOCK (SPEC §5.3).
    pub fn wait_for_work(&self, deadline: Option<Instant>, want_wakeup: bool) -> Woke {
        {
            let mut g = global().lock();
            if let Some(w) = self.ready(deadline, want_wakeup) {
                return w;
            }
            if deadline.is_none() && DETECT.load(Ordering::Relaxed) && g.awake <= 1 {
                return Woke::Deadlock;
            }
            self.count_out(&mut g);
            // Mail posted between the check above and `count_out` found this thread still
            // counted in, so its poster did not count it back in: do it here, under the same
            // lock, or another thread could meanwhile see this one asleep with work waiting and
            // report a deadlock that is not one.
            if let Some(w) = self.ready(deadline, want_wakeup) {
                self.count_in(&mut g);
                return w;
            }
        }
        // Spin briefly: a partner thread busy in libslp usually answers within microseconds.
        // After a short pure spin, each round yields the CPU, so that a partner sharing this
        // CPU can run instead of waiting for the spin to end. A yield that takes long means
        // other work holds the CPU for whole time slices: then this thread stops yielding for
        // a while and goes to sleep after the pure spin, where the kernel's wake-up preemption
        // brings it back promptly.
        let spin_end = Instant::now() + SPIN;
        let may_yield = epoch_ns() >= self.no_yield_until.load(Ordering::Relaxed);
        let mut n = 0u32;
        loop {
            if self.has_mail()
                || (want_wakeup && self.wakeup_req.load(Ordering::Relaxed))
                || !self.sleeping.load(Ordering::Relaxed)
            {
                break; // settle it under the lock below
            }
            n += 1;
            if n < PURE_SPINS {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            if now >= spin_end || deadline.is_some_and(|d| now >= d) || !may_yield {
                break;
            }
            std::thread::yield_now();
            if now.elapsed() > SLOW_YIELD {
                self.no_yield_until.store(epoch_ns() + NO_YIELD_FOR, Ordering::Relaxed);
                break;
            }
        }
        let mut g = global().lock();
        loop {
            if let Some(w) = self.ready(deadline, want_wakeup) {
                self.count_in(&mut g);
                return w;
            }
            if !self.sleeping.load(Ordering::SeqCst) {
                // Counted back in without mail: a participant left. Re-check for deadlock.
                if deadline.is_none() && DETECT.load(Ordering::Relaxed) && g.awake <= 1 {
                    return Woke::Deadlock;
                }
                self.count_out(&mut g);
                continue;
            }
            match deadline {
                Some(d) => {
                    let _ = self.cv.wait_until(&mut g, d);
                }
                None => self.cv.wait(&mut g),
            }
        }
    }

    /// Mail, a wake-up request or a passed deadline, if any.
    fn ready(&self, deadline: Option<Instant>, want_wakeup: bool) -> Option<Woke> {
        if self.has_mail() {
            Some(Woke::Mail)
        } else if want_wakeup && self.take_wakeup_request() {
            Some(Woke::WakeupRequest)
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            Some(Woke::Deadline)
        } else {
            None
        }
    }

    /// This thread stops counting as awake (global lock held).
    fn count_out(&self, g: &mut Global) {
        g.awake -= 1;
        // Pairs with `post`: mail is stored before `sleeping` is read there.
        self.sleeping.store(true, Ordering::SeqCst);
    }

    /// This thread counts as awake again, unless a waker already counted it in (global lock
    /// held).
    fn count_in(&self, g: &mut Global) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            g.awake += 1;
        }
    }
}
