//! C API: the calling thread's scheduler (Stackless's module-level functions, carbon's run
//! variants, the worker-thread calls).

use std::ffi::{c_char, c_void};

use super::{ffi_boundary, ffi_status, slp_status, SLP_OK};
use crate::sched::exit::{self, Refused};
use crate::sched::{self, sched, usable};
use crate::status::{fail, E_INVALID, E_STATE};
use crate::tasklet::Tasklet;



/// The tasklet running on the calling thread (the main tasklet when called from the thread's
/// own stack). Borrowed (retain it to keep it); never NULL. Creates the scheduler if needed.
#[no_mangle]
pub extern "C" fn slp_current() -> *mut Tasklet {
    ffi_boundary!("slp_current", { sched().map_or(std::ptr::null_mut(), |s| s.running()) })
}

/// The calling thread's main tasklet (its own native stack). Borrowed; never NULL.
#[no_mangle]
pub extern "C" fn slp_main() -> *mut Tasklet {
    ffi_boundary!("slp_main", { sched().map_or(std::ptr::null_mut(), |s| s.main) })
}

/// Number of runnable tasklets on the calling thread, including the current one
/// (`stackless.runcount`). While the main tasklet is inside slp_run it is not counted.
#[no_mangle]
pub extern "C" fn slp_runcount() -> i32 {
    ffi_boundary!("slp_runcount", {
        match sched() {
            Ok(s) => {
                s.sync();
                s.runcount()
            }
            Err(_) => 0,
        }
    })
}

/// The calling thread's libslp id: > 0, never reused within the process. Creates no
/// scheduler.
#[no_mangle]
pub extern "C" fn slp_thread_id() -> i64 {
    ffi_boundary!("slp_thread_id", { sched::thread_id() })
}

/// Yields: the current tasklet stays runnable (at the tail) and the next one runs
/// (`stackless.schedule()`). Alone in the queue, it returns at once.
/// Returns SLP_OK, or the caller's pending delivery when it resumes (SLP_E_KILLED, a user
/// code from slp_tasklet_throw; for the main tasklet also a tasklet's uncaught error);
/// SLP_E_SWITCH_TRAP.
#[no_mangle]
pub extern "C" fn slp_schedule() -> slp_status {
    // schedule() tests the poisoned state itself, with its other refusals, in one load.
    ffi_status!("slp_schedule", { Ok(unsafe { sched()?.schedule() }) })
}

/// Like slp_schedule, but the caller leaves the run queue (paused) until someone inserts it
/// (`stackless.schedule_remove()`). If nothing holds a reference to the caller, it is killed
/// (pending) instead of being lost. Called by the main tasklet outside slp_run with nothing
/// else able to run, it returns SLP_E_DEADLOCK (main stays runnable).
/// Returns as slp_schedule.
#[no_mangle]
pub extern "C" fn slp_schedule_remove() -> slp_status {
    ffi_status!("slp_schedule_remove", { Ok(unsafe { usable()?.schedule_remove() }) })
}

/// Adds `delta` to the calling thread's switch_trap level and returns the old level. While
/// the level is > 0, every call that would switch tasklets (schedule, run, switch, kill
/// without pending, a channel operation that would block or switch to its partner, slp_run)
/// returns SLP_E_SWITCH_TRAP and changes nothing.
#[no_mangle]
pub extern "C" fn slp_switch_trap(delta: i32) -> i32 {
    ffi_boundary!("slp_switch_trap", { sched().map_or(0, |s| s.switch_trap(delta)) })
}

/// Runs the calling thread's tasklets until none is runnable (`stackless.run()`), then
/// returns SLP_OK; tasklets blocked on channels stay blocked. Only the main tasklet may call
/// it (libslp schedules flat). While inside, the main tasklet is not in the run queue.
/// A tasklet's uncaught error stops the run at once: it is returned (slp_last_error() names
/// the tasklet) and the other tasklets stay scheduled; the tasklet that would have run next
/// runs first in the next call.
/// Returns SLP_OK; a positive user code or negative status from a failing tasklet;
/// SLP_E_STATE (called from a non-main tasklet); SLP_E_SWITCH_TRAP.
#[no_mangle]
pub extern "C" fn slp_run() -> slp_status {
    ffi_status!("slp_run", { Ok(unsafe { usable()?.run() }) })
}

/// Like slp_run, but switches into at most `n` tasklets, then returns SLP_OK (carbon-scheduler
/// `run_n_tasklets`). `n == 0` returns at once. The run queue's order is kept across calls.
#[no_mangle]
pub extern "C" fn slp_run_n(n: u32) -> slp_status {
    ffi_status!("slp_run_n", { Ok(unsafe { usable()?.run_n(n) }) })
}

/// Like slp_run, but stops switching into tasklets once `budget_ns` nanoseconds have elapsed
/// (monotonic clock); at least one tasklet runs (carbon-scheduler `RunWithTimeout`). It does
/// not interrupt a running tasklet. A negative budget means no limit.
#[no_mangle]
pub extern "C" fn slp_run_for(budget_ns: i64) -> slp_status {
    ffi_status!("slp_run_for", { Ok(unsafe { usable()?.run_for(budget_ns) }) })
}

/// Like slp_run, for a thread that only runs tasklets (a worker): when no tasklet is runnable,
/// the thread sleeps — after a spin of at most a few tens of microseconds, then without using
/// CPU — until another thread makes one of its tasklets runnable (a channel partner, an insert,
/// a kill), then goes on running. Main tasklet only.
/// `timeout_ns`: nanoseconds from the call; negative waits without limit; 0 runs what is
/// runnable now and returns.
/// Returns SLP_E_TIMEOUT when the timeout has passed (the normal end of a bounded call);
/// SLP_OK after slp_scheduler_wakeup() named this thread (requested before or during the
/// call); a tasklet's uncaught error (as slp_run); SLP_E_DEADLOCK when nothing could ever wake
/// the thread (no timeout, and every other participating thread is asleep in libslp);
/// SLP_E_STATE (called from a non-main tasklet); SLP_E_SWITCH_TRAP.
#[no_mangle]
pub extern "C" fn slp_run_wait(timeout_ns: i64) -> slp_status {
    ffi_status!("slp_run_wait", { Ok(unsafe { usable()?.run_wait(timeout_ns) }) })
}

/// Makes the slp_run_wait of thread `thread_id` (see slp_thread_id) return SLP_OK: at once if
/// it is waiting, else when it next calls slp_run_wait (the request is kept until then). Any
/// thread. Returns SLP_OK, or SLP_E_INVALID when no live libslp scheduler has that id.
#[no_mangle]
pub extern "C" fn slp_scheduler_wakeup(thread_id: i64) -> slp_status {
    ffi_boundary!("slp_scheduler_wakeup", {
        match sched::Shared::lookup(thread_id) {
            Some(sh) => {
                sh.request_wakeup();
                SLP_OK
            }
            None => fail(
                E_INVALID,
                format_args!("slp_scheduler_wakeup: no libslp thread has id {thread_id}"),
            ),
        }
    })
}

/// A wake-up callback: `fn(thread_id, user_data)`.
pub type slp_wakeup_fn = Option<unsafe extern "C" fn(thread_id: i64, user_data: *mut c_void)>;

/// Installs (or, with NULL, removes) the calling thread's wake-up callback, for a host thread
/// that runs its own event loop: when another thread makes one of this thread's tasklets
/// runnable while this thread is not waiting inside libslp, `fn(this_thread_id, user_data)` is
/// called on the waking thread. It must be quick and thread-safe (post an event to the host's
/// loop, which then calls slp_run on this thread). A thread waiting inside libslp is woken
/// directly instead. One case runs `fn` on this thread itself: when work arrived during a
/// libslp call that will not serve it (a budgeted run that stopped, a blocking call that
/// returned), `fn` is called as that call returns, so `fn` must not take a lock the host holds
/// around its libslp calls. Inside `fn`, calls that would switch, block, run or tear down
/// return SLP_E_STATE (see "Callbacks" at the top of this header). Returns SLP_OK.
///
/// # Safety
/// `user_data`: NULL or valid for the reads and writes this call documents; `fn_`: NULL or a function that is safe to call as documented.
#[no_mangle]
pub unsafe extern "C" fn slp_set_wakeup_callback(
    fn_: slp_wakeup_fn,
    user_data: *mut c_void,
) -> slp_status {
    ffi_status!("slp_set_wakeup_callback", {
        sched()?.shared.set_callback(fn_.map(|f| (f, user_data as usize)));
        Ok(SLP_OK)
    })
}

/// Turns deadlock detection on or off for the whole process and returns the old setting
/// (default on). With it off, a blocked main tasklet or a slp_run_wait without timeout sleeps
/// until woken even when no other participating thread is awake — for hosts that wake threads
/// by means libslp cannot see.
#[no_mangle]
pub extern "C" fn slp_set_deadlock_detection(on: bool) -> bool {
    ffi_boundary!("slp_set_deadlock_detection", { sched::census::set_detection(on) })
}

/// Shuts the calling thread's scheduler down now, as if the thread exited (see "Thread exit" at the top of this header): each of
/// its tasklets is killed — never-started ones discarded (arg_free runs), started ones resumed
/// with SLP_E_KILLED until they end (a tasklet that refuses 16 times is reported on stderr and
/// its stack leaked) — tasklets blocked on channels leave them (balance corrected), and
/// surviving handles report slp_tasklet_thread_id() == -1 and not alive. The thread stops
/// participating; a later libslp call on it creates a new scheduler.
/// Returns SLP_OK, or SLP_E_STATE when called from a non-main tasklet or inside slp_run.
#[no_mangle]
pub extern "C" fn slp_scheduler_shutdown() -> slp_status {
    ffi_boundary!("slp_scheduler_shutdown", { unsafe { teardown("slp_scheduler_shutdown") } })
}

/// Adopts a thread the host created: gives it a scheduler now, so it participates in deadlock
/// detection from this call on (mo-threads RegisterThread). `name` (may be NULL)
/// is accepted for mo-threads compatibility and not used yet. Any libslp call that needs a
/// scheduler does the same implicitly.
/// Returns SLP_OK, or SLP_E_STATE if the thread is already registered.
///
/// # Safety
/// `name`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_thread_register(name: *const c_char) -> slp_status {
    ffi_status!("slp_thread_register", {
        let _ = name;
        if usable()?.set_registered(true) {
            return Err(fail(E_STATE, "slp_thread_register: this thread is already registered"));
        }
        Ok(SLP_OK)
    })
}

/// Ends the calling thread's participation: its scheduler is shut down as by
/// slp_scheduler_shutdown. Returns SLP_OK; SLP_E_STATE if the thread has no scheduler, or the
/// call comes from a non-main tasklet or inside slp_run.
#[no_mangle]
pub extern "C" fn slp_thread_unregister() -> slp_status {
    ffi_boundary!("slp_thread_unregister", {
        if sched::sched_opt().is_none() {
            return fail(E_STATE, "slp_thread_unregister: this thread has no libslp scheduler");
        }
        unsafe { teardown("slp_thread_unregister") }
    })
}

/// slp_scheduler_shutdown and slp_thread_unregister.
unsafe fn teardown(func: &'static str) -> slp_status {
    match exit::teardown_current(false) {
        Ok(()) => SLP_OK,
        Err(Refused::InCallback(e)) => e,
        Err(Refused::NotMain) => fail(
            E_STATE,
            format_args!("{func}: call it from the thread's main tasklet, outside slp_run"),
        ),
    }
}
