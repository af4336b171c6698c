//! Deadlock detection (the rules of "nothing runnable"): which threads participate, and
//! which of them could still wake another.
//!
//! A thread participates while it has a scheduler. It counts as *awake* unless it waits in
//! libslp; a thread waiting with a finite deadline (a bounded slp_run_wait, later a timed
//! receive or sleep) will wake by itself and is a *timed* sleeper: it too could still wake
//! the others. A thread about to wait with no deadline while no other participant is awake and
//! none is a timed sleeper could never be woken: it gets SLP_E_DEADLOCK instead. A waker counts
//! the sleeper back in itself (under the census lock) before notifying it, so a wake-up in
//! flight is never mistaken for a deadlock. When a participant leaves, or a timed sleeper's
//! deadline passes, every sleeper is woken to re-check.
//!
//! Lock order: the census lock is the innermost lock of libslp (taken under a scheduler's
//! inbox lock by `Shared::wake`, never the other way round).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::inbox::Shared;

/// The census, behind one process-wide lock.
pub(crate) struct Global {
    participants: usize,
    /// Participants not waiting in libslp.
    awake: usize,
    /// Participants waiting in libslp with a finite deadline.
    timed: usize,
    /// Every live scheduler's shared part (for re-checks, bind_thread, wakeup by id).
    pub(crate) threads: Vec<Arc<Shared>>,
}

pub(crate) fn global() -> MutexGuard<'static, Global> {
    static G: OnceLock<Mutex<Global>> = OnceLock::new();
    G.get_or_init(|| Mutex::new(Global { participants: 0, awake: 0, timed: 0, threads: Vec::new() }))
        .lock()
}

static DETECT: AtomicBool = AtomicBool::new(true);

/// Turns deadlock detection on or off (process-wide); returns the old setting.
pub fn set_detection(on: bool) -> bool {
    DETECT.swap(on, Ordering::SeqCst)
}

/// How a thread stands in the census (`Shared::sleep`), changed only under the census lock.
pub(crate) const AWAKE: u8 = 0;
pub(crate) const ASLEEP: u8 = 1;
pub(crate) const ASLEEP_TIMED: u8 = 2;

/// `Display`: "(participating threads: P, awake: A, waiting with a deadline: T)".
pub struct Census;

impl fmt::Display for Census {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, a, t) = {
            let g = global();
            (g.participants, g.awake, g.timed)
        };
        write!(f, "(participating threads: {p}, awake: {a}, waiting with a deadline: {t})")
    }
}

impl Global {
    pub(crate) fn join(&mut self, s: Arc<Shared>) {
        self.participants += 1;
        self.awake += 1;
        let id = s.thread_id;
        self.threads.retain(|t| t.thread_id != id);
        self.threads.push(s);
    }

    /// `s` stops participating; every sleeper is woken to re-check.
    pub(crate) fn leave(&mut self, s: &Shared) {
        self.participants -= 1;
        self.count_in(s);
        self.awake -= 1;
        self.threads.retain(|t| !std::ptr::eq(&**t, s));
        self.wake_all_sleepers();
    }

    /// Counts every sleeper back in and notifies it (it re-checks for deadlock).
    fn wake_all_sleepers(&mut self) {
        let sleepers: Vec<Arc<Shared>> =
            self.threads.iter().filter(|t| t.sleep.load(Ordering::SeqCst) != AWAKE).cloned().collect();
        for t in sleepers {
            self.count_in(&t);
            t.cv.notify_one();
        }
    }

    /// Could a participant other than the caller (counted awake) still wake it — or a
    /// pending Till?
    ///
    /// A "no" must be followed by one more look at the caller's mail before it is called a
    /// deadlock: a thread whose last act is to post to the caller while the caller is awake
    /// (so the post does not count it in) and then to leave (a toolkit thread's stopped
    /// signal going, then its external waker dropping) can be seen gone by a mail check made
    /// before its post became visible. Its leaving is ordered after its post (the SeqCst
    /// writes that end its waker and participation), so a look at the mail after seeing it
    /// gone finds the post.
    fn others_could_wake(&self) -> bool {
        self.awake > 1
            || self.timed > 0
            || crate::till::pending() > 0
            || EXTERNAL_WAKERS.load(Ordering::SeqCst) > 0
    }

    /// `s` stops counting as awake (`timed`: it waits with a deadline).
    fn count_out(&mut self, s: &Shared, timed: bool) {
        self.awake -= 1;
        if timed {
            self.timed += 1;
        }
        // Pairs with `Shared::post`: mail is stored before `sleep` is read there.
        s.sleep.store(if timed { ASLEEP_TIMED } else { ASLEEP }, Ordering::SeqCst);
    }

    /// `s` counts as awake again, unless a waker already counted it in. A timed sleeper
    /// leaving its wait may be the last possible waker of the others: they re-check.
    pub(crate) fn count_in(&mut self, s: &Shared) -> bool {
        match s.sleep.swap(AWAKE, Ordering::SeqCst) {
            AWAKE => false,
            was => {
                self.awake += 1;
                if was == ASLEEP_TIMED {
                    self.timed -= 1;
                }
                true
            }
        }
    }
}

/// Wakers outside the census: toolkit threads that left it (their scheduler is torn down)
/// but have not yet made their stopped signal go.
static EXTERNAL_WAKERS: AtomicUsize = AtomicUsize::new(0);

/// Counts a waker outside the census until the guard drops (then sleepers re-check).
pub fn external_waker() -> ExternalWaker {
    EXTERNAL_WAKERS.fetch_add(1, Ordering::SeqCst);
    ExternalWaker(())
}

/// See `external_waker`.
pub struct ExternalWaker(());

impl Drop for ExternalWaker {
    fn drop(&mut self) {
        if EXTERNAL_WAKERS.fetch_sub(1, Ordering::SeqCst) == 1 {
            recheck_all();
        }
    }
}

/// Every thread asleep in libslp re-checks whether it could still be woken (a kind of
/// possible waker went away: the last pending Till fired).
pub fn recheck_all() {
    global().wake_all_sleepers();
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

/// While alive, the calling thread's OS timers are precise: its timer slack (Linux
/// coalesces a sleeping thread's wake-up with others up to 50 µs late by default) is 1 ns, so
/// a thread parked until a deadline wakes within microseconds of it, without spinning. The
/// host's setting is restored on drop.
struct PreciseTimers(libc::c_int);

const PR_SET_TIMERSLACK: libc::c_int = 29;
const PR_GET_TIMERSLACK: libc::c_int = 30;

impl PreciseTimers {
    fn new() -> PreciseTimers {
        // SAFETY: prctl with these options only reads or sets the calling thread's slack.
        let old = unsafe { libc::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) };
        if old > 1 {
            // SAFETY: as above.
            unsafe { libc::prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) };
        }
        PreciseTimers(old)
    }
}

impl Drop for PreciseTimers {
    fn drop(&mut self) {
        if self.0 > 1 {
            // SAFETY: restores the value read in `new`.
            unsafe { libc::prctl(PR_SET_TIMERSLACK, self.0 as libc::c_ulong, 0, 0, 0) };
        }
    }
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
    /// Could any other participating thread still wake this one? (Owner thread, before it
    /// blocks with nothing runnable.)
    pub fn others_could_wake(&self) -> bool {
        !DETECT.load(Ordering::Relaxed) || global().others_could_wake()
    }

    /// Waits until there is mail, a wake-up request (when `want_wakeup`), the deadline, or
    /// a deadlock (owner thread only). From the moment it starts waiting — spinning first,
    /// then asleep — the thread counts as blocked in libslp (as a timed sleeper when it has a
    /// deadline), so when several threads block in turn, the last one to block with no
    /// deadline is the one told SLP_E_DEADLOCK.
    ///
    /// `chore` is housekeeping for a long sleep (the stack pool giving memory back): called
    /// with no lock held when the time it last returned has passed, it returns when it wants
    /// to run next (None: never). It neither wakes the caller nor makes it a timed sleeper.
    pub fn wait_for_work(
        &self,
        deadline: Option<Instant>,
        want_wakeup: bool,
        chore: &mut dyn FnMut() -> Option<Instant>,
    ) -> Woke {
        // When the chore wants to run next; asked only once this thread is about to sleep
        // (work already waiting is served first).
        let mut chore_at: Option<Option<Instant>> = None;
        let timed = deadline.is_some();
        {
            let mut g = global();
            if let Some(w) = self.ready(deadline, want_wakeup) {
                return w;
            }
            if !timed && DETECT.load(Ordering::Relaxed) && !g.others_could_wake() {
                return self.ready(deadline, want_wakeup).unwrap_or(Woke::Deadlock);
            }
            g.count_out(self, timed);
            // Mail posted between the check above and `count_out` found this thread still
            // counted in, so its poster did not count it back in: do it here, under the same
            // lock, or another thread could meanwhile see this one asleep with work waiting and
            // report a deadlock that is not one.
            if let Some(w) = self.ready(deadline, want_wakeup) {
                g.count_in(self);
                return w;
            }
        }
        self.spin(deadline, want_wakeup);
        let mut g = global();
        loop {
            if let Some(w) = self.ready(deadline, want_wakeup) {
                // Awake again: if it now waits without a deadline while nobody else is awake,
                // it is the one told SLP_E_DEADLOCK (and its exit wakes the others' re-check).
                g.count_in(self);
                return w;
            }
            if self.sleep.load(Ordering::SeqCst) == AWAKE {
                // Counted back in without mail: a participant left or a timed sleeper woke.
                // Re-check for deadlock.
                if !timed && DETECT.load(Ordering::Relaxed) && !g.others_could_wake() {
                    return self.ready(deadline, want_wakeup).unwrap_or(Woke::Deadlock);
                }
                g.count_out(self, timed);
                continue;
            }
            let at = match chore_at {
                Some(at) => at,
                None => {
                    chore_at = Some(MutexGuard::unlocked(&mut g, &mut *chore));
                    continue; // the lock was released: check again before sleeping
                }
            };
            match deadline {
                Some(d) => {
                    let _precise = PreciseTimers::new();
                    let _ = self.cv.wait_until(&mut g, at.map_or(d, |c| c.min(d)));
                }
                None => match at {
                    Some(c) => {
                        let _ = self.cv.wait_until(&mut g, c);
                    }
                    None => self.cv.wait(&mut g),
                },
            }
            if at.is_some_and(|c| Instant::now() >= c) {
                // Like a spurious wake-up: the loop re-checks everything after it.
                chore_at = Some(MutexGuard::unlocked(&mut g, &mut *chore));
            }
        }
    }

    /// Spin briefly: a partner thread busy in libslp usually answers within microseconds.
    /// After a short pure spin, each round yields the CPU, so that a partner sharing this CPU
    /// can run instead of waiting for the spin to end. A yield that takes long means other
    /// work holds the CPU for whole time slices: then this thread stops yielding for a while
    /// and goes to sleep after the pure spin, where the kernel's wake-up preemption brings it
    /// back promptly.
    fn spin(&self, deadline: Option<Instant>, want_wakeup: bool) {
        let spin_end = Instant::now() + SPIN;
        let may_yield = epoch_ns() >= self.no_yield_until.load(Ordering::Relaxed);
        let mut n = 0u32;
        loop {
            if self.has_mail()
                || (want_wakeup && self.wakeup_requested())
                || self.sleep.load(Ordering::Relaxed) == AWAKE
            {
                break; // settle it under the lock
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
}
