//! Signals (mo-threads `Signal`): an irreversible binary semaphore that threads and tasklets
//! wait on, with `then` callbacks, and derived signals (`or`, `and`) that unsubscribe from their
//! inputs when released. Tills (`till.rs`) are signals that a timer thread fires.
//!
//! A signal's waiters and callbacks sit behind its lock. A waiting tasklet is Blocked with
//! `WaitOn::Signal` and its entry here; `go` takes every entry under the lock — claiming each
//! (selectors by compare-and-swap, like channel waiters) — and wakes them after unlocking:
//! appended to the run queue when they belong to the calling thread, posted to their owner
//! otherwise. A waiter removed by its own thread (timeout, kill) leaves under the same lock.
//!
//! Derived signals hold references to their inputs and subscribe to them with internal `then`
//! entries that point back without a reference; `go` on an input turns such an entry into a
//! reference only if the derived signal is still alive (its count is not zero), under the
//! input's lock, which the derived signal's release also takes to unsubscribe. So a released
//! derived signal leaves nothing behind in its inputs, and no input fires a freed one.
//!
//! Lock order: a signal's lock is taken alone (never with a channel's or another signal's).

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::sched::callback::{self, Callback};
use crate::sched::{remote, sched_opt, usable};
use crate::status::*;
use crate::tasklet::{self, State, States, Tasklet, WaitOn};

const BLOCKED: States = States::of(&[State::Blocked]);

/// `void fn(void *user_data)`: a `then` callback.
pub type ThenFn = unsafe extern "C" fn(user_data: *mut c_void);

enum Action {
    /// A host callback.
    Call(ThenFn, usize),
    /// An input of a derived signal went: tell it (no reference held; see the module docs).
    Derived(*const Signal),
}

struct Then {
    token: u64,
    action: Action,
}

/// A tasklet waiting on the signal: a plain waiter, or a selector with its case.
struct Waiter {
    t: *mut Tasklet,
    sel: bool,
    case: u32,
}

struct SigState {
    waiters: Vec<Waiter>,
    thens: Vec<Then>,
    next_token: u64,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Kind {
    Plain,
    Or,
    And,
}

/// A signal (`slp_signal`). Opaque; reference counted.
pub struct Signal {
    refs: AtomicUsize,
    /// Went (set under the lock; read without it as a fast path).
    fired: AtomicBool,
    st: Mutex<SigState>,
    kind: Kind,
    /// Derived: the inputs (each held by a reference) and this signal's subscription token
    /// in each; set at creation.
    inputs: [(*mut Signal, u64); 2],
    /// And: inputs that have not gone yet.
    remaining: AtomicU32,
}

// SAFETY: all mutable state is behind the lock or atomic; the raw pointers are tasklets and
// signals kept alive by the rules in the module docs.
unsafe impl Send for Signal {}
// SAFETY: as above.
unsafe impl Sync for Signal {}

fn alloc(kind: Kind) -> Option<*mut Signal> {
    let p = crate::mem::alloc_uninit::<Signal>()?;
    // SAFETY: fresh allocation of the right layout, initialised whole.
    unsafe {
        p.write(Signal {
            refs: AtomicUsize::new(1),
            fired: AtomicBool::new(false),
            st: Mutex::new(SigState { waiters: Vec::new(), thens: Vec::new(), next_token: 1 }),
            kind,
            inputs: [(ptr::null_mut(), 0); 2],
            remaining: AtomicU32::new(0),
        })
    };
    Some(p)
}

/// A new signal with one reference, or None when memory is exhausted.
pub fn new() -> Option<*mut Signal> {
    alloc(Kind::Plain)
}

/// Adds a reference.
///
/// # Safety
/// `s` is a live signal the caller holds a reference to.
pub unsafe fn retain(s: *const Signal) {
    (*s).refs.fetch_add(1, Ordering::Relaxed);
}

/// A reference from a pointer that may have reached zero: only if it has not.
unsafe fn upgrade(s: *const Signal) -> bool {
    crate::mem::retain_if_live(&(*s).refs)
}

/// Drops a reference; the last one unsubscribes a derived signal from its inputs and frees it.
///
/// # Safety
/// `s` is a live signal and the caller owns the reference it gives up.
pub unsafe fn release(s: *mut Signal) {
    if (*s).refs.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    fence(Ordering::Acquire);
    for (input, token) in (*s).inputs {
        if input.is_null() {
            continue;
        }
        {
            let mut st = (*input).st.lock();
            st.thens.retain(|t| t.token != token);
        }
        release(input);
    }
    drop(Box::from_raw(s));
}

/// Has it gone?
///
/// # Safety
/// `s` is a live signal.
pub unsafe fn is_go(s: *const Signal) -> bool {
    (*s).fired.load(Ordering::Acquire)
}

/// `slp_signal_go`: releases every waiter and runs the callbacks, once.
///
/// # Safety
/// `s` is a live signal the caller holds a reference to.
pub unsafe fn go(s: *const Signal) -> Status {
    if (*s).fired.load(Ordering::Acquire) {
        return OK;
    }
    let (waiters, thens) = {
        let mut st = (*s).st.lock();
        if (*s).fired.load(Ordering::Relaxed) {
            return OK;
        }
        (*s).fired.store(true, Ordering::Release);
        let mut waiters = std::mem::take(&mut st.waiters);
        let here = sched_opt();
        waiters.retain(|w| {
            let t = w.t;
            if (*t).try_transition(BLOCKED, State::Runnable).is_err() {
                return false; // a selector claimed elsewhere, or a waiter leaving
            }
            if w.sel {
                (*t).xfer_case.store(w.case as usize, Ordering::Relaxed);
            }
            (*t).xfer_status.store(OK, Ordering::Relaxed);
            if !here.is_some_and(|h| h.owns(&*t)) {
                tasklet::retain(t); // the message's reference
            }
            true
        });
        let mut thens = std::mem::take(&mut st.thens);
        // Derived signals still alive get a reference for the call below.
        thens.retain(|t| match t.action {
            Action::Derived(d) => upgrade(d),
            Action::Call(..) => true,
        });
        (waiters, thens)
    };
    // The callbacks first, then the waiters: a wait that returns sees what the callbacks did
    // (and derived signals have gone).
    for t in thens {
        match t.action {
            Action::Call(f, ud) => {
                let _scope = callback::enter(Callback::SignalThen);
                f(ud as *mut c_void);
            }
            Action::Derived(d) => {
                input_went(d);
                release(d as *mut Signal);
            }
        }
    }
    let here = sched_opt();
    for w in &waiters {
        match here {
            Some(h) if h.owns(&*w.t) => h.queue_woken(w.t),
            _ => remote::wake_remote(w.t),
        }
    }
    OK
}

/// An input of the derived signal `d` went.
unsafe fn input_went(d: *const Signal) {
    match (*d).kind {
        Kind::Or => {
            go(d);
        }
        Kind::And => {
            if (*d).remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                go(d);
            }
        }
        Kind::Plain => {}
    }
}

/// `slp_signal_then`: `Ok(token)`, the callback registered (or already run: the signal had
/// gone).
///
/// # Safety
/// `s` is a live signal the caller holds a reference to; `f` is safe to call with `ud`.
pub unsafe fn then(s: *const Signal, f: ThenFn, ud: *mut c_void) -> Result<u64, Status> {
    let token = {
        let mut st = (*s).st.lock();
        let token = st.next_token;
        st.next_token += 1;
        if !(*s).fired.load(Ordering::Relaxed) {
            if st.thens.try_reserve(1).is_err() {
                return Err(fail(E_NOMEM, "slp_signal_then: out of memory"));
            }
            st.thens.push(Then { token, action: Action::Call(f, ud as usize) });
            return Ok(token);
        }
        token
    };
    let _scope = callback::enter(Callback::SignalThen);
    f(ud);
    Ok(token)
}

/// `slp_signal_remove_then`: SLP_OK when the callback was removed before it ran.
///
/// # Safety
/// `s` is a live signal the caller holds a reference to.
pub unsafe fn remove_then(s: *const Signal, token: u64) -> Status {
    let mut st = (*s).st.lock();
    let before = st.thens.len();
    st.thens.retain(|t| t.token != token || matches!(t.action, Action::Derived(_)));
    if st.thens.len() != before {
        OK
    } else {
        fail(
            E_STATE,
            format_args!("slp_signal_remove_then: token {token} is not pending (it ran, was removed, or is unknown)"),
        )
    }
}

/// `slp_signal_or` / `slp_signal_and`: a derived signal (a new reference).
///
/// # Safety
/// `a` and `b` are live signals the caller holds references to.
pub unsafe fn derive(a: *mut Signal, b: *mut Signal, and: bool) -> Result<*mut Signal, Status> {
    let kind = if and { Kind::And } else { Kind::Or };
    let Some(d) = alloc(kind) else {
        return Err(fail(E_NOMEM, "slp_signal_or/and: out of memory"));
    };
    (*d).remaining.store(2, Ordering::Relaxed);
    let mut went = 0;
    for (i, input) in [a, b].into_iter().enumerate() {
        retain(input);
        let mut st = (*input).st.lock();
        let token = st.next_token;
        st.next_token += 1;
        if (*input).fired.load(Ordering::Relaxed) {
            went += 1;
        } else if st.thens.try_reserve(1).is_ok() {
            st.thens.push(Then { token, action: Action::Derived(d) });
        } else {
            drop(st);
            // Undo: nothing subscribed yet for this input.
            (*d).inputs[i] = (input, 0);
            release(d);
            return Err(fail(E_NOMEM, "slp_signal_or/and: out of memory"));
        }
        (*d).inputs[i] = (input, token);
    }
    let fire = match kind {
        Kind::Or => went > 0,
        _ => (*d).remaining.fetch_sub(went, Ordering::AcqRel) == went,
    };
    if fire {
        go(d);
    }
    Ok(d)
}

/// `slp_signal_wait`: until the signal went (OK) or the timeout passed (E_TIMEOUT).
///
/// # Safety
/// `s` is a live signal the caller holds a reference to.
pub unsafe fn wait(s: *mut Signal, timeout_ns: i64) -> Status {
    if (*s).fired.load(Ordering::Acquire) {
        return OK;
    }
    if timeout_ns == 0 {
        return fail(E_TIMEOUT, "slp_signal_wait: the signal has not gone (poll)");
    }
    let sc = match usable() {
        Ok(sc) => sc,
        Err(e) => return e,
    };
    let me = sc.running();
    if (*me).block_trap.load(Ordering::Relaxed) {
        return fail(E_WOULD_BLOCK, "slp_signal_wait would block and block_trap is set");
    }
    let deadline = (timeout_ns > 0).then(|| sc.deadline_after(timeout_ns));
    {
        let mut st = (*s).st.lock();
        if (*s).fired.load(Ordering::Relaxed) {
            return OK;
        }
        if let Err(e) = sc.check_block(deadline.is_some()) {
            return e;
        }
        if deadline.is_some() {
            if let Err(e) = sc.reserve_timer() {
                return e;
            }
        }
        if st.waiters.try_reserve(1).is_err() {
            return fail(E_NOMEM, "slp_signal_wait: out of memory");
        }
        retain(s); // the wait holds the signal
        st.waiters.push(Waiter { t: me, sel: false, case: 0 });
        (*me).blocked_sig.store(s, Ordering::Release);
        (*me).waiting.set(WaitOn::Signal);
        (*me).transition(States::of(&[State::Runnable]), State::Blocked);
        if let Some(at) = deadline {
            sc.arm(me, at);
        }
    }
    let r = sc.park();
    (*me).blocked_sig.store(ptr::null_mut(), Ordering::Release);
    release(s);
    match r {
        Ok(E_TIMEOUT) => fail(E_TIMEOUT, "slp_signal_wait: the timeout passed"),
        Ok(st) | Err(st) => st,
    }
}

/// Takes the waiting tasklet `t` off its signal (its own thread: timeout, kill, deadlock
/// delivery, thread exit). Returns whether it did (false: `go` released it first).
///
/// # Safety
/// `t` is a live tasklet of the calling thread, waiting with `WaitOn::Signal`.
pub unsafe fn remove_waiter(t: *mut Tasklet) -> bool {
    let s = (*t).blocked_sig.load(Ordering::Acquire);
    if s.is_null() {
        return false;
    }
    let mut st = (*s).st.lock();
    let before = st.waiters.len();
    st.waiters.retain(|w| w.t != t);
    if st.waiters.len() == before {
        return false;
    }
    (*t).transition(BLOCKED, State::Runnable);
    true
}

// ----- select's SIGNAL cases ---------------------------------------------------------------

/// A selector's SIGNAL case: queues it unless the signal went (then `false`: the case is
/// ready).
///
/// # Safety
/// `s` is a live signal; `t` is the running, Blocked selector.
pub(crate) unsafe fn select_register(s: *const Signal, t: *mut Tasklet, case: u32) -> Result<bool, Status> {
    let mut st = (*s).st.lock();
    if (*s).fired.load(Ordering::Relaxed) {
        return Ok(false);
    }
    if st.waiters.try_reserve(1).is_err() {
        return Err(fail(E_NOMEM, "slp_select: out of memory"));
    }
    st.waiters.push(Waiter { t, sel: true, case });
    Ok(true)
}

/// Removes every entry of the selector `t` from the signal.
///
/// # Safety
/// `s` is a live signal.
pub(crate) unsafe fn select_leave(s: *const Signal, t: *mut Tasklet) {
    (*s).st.lock().waiters.retain(|w| w.t != t);
}
