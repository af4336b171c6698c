//! Memory helpers shared by libslp's heap objects (tasklets, channels, signals, locks):
//! fallible allocation — out of memory is SLP_E_NOMEM, never an abort; the caller writes the
//! object straight into the block (`ptr::write`), so large objects are not built on the stack
//! and copied, and frees it with `Box::from_raw`, whose layout it matches — and taking a
//! reference on a count that may already have reached zero.

use std::alloc::{alloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Adds a reference unless the count already reached zero (the object is being freed by
/// whoever dropped the last one): returns whether it did. The caller must know the memory is
/// still there (its free is ordered after this call by a lock or a message).
#[inline]
pub(crate) fn retain_if_live(refs: &AtomicUsize) -> bool {
    let mut n = refs.load(Ordering::Relaxed);
    while n != 0 {
        match refs.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => n = now,
        }
    }
    false
}
