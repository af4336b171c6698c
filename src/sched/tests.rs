
//! Run-queue internals. Each test runs on its own thread, so it has its own scheduler.
use super::*;
use crate::tasklet::Tasklet;
use std::ffi::c_void;
use std::ptr;
use crate::ffi::scheduler::*;
use crate::ffi::tasklet::*;
use std::cell::RefCell;

thread_local! {
    static LOG: RefCell<String> = const { RefCell::new(String::new()) };
}
fn log(c: char) {
    LOG.with(|l| l.borrow_mut().push(c));
}
fn take_log() -> String {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}
unsafe extern "C" fn logger(arg: *mut c_void) -> i32 {
    log(arg as u8 as char);
    0
}
unsafe extern "C" fn yielder(arg: *mut c_void) -> i32 {
    for _ in 0..2 {
        log(arg as u8 as char);
        assert_eq!(slp_schedule(), OK);
    }
    0
}
fn spawn(f: unsafe extern "C" fn(*mut c_void) -> i32, c: char) -> *mut Tasklet {
    let mut t = ptr::null_mut();
    assert_eq!(unsafe { slp_tasklet_new(Some(f), c as usize as *mut c_void, &mut t) }, OK);
    t
}

/// Walks the ring from head and returns the names of the tasklets (main = 'M').
fn ring(s: &Scheduler, names: &[(*mut Tasklet, char)]) -> String {
    let mut out = String::new();
    let h = s.queue.head();
    if h.is_null() {
        return out;
    }
    let mut t = h;
    loop {
        let c = if t == s.main {
            'M'
        } else {
            names.iter().find(|(p, _)| *p == t).map(|(_, c)| *c).unwrap_or('?')
        };
        out.push(c);
        // SAFETY: ring members are live tasklets of this thread.
        t = unsafe { (*t).next.get() };
        if t == h {
            break;
        }
    }
    out
}

#[test]
fn append_goes_before_current_and_run_keeps_order() {
    let s = sched().unwrap();
    let (a, b, c) = (spawn(logger, 'a'), spawn(logger, 'b'), spawn(logger, 'c'));
    let names = [(a, 'a'), (b, 'b'), (c, 'c')];
    assert_eq!(ring(s, &names), "Mabc");
    assert_eq!(s.runcount(), 4);
    // SPEC §10.14: run(b) from M -> b, c, M; a later.
    assert_eq!(unsafe { slp_tasklet_run(b) }, OK);
    assert_eq!(take_log(), "bc");
    assert_eq!(ring(s, &names), "Ma");
    assert_eq!(slp_run(), OK);
    assert_eq!(take_log(), "a");
    assert_eq!(ring(s, &names), "M");
    for t in [a, b, c] {
        unsafe { slp_tasklet_release(t) };
    }
}

#[test]
fn main_leaves_the_queue_inside_run_and_round_robin() {
    let s = sched().unwrap();
    let (x, y) = (spawn(yielder, 'x'), spawn(yielder, 'y'));
    assert_eq!(slp_run(), OK);
    assert_eq!(take_log(), "xyxy");
    assert_eq!(s.runcount(), 1);
    assert!(s.queue.head() == s.main);
    unsafe {
        slp_tasklet_release(x);
        slp_tasklet_release(y);
    }
}

#[test]
fn run_n_resumes_where_it_stopped() {
    let (x, y) = (spawn(yielder, 'x'), spawn(yielder, 'y'));
    assert_eq!(slp_run_n(1), OK);
    assert_eq!(take_log(), "x");
    assert_eq!(slp_run_n(2), OK);
    assert_eq!(take_log(), "yx");
    assert_eq!(slp_run(), OK);
    assert_eq!(take_log(), "y");
    unsafe {
        slp_tasklet_release(x);
        slp_tasklet_release(y);
    }
}

#[test]
fn stacks_are_recycled_through_the_pool() {
    let s = sched().unwrap();
    for _ in 0..3 {
        spawn(logger, 'p');
        assert_eq!(slp_run(), OK);
    }
    assert_eq!(take_log(), "ppp");
    assert_eq!(s.pool.borrow().len(), 1, "one stack serves every tasklet in turn");
}

thread_local! {
    /// Fault injection for the poisoning test: the next dispatch panics.
    static PANIC_IN_DISPATCH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the dispatch loop in test builds: panics once when a test asked for it.
pub(crate) fn maybe_panic_in_dispatch() {
    if PANIC_IN_DISPATCH.with(|c| c.replace(false)) {
        panic!("injected fault in the dispatch loop");
    }
}

fn last_error() -> String {
    unsafe { std::ffi::CStr::from_ptr(crate::ffi::slp_last_error()) }.to_string_lossy().into_owned()
}

#[test]
fn a_panic_caught_mid_run_poisons_the_scheduler() {
    // A panic in the middle of slp_run leaves the run half-done. The call reports
    // SLP_E_PANIC, and every later call that needs this thread's scheduler is refused with
    // SLP_E_PANIC instead of running on inconsistent state.
    let t = spawn(logger, 'p');
    PANIC_IN_DISPATCH.with(|c| c.set(true));
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let st = slp_run();
    std::panic::set_hook(prev);
    assert_eq!(st, crate::status::E_PANIC);
    assert!(last_error().contains("slp_run: internal error"), "{}", last_error());
    assert_eq!(slp_run(), crate::status::E_PANIC);
    assert!(last_error().contains("no longer usable"), "{}", last_error());
    assert_eq!(slp_schedule(), crate::status::E_PANIC);
    let mut t2 = ptr::null_mut();
    assert_eq!(unsafe { slp_tasklet_new(Some(logger), ptr::null_mut(), &mut t2) }, crate::status::E_PANIC);
    assert!(t2.is_null());
    assert_eq!(unsafe { slp_tasklet_insert(t) }, crate::status::E_PANIC);
    // Pure queries still answer.
    assert!(!slp_current().is_null());
    assert_eq!(take_log(), "", "the tasklet never ran");
    // The scheduler (and `t`) are leaked at thread exit: never torn down under a broken state.
}
