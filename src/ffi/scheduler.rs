//! C API: the calling thread's scheduler (SPEC §4.1).

use super::{guard, slp_status, SLP_E_PANIC};
use crate::scheduler::{self, sched};
use crate::tasklet::Tasklet;

/// The tasklet running on the calling thread (the main tasklet when called from the thread's
/// own stack). Borrowed (retain it to keep it); never NULL. Creates the scheduler if needed.
#[no_mangle]
pub extern "C" fn slp_current() -> *mut Tasklet {
    guard!(std::ptr::null_mut(), sched().running())
}

/// The calling thread's main tasklet (its own native stack). Borrowed; never NULL.
#[no_mangle]
pub extern "C" fn slp_main() -> *mut Tasklet {
    guard!(std::ptr::null_mut(), sched().main)
}

/// Number of runnable tasklets on the calling thread, including the current one
/// (`stackless.runcount`). While the main tasklet is inside slp_run it is not counted.
#[no_mangle]
pub extern "C" fn slp_runcount() -> i32 {
    guard!(0, sched().runcount())
}

/// The calling thread's libslp id: > 0, never reused within the process. Creates no
/// scheduler.
#[no_mangle]
pub extern "C" fn slp_thread_id() -> i64 {
    guard!(0, scheduler::thread_id())
}

/// Yields: the current tasklet stays runnable (at the tail) and the next one runs
/// (`stackless.schedule()`). Alone in the queue, it returns at once.
/// Returns SLP_OK, or the caller's pending delivery when it resumes (SLP_E_KILLED, a user
/// code from slp_tasklet_throw; for the main tasklet also a tasklet's uncaught error);
/// SLP_E_SWITCH_TRAP.
#[no_mangle]
pub extern "C" fn slp_schedule() -> slp_status {
    guard!(SLP_E_PANIC, unsafe { sched().schedule() })
}

/// Like slp_schedule, but the caller leaves the run queue (paused) until someone inserts it
/// (`stackless.schedule_remove()`). If nothing holds a reference to the caller, it is killed
/// (pending) instead of being lost. Called by the main tasklet outside slp_run with nothing
/// else able to run, it returns SLP_E_DEADLOCK (main stays runnable).
/// Returns as slp_schedule.
#[no_mangle]
pub extern "C" fn slp_schedule_remove() -> slp_status {
    guard!(SLP_E_PANIC, unsafe { sched().schedule_remove() })
}

/// Adds `delta` to the calling thread's switch_trap level and returns the old level. While
/// the level is > 0, every call that would switch tasklets (schedule, run, switch, kill
/// without pending, a channel operation that would block or switch to its partner, slp_run)
/// returns SLP_E_SWITCH_TRAP and changes nothing.
#[no_mangle]
pub extern "C" fn slp_switch_trap(delta: i32) -> i32 {
    guard!(0, sched().switch_trap(delta))
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
    guard!(SLP_E_PANIC, unsafe { sched().run() })
}

/// Like slp_run, but switches into at most `n` tasklets, then returns SLP_OK (carbon-scheduler
/// `run_n_tasklets`). `n == 0` returns at once. The run queue's order is kept across calls.
#[no_mangle]
pub extern "C" fn slp_run_n(n: u32) -> slp_status {
    guard!(SLP_E_PANIC, unsafe { sched().run_n(n) })
}

/// Like slp_run, but stops switching into tasklets once `budget_ns` nanoseconds have elapsed
/// (monotonic clock); at least one tasklet runs (carbon-scheduler `RunWithTimeout`). It does
/// not interrupt a running tasklet. A negative budget means no limit.
#[no_mangle]
pub extern "C" fn slp_run_for(budget_ns: i64) -> slp_status {
    guard!(SLP_E_PANIC, unsafe {
        if budget_ns < 0 {
            sched().run()
        } else {
            sched().run_for(budget_ns)
        }
    })
}
