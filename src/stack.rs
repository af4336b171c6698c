//! Tasklet stacks: mmap'd regions with a guard page below, recycled through a per-thread pool
//! so that creating a tasklet after warm-up never calls mmap.
//!
//! The guard page is installed with `MADV_GUARD_INSTALL` where the kernel has it (Linux 6.13+:
//! no extra VMA per stack), otherwise with `mprotect(PROT_NONE)`, which splits the mapping in
//! two VMAs and so limits a process to about `vm.max_map_count / 2` live stacks (~32k with the
//! default 65530).

use std::io;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::{Stack, StackPointer};

/// Default usable stack size in bytes (settable with `slp_set_default_stack_size`).
pub(crate) const DEFAULT_STACK_SIZE: usize = 256 * 1024;
pub(crate) const MIN_STACK_SIZE: usize = 16 * 1024;
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;
/// Default cap on the idle stacks a thread keeps: none (the pool follows demand, see
/// `StackPool`).
pub(crate) const DEFAULT_POOL_SIZE: usize = usize::MAX;

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

/// Makes the page at `lo` a guard page: `MADV_GUARD_INSTALL` where the kernel has it (no
/// extra VMA), else `mprotect(PROT_NONE)`.
///
/// # Safety
/// `lo` is the start of `page` bytes of a mapping the caller owns and nothing uses.
unsafe fn install_guard(lo: *mut libc::c_void, page: usize) -> io::Result<()> {
    if !NO_GUARD_MADVISE.load(Ordering::Relaxed) {
        if libc::madvise(lo, page, MADV_GUARD_INSTALL) == 0 {
            return Ok(());
        }
        NO_GUARD_MADVISE.store(true, Ordering::Relaxed);
    }
    if libc::mprotect(lo, page, libc::PROT_NONE) != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `MADV_POPULATE_WRITE` (Linux 5.14+).
const MADV_POPULATE_WRITE: libc::c_int = 23;
/// `PIDFD_SELF_THREAD_GROUP` (Linux 6.15+): process_madvise on the calling process, no pidfd.
const PIDFD_SELF: libc::c_int = -10001;
/// Set once process_madvise was refused, so later carves go one madvise per stack.
static NO_PROCESS_MADVISE: AtomicBool = AtomicBool::new(false);

/// Applies `advice` to `len` bytes at each of `starts`, with process_madvise on the calling
/// process (one syscall per 64 ranges instead of one each). Returns false if the kernel did not
/// do all of it (then the caller does it range by range; every advice used here may be
/// repeated).
///
/// # Safety
/// The ranges lie in mappings the caller owns and nothing else uses.
unsafe fn advise_all(starts: impl Iterator<Item = usize>, len: usize, advice: libc::c_int) -> bool {
    if NO_PROCESS_MADVISE.load(Ordering::Relaxed) {
        return false;
    }
    let call = |iov: &[libc::iovec]| {
        let r = libc::syscall(libc::SYS_process_madvise, PIDFD_SELF, iov.as_ptr(), iov.len(), advice, 0);
        if r < 0 && advice == MADV_GUARD_INSTALL {
            NO_PROCESS_MADVISE.store(true, Ordering::Relaxed); // not on this kernel
        }
        r == (iov.len() * len) as libc::c_long
    };
    let mut iov = [libc::iovec { iov_base: ptr::null_mut(), iov_len: len }; MAX_CARVE];
    let mut k = 0;
    for a in starts {
        iov[k].iov_base = a as *mut libc::c_void;
        k += 1;
        if k == MAX_CARVE {
            if !call(&iov[..k]) {
                return false;
            }
            k = 0;
        }
    }
    k == 0 || call(&iov[..k])
}

/// One tasklet stack: `[guard page][usable bytes]`, growing down from `base`.
pub struct SlpStack {
    base: StackPointer,
    mmap_len: usize,
    usable: usize,
    valgrind: ManuallyDrop<ValgrindStackRegistration>,
}

// SAFETY: the stack is plain memory owned by this value; moving it between threads is fine as
// long as no coroutine runs on it, which the scheduler guarantees (tasklets never migrate while
// they have a started stack).
unsafe impl Send for SlpStack {}

impl SlpStack {
    pub fn new(usable: usize) -> io::Result<SlpStack> {
        let mut v = SlpStack::map_many(usable, 1)?;
        Ok(v.pop().expect("one stack"))
    }

    /// Maps `n` stacks of `usable` bytes with one `mmap` (falling back to one stack if the
    /// larger mapping is refused), each `[guard page][usable]`; each can be unmapped on its
    /// own (munmap of part of a mapping).
    pub fn map_many(usable: usize, n: usize) -> io::Result<Vec<SlpStack>> {
        let page = page_size();
        let one = usable + page;
        let mut n = n.max(1);
        // SAFETY: a fresh anonymous private mapping; each slice becomes one SlpStack that
        // owns it (its Drop unmaps exactly that slice), and a slice whose guard could not be
        // installed is unmapped here before anything refers to it.
        unsafe {
            let mut mem = libc::MAP_FAILED;
            while mem == libc::MAP_FAILED {
                mem = libc::mmap(
                    ptr::null_mut(),
                    one * n,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if mem == libc::MAP_FAILED {
                    if n == 1 {
                        return Err(io::Error::last_os_error());
                    }
                    n = 1;
                }
            }
            let mut stacks = Vec::with_capacity(n);
            // Every guard page in one call where the kernel allows it, else one by one.
            let guarded = n > 1
                && !NO_GUARD_MADVISE.load(Ordering::Relaxed)
                && advise_all((0..n).map(|i| mem as usize + i * one), page, MADV_GUARD_INSTALL);
            for i in 0..n {
                let lo = (mem as usize + i * one) as *mut libc::c_void;
                let guard = if guarded { Ok(()) } else { install_guard(lo, page) };
                if let Err(e) = guard {
                    // This slice and the ones above it go; the stacks made so far stay.
                    libc::munmap(lo, one * (n - i));
                    if stacks.is_empty() {
                        return Err(e);
                    }
                    break;
                }
                stacks.push(SlpStack {
                    base: StackPointer::new(lo as usize + one).unwrap(),
                    mmap_len: one,
                    usable,
                    valgrind: ManuallyDrop::new(ValgrindStackRegistration::new(lo as *mut u8, one)),
                });
            }
            if guarded {
                // Every tasklet writes its stack's top page first: fault them all in with one
                // call rather than one page fault each (best effort; a failure costs nothing).
                let tops = (0..stacks.len()).map(|i| mem as usize + (i + 1) * one - page);
                advise_all(tops, page, MADV_POPULATE_WRITE);
            }
            Ok(stacks)
        }
    }

    /// Gives the stack's pages back to the kernel (it reads as zeroes afterwards). Only for
    /// an idle stack.
    pub fn release_pages(&self) {
        let lo = self.usable_start();
        // SAFETY: the usable part of a mapping we own, on which no coroutine runs (idle).
        unsafe {
            libc::madvise(lo as *mut libc::c_void, self.usable, libc::MADV_DONTNEED);
        }
    }

    /// Lowest address of the usable part (just above the guard page).
    fn usable_start(&self) -> usize {
        self.guard_start() + (self.mmap_len - self.usable)
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
        // only dropped after the coroutine completed, or never when it is leaked). The
        // valgrind registration is dropped here, once (the field is ManuallyDrop), before the
        // memory goes.
        unsafe {
            ManuallyDrop::drop(&mut self.valgrind);
            libc::munmap(self.guard_start() as *mut libc::c_void, self.mmap_len);
        }
    }
}

/// Unmaps idle stacks with as few `munmap` calls as their addresses allow: stacks carved
/// from one mapping and still side by side go in one call (a thread ending with a million
/// pooled stacks would otherwise make a million calls, each splitting the mapping again).
fn unmap_stacks(mut v: Vec<SlpStack>) {
    v.sort_unstable_by_key(|s| s.guard_start());
    let mut range: Option<(usize, usize)> = None; // [start, end)
    for s in v {
        let mut s = ManuallyDrop::new(s);
        let (lo, hi) = (s.guard_start(), s.guard_start() + s.mmap_len);
        // SAFETY: s is never dropped (ManuallyDrop): its registration goes here, and its
        // memory with its range below; nothing runs on an idle stack.
        unsafe { ManuallyDrop::drop(&mut s.valgrind) };
        range = match range {
            Some((a, b)) if b == lo => Some((a, hi)),
            Some((a, b)) => {
                // SAFETY: [a, b) is made of whole idle stacks we owned and forgot.
                unsafe { libc::munmap(a as *mut libc::c_void, b - a) };
                Some((lo, hi))
            }
            None => Some((lo, hi)),
        };
    }
    if let Some((a, b)) = range {
        // SAFETY: as above.
        unsafe { libc::munmap(a as *mut libc::c_void, b - a) };
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

/// How long an idle stack may go unused before its pages are given back (`MADV_DONTNEED`); an
/// idle stack unused for two periods is unmapped.
pub(crate) const DECAY_PERIOD: Duration = Duration::from_secs(1);
/// Pool events (stacks returned, runs started) between two looks at the clock.
const EVENTS_PER_CLOCK_READ: u32 = 64;
/// The most stacks mapped at once on a pool miss, and the most bytes.
const MAX_CARVE: usize = 64;
const MAX_CARVE_BYTES: usize = 32 << 20;

/// Idle stacks of one usable size.
struct SizeClass {
    usable: usize,
    /// A LIFO: the last returned (warm: its used pages resident) is taken first.
    idle: Vec<SlpStack>,
    /// The fewest stacks `idle` held since the decay period began: the bottom `low` were not
    /// touched during it.
    low: usize,
    /// The bottom `cold` stacks of `idle` had their pages given back, a period ago.
    cold: usize,
    /// Stacks to map on the next miss: doubles on each miss, back to 1 after a decay period
    /// without one.
    carve: usize,
    /// Misses since the decay period began.
    misses: usize,
}

/// Per-thread pool of idle stacks, by size. Owned by the thread's scheduler.
///
/// It follows demand: a stack that ends goes back to the pool (up to `pool_limit()` idle
/// stacks; unlimited by default), so a thread keeps as many stacks as its recent peak of live
/// tasklets and creating a tasklet in steady state maps nothing. When demand falls, idle
/// stacks untouched for a whole `DECAY_PERIOD` give their pages back (`MADV_DONTNEED`, the
/// mapping stays: reuse costs a page fault, not a syscall), and those untouched for a second
/// period are unmapped. The clock is read once per `EVENTS_PER_CLOCK_READ` pool events and
/// when the thread is about to sleep (`next_decay`), never per switch.
///
/// On a miss, `carve` stacks are mapped at once (one `mmap`, each stack with its own guard
/// page), so a burst of creations pays one `mmap` per 64 stacks.
#[derive(Default)]
pub struct StackPool {
    classes: Vec<SizeClass>,
    idle_total: usize,
    events: u32,
    period_start: Option<Instant>,
}

impl Drop for StackPool {
    fn drop(&mut self) {
        self.trim_all();
    }
}

impl StackPool {
    fn class(&mut self, usable: usize) -> &mut SizeClass {
        let i = match self.classes.iter().position(|c| c.usable == usable) {
            Some(i) => i,
            None => {
                self.classes.push(SizeClass { usable, idle: Vec::new(), low: 0, cold: 0, carve: 1, misses: 0 });
                self.classes.len() - 1
            }
        };
        &mut self.classes[i]
    }

    /// A stack of exactly `usable` bytes, from the pool if one is idle.
    pub fn take(&mut self, usable: usize) -> io::Result<SlpStack> {
        let limit = pool_limit();
        let c = self.class(usable);
        if let Some(s) = c.idle.pop() {
            let n = c.idle.len();
            c.low = c.low.min(n);
            c.cold = c.cold.min(n);
            self.idle_total -= 1;
            return Ok(s);
        }
        // A miss: map `carve` stacks, keep the extra ones idle (no pages touched yet).
        let room = limit.saturating_sub(self.idle_total).saturating_add(1);
        let c = self.class(usable);
        let want = c.carve.min(room).min(MAX_CARVE_BYTES / (usable + page_size())).max(1);
        c.carve = (c.carve * 2).min(MAX_CARVE);
        c.misses += 1;
        let mut stacks = SlpStack::map_many(usable, want)?;
        let s = stacks.pop().expect("map_many returns at least one stack");
        self.idle_total += stacks.len();
        self.class(usable).idle.append(&mut stacks);
        Ok(s)
    }

    /// Returns a stack for reuse, or unmaps it if the pool holds `pool_limit()` idle stacks.
    pub fn give(&mut self, s: SlpStack) {
        if self.idle_total < pool_limit() {
            self.idle_total += 1;
            self.class(s.usable).idle.push(s);
        }
        self.event();
    }

    /// Counts a pool event (a stack returned, a run started); reads the clock every
    /// `EVENTS_PER_CLOCK_READ` of them and decays the pool when a period is over.
    #[inline]
    pub fn event(&mut self) {
        self.events += 1;
        if self.events >= EVENTS_PER_CLOCK_READ {
            self.events = 0;
            self.decay(Instant::now());
        }
    }

    /// When the pool next has memory to give back, for a thread about to sleep: None when
    /// nothing idle is left to decay (then the thread may sleep without limit).
    pub fn next_decay(&mut self, now: impl FnOnce() -> Instant) -> Option<Instant> {
        if self.idle_total == 0 {
            return None; // nothing to give back: no clock read
        }
        let now = now();
        self.decay(now);
        let pending = self.classes.iter().any(|c| !c.idle.is_empty());
        pending.then(|| self.period_start.unwrap_or(now) + DECAY_PERIOD)
    }

    /// Ends the decay period if it is over: unmaps idle stacks untouched for two periods,
    /// gives back the pages of those untouched for one.
    fn decay(&mut self, now: Instant) {
        let start = *self.period_start.get_or_insert(now);
        if now.duration_since(start) < DECAY_PERIOD {
            return;
        }
        self.period_start = Some(now);
        for c in &mut self.classes {
            let untouched = c.low.min(c.idle.len());
            let unmap = c.cold.min(untouched);
            // Cold for a second period: unmapped (dropping a stack unmaps it).
            unmap_stacks(c.idle.drain(..unmap).collect());
            self.idle_total -= unmap;
            let newly_cold = untouched - unmap;
            let cold = &c.idle[..newly_cold];
            // SAFETY: idle stacks we own; nothing runs on them.
            if !unsafe { advise_all(cold.iter().map(|s| s.usable_start()), c.usable, libc::MADV_DONTNEED) } {
                cold.iter().for_each(SlpStack::release_pages);
            }
            c.cold = newly_cold;
            c.low = c.idle.len();
            if c.misses == 0 {
                c.carve = 1;
            }
            c.misses = 0;
        }
        self.classes.retain(|c| !c.idle.is_empty() || c.carve > 1);
    }

    /// Unmaps every idle stack now (slp_stack_pool_trim). Returns how many.
    pub fn trim_all(&mut self) -> usize {
        let n = self.idle_total;
        for c in self.classes.drain(..) {
            unmap_stacks(c.idle);
        }
        self.idle_total = 0;
        n
    }

    /// Drops idle stacks beyond `pool_limit()` (after the limit was lowered), coldest first.
    pub fn trim(&mut self) {
        let limit = pool_limit();
        for c in &mut self.classes {
            let k = self.idle_total.saturating_sub(limit).min(c.idle.len());
            unmap_stacks(c.idle.drain(..k).collect());
            c.cold = c.cold.saturating_sub(k);
            c.low = c.low.saturating_sub(k);
            self.idle_total -= k;
        }
    }

    /// Idle stacks.
    pub fn len(&self) -> usize {
        self.idle_total
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Idle stacks whose pages were given back.
    pub fn cold(&self) -> usize {
        self.classes.iter().map(|c| c.cold).sum()
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

    /// The tests that depend on the process-wide pool limit run one at a time.
    static LIMIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn pool_reuses_stacks() {
        let _l = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
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
    fn pool_decays_untouched_stacks() {
        let _l = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
        let mut pool = StackPool::default();
        let size = MIN_STACK_SIZE;
        let taken: Vec<_> = (0..10).map(|_| pool.take(size).unwrap()).collect();
        taken.into_iter().for_each(|s| pool.give(s));
        let n = pool.len();
        assert!(n >= 10, "every stack came back: {n}");
        let t0 = Instant::now();
        let sec = |k: u64| t0 + Duration::from_millis(1100 * k);
        pool.decay(t0); // the period begins
        pool.decay(sec(1)); // the class was created during that period: nothing is cold yet
        assert_eq!((pool.len(), pool.cold()), (n, 0));
        pool.decay(sec(2)); // untouched for a whole period: pages given back
        assert_eq!((pool.len(), pool.cold()), (n, n));
        // One stack used again: it is warm, the others stay cold...
        let s = pool.take(size).unwrap();
        // SAFETY: a stack we own, its pages given back: they read as zero and are writable.
        unsafe { std::ptr::write_volatile((s.base().get() - 8) as *mut u64, 1) };
        pool.give(s);
        assert_eq!(pool.cold(), n - 1);
        // ...and after another idle period the cold ones are unmapped, the warm one kept.
        pool.decay(sec(3));
        assert_eq!((pool.len(), pool.cold()), (1, 0));
        pool.decay(sec(4)); // now untouched for a period: given back
        assert_eq!((pool.len(), pool.cold()), (1, 1));
        pool.decay(sec(5));
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.next_decay(|| unreachable!("an empty pool reads no clock")), None);
    }

    #[test]
    fn pool_cap_and_trim() {
        let _l = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
        set_pool_limit(3);
        let mut pool = StackPool::default();
        let taken: Vec<_> = (0..8).map(|_| pool.take(MIN_STACK_SIZE).unwrap()).collect();
        taken.into_iter().for_each(|s| pool.give(s));
        assert_eq!(pool.len(), 3);
        set_pool_limit(DEFAULT_POOL_SIZE);
        assert_eq!(pool.trim_all(), 3);
        assert!(pool.is_empty());
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
