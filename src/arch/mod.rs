//! Architecture-specific code: the only inline assembly in libslp (stack switching itself is
//! corosensei's): registers for debuggers, and the scheduler pointer in initial-exec TLS.
//! One file per architecture, as corosensei does.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{
    current_context, set_tls_sched, tls_sched, valgrind_mem_noaccess, valgrind_mem_undefined,
};

/// Other architectures record no context: `slp_tasklet_debug_context` then reports
/// `SLP_E_STATE` (no saved context).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn current_context() -> [usize; 3] {
    [0; 3]
}

/// Elsewhere the scheduler pointer lives in a `thread_local!` (the platform's default TLS
/// model).
#[cfg(not(target_arch = "x86_64"))]
thread_local! {
    static SCHED: std::cell::Cell<*mut u8> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn tls_sched() -> *mut u8 {
    SCHED.try_with(|c| c.get()).unwrap_or(std::ptr::null_mut())
}
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn set_tls_sched(v: *mut u8) {
    let _ = SCHED.try_with(|c| c.set(v));
}

/// Valgrind client requests are issued on x86-64 only.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn valgrind_mem_noaccess(_addr: usize, _len: usize) {}
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn valgrind_mem_undefined(_addr: usize, _len: usize) {}
