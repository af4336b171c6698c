//! Transfers: send, receive (each with an optional deadline or as a poll), shutdown, and the
//! removal of a waiter that was not paired (kill, timeout, deadlock delivery, thread exit).
//!
//! Every completion goes through the same two steps under the channel's lock: `take_partner`
//! finds the first waiter that can be paired (a plain waiter, or a selector this call manages
//! to claim), then the value moves and the partner is woken by the preference rules once the
//! lock is released. `try_send` / `try_receive` are those steps without blocking; `slp_select`
//! uses them too.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;

use parking_lot::MutexGuard;

use super::{announce, free, ChanState, Channel, Item, Waiter, BLOCKED, FREE_LOCK, RUNNABLE};
use crate::sched::{usable, Scheduler};
use crate::status::*;
use crate::tasklet::{self, State, Tasklet, WaitOn};

/// How a completed transfer goes on: is the partner on the caller's thread, does it run
/// first (the preference), or does the caller schedule (schedule_all)?
#[derive(Copy, Clone)]
pub struct Pairing {
    pub local: bool,
    pub first: bool,
    pub all: bool,
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

/// Adds a waiter (all waiters go the same direction); SLP_E_NOMEM when the queue cannot grow.
#[inline(always)]
pub(super) fn push_waiter(st: &mut ChanState, w: Waiter, senders: bool) -> Result<(), Status> {
    if st.waiters.len() == st.waiters.capacity() && st.waiters.try_reserve(1).is_err() {
        return Err(fail(E_NOMEM, "out of memory queueing a channel waiter"));
    }
    if st.waiters.is_empty() {
        st.senders = senders;
    }
    st.waiters.push_back(w);
    Ok(())
}

/// A waiter taken off the queue to be paired, with how the pairing goes on.
pub(super) struct Partner {
    pub w: Waiter,
    pub p: Pairing,
}

/// Takes the first waiter going the other way (`want_senders`) that can be paired now, or
/// None. A plain waiter always can. A selector can if this call claims it (Blocked →
/// Runnable by compare-and-swap: its other channels may race for it); one already claimed
/// elsewhere is a stale entry, dropped here. Refuses (Err) when the pairing would switch
/// while switching is not allowed, changing nothing. The taken waiter is Runnable, not
/// linked, and holds a message reference when it lives on another thread.
///
/// # Safety
/// The caller holds the channel's lock (`st`) and runs on `s`'s thread.
#[inline(always)]
pub(super) unsafe fn take_partner(
    s: &Scheduler,
    st: &mut ChanState,
    want_senders: bool,
    poll: bool,
) -> Result<Option<Partner>, Status> {
    loop {
        if st.senders != want_senders {
            return Ok(None);
        }
        let Some(w) = st.waiters.pop_front() else { return Ok(None) };
        let t = w.t;
        if w.sel && (*t).stored() != State::Blocked {
            continue; // a selector claimed elsewhere: a stale entry, dropped before anything
        }
        let mut p = order(s, st, t, !want_senders);
        if poll {
            // A poll never switches: the partner is appended, the caller goes on.
            p.first = false;
            p.all = false;
        }
        if let Err(e) = s.would_switch(p.first, p.all) {
            st.waiters.push_front(w); // refused: nothing changes (the slot was just freed)
            return Err(e);
        }
        if w.sel {
            if (*t).try_transition(BLOCKED, State::Runnable).is_err() {
                continue; // claimed by another channel, a timeout or a kill: stale
            }
            (*t).xfer_case.store(w.case as usize, Ordering::Relaxed);
        } else {
            // A plain transition: a plain waiter's state changes only under this lock.
            (*t).transition(BLOCKED, State::Runnable);
            (*t).blocked_on.store(ptr::null_mut(), Ordering::Release);
        }
        if !p.local {
            tasklet::retain(t); // the message's reference (see sched::remote::wake_remote)
        }
        return Ok(Some(Partner { w, p }));
    }
}

/// Hands `item` to a receiver just taken (channel lock held).
#[inline(always)]
unsafe fn give_to_receiver(r: *mut Tasklet, item: Item) {
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
}

/// Unlocks, frees an orphaned channel whose last waiter just left, and wakes the partner.
#[inline(always)]
unsafe fn finish(s: &Scheduler, ch: *const Channel, st: MutexGuard<'_, ChanState>, partner: Option<Partner>) {
    let free_it = st.orphaned && st.waiters.is_empty();
    drop(st);
    if free_it {
        free(ch);
    }
    if let Some(Partner { w, p }) = partner {
        s.wake_partner(w.t, p);
    }
}

/// The non-blocking part of a send: to a waiting receiver, or into the buffer. `Some(status)`
/// when it completed (or was refused), `None` when it would block (the lock is kept).
///
/// # Safety
/// `ch` is live; the caller is `s`'s running tasklet.
#[inline(always)]
pub(super) unsafe fn try_send<'a>(
    s: &Scheduler,
    ch: *const Channel,
    mut st: MutexGuard<'a, ChanState>,
    item: Item,
    poll: bool,
) -> Result<Status, MutexGuard<'a, ChanState>> {
    match take_partner(s, &mut st, false, poll) {
        Err(e) => return Ok(e),
        Ok(Some(partner)) => {
            give_to_receiver(partner.w.t, item);
            finish(s, ch, st, Some(partner));
            return Ok(OK);
        }
        Ok(None) => {}
    }
    if !st.closing && (st.buf.len() as u64) < st.capacity as u64 {
        // A closing channel's queue does not grow (Stackless close()).
        if st.buf.try_reserve(1).is_err() {
            return Ok(fail(E_NOMEM, "out of memory growing a buffered channel"));
        }
        st.buf.push_back(item);
        return Ok(OK);
    }
    Err(st)
}

/// The non-blocking part of a receive: a buffered item (a waiting sender refills the
/// buffer) or a waiting sender. `Ok(Ok(item))` when it got one, `Ok(Err(status))` when
/// refused, `Err(guard)` when it would block.
///
/// # Safety
/// As `try_send`.
#[inline(always)]
pub(super) unsafe fn try_receive<'a>(
    s: &Scheduler,
    ch: *const Channel,
    mut st: MutexGuard<'a, ChanState>,
    poll: bool,
) -> Result<Result<Item, Status>, MutexGuard<'a, ChanState>> {
    if let Some(front) = st.buf.front().copied() {
        let partner = match take_partner(s, &mut st, true, poll) {
            Err(e) => return Ok(Err(e)),
            Ok(p) => p,
        };
        st.buf.pop_front();
        if let Some(partner) = &partner {
            st.buf.push_back(partner.w.item);
            (*partner.w.t).xfer_status.store(OK, Ordering::Relaxed);
        }
        finish(s, ch, st, partner);
        return Ok(Ok(front));
    }
    match take_partner(s, &mut st, true, poll) {
        Err(e) => Ok(Err(e)),
        Ok(Some(partner)) => {
            (*partner.w.t).xfer_status.store(OK, Ordering::Relaxed);
            let item = partner.w.item;
            finish(s, ch, st, Some(partner));
            Ok(Ok(item))
        }
        Ok(None) => Err(st),
    }
}

/// A received item as the receive call returns it.
#[inline(always)]
pub(super) unsafe fn deliver(me: *mut Tasklet, item: Item, out: &mut *mut c_void) -> Status {
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

/// What a call that would block does first: `Some(status)` to return instead of blocking.
#[inline(always)]
unsafe fn refuse_block(
    s: &Scheduler,
    me: *mut Tasklet,
    st: &ChanState,
    timeout_ns: i64,
    what: &'static str,
) -> Option<Status> {
    if timeout_ns != 0 && (*me).block_trap.load(Ordering::Relaxed) {
        return Some(fail(E_WOULD_BLOCK, format_args!("{what} would block and block_trap is set")));
    }
    if st.closing {
        return Some(fail(E_CLOSED, format_args!("{what} on a closed channel with nothing to pair")));
    }
    if timeout_ns == 0 {
        return Some(fail(E_TIMEOUT, format_args!("{what}: the poll found no partner")));
    }
    if let Err(e) = s.check_block(timeout_ns > 0) {
        return Some(e);
    }
    if timeout_ns > 0 {
        if let Err(e) = s.reserve_timer() {
            return Some(e);
        }
    }
    None
}

/// Queues the running tasklet on `ch` (lock held), arms its deadline, and parks it. Returns
/// what `Scheduler::park` returns.
#[inline(always)]
unsafe fn wait(
    s: &Scheduler,
    ch: *const Channel,
    mut st: MutexGuard<'_, ChanState>,
    me: *mut Tasklet,
    w: Waiter,
    senders: bool,
    deadline: Option<i64>,
) -> Result<Result<Status, Status>, Status> {
    push_waiter(&mut st, w, senders)?;
    (*me).blocked_on.store(ch as *mut Channel, Ordering::Release);
    (*me).waiting.set(WaitOn::Channel);
    (*me).transition(RUNNABLE, State::Blocked);
    if let Some(at) = deadline {
        s.arm(me, at);
    }
    drop(st);
    Ok(s.park())
}

/// Sends `item`; blocks when no receiver waits and the buffer (if any) is full, for at most
/// `timeout_ns` (< 0: no limit; 0: a poll).
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
#[inline(always)]
pub unsafe fn send(ch: *const Channel, item: Item, timeout_ns: i64) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    announce(s, ch, me, true);
    // Read the clock before locking: a host clock is host code.
    let deadline = (timeout_ns > 0).then(|| s.deadline_after(timeout_ns));
    let st = match try_send(s, ch, (*ch).st.lock(), item, timeout_ns == 0) {
        Ok(status) => return status,
        Err(st) => st,
    };
    if let Some(e) = refuse_block(s, me, &st, timeout_ns, "send") {
        return e;
    }
    match wait(s, ch, st, me, Waiter { t: me, item, sel: false, case: 0 }, true, deadline) {
        Err(e) => e,
        Ok(Ok(E_CLOSED)) => fail(E_CLOSED, "channel shut down while sending"),
        Ok(Ok(E_TIMEOUT)) => fail(E_TIMEOUT, "send: the timeout passed with no receiver"),
        Ok(Ok(st)) | Ok(Err(st)) => st,
    }
}

/// Receives into `*out`; blocks when nothing is buffered and no sender waits, for at most
/// `timeout_ns` (< 0: no limit; 0: a poll). `*out` is written only on SLP_OK.
///
/// # Safety
/// `ch` is a live channel the caller holds a reference to.
#[inline(always)]
pub unsafe fn receive(ch: *const Channel, out: &mut *mut c_void, timeout_ns: i64) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    announce(s, ch, me, false);
    let deadline = (timeout_ns > 0).then(|| s.deadline_after(timeout_ns));
    let st = match try_receive(s, ch, (*ch).st.lock(), timeout_ns == 0) {
        Ok(Ok(item)) => return deliver(me, item, out),
        Ok(Err(e)) => return e,
        Err(st) => st,
    };
    if let Some(e) = refuse_block(s, me, &st, timeout_ns, "receive") {
        return e;
    }
    let w = Waiter { t: me, item: Item::Value(ptr::null_mut()), sel: false, case: 0 };
    match wait(s, ch, st, me, w, false, deadline) {
        Err(e) => e,
        Ok(Ok(OK)) => {
            *out = (*me).xfer.load(Ordering::Relaxed);
            OK
        }
        Ok(Ok(E_CLOSED)) => fail(E_CLOSED, "channel shut down while receiving"),
        Ok(Ok(E_TIMEOUT)) => fail(E_TIMEOUT, "receive: the timeout passed with no sender"),
        Ok(Ok(code)) => {
            // A user exception sent over the channel.
            (*me).exc_data.set((*me).xfer_data.load(Ordering::Relaxed));
            code
        }
        Ok(Err(pending)) => pending,
    }
}

/// Takes `t` off the channel it waits on, if any (kill, throw, timeout, deadlock delivery,
/// thread exit); the balance follows. Returns whether it did (false: a partner paired `t`
/// first, or it was not waiting). Safe from any thread: the waiter list and `blocked_on`
/// change only under the channel's lock, so a partner that already paired `t` wins. A removed
/// waiter becomes Runnable (not linked: the caller links it or posts it).
///
/// # Safety
/// `t` is a live tasklet (the caller holds a reference); no channel lock is held.
pub unsafe fn remove_waiter(t: *mut Tasklet) -> bool {
    let free_it = {
        // Shared: the channel read from `blocked_on` cannot be freed until this is dropped.
        let _shared = FREE_LOCK.read();
        let ch = (*t).blocked_on.load(Ordering::Acquire) as *const Channel;
        if ch.is_null() {
            return false;
        }
        let mut st = (*ch).st.lock();
        if !ptr::eq((*t).blocked_on.load(Ordering::Relaxed), ch) {
            return false; // paired (or removed) meanwhile
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
    true
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
        let mut woken = std::mem::take(&mut st.waiters);
        woken.retain(|w| {
            let t = w.t;
            if w.sel {
                if (*t).try_transition(BLOCKED, State::Runnable).is_err() {
                    return false; // a stale selector entry
                }
                (*t).xfer_case.store(w.case as usize, Ordering::Relaxed);
            } else {
                (*t).transition(BLOCKED, State::Runnable);
                (*t).blocked_on.store(ptr::null_mut(), Ordering::Release);
            }
            (*t).xfer_status.store(E_CLOSED, Ordering::Relaxed);
            if !s.owns(&*t) {
                tasklet::retain(t); // the message's reference
            }
            true
        });
        (woken, st.orphaned)
    };
    for w in &woken {
        s.wake_appended(w.t);
    }
    if orphaned {
        free(ch);
    }
    OK
}
