//! The callback scope: libslp calls host code (schedule and channel callbacks, `arg_free`,
//! wake-up callbacks) while one of its own calls is in progress on the thread. From inside such
//! a callback, a call that would switch, block, run, tear the scheduler down or unregister the
//! thread would pull the ground from under the call in progress, so it is refused with
//! SLP_E_STATE and a message naming the callback; the call in progress then completes normally.
//! Queries, creating and releasing objects, inserts and pending kills stay allowed.

use crate::status::{fail, Status, E_STATE};

use super::{sched_opt, Scheduler};

/// Which libslp callback is running.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Callback {
    Schedule,
    Channel,
    ArgFree,
    Wakeup,
    SignalThen,
}

impl Callback {
    pub fn name(self) -> &'static str {
        match self {
            Callback::Schedule => "schedule callback",
            Callback::Channel => "channel callback",
            Callback::ArgFree => "arg_free",
            Callback::Wakeup => "wake-up callback",
            Callback::SignalThen => "signal then callback",
        }
    }
}

/// Marks a callback as running on the scheduler until dropped (scopes nest: the outer one is
/// restored).
pub struct Scope {
    sched: Option<&'static Scheduler>,
    prev: Option<Callback>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(s) = self.sched {
            s.in_callback.set(self.prev);
            s.set_refusal(super::REFUSE_CALLBACK, self.prev.is_some());
        }
    }
}

/// Enters a callback scope on the calling thread's scheduler (if it has one: a thread
/// without a scheduler has no call in progress that re-entry could break).
pub fn enter(kind: Callback) -> Scope {
    match sched_opt() {
        Some(s) => enter_static(s, kind),
        None => Scope { sched: None, prev: None },
    }
}

fn enter_static(s: &'static Scheduler, kind: Callback) -> Scope {
    let prev = s.in_callback.replace(Some(kind));
    s.set_refusal(super::REFUSE_CALLBACK, true);
    Scope { sched: Some(s), prev }
}

/// Enters a callback scope on `s` (the calling thread's scheduler).
pub fn enter_on(s: &Scheduler, kind: Callback) -> Scope {
    // SAFETY: a thread's scheduler lives until the thread tears it down, which the scope
    // itself forbids while it exists (teardown is refused inside a callback).
    let s: &'static Scheduler = unsafe { &*(s as *const Scheduler) };
    enter_static(s, kind)
}

impl Scheduler {
    /// Refuses `what` (a call that would switch, block, run or tear down) inside a callback.
    #[inline]
    pub fn check_not_in_callback(&self, what: &str) -> Result<(), Status> {
        if self.refusals() & super::REFUSE_CALLBACK == 0 {
            return Ok(());
        }
        match self.in_callback.get() {
            None => Ok(()),
            Some(kind) => Err(refuse(what, kind)),
        }
    }
}

#[cold]
fn refuse(what: &str, kind: Callback) -> Status {
    fail(
        E_STATE,
        format_args!(
            "{what}: not allowed inside the {} (it would switch, block, run or tear down the \
             scheduler while libslp is in the middle of a call on this thread)",
            kind.name()
        ),
    )
}
