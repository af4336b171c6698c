//! Architecture-specific code: the only inline assembly in libslp (stack switching itself is
//! corosensei's). One file per architecture, as corosensei does.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::current_context;

/// Other architectures record no context: `slp_tasklet_debug_context` then reports
/// `SLP_E_STATE` (no saved context).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn current_context() -> [usize; 3] {
    [0; 3]
}
