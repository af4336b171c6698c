//! Stackless channels (SPEC §5, §5.1, §5.2): FIFO waiters, balance, preference,
//! schedule_all, close / open / shutdown, exceptions as codes, optional buffering.
//!
//! The channel's state sits behind a mutex so that channels are usable from any thread. A
//! waiter's transfer fields, `blocked_on` and its Blocked → Runnable transition change only
//! under that lock. Run-queue moves are done by the waiter's owner thread: a partner on the
//! same thread is scheduled by the preference rules, one on another thread is posted back to
//! its owner (with a reference taken under the lock, while the waiter is certainly alive).
//!
//! Freeing: a channel released while tasklets wait on it is *orphaned* and freed by whoever
//! takes its last waiter. A thread that removes a waiter it did not pair (a kill, a deadlock
//! delivery, thread exit) reads `blocked_on` before it can lock the channel, so frees and those
//! removals are ordered by `FREE_LOCK`: removals hold it shared from reading `blocked_on` until
//! they unlock the channel, frees take it exclusively. Lock order: `FREE_LOCK` → a channel's
//! lock → a scheduler's inbox lock → the census lock.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::sched::callback::{self, Callback};
use crate::sched::Scheduler;
use crate::tasklet::{self, State, States, Tasklet};

pub mod select;
mod transfer;

pub use transfer::{receive, remove_waiter, send, shutdown, Pairing};

/// Orders channel frees against waiter removals by threads that did not pair the waiter
/// (see the module docs).
static FREE_LOCK: RwLock<()> = RwLock::new(());

const BLOCKED: States = States::of(&[State::Blocked]);
const RUNNABLE: States = States::of(&[State::Runnable]);

/// What travels over a channel: a value or a user exception.
#[derive(Copy, Clone)]
pub enum Item {
    Value(*mut c_void),
    Exception(i32, *mut c_void),
}

struct Waiter {
    t: *mut Tasklet,
    /// For a waiting sender: what it sends.
    item: Item,
    /// The waiter is a selector (slp_select): it must be claimed before it is paired, and
    /// `case` is the index of its case on this channel.
    sel: bool,
    case: u32,
}

impl Waiter {
    /// Still waiting here: a plain waiter always; a selector until it is claimed.
    #[inline]
    fn live(&self) -> bool {
        // SAFETY: a waiter's tasklet is alive while its entry is queued (a selector removes
        // its entries before its select call returns).
        !self.sel || unsafe { (*self.t).stored() } == State::Blocked
    }
}

struct ChanState {
    waiters: VecDeque<Waiter>,
    /// Direction of the waiters (all waiters go the same way): true = senders.
    senders: bool,
    buf: VecDeque<Item>,
    capacity: u32,
    preference: i32,
    schedule_all: bool,
    closing: bool,
    /// The last reference went while tasklets still waited: the channel is freed when the
    /// last waiter leaves (so a released channel stays alive while tasklets wait on it).
    orphaned: bool,
}

impl ChanState {
    /// The balance: buffered items, plus waiting senders or minus waiting receivers. A
    /// selector claimed by another channel (a stale entry, removed when it runs again) no
    /// longer counts.
    fn balance(&self) -> i32 {
        let n = self.waiters.iter().filter(|w| w.live()).count() as i32;
        self.buf.len() as i32 + if self.senders { n } else { -n }
    }
}

/// A channel (`slp_channel`): Stackless's rendezvous channel, optionally buffered, usable
/// from any thread. Opaque; reference counted (slp_channel_retain / slp_channel_release).
pub struct Channel {
    refs: AtomicUsize,
    st: Mutex<ChanState>,
}

// SAFETY: all mutable state is behind the mutex; the raw tasklet pointers in it are only
// dereferenced under the rules of tasklet.rs.
unsafe impl Send for Channel {}
unsafe impl Sync for Channel {}

/// Channels ever created and channels alive, process-wide (SPEC §8 counters).
pub static CREATED: AtomicU64 = AtomicU64::new(0);
pub static LIVE: AtomicU64 = AtomicU64::new(0);

/// A new channel with one reference, or None when memory is exhausted.
pub fn new(capacity: u32, preference: i32, schedule_all: bool) -> Option<*mut Channel> {
    let p = crate::mem::alloc_uninit::<Channel>()?;
    CREATED.fetch_add(1, Ordering::Relaxed);
    LIVE.fetch_add(1, Ordering::Relaxed);
    // SAFETY: fresh allocation of the right layout, initialised whole.
    unsafe { p.write(Channel {
        refs: AtomicUsize::new(1),
        st: Mutex::new(ChanState {
            waiters: VecDeque::new(),
            senders: false,
            buf: VecDeque::new(),
            capacity,
            preference: preference.clamp(-1, 1),
            schedule_all,
            closing: false,
            orphaned: false,
        }),
    }) };
    Some(p)
}

/// Adds a reference.
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
#[inline]
pub unsafe fn retain(ch: *const Channel) {
    (*ch).refs.fetch_add(1, Ordering::Relaxed);
}

/// Drops a reference; the last one frees the channel, or orphans it while tasklets wait.
///
/// # Safety
/// `ch` is a live channel and the caller owns the reference it gives up.
#[inline]
pub unsafe fn release(ch: *const Channel) {
    if (*ch).refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        let free_now = {
            let mut st = (*ch).st.lock();
            if st.waiters.is_empty() {
                true
            } else {
                st.orphaned = true;
                false
            }
        };
        if free_now {
            free(ch);
        }
    }
}

/// # Safety
/// `ch` has no references and no waiters; no channel lock is held by the caller.
unsafe fn free(ch: *const Channel) {
    // Waits for removals that read `blocked_on == ch` before the last waiter left.
    let _excl = FREE_LOCK.write();
    LIVE.fetch_sub(1, Ordering::Relaxed);
    drop(Box::from_raw(ch as *mut Channel));
}

/// `Display`: "blocked receiving on channel 0x.. (balance -1)" for a waiting tasklet. Takes
/// no lock it would wait for (a debugger may print it while another thread holds one).
pub struct DescribeWait(pub *mut Tasklet);

impl std::fmt::Display for DescribeWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: the tasklet is live (the dumping thread owns it); the channel it waits on is
        // alive while it has a waiter, and the lock is only tried.
        unsafe {
            let Some(_g) = FREE_LOCK.try_read() else {
                return f.write_str("blocked (channel busy)");
            };
            let ch = (*self.0).blocked_on.load(Ordering::Acquire) as *const Channel;
            if ch.is_null() {
                return f.write_str(match (*self.0).waiting.get() {
                    crate::tasklet::WaitOn::Sleep => "sleeping",
                    crate::tasklet::WaitOn::Select => "blocked in slp_select",
                    _ => "blocked",
                });
            }
            match (*ch).st.try_lock() {
                Some(st) => write!(
                    f,
                    "blocked {} on channel {:p} (balance {})",
                    if st.senders { "sending" } else { "receiving" },
                    ch,
                    st.balance()
                ),
                None => write!(f, "blocked on channel {:p} (channel busy)", ch),
            }
        }
    }
}

/// The channel callback (SPEC §8), if this thread installed one: called before the operation,
/// outside the channel's lock, with whether it would block as seen just before.
///
/// # Safety
/// On `s`'s own thread; `ch` is live and `me` is the running tasklet.
#[inline(always)]
unsafe fn announce(s: &Scheduler, ch: *const Channel, me: *mut Tasklet, sending: bool) {
    if let Some((f, ud)) = s.chan_cb.get() {
        let _scope = callback::enter_on(s, Callback::Channel);
        let will_block = {
            let st = (*ch).st.lock();
            let partner = !st.waiters.is_empty() && st.senders != sending;
            if sending {
                let room = !st.closing && (st.buf.len() as u64) < st.capacity as u64;
                !partner && !room
            } else {
                !partner && st.buf.is_empty()
            }
        };
        f(ch as *mut Channel, me, sending, will_block, ud as *mut c_void);
    }
}

/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn balance(ch: *const Channel) -> i32 {
    (*ch).st.lock().balance()
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn preference(ch: *const Channel) -> i32 {
    (*ch).st.lock().preference
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn set_preference(ch: *const Channel, p: i32) {
    (*ch).st.lock().preference = p.clamp(-1, 1);
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn schedule_all(ch: *const Channel) -> bool {
    (*ch).st.lock().schedule_all
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn set_schedule_all(ch: *const Channel, on: bool) {
    (*ch).st.lock().schedule_all = on;
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn capacity(ch: *const Channel) -> u32 {
    (*ch).st.lock().capacity
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn close(ch: *const Channel) {
    (*ch).st.lock().closing = true;
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn open(ch: *const Channel) {
    (*ch).st.lock().closing = false;
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn closing(ch: *const Channel) -> bool {
    (*ch).st.lock().closing
}
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn closed(ch: *const Channel) -> bool {
    let st = (*ch).st.lock();
    st.closing && st.balance() == 0
}

/// The first waiter, with a new reference, or null.
///
/// # Safety
/// `ch` points to a live channel the caller holds a reference to.
pub unsafe fn queue(ch: *const Channel) -> *mut Tasklet {
    let st = (*ch).st.lock();
    match st.waiters.iter().find(|w| w.live()) {
        Some(w) => {
            tasklet::retain(w.t);
            w.t
        }
        None => ptr::null_mut(),
    }
}

#[cfg(test)]
mod tests;
