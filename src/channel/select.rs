//! `slp_select`: wait on several channel cases at once (Go's select over Stackless channels).
//!
//! A selector scans its cases in order and completes the first ready one exactly as a plain
//! send or receive would (same preference rules). With none ready it becomes a waiter on every
//! enabled case — each channel's balance counts it — marked `sel` with its case index. The
//! first partner to *claim* it (compare-and-swap of its state Blocked → Runnable, under that
//! partner's channel lock) completes that case; partners on its other channels then find a
//! stale entry, which they drop. A timeout or a kill claims it the same way. Once woken, the
//! selector removes its remaining entries from every channel before the call returns, so no
//! entry outlives the call (the cases array lives on the selector's stack).
//!
//! A selector killed from another thread leaves its channels when its own thread applies the
//! kill (a plain waiter leaves before the killing call returns).

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;

use super::transfer::{deliver, push_waiter, try_receive, try_send};
use super::{free, Channel, Item, Waiter, BLOCKED, RUNNABLE};
use crate::sched::{usable, Scheduler};
use crate::status::*;
use crate::signal::{self, Signal};
use crate::tasklet::{State, Tasklet, WaitOn};

/// `slp_select_case.op`: send `value` on `channel`.
pub(crate) const SELECT_SEND: i32 = 1;
/// `slp_select_case.op`: receive from `channel` into `value`.
pub(crate) const SELECT_RECEIVE: i32 = 2;
/// `slp_select_case.op`: wait for `signal` (the threads toolkit).
pub(crate) const SELECT_SIGNAL: i32 = 3;

/// One case of `slp_select` (`slp_select_case`, layout pinned).
#[repr(C)]
pub struct SelectCase {
    /// SLP_SELECT_SEND, SLP_SELECT_RECEIVE or SLP_SELECT_SIGNAL.
    pub op: i32,
    /// SEND / RECEIVE: the channel; NULL disables the case (never chosen, like Go's nil
    /// channel).
    pub channel: *mut Channel,
    /// SIGNAL: the signal; NULL disables the case.
    pub signal: *mut Signal,
    /// SEND: the value to send; RECEIVE: the value received, written when this case
    /// completes.
    pub value: *mut c_void,
}

/// A disabled case: its channel or signal is NULL.
fn case_disabled(c: &SelectCase) -> bool {
    if c.op == SELECT_SIGNAL {
        c.signal.is_null()
    } else {
        c.channel.is_null()
    }
}

/// Checks the cases: every op known, and no channel both sent on and received from (a
/// selector cannot be its own partner, and a channel's waiters all go one way).
///
/// # Safety
/// `cases` is valid for `n` reads.
pub unsafe fn validate(cases: *const SelectCase, n: usize) -> Result<(), Status> {
    if n == 0 {
        return Ok(()); // `cases` may be NULL
    }
    // One pass: a case is checked against the ones before it (n is small: a few cases).
    let cases = std::slice::from_raw_parts(cases, n);
    for (i, a) in cases.iter().enumerate() {
        match a.op {
            SELECT_SIGNAL => continue,
            SELECT_SEND | SELECT_RECEIVE => {}
            op => return Err(fail(E_INVALID, format_args!("slp_select: case {i} has unknown op {op}"))),
        }
        if a.channel.is_null() {
            continue;
        }
        let clash = cases[..i]
            .iter()
            .position(|b| b.op != SELECT_SIGNAL && b.op != a.op && ptr::eq(b.channel, a.channel));
        if let Some(j) = clash {
            return Err(fail(
                E_INVALID,
                format_args!("slp_select: cases {j} and {i} send on and receive from the same channel"),
            ));
        }
    }
    Ok(())
}

/// `slp_select`: completes one case, or waits for at most `timeout_ns` (< 0: no limit; 0: a
/// poll). `*index` is written whenever a case completed.
///
/// # Safety
/// `cases` is valid for `n` reads and writes and was validated; its channels are live.
pub unsafe fn select(cases: *mut SelectCase, n: usize, timeout_ns: i64, index: &mut usize) -> Status {
    loop {
        if let Some(st) = select_once(cases, n, timeout_ns, index) {
            return st;
        }
    }
}

/// One attempt of `select`: None when a case that became ready while registering was taken
/// by another thread before this one could complete it (then it starts over).
unsafe fn select_once(cases: *mut SelectCase, n: usize, timeout_ns: i64, index: &mut usize) -> Option<Status> {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return Some(e),
    };
    let me = s.running();
    let deadline = (timeout_ns > 0).then(|| s.deadline_after(timeout_ns));
    // 1. The first ready case wins.
    for i in 0..n {
        if let Some(st) = try_case(s, me, cases, i, index, timeout_ns == 0) {
            return Some(st);
        }
    }
    let enabled = (0..n).any(|i| !case_disabled(&*cases.add(i)));
    // 2. Nothing ready.
    if timeout_ns == 0 {
        return Some(fail(E_TIMEOUT, "slp_select: the poll found no ready case"));
    }
    if (*me).block_trap.load(Ordering::Relaxed) {
        return Some(fail(E_WOULD_BLOCK, "slp_select would block and block_trap is set"));
    }
    if !enabled && deadline.is_none() {
        return Some(fail(E_DEADLOCK, "deadlock: slp_select with no enabled case and no timeout"));
    }
    // Pending deliveries and traps now; the deadlock check once registered (a partner on
    // another thread may arrive meanwhile: registering then finds it).
    if let Err(e) = s.check_block(true) {
        return Some(e);
    }
    if deadline.is_some() {
        if let Err(e) = s.reserve_timer() {
            return Some(e);
        }
    }
    // 3. Wait on every enabled case.
    (*me).sel_cases.set((cases, n));
    (*me).waiting.set(WaitOn::Select);
    (*me).transition(RUNNABLE, State::Blocked);
    for i in 0..n {
        match register(me, cases, i) {
            Registered::Yes => {}
            Registered::Claimed => break, // another thread completed a case meanwhile
            Registered::Ready => {
                // Case i became ready while registering: claim ourselves, leave the other
                // channels, and complete it as in step 1.
                if (*me).try_transition(BLOCKED, State::Runnable).is_ok() {
                    leave_all(me, cases, n);
                    (*me).waiting.set(WaitOn::Nothing);
                    if let Some(st) = try_case(s, me, cases, i, index, false) {
                        return Some(st);
                    }
                    // Taken meanwhile by another thread: start over.
                    return None;
                }
                break; // claimed by a partner of an earlier case
            }
            Registered::NoMemory(e) => {
                if (*me).try_transition(BLOCKED, State::Runnable).is_ok() {
                    leave_all(me, cases, n);
                    (*me).waiting.set(WaitOn::Nothing);
                    return Some(e);
                }
                break;
            }
        }
    }
    if (*me).stored() == State::Blocked {
        if let Err(e) = s.check_deadlock(deadline.is_some()) {
            if (*me).try_transition(BLOCKED, State::Runnable).is_ok() {
                leave_all(me, cases, n);
                (*me).waiting.set(WaitOn::Nothing);
                (*me).sel_cases.set((ptr::null_mut(), 0));
                return Some(e);
            }
            // Claimed meanwhile: a case completed after all.
        }
    }
    if let Some(at) = deadline {
        s.arm(me, at);
    }
    let r = if (*me).stored() == State::Blocked {
        s.park()
    } else {
        // Claimed before it parked (a partner on another thread): the Ready message finds it
        // still in the run queue and is ignored.
        s.disarm(me);
        (*me).waiting.set(WaitOn::Nothing);
        Ok((*me).xfer_status.load(Ordering::Acquire))
    };
    leave_all(me, cases, n);
    (*me).sel_cases.set((ptr::null_mut(), 0));
    Some(match r {
        Err(pending) => pending,
        Ok(E_TIMEOUT) => fail(E_TIMEOUT, "slp_select: the timeout passed with no ready case"),
        Ok(status) => {
            let i = (*me).xfer_case.load(Ordering::Relaxed);
            *index = i;
            let c = &mut *cases.add(i);
            match status {
                OK if c.op == SELECT_RECEIVE => {
                    c.value = (*me).xfer.load(Ordering::Relaxed);
                    OK
                }
                OK => OK,
                E_CLOSED => fail(E_CLOSED, format_args!("slp_select: case {i}'s channel shut down")),
                code => {
                    (*me).exc_data.set((*me).xfer_data.load(Ordering::Relaxed));
                    code
                }
            }
        }
    })
}

/// Tries case `i` without blocking: `Some(status)` when it completed (or was refused), with
/// `*index` written for a completion.
unsafe fn try_case(
    s: &Scheduler,
    me: *mut Tasklet,
    cases: *mut SelectCase,
    i: usize,
    index: &mut usize,
    poll: bool,
) -> Option<Status> {
    let c = &mut *cases.add(i);
    if c.op == SELECT_SIGNAL {
        if !c.signal.is_null() && signal::is_go(c.signal) {
            *index = i;
            return Some(OK);
        }
        return None;
    }
    let ch = c.channel as *const Channel;
    if ch.is_null() {
        return None;
    }
    let st = (*ch).st.lock();
    if c.op == SELECT_SEND {
        match try_send(s, ch, st, Item::Value(c.value), poll) {
            Ok(status) => {
                if status == OK {
                    *index = i;
                }
                Some(status)
            }
            Err(st) if st.closing => {
                drop(st);
                *index = i;
                Some(fail(E_CLOSED, format_args!("slp_select: case {i}'s channel is closed")))
            }
            Err(_) => None,
        }
    } else {
        match try_receive(s, ch, st, poll) {
            Ok(Ok(item)) => {
                *index = i;
                let mut v = ptr::null_mut();
                let status = deliver(me, item, &mut v);
                if status == OK {
                    c.value = v;
                }
                Some(status)
            }
            Ok(Err(e)) => Some(e),
            Err(st) if st.closing => {
                drop(st);
                *index = i;
                Some(fail(E_CLOSED, format_args!("slp_select: case {i}'s channel is closed")))
            }
            Err(_) => None,
        }
    }
}

enum Registered {
    Yes,
    /// The case is ready now: complete it instead of waiting.
    Ready,
    /// The selector was claimed by a partner of an earlier case.
    Claimed,
    NoMemory(Status),
}

/// Queues the selector on case `i`'s channel, unless the case became ready meanwhile.
unsafe fn register(me: *mut Tasklet, cases: *mut SelectCase, i: usize) -> Registered {
    let c = &*cases.add(i);
    if c.op == SELECT_SIGNAL {
        if c.signal.is_null() {
            return Registered::Yes;
        }
        if (*me).stored() != State::Blocked {
            return Registered::Claimed;
        }
        return match signal::select_register(c.signal, me, i as u32) {
            Ok(true) => Registered::Yes,
            Ok(false) => Registered::Ready,
            Err(e) => Registered::NoMemory(e),
        };
    }
    let ch = c.channel as *const Channel;
    if ch.is_null() {
        return Registered::Yes;
    }
    let mut st = (*ch).st.lock();
    if (*me).stored() != State::Blocked {
        return Registered::Claimed;
    }
    let send = c.op == SELECT_SEND;
    // Ready: a partner going the other way (possibly only stale selector entries, which the
    // completion attempt drops), buffer room or items, or closing with nothing to pair.
    let partner = !st.waiters.is_empty() && st.senders != send;
    let ready = partner
        || st.closing
        || if send { (st.buf.len() as u64) < st.capacity as u64 } else { !st.buf.is_empty() };
    if ready {
        return Registered::Ready;
    }
    let w = Waiter { t: me, item: Item::Value(if send { c.value } else { ptr::null_mut() }), sel: true, case: i as u32 };
    match push_waiter(&mut st, w, send) {
        Ok(()) => Registered::Yes,
        Err(e) => Registered::NoMemory(e),
    }
}

/// Removes every entry of the selector `me` from its cases' channels (balances follow).
unsafe fn leave_all(me: *mut Tasklet, cases: *mut SelectCase, n: usize) {
    for i in 0..n {
        let c = &*cases.add(i);
        if c.op == SELECT_SIGNAL {
            if !c.signal.is_null() {
                signal::select_leave(c.signal, me);
            }
            continue;
        }
        let ch = c.channel as *const Channel;
        if ch.is_null() {
            continue;
        }
        let free_it = {
            let mut st = (*ch).st.lock();
            let before = st.waiters.len();
            st.waiters.retain(|w| w.t != me);
            before != st.waiters.len() && st.orphaned && st.waiters.is_empty()
        };
        if free_it {
            free(ch);
        }
    }
}

/// Ends the wait of a blocked selector (kill, throw, timeout, thread exit) on its own thread:
/// claims it and removes it from every channel. Returns whether this call claimed it (false:
/// a partner completed a case first; its transfer stands).
///
/// # Safety
/// `t` is a selector of the calling thread, suspended in `select` (its cases are live).
pub unsafe fn cancel_wait(t: *mut Tasklet) -> bool {
    let claimed = (*t).try_transition(BLOCKED, State::Runnable).is_ok();
    let (cases, n) = (*t).sel_cases.get();
    if !cases.is_null() {
        leave_all(t, cases, n);
    }
    claimed
}
