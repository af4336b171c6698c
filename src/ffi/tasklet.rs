//! C API: tasklets (Stackless's `tasklet` object).

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;

use super::boundary::nonnull;
use super::{ffi_boundary, ffi_status, slp_status};
use crate::sched::{self, ops};
use crate::stack;
use crate::status::*;
use crate::tasklet::{self, State, Tasklet};

/// A tasklet's function: `int32_t fn(void *arg)`. Return 0 for a normal end, SLP_E_KILLED
/// after a kill (silent, like Stackless's TaskletExit), anything else is an uncaught error
/// that slp_run (or the blocked main tasklet) receives. C++ exceptions must not escape it.
pub type slp_tasklet_fn = Option<unsafe extern "C" fn(arg: *mut c_void) -> i32>;

/// Called exactly once when a tasklet is done with its `arg`: after its function returned,
/// when it was killed before it started, or when it was discarded without running. It may run
/// inside another libslp call on the thread (a kill applied in a blocking call, a release,
/// thread exit): calls that would switch, block, run or tear down return SLP_E_STATE from
/// inside it (see "Callbacks" at the top of this header).
pub type slp_arg_free_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// slp_tasklet_options.flags: create the tasklet alive but paused (not in the run queue);
/// slp_tasklet_insert or slp_tasklet_run schedules it.
pub const SLP_TASKLET_PAUSED: u32 = 1;

/// Options for slp_tasklet_new_ex. Always initialise with slp_tasklet_options_init, then set
/// the fields you need; `struct_size` lets later versions add fields compatibly.
#[repr(C)]
pub struct slp_tasklet_options {
    /// sizeof(slp_tasklet_options), set by slp_tasklet_options_init.
    pub struct_size: u32,
    /// SLP_TASKLET_PAUSED or 0.
    pub flags: u32,
    /// Name shown in errors and dumps; copied. NULL means unnamed ("").
    pub name: *const c_char,
    /// Usable stack size in bytes; 0 = slp_default_stack_size(). 16 KiB .. 1 GiB.
    pub stack_size: usize,
    /// Called once when the tasklet is done with `arg` (may be NULL).
    pub arg_free: slp_arg_free_fn,
}

/// Fills `opts` with the defaults (no flags, no name, default stack size, no arg_free) and
/// sets struct_size. NULL is ignored.
///
/// # Safety
/// `opts`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_options_init(opts: *mut slp_tasklet_options) {
    ffi_boundary!("slp_tasklet_options_init", {
        if !opts.is_null() {
            opts.write(slp_tasklet_options {
                struct_size: std::mem::size_of::<slp_tasklet_options>() as u32,
                flags: 0,
                name: ptr::null(),
                stack_size: 0,
                arg_free: None,
            });
        }
    })
}

/// Creates a tasklet running `fn(arg)` on its own stack, owned by the calling thread, and
/// appends it to the thread's run queue (runnable, not started): `stackless.tasklet(f)()`.
/// `out` may be NULL (fire and forget); otherwise `*out` receives a new reference that the
/// caller releases with slp_tasklet_release. The runtime keeps its own reference while the
/// tasklet is runnable or blocked, so releasing at once is fine.
/// On failure nothing is created and `arg` stays the caller's.
/// Returns SLP_OK, SLP_E_INVALID (fn is NULL), SLP_E_NOMEM (no stack could be mapped).
///
/// # Safety
/// `arg`, `out`: NULL or valid for the reads and writes this call documents; `func`: NULL or a function that is safe to call as documented.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_new(
    func: slp_tasklet_fn,
    arg: *mut c_void,
    out: *mut *mut Tasklet,
) -> slp_status {
    slp_tasklet_new_ex(func, arg, ptr::null(), out)
}

/// Like slp_tasklet_new, with options (NULL = defaults): a name, a stack size, the
/// SLP_TASKLET_PAUSED flag and an `arg_free` callback.
/// Returns SLP_OK; SLP_E_INVALID if fn is NULL, opts->struct_size is too small, flags has
/// unknown bits, the stack size is out of range, or SLP_TASKLET_PAUSED is set with a NULL
/// `out` (nothing could ever insert it); SLP_E_NOMEM when no stack can be mapped.
///
/// # Safety
/// `arg`, `opts`, `out`: NULL or valid for the reads and writes this call documents; `func`: NULL or a function that is safe to call as documented.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_new_ex(
    func: slp_tasklet_fn,
    arg: *mut c_void,
    opts: *const slp_tasklet_options,
    out: *mut *mut Tasklet,
) -> slp_status {
    ffi_status!("slp_tasklet_new_ex", {
        let Some(func) = func else {
            return Err(fail(E_INVALID, "slp_tasklet_new: fn is NULL"));
        };
        let mut flags = 0;
        let mut name = None;
        let mut stack_size = stack::default_size();
        let mut arg_free = None;
        if !opts.is_null() {
            let o = &*opts;
            if (o.struct_size as usize) < std::mem::size_of::<slp_tasklet_options>() {
                return Err(fail(
                    E_INVALID,
                    "slp_tasklet_new_ex: opts->struct_size is too small (use slp_tasklet_options_init)",
                ));
            }
            if o.flags & !SLP_TASKLET_PAUSED != 0 {
                return Err(fail(
                    E_INVALID,
                    format_args!("slp_tasklet_new_ex: unknown flags {:#x}", o.flags),
                ));
            }
            flags = o.flags;
            if !o.name.is_null() {
                name = Some(copy_name(CStr::from_ptr(o.name))?);
            }
            if o.stack_size != 0 {
                match stack::normalize_size(o.stack_size) {
                    Some(n) => stack_size = n,
                    None => {
                        return Err(fail(
                            E_INVALID,
                            format_args!(
                                "slp_tasklet_new_ex: stack_size {} is out of range ({}..={})",
                                o.stack_size,
                                stack::MIN_STACK_SIZE,
                                stack::MAX_STACK_SIZE
                            ),
                        ))
                    }
                }
            }
            arg_free = o.arg_free;
        }
        let paused = flags & SLP_TASKLET_PAUSED != 0;
        if paused && out.is_null() {
            return Err(fail(
                E_INVALID,
                "slp_tasklet_new_ex: a PAUSED tasklet needs `out` (nothing else could insert it)",
            ));
        }
        let s = sched::usable()?;
        let t = s.tasklet_new(func, arg, arg_free, name, stack_size, paused, !out.is_null())?;
        if !out.is_null() {
            *out = t;
        }
        Ok(OK)
    })
}

/// Copies a tasklet name without aborting when memory is exhausted.
fn copy_name(name: &CStr) -> Result<CString, Status> {
    let bytes = name.to_bytes_with_nul();
    let mut v = Vec::new();
    if v.try_reserve_exact(bytes.len()).is_err() {
        return Err(fail(E_NOMEM, "slp_tasklet_new_ex: out of memory copying the name"));
    }
    v.extend_from_slice(bytes);
    CString::from_vec_with_nul(v).map_err(|_| fail(E_INVALID, "slp_tasklet_new_ex: bad name"))
}

/// Adds a reference to `t`. NULL is ignored. Any thread.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_retain(t: *mut Tasklet) {
    ffi_boundary!("slp_tasklet_retain", {
        if !t.is_null() {
            tasklet::retain(t);
        }
    })
}

/// Drops a reference to `t`; NULL is ignored. When the last reference goes: a dead tasklet is
/// freed; a never-started paused one is discarded (arg_free runs); a started, paused one is
/// killed (pending) so that it can clean up (Stackless kills an unreferenced tasklet). The
/// main tasklet is never freed.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_release(t: *mut Tasklet) {
    ffi_boundary!("slp_tasklet_release", {
        if !t.is_null() {
            tasklet::release(t)
        }
    })
}

/// Appends a paused tasklet to its thread's run queue (`tasklet.insert()`). Already runnable:
/// SLP_OK, nothing changes. Any thread: another thread's tasklet is appended to its owner's
/// queue, and the owner is woken (if it sleeps in libslp) or its wake-up callback is called.
/// Returns SLP_OK; SLP_E_INVALID (NULL); SLP_E_DEAD (dead, or its thread exited);
/// SLP_E_STATE (blocked, or the main tasklet while it is inside slp_run).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_insert(t: *mut Tasklet) -> slp_status {
    ffi_status!("slp_tasklet_insert", {
        let t = nonnull(t, "slp_tasklet_insert", "t")? as *mut Tasklet;
        Ok(ops::insert(t))
    })
}

/// Takes `t` out of the run queue: it becomes paused (`tasklet.remove()`). Already paused:
/// SLP_OK. Owner thread only. Returns SLP_OK; SLP_E_INVALID (NULL); SLP_E_DEAD; SLP_E_STATE
/// (t is the current tasklet — use slp_schedule_remove — or blocked); SLP_E_WRONG_THREAD.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_remove(t: *mut Tasklet) -> slp_status {
    ffi_status!("slp_tasklet_remove", {
        let t = nonnull(t, "slp_tasklet_remove", "t")? as *mut Tasklet;
        Ok(ops::remove(t))
    })
}

/// Appends `t` if it is not scheduled, then switches to it now (`tasklet.run()`). The caller
/// keeps its place in the queue, so the tasklets between `t` and the caller run before the
/// caller resumes. `t` current: SLP_OK at once.
/// Returns SLP_OK (or the caller's own pending delivery when it resumes: SLP_E_KILLED, a user
/// code, or a tasklet's uncaught error for the main tasklet); SLP_E_INVALID; SLP_E_DEAD;
/// SLP_E_STATE (t blocked, or main while inside slp_run); SLP_E_SWITCH_TRAP.
/// Another thread's tasklet: like slp_tasklet_insert (appended to its owner's queue, the
/// owner woken; nothing switches here).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_run(t: *mut Tasklet) -> slp_status {
    ffi_status!("slp_tasklet_run", {
        let t = nonnull(t, "slp_tasklet_run", "t")? as *mut Tasklet;
        Ok(ops::run(t))
    })
}

/// Like slp_tasklet_run, but the caller is paused (removed from the queue) until someone
/// inserts it (`tasklet.switch()`). `t` current: SLP_OK, no-op.
/// Returns as slp_tasklet_run; another thread's tasklet is SLP_E_WRONG_THREAD.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_switch(t: *mut Tasklet) -> slp_status {
    ffi_status!("slp_tasklet_switch", {
        let t = nonnull(t, "slp_tasklet_switch", "t")? as *mut Tasklet;
        Ok(ops::switch(t))
    })
}

/// Kills `t` (`tasklet.kill(pending)`): its pending or next blocking call returns
/// SLP_E_KILLED; a blocked `t` first leaves what it waits on (a channel's balance is
/// corrected). `pending = false` switches to `t` now (the caller keeps its place); `true` only
/// makes it runnable. A never-started tasklet ends without running (arg_free runs). A dead
/// one: SLP_OK, no-op. Killing the current tasklet returns SLP_E_KILLED to the caller. A kill
/// is delivered once: a tasklet that handles it and goes on stays alive.
/// From another thread a kill is always pending (`pending` is ignored): a blocked target
/// leaves its channel (balance corrected) before this returns, and its owner thread is woken
/// to deliver the kill.
/// Returns SLP_OK (or the caller's own pending delivery when it resumes); SLP_E_KILLED (t is
/// the caller); SLP_E_INVALID; SLP_E_SWITCH_TRAP (pending = false under switch_trap).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_kill(t: *mut Tasklet, pending: bool) -> slp_status {
    ffi_status!("slp_tasklet_kill", {
        let t = nonnull(t, "slp_tasklet_kill", "t")? as *mut Tasklet;
        Ok(ops::throw(t, E_KILLED, ptr::null_mut(), pending))
    })
}

/// Raises user exception `code` (> 0) in `t` (`tasklet.throw()`): the same path as kill, but
/// t's blocking call returns `code`, and slp_exception_data() then returns `data` in `t`.
/// A never-started tasklet ends without running and `code` is reported like an uncaught
/// error: returned by this call when `pending` is false, by the next slp_run when true.
/// Throwing to the caller itself returns `code` at once. From another thread a throw is
/// always pending, like a kill.
/// Returns SLP_OK (or the caller's own pending delivery); `code` (see above); SLP_E_INVALID
/// (NULL, code <= 0); SLP_E_DEAD; SLP_E_SWITCH_TRAP.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to; `data`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_throw(
    t: *mut Tasklet,
    code: i32,
    data: *mut c_void,
    pending: bool,
) -> slp_status {
    ffi_status!("slp_tasklet_throw", {
        let t = nonnull(t, "slp_tasklet_throw", "t")? as *mut Tasklet;
        if code <= 0 {
            return Err(fail(E_INVALID, format_args!("slp_tasklet_throw: code {code} must be > 0")));
        }
        Ok(ops::throw(t, code, data, pending))
    })
}

/// Re-binds a never-started, unscheduled (paused) tasklet to the thread `thread_id`
/// (`tasklet.bind_thread()`); it will run there once inserted by that thread.
/// Returns SLP_OK; SLP_E_INVALID (NULL, or no live libslp thread has that id); SLP_E_STATE
/// (t has started, is dead, or is scheduled).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_bind_thread(t: *mut Tasklet, thread_id: i64) -> slp_status {
    ffi_status!("slp_tasklet_bind_thread", {
        let t = nonnull(t, "slp_tasklet_bind_thread", "t")?;
        let Some(shared) = sched::Shared::lookup(thread_id) else {
            return Err(fail(
                E_INVALID,
                format_args!("slp_tasklet_bind_thread: no libslp thread has id {thread_id}"),
            ));
        };
        let t = t as *mut Tasklet;
        let old = if (*t).is_main { None } else { (*t).bind_owner(shared) };
        let Some(old) = old else {
            return Err(fail(
                E_STATE,
                "slp_tasklet_bind_thread: only a never-started, unscheduled tasklet can be re-bound",
            ));
        };
        sched::remote::moved(t, &old);
        Ok(OK)
    })
}

/// On the owner thread, applies the requests other threads posted for it, so that a query
/// right after a remote insert or kill sees their effect.
unsafe fn sync_owner(t: *const Tasklet) {
    if let Some(s) = sched::sched_opt() {
        if s.owns(&*t) && !s.poisoned() {
            s.sync();
        }
    }
}

/// A flag query: false for NULL, else `f(t)` after the owner's pending requests are applied.
#[inline(always)]
unsafe fn query(name: &'static str, t: *const Tasklet, f: impl FnOnce(&Tasklet) -> bool) -> bool {
    super::boundary::run(name, || {
        if t.is_null() {
            return false;
        }
        sync_owner(t);
        f(&*t)
    })
}

/// True if `t` has not ended (started or runnable, or created paused). False for NULL.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_alive(t: *const Tasklet) -> bool {
    query("slp_tasklet_alive", t, |t| t.is_alive())
}

/// True if `t` waits on a channel (or, later, a signal, lock or timer). False for NULL.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_blocked(t: *const Tasklet) -> bool {
    query("slp_tasklet_blocked", t, |t| t.is_alive() && t.is_blocked())
}

/// True if `t` is in its run queue or blocked. False for NULL.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_scheduled(t: *const Tasklet) -> bool {
    query("slp_tasklet_scheduled", t, |t| {
        t.is_alive() && matches!(t.state(), State::Runnable | State::Running | State::Blocked)
    })
}

/// True if `t` is alive but in no queue (not runnable, not blocked, not current).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_paused(t: *const Tasklet) -> bool {
    query("slp_tasklet_paused", t, |t| {
        t.is_alive() && matches!(t.state(), State::Fresh | State::Paused) && !is_current(t)
    })
}

fn is_current(t: &Tasklet) -> bool {
    t.is_alive() && ptr::eq(t.owner().running.load(std::sync::atomic::Ordering::Relaxed), t)
}

/// True if `t` is a thread's main tasklet (the thread's own stack).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_is_main(t: *const Tasklet) -> bool {
    ffi_boundary!("slp_tasklet_is_main", { !t.is_null() && (*t).is_main })
}

/// True if `t` is the tasklet running on its thread right now.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_is_current(t: *const Tasklet) -> bool {
    ffi_boundary!("slp_tasklet_is_current", { !t.is_null() && is_current(&*t) })
}

/// The id of the thread that owns `t` (see slp_thread_id), -1 once that thread has exited,
/// 0 for NULL.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_thread_id(t: *const Tasklet) -> i64 {
    ffi_boundary!("slp_tasklet_thread_id", {
        if t.is_null() {
            0
        } else {
            (*t).thread_id()
        }
    })
}

/// Sets the tasklet's `atomic` flag and returns the old value (false for NULL). While set on
/// the running tasklet, the watchdog does not interrupt it (Stackless `set_atomic`, the seed's
/// critical sections): an interrupt that came due meanwhile fires inside the call that clears
/// the flag on the running tasklet (that call returns once the tasklet is resumed; a kill
/// received while it was paused is then delivered by its next blocking call). Any thread.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_set_atomic(t: *mut Tasklet, atomic: bool) -> bool {
    ffi_boundary!("slp_tasklet_set_atomic", {
        !t.is_null() && crate::watchdog::set_atomic(t, atomic)
    })
}

/// Sets the tasklet's `block_trap` flag and returns the old value (false for NULL). While set,
/// an operation that would block the tasklet returns SLP_E_WOULD_BLOCK and changes nothing.
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_set_block_trap(t: *mut Tasklet, trap: bool) -> bool {
    ffi_boundary!("slp_tasklet_set_block_trap", {
        !t.is_null() && (*t).block_trap.swap(trap, std::sync::atomic::Ordering::AcqRel)
    })
}

/// The tasklet's name: borrowed, valid while the caller holds a reference to `t`; "" if
/// unnamed; NULL for a NULL handle. The main tasklet is named "main".
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_name(t: *const Tasklet) -> *const c_char {
    ffi_boundary!("slp_tasklet_name", {
        if t.is_null() {
            return ptr::null();
        }
        match &(*t).name {
            Some(n) => n.as_ptr(),
            None => c"".as_ptr(),
        }
    })
}

/// The data pointer of the last user exception delivered to the calling tasklet (by
/// slp_channel_send_exception or slp_tasklet_throw), NULL if none. A pure query: it stays
/// until the next user exception reaches this tasklet.
#[no_mangle]
pub extern "C" fn slp_exception_data() -> *mut c_void {
    ffi_boundary!("slp_exception_data", {
        match sched::sched_opt() {
            Some(s) => unsafe { (*s.running()).exc_data.get() },
            None => ptr::null_mut(),
        }
    })
}
