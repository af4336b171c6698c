//! Tasklet stacks: mmap'd regions with a guard page below, recycled through a per-thread pool
//! so that creating a tasklet after warm-up never calls mmap.
//!
//! The guard page is installed with `MADV_GUARD_INSTALL` where the kernel has it (Linux 6.13+:
//! no extra VMA per stack), otherwise with `mprotect(PROT_NONE)`, which splits the mapping in
//! two VMAs and so limits a process to about `vm.max_map_count / 2` live stacks (~32k with the
//! default 65530).

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::{Stack, StackPointer};

/// Default usable stack size in bytes (settable with `slp_set_default_stack_size`).
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;
/// Default number of idle stacks a thread keeps for reuse.
pub(crate) const DEFAULT_POOL_SIZE: usize = 64;

static STACK_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_STACK_SIZE);
static POOL_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_POOL_SIZE);
/// Set once `MADV_GUARD_INSTALL` was refused, so later stacks go straight to `mprotect`.
static NO_GUARD_MADVISE: AtomicBool = AtomicBool::new(false);
const MADV_GUARD_INSTALL: libc::c_int = 102;

pub fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Rounds a requested usable size up to whole pages, or `None` if out of range.
pub fn normalize_size(bytes: usize) -> Option<usize> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&bytes) {
        return None;
    }
    let p = page_size();
    Some((bytes + p - 1) & !(p - 1))
}

pub fn default_size() -> usize {
    STACK_SIZE.load(Ordering::Relaxed)
}
pub fn set_default_size(bytes: usize) {
    STACK_SIZE.store(bytes, Ordering::Relaxed)
}
pub fn pool_limit() -> usize {
    POOL_SIZE.load(Ordering::Relaxed)
}
pub fn set_pool_limit(n: usize) {
    POOL_SIZE.store(n, Ordering::Relaxed)
}

/// One tasklet stack: `[guard page][usable bytes]`, growing down from `base`.
pub struct SlpStack {
    base: StackPointer,
    mmap_len: usize,
    usable: usize,
    valgrind: ValgrindStackRegistration,
}

// SAFETY: the stack is plain memory owned by this value; moving it between threads is fine as
// long as no coroutine runs on it, which the scheduler guarantees (tasklets never migrate while
// they have a started stack).
unsafe impl Send for SlpStack {}

impl SlpStack {
    pub fn new(usable: usize) -> io::Result<SlpStack> {
        let page = page_size();
        let mmap_len = usable + page;
        // SAFETY: fresh anonymous private mapping; we own it until Drop unmaps it.
        unsafe {
            let mem = libc::mmap(
                ptr::null_mut(),
                mmap_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if mem == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let mut guarded = false;
            if !NO_GUARD_MADVISE.load(Ordering::Relaxed) {
                if libc::madvise(mem, page, MADV_GUARD_INSTALL) == 0 {
                    guarded = true;
                } else {
                    NO_GUARD_MADVISE.store(true, Ordering::Relaxed);
                }
            }
            if !guarded && libc::mprotect(mem, page, libc::PROT_NONE) != 0 {
                let err = io::Error::last_os_error();
                libc::munmap(mem, mmap_len);
                return Err(err);
            }
            Ok(SlpStack {
                base: StackPointer::new(mem as usize + mmap_len).unwrap(),
                mmap_len,
                usable,
                valgrind: ValgrindStackRegistration::new(mem as *mut u8, mmap_len),
            })
        }
    }

    /// Usable bytes (without the guard page).
    pub fn usable(&self) -> usize {
        self.usable
    }

    /// Lowest address of the mapping (the guard page).
    pub fn guard_start(&self) -> usize {
        self.base.get() - self.mmap_len
    }
}

impl Drop for SlpStack {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing runs on it any more (a coroutine's stack is
        // only dropped after the coroutine completed, or never when it is leaked).
        unsafe {
            // Deregister from valgrind before the memory goes.
            ptr::drop_in_place(&mut self.valgrind);
            libc::munmap(self.guard_start() as *mut libc::c_void, self.mmap_len);
        }
    }
}

// SAFETY: base/limit describe a mapping owned by self whose lowest page is a guard page, and
// the usable part is at least MIN_STACK_SIZE (>= corosensei's 4 KiB minimum).
unsafe impl Stack for SlpStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }
    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.guard_start()).unwrap()
    }
}

/// Per-thread pool of idle stacks, by size. Owned by the thread's scheduler.
#[derive(Default)]
pub struct StackPool {
    idle: Vec<SlpStack>,
}

impl StackPool {
    /// A stack of exactly `usable` bytes, from the pool if one is idle.
    pub fn take(&mut self, usable: usize) -> io::Result<SlpStack> {
        if let Some(i) = self.idle.iter().rposition(|s| s.usable == usable) {
            return Ok(self.idle.swap_remove(i));
        }
        SlpStack::new(usable)
    }

    /// Returns a stack for reuse, or unmaps it if the pool is full.
    pub fn give(&mut self, s: SlpStack) {
        if self.idle.len() < pool_limit() {
            self.idle.push(s);
        }
    }

    pub fn len(&self) -> usize {
        self.idle.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn trim(&mut self) {
        let limit = pool_limit();
        self.idle.truncate(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_normalized() {
        assert_eq!(normalize_size(1), None);
        assert_eq!(normalize_size(MAX_STACK_SIZE + 1), None);
        let p = page_size();
        assert_eq!(normalize_size(MIN_STACK_SIZE + 1), Some(MIN_STACK_SIZE + p));
    }

    #[test]
    fn pool_reuses_stacks() {
        let mut pool = StackPool::default();
        let s = pool.take(64 * 1024).unwrap();
        let base = s.base();
        pool.give(s);
        assert_eq!(pool.len(), 1);
        let s2 = pool.take(64 * 1024).unwrap();
        assert_eq!(s2.base(), base, "the idle stack is reused");
        let s3 = pool.take(128 * 1024).unwrap();
        assert_ne!(s3.base(), base);
        assert_eq!(s3.usable(), 128 * 1024);
    }

    #[test]
    fn stack_is_writable_down_to_guard() {
        let s = SlpStack::new(MIN_STACK_SIZE).unwrap();
        let lo = s.guard_start() + page_size();
        unsafe {
            std::ptr::write_volatile(lo as *mut u8, 7);
            std::ptr::write_volatile((s.base().get() - 1) as *mut u8, 9);
            assert_eq!(std::ptr::read_volatile(lo as *const u8), 7);
        }
    }
}
