//! Thread exit and slp_scheduler_shutdown: every tasklet of the thread is killed —
//! never-started ones discarded, blocked ones taken off their channels, started ones resumed
//! with SLP_E_KILLED until they end (bounded) — then the scheduler stops participating and its
//! memory goes. Surviving handles report thread_id -1 and not alive.

use std::ptr;
use std::sync::atomic::Ordering;

use crate::status::*;
use crate::tasklet::{self, State, Tasklet};

use super::inbox::Msg;
use super::{current_raw, set_current, Scheduler};

/// How many rounds of kills a thread's exit gives its tasklets before it gives up on them.
const EXIT_KILL_ROUNDS: usize = 16;

/// Why a teardown could not run now.
pub enum Refused {
    /// Not from the main tasklet's own code, or inside a run call.
    NotMain,
    /// Inside a libslp callback (the status, with slp_last_error set).
    InCallback(Status),
}

/// Tears down the calling thread's scheduler. `thread_exit`: the thread is exiting (only
/// names the event in the report).
///
/// # Safety
/// Called on the thread whose scheduler it tears down; no reference into the scheduler may
/// be used afterwards.
pub unsafe fn teardown_current(thread_exit: bool) -> Result<(), Refused> {
    let p = current_raw();
    if p.is_null() {
        return Ok(());
    }
    let s = &*p;
    if let Err(e) = s.check_not_in_callback(if thread_exit {
        "thread exit"
    } else {
        "slp_scheduler_shutdown"
    }) {
        return Err(Refused::InCallback(e));
    }
    if s.running() != s.main || s.run.active() || s.tearing_down.get() {
        return Err(Refused::NotMain);
    }
    s.tearing_down.set(true);
    s.switch_trap(-s.switch_trap(0));
    let stubborn = if s.poisoned() { Vec::new() } else { kill_all(s) };
    let stubborn = if s.poisoned() { collect_started(s) } else { stubborn };
    for &t in &stubborn {
        s.unblock(t);
        if s.queue.contains(t) {
            s.queue.unlink(t);
        }
        if s.tasklets.contains(t) {
            s.tasklets.remove(t);
        }
    }
    if !stubborn.is_empty() {
        eprintln!(
            "libslp: thread {} {}: {} started tasklet(s) did not end after {} kill(s){}; their \
             stacks are leaked",
            s.shared.thread_id,
            if thread_exit { "exits" } else { "shuts its scheduler down" },
            stubborn.len(),
            EXIT_KILL_ROUNDS,
            if s.poisoned() { " (the scheduler was poisoned by an internal error)" } else { "" }
        );
    }
    s.clear_callback_prev();
    set_current(ptr::null_mut());
    // From here on the scheduler refuses messages and its tasklets report thread_id -1.
    let leftovers = s.shared.leave();
    for t in stubborn {
        // The runtime's reference of a tasklet that would not end.
        if matches!((*t).state(), State::Runnable | State::Running | State::Blocked) {
            tasklet::release(t);
        }
    }
    for m in leftovers {
        match m {
            Msg::Ready(t) | Msg::Insert(t) | Msg::Throw(t, _, _) => tasklet::release(t),
            // Posted after the last drain: discarded here (the list is gone with the
            // scheduler).
            Msg::Discard(t) => {
                if (*t).state() != State::Dead {
                    s.discard_fresh(t);
                }
                tasklet::free(t);
            }
            Msg::Unlist(t) => {
                if s.tasklets.contains(t) {
                    s.tasklets.remove(t);
                }
                let owner = (*t).owner_arc();
                if !owner.post(Msg::Adopt(t)) {
                    tasklet::release(t);
                }
            }
            // A tasklet bound to this thread as it exits: discarded like its others.
            Msg::Adopt(t) => {
                if s.owns(&*t) && (*t).state() == State::Fresh {
                    discard_unlisted(s, t);
                }
                tasklet::release(t);
            }
        }
    }
    s.shared.running.store(ptr::null_mut(), Ordering::Relaxed);
    let main = s.main;
    let _ = (*main).try_transition(crate::tasklet::ALIVE, State::Dead);
    (*main).next.set(ptr::null_mut());
    (*main).prev.set(ptr::null_mut());
    drop(Box::from_raw(p));
    tasklet::release(main);
    Ok(())
}

/// Kills every tasklet in rounds; returns the started tasklets still alive after the last.
/// Tasklets created meanwhile (a killed tasklet spawning a successor) are discarded before they
/// start: `resume` refuses to start anything while `tearing_down` is set.
///
/// # Safety
/// On the thread of `s`, from its main tasklet's code, outside any run call.
unsafe fn kill_all(s: &Scheduler) -> Vec<*mut Tasklet> {
    for _round in 0..EXIT_KILL_ROUNDS {
        if s.shared.has_mail() {
            s.drain_inbox();
        }
        // Every live tasklet, paused never-started ones included (held by a handle); one
        // whose last reference just went elsewhere is discarded by its message instead.
        let victims: Vec<*mut Tasklet> =
            s.tasklets.iter().filter(|&t| s.owns(&*t) && tasklet::try_retain(t)).collect();
        if victims.is_empty() {
            if s.tasklets.first().is_null() {
                return Vec::new();
            }
            s.drain_inbox();
            continue;
        }
        for &t in &victims {
            if !(*t).started() {
                s.discard_fresh(t);
            } else if (*t).state() != State::Dead {
                s.throw_local(t, E_KILLED, ptr::null_mut(), true);
            }
        }
        for &t in &victims {
            tasklet::release(t);
        }
        let _ = s.run();
    }
    if s.shared.has_mail() {
        s.drain_inbox();
    }
    // Never-started tasklets left by the last round are discarded, not reported.
    let fresh: Vec<*mut Tasklet> =
        s.tasklets.iter().filter(|&t| s.owns(&*t) && !(*t).started() && tasklet::try_retain(t)).collect();
    for t in fresh {
        s.discard_fresh(t);
        tasklet::release(t);
    }
    collect_started(s)
}

/// The started tasklets still alive.
///
/// # Safety
/// On the thread of `s`.
unsafe fn collect_started(s: &Scheduler) -> Vec<*mut Tasklet> {
    s.tasklets.iter().filter(|&t| s.owns(&*t) && (*t).started()).collect()
}

/// Discards a never-started tasklet of this thread that is in no list (it was being adopted).
///
/// # Safety
/// On the thread of `s`; `t` is Fresh, owned by `s`, held by the caller.
unsafe fn discard_unlisted(s: &Scheduler, t: *mut Tasklet) {
    s.discard_fresh(t);
}
