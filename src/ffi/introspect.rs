//! C API: introspection and tools (Stackless's schedule and channel callbacks, counters, the
//! tasklet dump, and the saved context of a suspended tasklet for debuggers). The core side
//! is `src/introspect.rs`.

use std::ffi::{c_char, c_void};
use std::sync::atomic::Ordering;

use super::boundary::nonnull;
use super::{ffi_status, slp_status, SLP_OK};
use crate::channel::{self, Channel};
use crate::introspect::{self as core, CBuf};
use crate::sched::sched;

use crate::status::*;
use crate::tasklet::{State, Tasklet};

/// A schedule callback: `fn(prev, next, user_data)`.
pub type slp_schedule_fn =
    Option<unsafe extern "C" fn(prev: *mut Tasklet, next: *mut Tasklet, user_data: *mut c_void)>;

/// A channel callback: `fn(ch, tasklet, sending, will_block, user_data)`.
pub type slp_channel_fn = Option<
    unsafe extern "C" fn(
        ch: *mut Channel,
        t: *mut Tasklet,
        sending: bool,
        will_block: bool,
        user_data: *mut c_void,
    ),
>;

/// Installs the calling thread's schedule callback (Stackless `set_schedule_callback`):
/// `fn(prev, next, user_data)` is called on this thread at every tasklet switch, `prev` being
/// the tasklet that ran (possibly one that just ended; borrowed, valid during the call) and
/// `next` the one that runs now (the main tasklet included). NULL removes it. It runs between
/// tasklets: calls that would switch, block or run return SLP_E_STATE from inside it (see
/// "Callbacks" at the top of this header); if it removes `next` or kills it (pending), that
/// switch is not made and the scheduler picks again. The previous callback is
/// returned through `prev_fn` and `prev_user_data` (each may be NULL). Returns SLP_OK.
///
/// # Safety
/// `user_data`, `prev_fn`, `prev_user_data`: NULL or valid for the reads and writes this call documents; `fn_`: NULL or a function that is safe to call as documented.
#[no_mangle]
pub unsafe extern "C" fn slp_set_schedule_callback(
    fn_: slp_schedule_fn,
    user_data: *mut c_void,
    prev_fn: *mut slp_schedule_fn,
    prev_user_data: *mut *mut c_void,
) -> slp_status {
    ffi_status!("slp_set_schedule_callback", {
        let s = sched()?;
        let old = s.sched_cb.replace(fn_.map(|f| (f, user_data as usize)));
        if !prev_fn.is_null() {
            *prev_fn = old.map(|(f, _)| f);
        }
        if !prev_user_data.is_null() {
            *prev_user_data = old.map_or(std::ptr::null_mut(), |(_, u)| u as *mut c_void);
        }
        if fn_.is_none() {
            s.clear_callback_prev();
        }
        Ok(SLP_OK)
    })
}

/// Installs the calling thread's channel callback (Stackless `set_channel_callback`):
/// `fn(ch, tasklet, sending, will_block, user_data)` is called on this thread before each send
/// or receive it makes, `will_block` as seen just before the operation. Calls that would
/// switch, block or run return SLP_E_STATE from inside it (see "Callbacks" at the top of this
/// header); the operation then proceeds normally.
/// NULL removes it; the previous one is returned through `prev_fn` / `prev_user_data` (each
/// may be NULL). Returns SLP_OK.
///
/// # Safety
/// `user_data`, `prev_fn`, `prev_user_data`: NULL or valid for the reads and writes this call documents; `fn_`: NULL or a function that is safe to call as documented.
#[no_mangle]
pub unsafe extern "C" fn slp_set_channel_callback(
    fn_: slp_channel_fn,
    user_data: *mut c_void,
    prev_fn: *mut slp_channel_fn,
    prev_user_data: *mut *mut c_void,
) -> slp_status {
    ffi_status!("slp_set_channel_callback", {
        let old = sched()?.chan_cb.replace(fn_.map(|f| (f, user_data as usize)));
        if !prev_fn.is_null() {
            *prev_fn = old.map(|(f, _)| f);
        }
        if !prev_user_data.is_null() {
            *prev_user_data = old.map_or(std::ptr::null_mut(), |(_, u)| u as *mut c_void);
        }
        Ok(SLP_OK)
    })
}

/// libslp's counters. Set `struct_size` to sizeof(slp_counters) before slp_counters_get.
#[repr(C)]
pub struct slp_counters {
    /// sizeof(slp_counters), set by the caller.
    pub struct_size: u32,
    /// Tasklets the calling thread's scheduler ever created.
    pub tasklets_created: u64,
    /// The calling thread's tasklets not yet dead (the main tasklet excluded).
    pub tasklets_live: u64,
    /// Tasklet switches on the calling thread.
    pub switches: u64,
    /// Channels ever created, process-wide.
    pub channels_created: u64,
    /// Channels alive, process-wide.
    pub channels_live: u64,
    /// Idle stacks in the calling thread's pool.
    pub stacks_pooled: u64,
    /// Locks held right now, process-wide (a tasklet that ends holding a lock leaves it
    /// locked: this shows it). Added in 0.1.0 after the first fields: a program built against
    /// a header without it passes a smaller struct_size and gets the fields it knows.
    pub locks_held: u64,
}

/// The size of slp_counters before `locks_held` was added (the smallest struct_size taken).
const COUNTERS_V1_SIZE: usize = std::mem::offset_of!(slp_counters, locks_held);

/// Fills `*out` with the counters (tasklet counts and switches of the calling thread, channel
/// and lock counts of the whole process): the fields that fit in `struct_size` bytes, so a
/// program built against an older header keeps working. Returns SLP_OK, or SLP_E_INVALID
/// (NULL, or struct_size smaller than the first version's slp_counters).
///
/// # Safety
/// `out`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_counters_get(out: *mut slp_counters) -> slp_status {
    ffi_status!("slp_counters_get", {
        nonnull(out, "slp_counters_get", "out")?;
        let size = (*out).struct_size as usize;
        if size < COUNTERS_V1_SIZE {
            return Err(fail(
                E_INVALID,
                "slp_counters_get: set out->struct_size to sizeof(slp_counters)",
            ));
        }
        let s = sched()?;
        s.sync();
        let c = slp_counters {
            struct_size: size.min(std::mem::size_of::<slp_counters>()) as u32,
            tasklets_created: s.created.get(),
            tasklets_live: s.live_tasklets(),
            switches: s.switches.get(),
            channels_created: channel::CREATED.load(Ordering::Relaxed),
            channels_live: channel::LIVE.load(Ordering::Relaxed),
            stacks_pooled: s.pool.borrow().len() as u64,
            locks_held: crate::lock::HELD.load(Ordering::Relaxed),
        };
        // Only the fields the caller's struct has.
        std::ptr::copy_nonoverlapping(
            &c as *const slp_counters as *const u8,
            out as *mut u8,
            size.min(std::mem::size_of::<slp_counters>()),
        );
        Ok(SLP_OK)
    })
}

/// Writes a text dump of the calling thread's tasklets into `buf`: a header line
/// "thread <id>: <n> tasklets, runcount <r>", then one line per tasklet — the running one
/// first, marked '*', then the run queue in order, then the blocked and paused ones — with its
/// name (or address), its state, and for a blocked one what it waits on ("blocked receiving on
/// channel 0x... (balance -1)"). Never-started paused tasklets are not listed.
/// At most `size` bytes are written, NUL included; `*needed` receives the size the whole dump
/// needs (written also on SLP_E_NOMEM, snprintf-style). `buf` may be NULL when `size` is 0.
/// Returns SLP_OK; SLP_E_NOMEM when `size < *needed` (a non-empty `buf` then holds the
/// truncated, NUL-terminated start); SLP_E_INVALID (`needed` NULL, or `buf` NULL with size > 0).
/// Read-only and lock-free towards other threads, so a debugger may call it with the process
/// stopped anywhere; it creates no scheduler ("no libslp scheduler on this thread").
///
/// # Safety
/// `buf`, `needed`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_dump(buf: *mut c_char, size: usize, needed: *mut usize) -> slp_status {
    ffi_status!("slp_dump", {
        nonnull(needed, "slp_dump", "needed")?;
        if buf.is_null() && size > 0 {
            return Err(fail(E_INVALID, "slp_dump: buf is NULL but size > 0"));
        }
        // Written straight into `buf` (no allocation: a debugger or a program out of memory
        // can call it).
        let mut w = CBuf::new(buf as *mut u8, size);
        let _ = core::dump(crate::sched::sched_opt(), &mut w);
        w.finish();
        *needed = w.needed();
        if size < w.needed() {
            return Err(fail(
                E_NOMEM,
                format_args!("slp_dump: the dump needs {} bytes, buf has {size}", w.needed()),
            ));
        }
        Ok(SLP_OK)
    })
}

/// For debuggers (tools/gdb/slp.py): the registers a suspended tasklet saved where it switched
/// away inside libslp — instruction pointer, stack pointer, frame pointer. A debugger sets its
/// $pc/$sp/$rbp to them (restoring the real ones afterwards) and unwinds to show the tasklet's
/// backtrace. Valid while the tasklet stays suspended. x86-64 only; any thread.
/// Returns SLP_OK; SLP_E_INVALID (a NULL argument); SLP_E_STATE (the tasklet is running, never
/// started, dead, or a main tasklet — whose frames are on its thread's own stack).
///
/// # Safety
/// `t`: NULL or a live handle the caller holds a reference to; `pc`, `sp`, `fp`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_tasklet_debug_context(
    t: *const Tasklet,
    pc: *mut usize,
    sp: *mut usize,
    fp: *mut usize,
) -> slp_status {
    ffi_status!("slp_tasklet_debug_context", {
        let t = nonnull(t, "slp_tasklet_debug_context", "t")?;
        if pc.is_null() || sp.is_null() || fp.is_null() {
            return Err(fail(E_INVALID, "slp_tasklet_debug_context: an out-parameter is NULL"));
        }
        let ctx = (*t).debug_context();
        if (*t).is_main
            || matches!((*t).state(), State::Fresh | State::Dead)
            || super::tasklet::slp_tasklet_is_current(t)
            || ctx[0] == 0
        {
            return Err(fail(
                E_STATE,
                "slp_tasklet_debug_context: the tasklet is not suspended (running, never started, \
                 dead, or a main tasklet)",
            ));
        }
        *pc = ctx[0];
        *sp = ctx[1];
        *fp = ctx[2];
        Ok(SLP_OK)
    })
}
