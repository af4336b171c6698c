//! Fallible allocation of libslp's heap objects (tasklets, channels, signals, locks): out of
//! memory is SLP_E_NOMEM, never an abort. The caller writes the object straight into the
//! block (`ptr::write`), so large objects are not built on the stack and copied; the block is
//! freed with `Box::from_raw`, whose layout it matches.

use std::alloc::{alloc, Layout};

/// An uninitialised heap block for one `T`, or None when memory is exhausted.
///
/// The caller must initialise it whole (`ptr::write`) before any other use, and frees it
/// with `drop(Box::from_raw(p))`.
#[inline]
pub(crate) fn alloc_uninit<T>() -> Option<*mut T> {
    let layout = Layout::new::<T>();
    debug_assert!(layout.size() != 0, "libslp allocates no zero-sized objects");
    // SAFETY: the layout has a non-zero size (libslp's objects all do).
    let p = unsafe { alloc(layout) } as *mut T;
    (!p.is_null()).then_some(p)
}
