//! Memory helpers shared by libslp's heap objects (tasklets, channels, signals, locks):
//! fallible allocation — out of memory is SLP_E_NOMEM, never an abort; the caller writes the
//! object straight into the block (`ptr::write`), so large objects are not built on the stack
//! and copied, and frees it with `Box::from_raw`, whose layout it matches — and taking a
//! reference on a count that may already have reached zero.

use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
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

/// A thread's cache of freed blocks for one type (tasklets): a game that spawns a wave of a
/// thousand tasklets every frame reuses their blocks instead of going through malloc and free
/// a thousand times each (about a fifth of a batch spawn's time with glibc). Owned by a
/// scheduler, used only on its thread; holds at most `CAP` blocks, returned to the allocator
/// when the scheduler goes.
///
/// A cached block is marked inaccessible for valgrind (a use after free is still reported);
/// the list of blocks is a separate vector, so that valgrind's leak check, which does not
/// look inside inaccessible memory, still finds every cached block. The cache is off in
/// sanitizer builds (`--cfg slp_no_block_cache`: ASan then sees every free, TSan every reuse
/// as the allocator's).
pub(crate) struct BlockCache<T> {
    blocks: RefCell<Vec<*mut T>>,
}

impl<T> BlockCache<T> {
    const CAP: usize = 1024;
    const ENABLED: bool = !cfg!(slp_no_block_cache);

    pub(crate) const fn new() -> BlockCache<T> {
        BlockCache { blocks: RefCell::new(Vec::new()) }
    }

    /// A cached uninitialised block, or None when the cache is empty.
    #[inline]
    pub(crate) fn take(&self) -> Option<*mut T> {
        let p = self.blocks.borrow_mut().pop()?;
        crate::arch::valgrind_mem_undefined(p as usize, std::mem::size_of::<T>());
        Some(p)
    }

    /// Keeps the block of a dropped `T` (its fields already dropped) for reuse, or gives it
    /// back to the allocator when the cache is full (or cannot grow).
    ///
    /// # Safety
    /// `p` came from `alloc_uninit::<T>()` (or this cache) and nothing refers to it any more.
    #[inline]
    pub(crate) unsafe fn put(&self, p: *mut T) {
        let mut blocks = self.blocks.borrow_mut();
        if !Self::ENABLED
            || blocks.len() >= Self::CAP
            || (blocks.capacity() == 0 && blocks.try_reserve_exact(Self::CAP).is_err())
        {
            dealloc(p as *mut u8, Layout::new::<T>());
            return;
        }
        crate::arch::valgrind_mem_noaccess(p as usize, std::mem::size_of::<T>());
        blocks.push(p);
    }
}

impl<T> Drop for BlockCache<T> {
    fn drop(&mut self) {
        for p in self.blocks.get_mut().drain(..) {
            // SAFETY: a cached block from alloc_uninit::<T>(), referred to by nothing.
            unsafe { dealloc(p as *mut u8, Layout::new::<T>()) };
        }
    }
}
