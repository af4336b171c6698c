//! Locks (mo-threads `Lock`): a monitor owned by a tasklet (a thread's main tasklet for plain
//! threads), not reentrant, whose `wait` always re-acquires before it returns, and whose every
//! release wakes one waiter.
//!
//! Fairness: ownership is handed off in FIFO order — a release gives the lock to the first
//! tasklet queued in acquire (or re-acquiring after a wait) before it returns, so a releaser
//! that acquires again at once queues behind the others instead of starving them (the
//! trade-off: a hand-off costs a switch where a barging lock would not).
//!
//! State behind the lock's mutex: the owner, the acquirers (blocked, FIFO) and the waiters
//! (blocked in `wait`, not yet woken). A blocked tasklet's Blocked → Runnable transition
//! happens under that mutex (by the releaser, its timer or a kill on its own thread).
//!
//! Lock order: a lock's mutex is taken alone.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::sched::{remote, usable, Scheduler};
use crate::status::*;
use crate::tasklet::{self, State, States, Tasklet, WaitOn};

const BLOCKED: States = States::of(&[State::Blocked]);

/// Locks held right now, process-wide (`slp_counters.locks_held`).
pub static HELD: AtomicU64 = AtomicU64::new(0);

struct LockState {
    owner: *mut Tasklet,
    acquirers: VecDeque<*mut Tasklet>,
    waiters: VecDeque<*mut Tasklet>,
}

/// A lock (`slp_lock`). Opaque; single owner of the handle (`slp_lock_new` / `slp_lock_free`).
pub struct Lock {
    st: Mutex<LockState>,
}

// SAFETY: all state is behind the mutex; the tasklet pointers are blocked tasklets, alive
// while queued (they leave before their wait returns).
unsafe impl Send for Lock {}
// SAFETY: as above.
unsafe impl Sync for Lock {}

/// A new lock, or None when memory is exhausted.
pub fn new() -> Option<*mut Lock> {
    let p = crate::mem::alloc_uninit::<Lock>()?;
    // SAFETY: fresh allocation of the right layout, initialised whole.
    unsafe {
        p.write(Lock {
            st: Mutex::new(LockState { owner: ptr::null_mut(), acquirers: VecDeque::new(), waiters: VecDeque::new() }),
        })
    };
    Some(p)
}

/// `slp_lock_free`: frees an unheld lock nobody waits on; refuses (false) otherwise.
///
/// # Safety
/// `l` is a live lock handle, not used again after a successful free.
pub unsafe fn free(l: *mut Lock) -> bool {
    {
        let st = (*l).st.lock();
        if !st.owner.is_null() || !st.acquirers.is_empty() || !st.waiters.is_empty() {
            return false;
        }
    }
    drop(Box::from_raw(l));
    true
}

/// Wakes `t` (claimed, Runnable) after the mutex is released: appended here, or posted.
unsafe fn wake(here: Option<&Scheduler>, t: *mut Tasklet) {
    match here {
        Some(h) if h.owns(&*t) => h.queue_woken(t),
        _ => remote::wake_remote(t),
    }
}

/// Gives the lock to the first acquirer (claimed under the mutex; woken by the caller), or
/// frees it. Returns the tasklet to wake.
unsafe fn hand_off(st: &mut LockState, here: Option<&Scheduler>) -> *mut Tasklet {
    if let Some(t) = st.acquirers.pop_front() {
        // A plain transition: a queued tasklet's state changes only under this mutex.
        (*t).transition(BLOCKED, State::Runnable);
        st.owner = t;
        if !here.is_some_and(|h| h.owns(&*t)) {
            tasklet::retain(t); // the message's reference
        }
        return t;
    }
    st.owner = ptr::null_mut();
    HELD.fetch_sub(1, Ordering::Relaxed);
    ptr::null_mut()
}

/// Moves the first waiter (in `wait`, not yet woken) to the acquirers: it re-acquires next.
fn notify_one(st: &mut LockState) {
    if let Some(t) = st.waiters.pop_front() {
        // SAFETY: queued tasklets are alive; its wait status: woken, not timed out.
        unsafe { (*t).xfer_status.store(OK, Ordering::Relaxed) };
        st.acquirers.push_back(t);
    }
}

/// Marks the running tasklet `me` Blocked on the lock. Called with the lock's mutex held, in
/// the same critical section that queues it: a releaser on another thread that hands it the
/// lock must find it Blocked (or its wake-up would be lost).
unsafe fn mark_blocked(l: *mut Lock, me: *mut Tasklet) {
    (*me).blocked_lock.store(l, Ordering::Release);
    (*me).waiting.set(WaitOn::Lock);
    (*me).transition(States::of(&[State::Runnable]), State::Blocked);
}

/// Parks `me` (queued and Blocked, mutex released) until it owns the lock.
unsafe fn block(s: &Scheduler, me: *mut Tasklet, deadline: Option<i64>) -> Result<Status, Status> {
    if let Some(at) = deadline {
        s.arm(me, at);
    }
    s.park()
}

/// `slp_lock_acquire`.
///
/// # Safety
/// `l` is a live lock.
pub unsafe fn acquire(l: *mut Lock) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    let mut st = (*l).st.lock();
    if st.owner.is_null() {
        st.owner = me;
        HELD.fetch_add(1, Ordering::Relaxed);
        return OK;
    }
    if st.owner == me {
        return fail(
            E_DEADLOCK,
            format_args!("slp_lock_acquire: {} already holds this lock (locks are not reentrant)", (*me).describe()),
        );
    }
    if (*me).block_trap.load(Ordering::Relaxed) {
        return fail(E_WOULD_BLOCK, "slp_lock_acquire would block and block_trap is set");
    }
    if let Err(e) = s.check_block(false) {
        return e;
    }
    if st.acquirers.try_reserve(1).is_err() {
        return fail(E_NOMEM, "slp_lock_acquire: out of memory");
    }
    st.acquirers.push_back(me);
    mark_blocked(l, me);
    drop(st);
    let r = block(s, me, None);
    (*me).blocked_lock.store(ptr::null_mut(), Ordering::Release);
    match r {
        Ok(_) => OK, // handed the lock
        Err(pending) => pending,
    }
}

/// `slp_lock_release`: hands the lock to the next acquirer and wakes one waiter.
///
/// # Safety
/// `l` is a live lock.
pub unsafe fn release(l: *mut Lock) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    let next = {
        let mut st = (*l).st.lock();
        if st.owner != me {
            return fail(E_STATE, "slp_lock_release: the calling tasklet does not hold this lock");
        }
        notify_one(&mut st);
        hand_off(&mut st, Some(s))
    };
    if !next.is_null() {
        wake(Some(s), next);
    }
    OK
}

/// `slp_lock_wait`: releases the lock (waking one waiter), waits to be woken by a release or
/// for the timeout, and re-acquires before it returns: OK when woken, E_TIMEOUT on timeout.
///
/// # Safety
/// `l` is a live lock.
pub unsafe fn wait(l: *mut Lock, timeout_ns: i64) -> Status {
    let s = match usable() {
        Ok(s) => s,
        Err(e) => return e,
    };
    let me = s.running();
    let deadline = (timeout_ns >= 0).then(|| s.deadline_after(timeout_ns));
    let next = {
        let mut st = (*l).st.lock();
        if st.owner != me {
            return fail(E_STATE, "slp_lock_wait: the calling tasklet does not hold this lock");
        }
        if (*me).block_trap.load(Ordering::Relaxed) {
            return fail(E_WOULD_BLOCK, "slp_lock_wait would block and block_trap is set");
        }
        // The release inside wait hands the lock on or wakes a waiter: then that party will
        // release again and wake this one, so only a wait that wakes nobody can be a deadlock.
        let wakes_someone = !st.acquirers.is_empty() || !st.waiters.is_empty();
        if let Err(e) = s.check_block(deadline.is_some() || wakes_someone) {
            return e;
        }
        if deadline.is_some() {
            if let Err(e) = s.reserve_timer() {
                return e;
            }
        }
        if st.waiters.try_reserve(1).is_err() || st.acquirers.try_reserve(1).is_err() {
            return fail(E_NOMEM, "slp_lock_wait: out of memory");
        }
        notify_one(&mut st);
        let next = hand_off(&mut st, Some(s));
        st.waiters.push_back(me);
        (*me).xfer_status.store(OK, Ordering::Relaxed);
        mark_blocked(l, me);
        next
    };
    if !next.is_null() {
        wake(Some(s), next);
    }
    // Queued as a waiter: parks until it owns the lock again.
    let r = block(s, me, deadline);
    (*me).blocked_lock.store(ptr::null_mut(), Ordering::Release);
    match r {
        Ok(E_TIMEOUT) => fail(E_TIMEOUT, "slp_lock_wait: the timeout passed (the lock is held again)"),
        Ok(_) => OK,
        Err(pending) => pending,
    }
}

/// The timer of a tasklet in `wait` fired (its own thread): it stops waiting and re-acquires.
/// Returns true when it got the lock at once (the caller appends it); false when it now queues
/// as an acquirer (or was already woken).
///
/// # Safety
/// `t` is a tasklet of the calling thread blocked with `WaitOn::Lock`.
pub unsafe fn timed_out(t: *mut Tasklet) -> bool {
    let l = (*t).blocked_lock.load(Ordering::Acquire);
    if l.is_null() {
        return false;
    }
    let mut st = (*l).st.lock();
    let Some(i) = st.waiters.iter().position(|&w| w == t) else {
        return false; // woken by a release first: it re-acquires in turn, status OK
    };
    st.waiters.remove(i);
    (*t).xfer_status.store(E_TIMEOUT, Ordering::Relaxed);
    if st.owner.is_null() {
        st.owner = t;
        HELD.fetch_add(1, Ordering::Relaxed);
        (*t).transition(BLOCKED, State::Runnable);
        true
    } else {
        st.acquirers.push_back(t);
        false
    }
}

/// Takes `t` off the lock's queues (a kill or throw on its own thread, a deadlock delivery,
/// thread exit): it does not hold the lock when its call returns. Returns whether it did.
///
/// # Safety
/// `t` is a tasklet of the calling thread blocked with `WaitOn::Lock`.
pub unsafe fn remove_waiter(t: *mut Tasklet) -> bool {
    let l = (*t).blocked_lock.load(Ordering::Acquire);
    if l.is_null() {
        return false;
    }
    let mut st = (*l).st.lock();
    let before = st.waiters.len() + st.acquirers.len();
    st.waiters.retain(|&w| w != t);
    st.acquirers.retain(|&w| w != t);
    if st.waiters.len() + st.acquirers.len() == before {
        return false; // handed the lock meanwhile: its wake-up is on its way
    }
    (*t).transition(BLOCKED, State::Runnable);
    true
}
