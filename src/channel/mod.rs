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
use crate::sched::{usable, Scheduler};
use crate::status::*;
use crate::tasklet::{self, State, States, Tasklet};

/// Orders channel frees against waiter removals by threads that did not pair the waiter
/// (see the module docs).
static FREE_LOCK: RwLock<()> = RwLock::new(());

const BLOCKED: States = States::of(&[State::Blocked]);
const RUNNABLE: States = States::of(&[State::Runnable]);

/// How a completed transfer goes on: is the partner on the caller's thread, does it run
/// first (the preference), or does the caller schedule (schedule_all)?
#[derive(Copy, Clone)]
pub struct Pairing {
    pub local: bool,
    pub first: bool,
    pub all: bool,
}

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
    fn balance(&self) -> i32 {
        let n = self.waiters.len() as i32;
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
    let layout = std::alloc::Layout::new::<Channel>();
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc(layout) } as *mut Channel;
    if p.is_null() {
        return None;
    }
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
                return f.write_str("blocked");
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

/// Adds a waiter (all waiters go the same direction); SLP_E_NOMEM when the queue cannot grow.
#[inline(always)]
fn push_waiter(st: &mut ChanState, w: Waiter, senders: bool) -> Result<(), Status> {
    if st.waiters.len() == st.waiters.capacity() && st.waiters.try_reserve(1).is_err() {
        return Err(fail(E_NOMEM, "out of memory queueing a channel waiter"));
    }
    if st.waiters.is_empty() {
        st.senders = senders;
    }
    st.waiters.push_back(w);
    Ok(())
}

/// Pops the first waiter; returns whether the channel must be freed (after unlocking): it
/// was orphaned and this was its last waiter.
#[inline]
fn pop_waiter(st: &mut ChanState) -> (Option<Waiter>, bool) {
    let w = st.waiters.pop_front();
    let free_it = st.orphaned && st.waiters.is_empty();
    (w, free_it)
}

/// Takes `t` off the channel it waits on, if any (kill, throw, deadlock delivery, thread
/// exit); the balance follows. Safe from any thread: the waiter list and `blocked_on` change
/// only under the channel's lock, so a partner that already paired `t` wins and this does
/// nothing.
///
/// A removed waiter becomes Runnable (not linked: the caller links it or posts it).
///
/// # Safety
/// `t` is a live tasklet (the caller holds a reference); no channel lock is held.
pub unsafe fn remove_waiter(t: *mut Tasklet) {
    let free_it = {
        // Shared: the channel read from `blocked_on` cannot be freed until this is dropped.
        let _shared = FREE_LOCK.read();
        let ch = (*t).blocked_on.load(Ordering::Acquire) as *const Channel;
        if ch.is_null() {
            return;
        }
        let mut st = (*ch).st.lock();
        if !ptr::eq((*t).blocked_on.load(Ordering::Relaxed), ch) {
            return; // paired (or removed) meanwhile
        }
        if let Some(i) = st.waiters.iter().position(|w| w.t == t) {
            st.waiters.remove(i);
        }
        (*t).blocked_on.store(ptr::null_mut(), Ordering::Release);
        let _ = (*t).try_transition(BLOCKED, State::Runnable);
        (st.orphaned && st.waiters.is_empty()).then_some(ch)
    };
    if let Some(ch) = free_it {
        free(ch);
    }
}

/// The waiter `t` leaves the channel paired (channel lock held): Blocked → Runnable, and a
/// reference for the message to its owner when it lives on another thread.
///
/// # Safety
/// `t` is a waiter just taken off a channel whose lock the caller holds; `s` is the calling thread's scheduler.
#[inline(always)]
unsafe fn unblock_paired(local: bool, t: *mut Tasklet) {
    // A plain transition, no compare-and-swap: a Blocked tasklet's state changes only under
    // the lock of the channel it waits on, which the caller holds.
    (*t).transition(BLOCKED, State::Runnable);
    if !local {
        tasklet::retain(t);
    }
}

/// Whether the partner of an operation in direction `send` runs first under `preference`:
/// -1 prefers the receiver, 1 the sender.
#[inline]
fn partner_first(preference: i32, send: bool) -> bool {
    if send {
        preference < 0
    } else {
        preference > 0
    }
}

/// Hands `item` to a waiting receiver (channel lock held).
///
/// # Safety
/// `r` is a receiving waiter just taken off the channel whose lock the caller holds.
#[inline]
unsafe fn give_to_receiver(local: bool, r: *mut Tasklet, item: Item) {
    match item {
        Item::Value(v) => {
            (*r).xfer.store(v, Ordering::Relaxed);
            (*r).xfer_status.store(OK, Ordering::Relaxed);
        }
        Item::Exception(code, data) => {
            (*r).xfer_data.store(data, Ordering::Relaxed);
            (*r).xfer_status.store(code, Ordering::Relaxed);
        }
    }
    (*r).blocked_on.store(ptr::null_mut(), Ordering::Release);
    unblock_paired(local, r);
}

/// Tells a waiting sender its value was taken (channel lock held).
///
/// # Safety
/// `w` is a sending waiter just taken off the channel whose lock the caller holds.
#[inline]
unsafe fn release_sender(local: bool, w: *mut Tasklet) {
    (*w).xfer_status.store(OK, Ordering::Relaxed);
    (*w).blocked_on.store(ptr::null_mut(), Ordering::Release);
    unblock_paired(local, w);
}

/// Who runs next after pairing with waiter `t`. Only a partner on the caller's own thread
/// switches locally; one on another thread goes back to its owner and the caller continues.
///
/// # Safety
/// `t` is a waiter of the channel whose lock the caller holds (so it is live).
#[inline(always)]
unsafe fn order(s: &Scheduler, st: &ChanState, t: *mut Tasklet, send: bool) -> Pairing {
    if s.owns(&*t) {
        Pairing { local: true, first: partner_first(st.preference, send), all: st.schedule_all }
    } else {
        Pairing { local: false, first: false, all: false }
    }
}

/// Sends `item`; blocks when no receiver waits and the buffer (if any) is full.
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
#[inline(always)]
pub unsafe fn send(ch: *const Channel, item: Item) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    announce(s, ch, me, true);
    let mut st = (*ch).st.lock();
    if !st.waiters.is_empty() && !st.senders {
        let r = st.waiters.front().unwrap().t;
        let p = order(s, &st, r, true);
        if let Err(e) = s.would_switch(p.first, p.all) {
            return e;
        }
        let (_, free_it) = pop_waiter(&mut st);
        give_to_receiver(p.local, r, item);
        drop(st);
        if free_it {
            free(ch);
        }
        s.wake_partner(r, p);
        return OK;
    }
    if !st.closing && (st.buf.len() as u64) < st.capacity as u64 {
        // A closing channel's queue does not grow (Stackless close()).
        if st.buf.try_reserve(1).is_err() {
            return fail(E_NOMEM, "out of memory growing a buffered channel");
        }
        st.buf.push_back(item);
        return OK;
    }
    // No partner: block.
    if (*me).block_trap.load(Ordering::Relaxed) {
        return fail(E_WOULD_BLOCK, "send would block and block_trap is set");
    }
    if st.closing {
        return fail(E_CLOSED, "send on a closed channel with no receiver");
    }
    if let Err(e) = s.check_block() {
        return e;
    }
    if let Err(e) = push_waiter(&mut st, Waiter { t: me, item }, true) {
        return e;
    }
    (*me).blocked_on.store(ch as *mut Channel, Ordering::Release);
    (*me).transition(RUNNABLE, State::Blocked);
    drop(st);
    match s.park() {
        Ok(E_CLOSED) => fail(E_CLOSED, "channel shut down while sending"),
        Ok(st) | Err(st) => st,
    }
}

/// Receives into `*out`; blocks when nothing is buffered and no sender waits.
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
#[inline(always)]
pub unsafe fn receive(ch: *const Channel, out: &mut *mut c_void) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    announce(s, ch, me, false);
    let mut st = (*ch).st.lock();
    let item;
    if let Some(front) = st.buf.front().copied() {
        // Buffered item; a waiting sender refills the buffer.
        let mut partner = None;
        if !st.waiters.is_empty() && st.senders {
            let w = st.waiters.front().unwrap().t;
            let p = order(s, &st, w, false);
            if let Err(e) = s.would_switch(p.first, p.all) {
                return e;
            }
            partner = Some(p);
        }
        st.buf.pop_front();
        item = front;
        if let Some(p) = partner {
            let (w, free_it) = pop_waiter(&mut st);
            let w = w.unwrap();
            st.buf.push_back(w.item);
            release_sender(p.local, w.t);
            drop(st);
            if free_it {
                free(ch);
            }
            s.wake_partner(w.t, p);
        } else {
            drop(st);
        }
    } else if !st.waiters.is_empty() && st.senders {
        let w = st.waiters.front().unwrap().t;
        let p = order(s, &st, w, false);
        if let Err(e) = s.would_switch(p.first, p.all) {
            return e;
        }
        let (w, free_it) = pop_waiter(&mut st);
        let w = w.unwrap();
        release_sender(p.local, w.t);
        item = w.item;
        drop(st);
        if free_it {
            free(ch);
        }
        s.wake_partner(w.t, p);
    } else {
        if (*me).block_trap.load(Ordering::Relaxed) {
            return fail(E_WOULD_BLOCK, "receive would block and block_trap is set");
        }
        if st.closing {
            return fail(E_CLOSED, "receive on a closed channel with nothing to receive");
        }
        if let Err(e) = s.check_block() {
            return e;
        }
        if let Err(e) = push_waiter(&mut st, Waiter { t: me, item: Item::Value(ptr::null_mut()) }, false) {
            return e;
        }
        (*me).blocked_on.store(ch as *mut Channel, Ordering::Release);
        (*me).transition(RUNNABLE, State::Blocked);
        drop(st);
        return match s.park() {
            Ok(OK) => {
                *out = (*me).xfer.load(Ordering::Relaxed);
                OK
            }
            Ok(E_CLOSED) => fail(E_CLOSED, "channel shut down while receiving"),
            Ok(code) => {
                // A user exception sent over the channel.
                (*me).exc_data.set((*me).xfer_data.load(Ordering::Relaxed));
                code
            }
            Err(pending) => pending,
        };
    }
    match item {
        Item::Value(v) => {
            *out = v;
            OK
        }
        Item::Exception(code, data) => {
            (*me).exc_data.set(data);
            code
        }
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
    match st.waiters.front() {
        Some(w) => {
            tasklet::retain(w.t);
            w.t
        }
        None => ptr::null_mut(),
    }
}

/// Closes the channel and wakes every waiter with `SLP_E_CLOSED` (buffered items stay for
/// receivers to drain). Waiters of other threads go back to their owners' queues.
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
pub unsafe fn shutdown(ch: *const Channel) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let (woken, orphaned) = {
        let mut st = (*ch).st.lock();
        st.closing = true;
        // The waiters move out of the channel's queue into this one (no allocation).
        let woken = std::mem::take(&mut st.waiters);
        for w in &woken {
            (*w.t).xfer_status.store(E_CLOSED, Ordering::Relaxed);
            (*w.t).blocked_on.store(ptr::null_mut(), Ordering::Release);
            unblock_paired(s.owns(&*w.t), w.t);
        }
        (woken, st.orphaned)
    };
    for w in &woken {
        s.wake_appended(w.t);
    }
    if orphaned && !woken.is_empty() {
        free(ch);
    }
    OK
}

#[cfg(test)]
mod tests;
