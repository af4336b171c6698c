//! The `extern "C"` layer: thin and mechanical. Every export runs its whole body — argument
//! checks included — inside the one boundary of `boundary.rs` (a caught panic becomes
//! `SLP_E_PANIC`, false or NULL by return type), turns its pointer arguments into checked
//! handles once, and calls into the core, which makes every routing decision.
//! The `///` comments are the public documentation: cbindgen copies them into `include/slp.h`.

#![allow(non_camel_case_types)]

use std::ffi::c_char;

use crate::status;

pub mod channel;
pub mod introspect;
pub mod lock;
pub mod scheduler;
pub mod signal;
pub mod tasklet;
pub mod thread;

/// Status returned by most calls: `SLP_OK` (0) on success, a negative library error (the
/// `SLP_E_*` constants of enum slp_status_code), or a positive user exception code (delivered
/// by slp_channel_send_exception or slp_tasklet_throw, or returned by a failing tasklet).
/// After a failure, slp_last_error() describes it.
pub type slp_status = i32;

// The status constants under their C names (`SLP_OK`, `SLP_E_INVALID`, ...), for Rust code.
// They are the core's, generated from the one status table in src/status.rs; build.rs emits
// that table into include/slp.h as `enum slp_status_code` (cbindgen cannot expand it).
pub use crate::status::c_names::*;

pub mod boundary;
pub(crate) use boundary::{ffi_boundary, ffi_status};

/// A static, NUL-terminated description of a status, e.g. "SLP_E_CLOSED: channel closed".
/// Positive values give "user exception"; unknown negative values "unknown libslp status".
/// Never NULL; the string is never freed. Any thread.
#[no_mangle]
pub extern "C" fn slp_status_str(s: slp_status) -> *const c_char {
    // The two exports outside the boundary, on purpose: they cannot panic (a static table, a
    // thread-local read through try_with) and must never return NULL, which is what the
    // boundary would answer after a panic.
    status::status_str(s).as_ptr() as *const c_char
}

/// A human-readable message for the last failed call on the calling thread (thread-local,
/// never NULL; "no error" before any failure). Borrowed: valid until the next failing slp_*
/// call on this thread; successful calls leave it unchanged. At most 1023 bytes (longer
/// messages are cut at a UTF-8 character boundary). Creates no scheduler and never allocates.
#[no_mangle]
pub extern "C" fn slp_last_error() -> *const c_char {
    status::last_error_ptr()
}

/// The version of the loaded library: MAJOR * 10000 + MINOR * 100 + PATCH, the same value
/// as SLP_VERSION_NUMBER of the matching header. Any thread; creates no scheduler.
#[no_mangle]
pub extern "C" fn slp_version() -> u32 {
    ffi_boundary!("slp_version", { env!("SLP_VERSION_NUMBER").parse().unwrap_or(0) })
}

/// Sets the default usable stack size, in bytes, of tasklets created afterwards (process-wide;
/// any thread). Rounded up to whole pages; a guard page is added below every stack.
/// Default 262144 (256 KiB). Tasklets run C code: size stacks for the deepest call chain.
/// Stacks are reserved, not committed: a tasklet costs the pages it touched (one 4 KiB page
/// for a tasklet that blocks at once), plus about 0.5 KiB of page tables.
///
/// Guard pages: on Linux 6.13 and later the guard is installed with `MADV_GUARD_INSTALL`,
/// which adds no kernel mapping, so the number of live tasklets is bounded by memory only.
/// On older kernels it falls back to `mprotect(PROT_NONE)`, which costs a kernel mapping per
/// stack: a process can then hold about `vm.max_map_count / 2` live stacks (about 32,000 with
/// Linux's default of 65530; raise it with `sysctl vm.max_map_count`). Past that,
/// creation fails with SLP_E_NOMEM.
///
/// Returns SLP_OK, or SLP_E_INVALID if `bytes` is below 16 KiB or above 1 GiB.
#[no_mangle]
pub extern "C" fn slp_set_default_stack_size(bytes: usize) -> slp_status {
    ffi_boundary!("slp_set_default_stack_size", { crate::sched::set_default_stack_size(bytes) })
}

/// The current default tasklet stack size in bytes.
#[no_mangle]
pub extern "C" fn slp_default_stack_size() -> usize {
    ffi_boundary!("slp_default_stack_size", { crate::stack::default_size() })
}

/// Caps how many idle stacks each thread keeps for reuse (process-wide; any thread; default
/// SIZE_MAX: no cap).
///
/// A tasklet's stack returns to its thread's pool when the tasklet ends, so by default a
/// thread keeps as many stacks as its recent peak of live tasklets, and creating a tasklet
/// while an idle stack of its size is pooled maps nothing (a wave of 1,000 tasklets every
/// frame costs no system call after the first frame). The pool follows demand down too: idle
/// stacks no tasklet used for a whole second give their pages back to the kernel
/// (`MADV_DONTNEED`: the mapping stays, reusing it costs a page fault), and those unused for
/// two seconds are unmapped. The pool checks this whenever the thread calls into libslp (once
/// per 64 stacks returned or runs started) and while it sleeps in libslp (waking it at most
/// three times, then sleeping without limit). A thread that stops calling libslp after a
/// burst keeps its pool until it does: call slp_stack_pool_trim there, which unmaps the
/// idle stacks at once. When the pool has none, a
/// creation maps stacks in batches that grow with demand (1, 2, 4 ... 64 per mmap, each with
/// its own guard page; see slp_set_default_stack_size).
///
/// A cap bounds the memory idle stacks can hold. The calling thread's pool is cut down to a
/// new cap at once; other threads' pools stop growing past it and shrink as their stacks are
/// taken or decay. 0 disables pooling (every tasklet maps and unmaps its stack). Returns SLP_OK
/// (every value is accepted). Stackless/carbon have no equivalent (their tasklets share the
/// C stack); Boost.Fiber's pooled_fixedsize_stack is the nearest.
#[no_mangle]
pub extern "C" fn slp_set_stack_pool_size(stacks: usize) -> slp_status {
    ffi_boundary!("slp_set_stack_pool_size", {
        crate::stack::set_pool_limit(stacks);
        if let Some(s) = crate::sched::sched_opt() {
            s.pool.borrow_mut().trim();
        }
        SLP_OK
    })
}

/// Unmaps every idle stack in the calling thread's pool now (a host that just ended a spike
/// of tasklets and wants the address space and memory back before the pool's own decay).
/// `released` (may be NULL) receives how many stacks were unmapped. The next creations map
/// stacks again. Returns SLP_OK (a thread without a scheduler has no pool: 0 released).
///
/// # Safety
/// `released`: NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn slp_stack_pool_trim(released: *mut usize) -> slp_status {
    ffi_status!("slp_stack_pool_trim", {
        let n = match crate::sched::sched_opt() {
            Some(s) => s.pool.borrow_mut().trim_all(),
            None => 0,
        };
        if !released.is_null() {
            *released = n;
        }
        Ok(SLP_OK)
    })
}

/// The per-thread idle stack pool limit (see slp_set_stack_pool_size).
#[no_mangle]
pub extern "C" fn slp_stack_pool_size() -> usize {
    ffi_boundary!("slp_stack_pool_size", { crate::stack::pool_limit() })
}
