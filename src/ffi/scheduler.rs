//! C API: the calling thread's scheduler (Stackless's module-level functions, carbon's run
//! variants, the worker-thread calls).

use std::ffi::{c_char, c_void};

use super::boundary::nonnull;
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

/// slp_run_watchdog flags: the budget is nanoseconds of the scheduler's clock (see
/// slp_set_clock), checked at slp_tick points, instead of ticks.
pub const SLP_WATCHDOG_TIME: u32 = 1;
/// slp_run_watchdog flags: when the budget is used up nothing is removed; the run returns at
/// the tasklet's next switch (Stackless's soft interrupt).
pub const SLP_WATCHDOG_SOFT: u32 = 2;
/// slp_run_watchdog flags: one budget for the whole call, shared by every tasklet it runs,
/// instead of one per switch (Stackless's totaltimeout).
pub const SLP_WATCHDOG_TOTAL: u32 = 4;

const _: () = assert!(
    SLP_WATCHDOG_TIME == crate::watchdog::TIME
        && SLP_WATCHDOG_SOFT == crate::watchdog::SOFT
        && SLP_WATCHDOG_TOTAL == crate::watchdog::TOTAL
);

/// Runs like slp_run, but preempts a tasklet that does not yield: once the running tasklet
/// has used `budget` ticks at its slp_tick(n) calls (ticks are summed; SLP_WATCHDOG_TIME:
/// `budget` nanoseconds instead), it is interrupted inside the slp_tick call that reaches the
/// budget — removed from the run queue (alive, paused) — and the run returns SLP_OK with the
/// tasklet in `*interrupted` as a new reference (Stackless `run(instructionCount)`; the
/// caller typically re-inserts it and calls again, the seed's preemptive() loop:
/// `while (slp_runcount() > 1) { slp_run_watchdog(1000, 0, &t); if (t) { slp_tasklet_insert(t);
/// slp_tasklet_release(t); } }`). `*interrupted` is NULL when the run ended because nothing
/// was runnable, and after a soft stop. The budget restarts at every switch into a tasklet
/// unless SLP_WATCHDOG_TOTAL. SLP_WATCHDOG_SOFT: nothing is removed; the run returns at the
/// tasklet's next switch. A tasklet whose budget runs out while its `atomic` flag is set is
/// not interrupted then: the interrupt fires inside the slp_tasklet_set_atomic(t, false) call
/// that clears it. A tasklet that yields in time, or never calls slp_tick, is never
/// interrupted. When an interrupted tasklet is resumed, its slp_tick returns SLP_OK (or
/// SLP_E_KILLED / the thrown code if it was killed or thrown to meanwhile). The run queue's
/// order is kept: the tasklet that would have run next runs first in the next call.
/// `budget` 0 means no limit (exactly slp_run). Main tasklet only, outside any run.
/// Returns SLP_OK (`*interrupted` written: the tasklet or NULL); a tasklet's uncaught error
/// (as slp_run; `*interrupted` not written); SLP_E_INVALID (`interrupted` NULL, unknown flag
/// bits); SLP_E_STATE (not the main tasklet, or inside a run); SLP_E_SWITCH_TRAP.
///
/// # Safety
/// `interrupted`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_run_watchdog(
    budget: u64,
    flags: u32,
    interrupted: *mut *mut Tasklet,
) -> slp_status {
    ffi_status!("slp_run_watchdog", {
        let out = nonnull(interrupted, "slp_run_watchdog", "interrupted")? as *mut *mut Tasklet;
        let known = SLP_WATCHDOG_TIME | SLP_WATCHDOG_SOFT | SLP_WATCHDOG_TOTAL;
        if flags & !known != 0 {
            return Err(fail(E_INVALID, format_args!("slp_run_watchdog: unknown flags {flags:#x}")));
        }
        let (st, t) = usable()?.run_watchdog(budget, flags);
        if st == SLP_OK {
            *out = t;
        }
        Ok(st)
    })
}

/// A preemption point: adds `n` ticks to the running tasklet's watchdog budget (see
/// slp_run_watchdog); the tasklet may be interrupted inside this call. Call it from long
/// loops and from an embedded interpreter's instruction hook (a Lua count hook, say), where
/// Stackless counted bytecodes. Outside a watchdog run, or on a main tasklet, it does nothing:
/// while no thread of the process is in a watchdog run it costs one load and a compare (about
/// the cost of an empty call into a shared library); while another thread is in one, a
/// thread-local lookup more. Inside a watchdog run it adds the ticks (SLP_WATCHDOG_TIME: it
/// reads the clock instead, some tens of nanoseconds). `n` 0 is a check point for
/// SLP_WATCHDOG_TIME budgets.
/// Returns SLP_OK, or — after an interrupt, when the tasklet is resumed — SLP_E_KILLED or a
/// thrown code if it was killed or thrown to while it was paused.
#[no_mangle]
pub extern "C" fn slp_tick(n: u32) -> slp_status {
    ffi_boundary!("slp_tick", { crate::watchdog::tick(n) })
}

/// Blocks the calling tasklet for at least `ns` nanoseconds of its scheduler's clock (see
/// slp_set_clock), never less; other tasklets run meanwhile. Called by a main tasklet with
/// nothing else runnable, the OS thread sleeps until the deadline (or until another thread
/// sends it work). A sleeping tasklet is blocked (slp_tasklet_blocked is true); sleepers
/// with equal deadlines wake in the order they went to sleep, and a woken sleeper is appended
/// to the run queue. slp_run returns when only sleepers are left (call it again next frame);
/// slp_run_wait sleeps the thread until the earliest of them. `ns` 0 yields exactly like
/// slp_schedule. A sleeping main tasklet never gets SLP_E_DEADLOCK.
/// Returns SLP_OK; SLP_E_INVALID (`ns` < 0); SLP_E_KILLED or a thrown code (the sleep ends
/// early); SLP_E_WOULD_BLOCK (block_trap); SLP_E_SWITCH_TRAP; SLP_E_STATE inside a callback.
#[no_mangle]
pub extern "C" fn slp_sleep(ns: i64) -> slp_status {
    ffi_status!("slp_sleep", { Ok(unsafe { usable()?.sleep(ns) }) })
}

/// A host clock: returns the current time in nanoseconds, never decreasing (it may stand
/// still, e.g. while game time is paused).
pub type slp_clock_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i64>;

/// Installs a host clock for the calling thread's scheduler (game time that can pause or
/// scale): the deadlines of that thread's slp_sleep calls, channel timeouts, select timeouts
/// and SLP_WATCHDOG_TIME budgets are read on `fn(user_data)`. NULL restores the default
/// monotonic clock. Install it before timers are pending: pending deadlines keep their values
/// and are read on the new clock. Due timers fire whenever the scheduler runs (every
/// slp_run*, every switch), so a host that advances game time once per frame and then calls
/// slp_run sees its sleepers wake on game time. A thread parked in the OS (a main tasklet
/// waiting alone, slp_run_wait) counts the remaining host-clock time as real time (1:1), at
/// least 1 ms, and re-reads the clock when it wakes: while game time is paused the sleepers
/// are not woken (the thread waits again, waking at most once per millisecond); if game time
/// runs faster than real time, the OS wake-up comes late by that factor — drive such a clock
/// from the thread's own loop. With the default monotonic clock, a parked thread wakes within
/// microseconds of the deadline: while it waits, libslp sets its timer slack to 1 ns (Linux
/// otherwise wakes sleepers up to 50 µs late) and restores the host's value afterwards. `fn` runs on this
/// thread inside libslp calls, like any callback. Returns SLP_OK.
///
/// # Safety
/// `fn_`: NULL or a function that is safe to call with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn slp_set_clock(fn_: slp_clock_fn, user_data: *mut c_void) -> slp_status {
    ffi_status!("slp_set_clock", {
        usable()?.set_clock(fn_.map(|f| (f, user_data as usize)));
        Ok(SLP_OK)
    })
}

/// The calling thread's scheduler clock, in nanoseconds: the host clock installed with
/// slp_set_clock, or the monotonic clock (its origin is unspecified but fixed for the
/// process). Creates the scheduler if needed; 0 if it cannot.
#[no_mangle]
pub extern "C" fn slp_now() -> i64 {
    ffi_boundary!("slp_now", { sched().map_or(0, |s| s.now()) })
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
