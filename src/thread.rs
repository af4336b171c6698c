//! Threads (mo-threads `Thread`): named OS threads in a tree, each with a please_stop and a
//! stopped Signal and a result. A thread's function gets its please_stop signal; when it
//! returns, the thread stops and joins its children, its scheduler is torn down (its tasklets
//! are killed), and its stopped signal goes. `slp_shutdown` stops every thread, fires the
//! pending Tills, and joins them all within a deadline.
//!
//! Ownership: a `Thread` is reference counted internally. The handle returned to the creator
//! holds one reference until `join` (success) or `release` consumes it; the running thread
//! holds one until it ends; the process-wide registry holds one while the thread runs (for
//! `slp_shutdown`); a parent holds one for each child still running, and each running child
//! holds one on its parent (until it has left the parent's list).

use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::signal::{self, Signal};
use crate::status::*;

/// `int32_t fn(void *arg, slp_signal *please_stop)`.
pub type ThreadFn = unsafe extern "C" fn(arg: *mut c_void, please_stop: *mut Signal) -> i32;
/// `void fn(const char *message, void *user_data)`.
pub type LogFn = unsafe extern "C" fn(message: *const c_char, user_data: *mut c_void);

/// A thread of the toolkit (`slp_thread`). Opaque.
pub struct Thread {
    refs: AtomicUsize,
    name: CString,
    please_stop: *mut Signal,
    stopped: *mut Signal,
    result: AtomicI32,
    /// libslp's id of the thread once it runs (0 before).
    thread_id: AtomicI64,
    parent: *mut Thread,
    children: Mutex<Vec<*mut Thread>>,
    /// The creator's handle was consumed (joined or released).
    handle_gone: AtomicBool,
    /// `RELEASED` | `ENDED`: whichever of release and the thread's end comes second reports an
    /// error result (exactly one of them sees the other's bit).
    report: AtomicU8,
}

const RELEASED: u8 = 1;
const ENDED: u8 = 2;

// SAFETY: shared state is atomics, locks, and signals (thread-safe); pointers are references.
unsafe impl Send for Thread {}
// SAFETY: as above.
unsafe impl Sync for Thread {}

thread_local! {
    /// The toolkit thread running on this OS thread (null for the main thread and others).
    static CURRENT: Cell<*mut Thread> = const { Cell::new(ptr::null_mut()) };
}

/// A list of threads behind a lock (plain statics, no lazy initialisation).
struct List(Mutex<Vec<*mut Thread>>);
// SAFETY: the pointers are thread-safe `Thread`s, each held by a reference.
unsafe impl Sync for List {}

/// Every toolkit thread still running, in creation order (each holds a reference).
static REGISTRY: List = List(Mutex::new(Vec::new()));
/// The roots' children: threads created by a thread that is not a toolkit thread.
static ROOTS: List = List(Mutex::new(Vec::new()));

fn registry() -> &'static Mutex<Vec<*mut Thread>> {
    &REGISTRY.0
}

fn roots() -> &'static Mutex<Vec<*mut Thread>> {
    &ROOTS.0
}

static LOG: Mutex<Option<(LogFn, usize)>> = Mutex::new(None);

/// Installs the log callback (None: stderr); returns the old one.
pub fn set_log(cb: Option<(LogFn, usize)>) -> Option<(LogFn, usize)> {
    std::mem::replace(&mut *LOG.lock(), cb)
}

/// Reports `msg` through the log callback, or on stderr.
pub fn log(msg: std::fmt::Arguments<'_>) {
    let text = CString::new(std::fmt::format(msg).replace('\0', " ")).unwrap_or_default();
    let cb = *LOG.lock();
    match cb {
        // SAFETY: the host installed this callback for exactly this use.
        Some((f, ud)) => unsafe { f(text.as_ptr(), ud as *mut c_void) },
        None => eprintln!("{}", text.to_string_lossy()),
    }
}

unsafe fn retain(t: *mut Thread) {
    (*t).refs.fetch_add(1, Ordering::Relaxed);
}

unsafe fn release_ref(t: *mut Thread) {
    if (*t).refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        signal::release((*t).please_stop);
        signal::release((*t).stopped);
        drop(Box::from_raw(t));
    }
}

/// `slp_thread_new`: starts `f(arg, please_stop)` on a new OS thread, a child of the calling
/// toolkit thread (or a root). Returns once the new thread participates (has its scheduler).
///
/// # Safety
/// `f` is safe to call with `arg` on the new thread.
pub unsafe fn spawn(name: &CStr, f: ThreadFn, arg: *mut c_void) -> Result<*mut Thread, Status> {
    let (Some(please_stop), Some(stopped)) = (signal::new(), signal::new()) else {
        return Err(fail(E_NOMEM, "slp_thread_new: out of memory"));
    };
    let parent = CURRENT.with(|c| c.get());
    let t = Box::into_raw(Box::new(Thread {
        // The handle, the running thread, the registry, the parent's list.
        refs: AtomicUsize::new(4),
        name: name.to_owned(),
        please_stop,
        stopped,
        result: AtomicI32::new(0),
        thread_id: AtomicI64::new(0),
        parent,
        children: Mutex::new(Vec::new()),
        handle_gone: AtomicBool::new(false),
        report: AtomicU8::new(0),
    }));
    if parent.is_null() {
        roots().lock().push(t);
    } else {
        // The child holds its parent until it has left the parent's list (see `finish`).
        retain(parent);
        (*parent).children.lock().push(t);
    }
    registry().lock().push(t);
    if SHUT_DOWN.load(Ordering::SeqCst) {
        // After slp_shutdown, new threads are asked to stop at once.
        signal::go(please_stop);
    }
    let started = Arc::new((Mutex::new(false), Condvar::new()));
    let started2 = started.clone();
    let tp = t as usize;
    let argp = arg as usize;
    let builder = std::thread::Builder::new().name(name.to_string_lossy().into_owned());
    let spawned = builder.spawn(move || {
        let t = tp as *mut Thread;
        CURRENT.with(|c| c.set(t));
        // Participates from now on.
        let _ = crate::sched::sched();
        (*t).thread_id.store(crate::sched::thread_id(), Ordering::Release);
        {
            let (m, cv) = &*started2;
            *m.lock() = true;
            cv.notify_all();
        }
        // SAFETY: the creator promised `f` is safe to call with `arg` here.
        let rc = unsafe { f(argp as *mut c_void, (*t).please_stop) };
        // SAFETY: `t` is held by this thread's reference until `finish` drops it.
        unsafe { finish(t, rc) };
    });
    if spawned.is_err() {
        // Undo: nothing runs.
        unlink(t);
        release_parent(t);
        release_ref(t); // the running thread's
        release_ref(t); // the handle's
        return Err(fail(E_NOMEM, "slp_thread_new: the OS refused to start a thread"));
    }
    let (m, cv) = &*started;
    let mut s = m.lock();
    while !*s {
        cv.wait(&mut s);
    }
    Ok(t)
}

/// Removes `t` from its parent's list and the registry (dropping their references).
unsafe fn unlink(t: *mut Thread) {
    let parent = (*t).parent;
    let list = if parent.is_null() { roots() } else { &(*parent).children };
    let mut found = false;
    list.lock().retain(|&c| {
        let keep = c != t;
        found |= !keep;
        keep
    });
    if found {
        release_ref(t);
    }
    let mut found = false;
    registry().lock().retain(|&c| {
        let keep = c != t;
        found |= !keep;
        keep
    });
    if found {
        release_ref(t);
    }
}

/// The thread's function returned `rc`: it stops and joins its children, tears its scheduler
/// down, reports an error result of a released thread, and its stopped signal goes.
unsafe fn finish(t: *mut Thread, rc: i32) {
    (*t).result.store(rc, Ordering::Release);
    stop(t);
    for c in children(t) {
        let _ = signal::wait((*c).stopped, -1);
        release_ref(c);
    }
    // Until its stopped signal went, this thread still counts as a possible waker for
    // deadlock detection, though its scheduler is gone.
    let _waker = crate::sched::census::external_waker();
    // Tasklets of this thread are killed now, while the thread still exists.
    let _ = crate::sched::exit::teardown_current(true);
    if (*t).report.fetch_or(ENDED, Ordering::AcqRel) & RELEASED != 0 && rc != OK {
        log(format_args!(
            "libslp: released thread '{}' ended with error {rc}",
            (*t).name.to_string_lossy()
        ));
    }
    CURRENT.with(|c| c.set(ptr::null_mut()));
    // The stopped signal goes before the thread leaves its parent's list and the registry:
    // a parent ending (it waits for a snapshot of its children) or slp_shutdown (a snapshot
    // of the registry) that no longer finds it there must find its stopped gone already.
    // The parent may end as soon as it went; the reference this thread holds on it keeps
    // its list alive for the unlink.
    signal::go((*t).stopped);
    unlink(t);
    release_parent(t);
    release_ref(t); // the running thread's
}

/// Drops the reference a thread holds on its parent (taken in `spawn`).
unsafe fn release_parent(t: *mut Thread) {
    if !(*t).parent.is_null() {
        release_ref((*t).parent);
    }
}

/// A snapshot of `t`'s running children, each retained (the caller releases them): the list
/// may change while the caller waits on or stops them.
///
/// # Safety
/// `t` is a live thread.
unsafe fn children(t: *mut Thread) -> Vec<*mut Thread> {
    let c = (*t).children.lock();
    c.iter()
        .map(|&c| {
            retain(c);
            c
        })
        .collect()
}

/// `slp_thread_stop`: please_stop to the children first (depth first), then the thread itself.
/// Never blocks.
///
/// # Safety
/// `t` is a live thread.
pub unsafe fn stop(t: *mut Thread) {
    for c in children(t) {
        stop(c);
        release_ref(c);
    }
    signal::go((*t).please_stop);
}

/// `slp_thread_join`: waits (tasklet-aware) until the thread stopped; on SLP_OK the handle
/// is consumed and the result written.
///
/// # Safety
/// `t` is a live handle not yet consumed.
pub unsafe fn join(t: *mut Thread, timeout_ns: i64, result: *mut i32) -> Status {
    if (*t).handle_gone.load(Ordering::Acquire) {
        return fail(E_STATE, "slp_thread_join: the handle was already joined or released");
    }
    if CURRENT.with(|c| c.get()) == t {
        return fail(E_DEADLOCK, "slp_thread_join: a thread cannot join itself");
    }
    let st = signal::wait((*t).stopped, timeout_ns);
    if st != OK {
        return st;
    }
    if (*t).handle_gone.swap(true, Ordering::AcqRel) {
        return fail(E_STATE, "slp_thread_join: the handle was consumed meanwhile");
    }
    if !result.is_null() {
        *result = (*t).result.load(Ordering::Acquire);
    }
    release_ref(t);
    OK
}

/// `slp_thread_release`: detaches and consumes the handle; an error result is logged.
///
/// # Safety
/// `t` is a live handle not yet consumed.
pub unsafe fn release(t: *mut Thread) -> Status {
    if (*t).handle_gone.swap(true, Ordering::AcqRel) {
        return fail(E_STATE, "slp_thread_release: the handle was already joined or released");
    }
    if (*t).report.fetch_or(RELEASED, Ordering::AcqRel) & ENDED != 0 {
        let rc = (*t).result.load(Ordering::Acquire);
        if rc != OK {
            log(format_args!(
                "libslp: released thread '{}' ended with error {rc}",
                (*t).name.to_string_lossy()
            ));
        }
    }
    release_ref(t);
    OK
}

/// The thread's please_stop signal (borrowed).
///
/// # Safety
/// `t` is a live thread.
pub unsafe fn please_stop(t: *mut Thread) -> *mut Signal {
    (*t).please_stop
}

/// The thread's stopped signal (borrowed).
///
/// # Safety
/// `t` is a live thread.
pub unsafe fn stopped(t: *mut Thread) -> *mut Signal {
    (*t).stopped
}

/// Set by `slp_shutdown`: threads created later are asked to stop at once.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// `slp_shutdown`: please_stop to every thread (reverse creation order), pending Tills fire,
/// then every thread is joined within `timeout_ns`; stragglers are named in the log.
pub fn shutdown(timeout_ns: i64) -> Status {
    SHUT_DOWN.store(true, Ordering::SeqCst);
    let threads: Vec<*mut Thread> = {
        let r = registry().lock();
        r.iter().map(|&t| {
            // SAFETY: registered threads are live.
            unsafe { retain(t) };
            t
        }).collect()
    };
    for &t in threads.iter().rev() {
        // SAFETY: retained above.
        unsafe { stop(t) };
    }
    crate::till::shut_down();
    let deadline = (timeout_ns >= 0).then(|| crate::timer::monotonic_ns().saturating_add(timeout_ns));
    let mut late = Vec::new();
    for &t in &threads {
        let remaining = match deadline {
            Some(d) => (d - crate::timer::monotonic_ns()).max(0),
            None => -1,
        };
        // SAFETY: retained above.
        let st = unsafe { signal::wait((*t).stopped, remaining) };
        if st != OK {
            late.push(t);
        }
    }
    for &t in &late {
        // SAFETY: retained above.
        log(format_args!("libslp: slp_shutdown: thread '{}' did not stop in time", unsafe {
            (*t).name.to_string_lossy()
        }));
    }
    for t in threads {
        // SAFETY: retained above.
        unsafe { release_ref(t) };
    }
    if late.is_empty() {
        OK
    } else {
        fail(E_TIMEOUT, format_args!("slp_shutdown: {} thread(s) did not stop in time", late.len()))
    }
}
