//! Requests for another thread's tasklets, and the inbox where they arrive. Other threads
//! never touch a run queue: they post a message (`inbox::Msg`) to the owner's inbox and wake
//! it; the owner applies the messages in its dispatch loop or at the start of a call (`sync`).
//! Every message holds a reference to its tasklet, dropped when the owner has applied it.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;

use crate::channel;
use crate::status::*;
use crate::tasklet::{self, State, States, Tasklet, UNSCHEDULED};

use super::inbox::Msg;
use super::{sched_opt, Scheduler};

impl Scheduler {
    /// Applies the messages other threads posted.
    ///
    /// # Safety
    /// Owner thread, outside any run-queue manipulation; applying messages never switches.
    pub(crate) unsafe fn drain_inbox(&self) {
        let mut msgs = std::mem::take(&mut *self.mail.borrow_mut());
        self.shared.take_mail(&mut msgs);
        for m in msgs.drain(..) {
            let t = t_of(&m);
            match m {
                Msg::Ready(_) | Msg::Insert(_) => {
                    // Its wait ended on another thread, or another thread inserted it: it is
                    // Runnable (set by the sender) unless something here changed it since.
                    if (*t).is_main && self.run.active() {
                        // A remote insert of main while it is inside slp_run: main stays out of
                        // the queue (as a local insert refuses it).
                        let _ = (*t).try_transition(States::of(&[State::Runnable]), State::Paused);
                    } else if (*t).stored() == State::Runnable && !self.queue.contains(t) {
                        self.queue.append(t);
                    }
                }
                Msg::Throw(_, code, data) => {
                    if (*t).state() == State::Dead {
                    } else if (*t).is_main {
                        // A kill or throw of this thread's main tasklet (always pending).
                        self.throw_to_main(code, data);
                    } else {
                        let _ = self.throw_local(t, code, data, true);
                    }
                }
                Msg::Discard(_) => {
                    self.discard_fresh(t);
                    tasklet::free(t);
                    continue;
                }
                Msg::Unlist(_) => {
                    if self.tasklets.contains(t) {
                        self.tasklets.remove(t);
                    }
                    // Its new owner adopts it (the message keeps our reference).
                    let owner = (*t).owner_arc();
                    if owner.post(Msg::Adopt(t)) {
                        continue;
                    }
                }
                Msg::Adopt(_) => {
                    if self.owns(&*t) && (*t).state() != State::Dead && !self.tasklets.contains(t) {
                        self.tasklets.push(t);
                    }
                }
            }
            tasklet::release(t);
        }
        *self.mail.borrow_mut() = msgs;
    }

    /// Applies requests other threads have posted, so that a query made on this thread sees
    /// them (a remote insert shows in runcount as soon as the call that made it returned).
    #[inline]
    pub fn sync(&self) {
        if self.shared.has_mail() && self.in_callback.get().is_none() {
            // SAFETY: called at the start of an API call on the owner thread, outside any
            // run-queue manipulation (not from a callback inside one).
            unsafe { self.drain_inbox() }
        }
    }
}

fn t_of(m: &Msg) -> *mut Tasklet {
    match *m {
        Msg::Ready(t)
        | Msg::Insert(t)
        | Msg::Throw(t, _, _)
        | Msg::Discard(t)
        | Msg::Unlist(t)
        | Msg::Adopt(t) => t,
    }
}

/// Sends a tasklet whose wait ended on this thread (its partner or a shutdown was here) back
/// to its owner's run queue. The channel layer took the message's reference under the
/// channel's lock, while the tasklet was still certainly alive.
///
/// # Safety
/// `t` is Runnable, not linked, and the caller passes a reference to it.
pub(crate) unsafe fn wake_remote(t: *mut Tasklet) {
    // Hold the owner's shared part: once posted, the message can be applied and `t` freed on
    // the owner thread (and with it the owner's last reference) before `post` has woken it.
    let owner = (*t).owner_arc();
    if !owner.post(Msg::Ready(t)) {
        // The owner's scheduler is gone; its exit took the tasklet off every channel first,
        // so this cannot happen for a waiter. Drop the message's reference.
        tasklet::release(t);
    }
}

/// `slp_tasklet_insert` / `slp_tasklet_run` on another thread's tasklet: it becomes Runnable
/// at once (so it counts as scheduled everywhere, and bind_thread refuses it), and is appended
/// to its owner's queue when the owner applies the message.
///
/// # Safety
/// `t` is a live tasklet handle.
pub unsafe fn insert_remote(t: *mut Tasklet) -> Status {
    if !(*t).owner().alive.load(Ordering::Acquire) {
        return fail(E_DEAD, format_args!("insert: {} is dead or its thread has exited", (*t).describe()));
    }
    match (*t).try_transition(UNSCHEDULED, State::Runnable) {
        Ok(_) => {}
        Err(State::Runnable | State::Running) => return OK,
        Err(State::Blocked) => {
            return fail(E_STATE, format_args!("insert: {} is blocked", (*t).describe()))
        }
        Err(_) => return fail(E_DEAD, format_args!("insert: {} is dead", (*t).describe())),
    }
    if !(*t).is_main {
        tasklet::retain(t); // the runtime's reference (Runnable)
    }
    tasklet::retain(t); // the message's
    let owner = (*t).owner_arc(); // see wake_remote
    if !owner.post(Msg::Insert(t)) {
        tasklet::release(t);
        return fail(E_DEAD, "insert: the tasklet's thread has exited");
    }
    OK
}

/// `slp_tasklet_kill` / `slp_tasklet_throw` on another thread's tasklet: always pending. A
/// blocked target leaves its channel (balance corrected) before this returns; the owner
/// applies the rest.
///
/// # Safety
/// `t` is a live tasklet handle.
pub unsafe fn throw_remote(t: *mut Tasklet, code: Status, data: *mut c_void) -> Status {
    if (*t).state() == State::Dead || !(*t).owner().alive.load(Ordering::Acquire) {
        return if code == E_KILLED {
            OK
        } else {
            fail(E_DEAD, format_args!("throw: {} is dead or its thread has exited", (*t).describe()))
        };
    }
    tasklet::retain(t); // the message's
    channel::remove_waiter(t);
    let owner = (*t).owner_arc(); // see wake_remote
    if !owner.post(Msg::Throw(t, code, data)) {
        tasklet::release(t);
    }
    OK
}

/// `t` was re-bound from `old` to another thread: the old owner takes it off its list of
/// tasklets, then the new owner adopts it (in that order: a tasklet is in one list at most).
/// Each message holds a reference.
///
/// # Safety
/// `t` is a live tasklet handle, just re-bound.
pub unsafe fn moved(t: *mut Tasklet, old: &super::Shared) {
    tasklet::retain(t);
    if let Some(s) = sched_opt() {
        if std::ptr::eq(&*s.shared, old) {
            // Re-bound by its old owner itself: off this list now.
            if s.tasklets.contains(t) {
                s.tasklets.remove(t);
            }
            let owner = (*t).owner_arc();
            if !owner.post(Msg::Adopt(t)) {
                tasklet::release(t);
            }
            return;
        }
    }
    if !old.post(Msg::Unlist(t)) {
        // The old owner is gone, and its list with it: adopt directly.
        let owner = (*t).owner_arc();
        if !owner.post(Msg::Adopt(t)) {
            tasklet::release(t);
        }
    }
}

/// The last reference to `t` went: a dead tasklet is freed, a never-started one discarded,
/// a started paused one killed (pending) so that it can clean up.
///
/// # Safety
/// `t` had its reference count reach zero just now.
pub(crate) unsafe fn last_ref_gone(t: *mut Tasklet) {
    if (*t).is_main && (*t).state() != State::Dead {
        // The main tasklet belongs to its live thread; an over-release must not free it.
        (*t).refs.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let owner_alive = (*t).owner().alive.load(Ordering::Acquire);
    match (*t).stored() {
        State::Dead => tasklet::free(t),
        // No reference is left, so it is not scheduled: Fresh means it never ran.
        State::Fresh => {
            // Paused and never started: discard it without running, on its own thread (which
            // keeps it in its list of tasklets), or here if that thread is gone.
            match sched_opt() {
                Some(s) if s.owns(&*t) => {
                    s.discard_fresh(t);
                    tasklet::free(t);
                }
                _ => {
                    let owner = (*t).owner_arc();
                    if !owner.post(Msg::Discard(t)) {
                        discard_fresh_foreign(t);
                        tasklet::free(t);
                    }
                }
            }
        }
        _ if !owner_alive => {
            // Its thread is gone and it refused to end: its stack stays leaked (never freed
            // under frames that may still be referenced); the handle memory can go.
            tasklet::free(t);
        }
        _ => {
            // Paused after running: kill it (pending) so that it can clean up; the runtime
            // holds it until it ends. The revived count is the runtime's reference.
            (*t).refs.fetch_add(1, Ordering::Relaxed);
            match sched_opt() {
                Some(s) if s.owns(&*t) => {
                    (*t).pending.set(E_KILLED);
                    if (*t).try_transition(UNSCHEDULED, State::Runnable).is_ok() {
                        s.queue.append(t);
                    }
                }
                _ => {
                    // The message takes the reference; applying it re-takes a runtime one.
                    let owner = (*t).owner_arc();
                    if !owner.post(Msg::Throw(t, E_KILLED, ptr::null_mut())) {
                        tasklet::free(t);
                    }
                }
            }
        }
    }
}

/// Discards a never-started tasklet from a thread other than its owner (its stack is simply
/// unmapped: never-started stacks hold no frames).
///
/// # Safety
/// `t` has no references left and never started.
unsafe fn discard_fresh_foreign(t: *mut Tasklet) {
    if (*t).try_transition(UNSCHEDULED, State::Dead).is_err() {
        return;
    }
    (*t).owner().count_foreign_discard();
    if let Some(mut c) = (*(*t).coro.get()).take() {
        c.force_unwind();
        drop(c.into_stack());
    }
    (*t).free_arg();
}
