//! Minimal reproductions of disagreements the model test (tests/model.rs) found between
//! libslp and its contract, kept as regression tests now that libslp is fixed.
//! Each runs in a fresh thread (its own scheduler) and asserts the contract's answer.

use std::ffi::c_void;
use std::ptr;

use slp::channel::select::SelectCase;
use slp::channel::Channel;
use slp::ffi::channel::*;
use slp::ffi::scheduler::*;
use slp::ffi::tasklet::*;
use slp::ffi::SLP_OK;

fn new_chan(preference: i32, capacity: u32) -> *mut Channel {
    unsafe {
        let mut o: slp_channel_options = std::mem::zeroed();
        slp_channel_options_init(&mut o);
        o.preference = preference;
        o.capacity = capacity;
        let mut ch = ptr::null_mut();
        assert_eq!(slp_channel_new_ex(&o, &mut ch), SLP_OK);
        ch
    }
}

unsafe extern "C" fn nothing(_: *mut c_void) -> i32 {
    SLP_OK
}

/// A select with a send case and a receive case on the same channel: it used to recurse until
/// the stack overflowed when it had to wait (its own receive entry looked like a partner for
/// its send case). A selector cannot be its own partner and a channel's waiters all go one
/// way, so libslp refuses such a select with SLP_E_INVALID, changing nothing (documented in
/// the header).
#[test]
fn select_send_and_receive_on_one_channel_is_invalid() {
    std::thread::spawn(|| unsafe {
        let ch = new_chan(-1, 0);
        let mut t = ptr::null_mut();
        assert_eq!(
            slp_tasklet_new(Some(nothing), ptr::null_mut(), &mut t),
            SLP_OK
        );
        let mut cases = [
            SelectCase {
                op: SLP_SELECT_RECEIVE,
                channel: ch,
                signal: ptr::null_mut(),
                value: ptr::null_mut(),
            },
            SelectCase {
                op: SLP_SELECT_SEND,
                channel: ch,
                signal: ptr::null_mut(),
                value: 0x11 as *mut c_void,
            },
        ];
        let mut index = usize::MAX;
        let st = slp_select(cases.as_mut_ptr(), 2, -1, &mut index);
        assert_eq!(st, slp::ffi::SLP_E_INVALID);
        assert_eq!(index, usize::MAX);
        assert_eq!(slp_channel_balance(ch), 0);
        slp_tasklet_release(t);
        slp_channel_release(ch);
        slp_scheduler_shutdown();
    })
    .join()
    .unwrap();
}

static mut SEL_CH: [*mut Channel; 2] = [ptr::null_mut(); 2];

/// A selector waiting on c0 and c1 (receive cases).
unsafe extern "C" fn selector(_: *mut c_void) -> i32 {
    let mut cases = [0, 1].map(|i| SelectCase {
        op: SLP_SELECT_RECEIVE,
        channel: SEL_CH[i],
        signal: ptr::null_mut(),
        value: ptr::null_mut(),
    });
    let mut index = usize::MAX;
    slp_select(cases.as_mut_ptr(), 2, -1, &mut index)
}

/// A selector claimed through one channel leaves an entry on its other channel until it runs
/// again ("a claimed selector's entries ... no longer count in their balance or queue"). But a
/// send on that other channel still looks at the stale entry first: under switch_trap with
/// preference -1 it returns SLP_E_SWITCH_TRAP (a switch to a receiver that is not waiting)
/// instead of what it returns with no receiver (here, with block_trap: SLP_E_WOULD_BLOCK; a
/// buffered channel with room: OK; a closing channel: SLP_E_CLOSED). The same for a receive
/// facing a claimed selector's stale send entry (preference 1). (`take_partner` asks
/// `would_switch` before it finds the entry stale.)
#[test]
fn stale_selector_entry_does_not_refuse_under_switch_trap() {
    std::thread::spawn(|| unsafe {
        SEL_CH = [new_chan(0, 0), new_chan(-1, 0)];
        let mut t = ptr::null_mut();
        assert_eq!(
            slp_tasklet_new(Some(selector), ptr::null_mut(), &mut t),
            SLP_OK
        );
        assert_eq!(slp_run(), SLP_OK); // t waits on c0 and c1
        assert_eq!(slp_channel_balance(SEL_CH[1]), -1);
        // Preference 0: the sender continues; t is claimed (runnable) but has not run.
        assert_eq!(slp_channel_send(SEL_CH[0], 7 as *mut c_void), SLP_OK);
        assert_eq!(slp_channel_balance(SEL_CH[1]), 0, "t left c1");
        slp_tasklet_set_block_trap(slp_main(), true);
        slp_switch_trap(1);
        let st = slp_channel_send(SEL_CH[1], 8 as *mut c_void);
        slp_switch_trap(-1);
        slp_tasklet_set_block_trap(slp_main(), false);
        assert_eq!(
            st,
            slp::ffi::SLP_E_WOULD_BLOCK,
            "no receiver waits on c1: the send would block"
        );
        assert_eq!(slp_run(), SLP_OK);
        slp_tasklet_release(t);
        slp_channel_release(SEL_CH[0]);
        slp_channel_release(SEL_CH[1]);
        slp_scheduler_shutdown();
    })
    .join()
    .unwrap();
}

static AFTER_CLEAR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// atomic; tick past the budget (deferred); yield; clear atomic.
unsafe extern "C" fn atomic_then_yield(_: *mut c_void) -> i32 {
    let me = slp_current();
    slp_tasklet_set_atomic(me, true);
    slp_tick(3);
    slp_schedule();
    slp_tasklet_set_atomic(me, false);
    AFTER_CLEAR.store(true, std::sync::atomic::Ordering::Relaxed);
    SLP_OK
}

/// The header (slp_run_watchdog, slp_tasklet_set_atomic), SPEC §3 and §6: a tasklet whose
/// budget runs out while `atomic` is set "is not interrupted then: the interrupt fires inside
/// the slp_tasklet_set_atomic(t, false) call that clears it". libslp drops the deferred
/// interrupt when the tasklet switches away in between (commit "Watchdog: a deferred
/// interrupt is dropped when its tasklet switches away"), as Stackless loses it when the tick
/// count resets; the header does not say so. Either the header or libslp should change.
#[test]
fn deferred_interrupt_survives_a_switch() {
    std::thread::spawn(|| unsafe {
        let mut t = ptr::null_mut();
        assert_eq!(
            slp_tasklet_new(Some(atomic_then_yield), ptr::null_mut(), &mut t),
            SLP_OK
        );
        let mut got = ptr::null_mut();
        assert_eq!(slp_run_watchdog(1, 0, &mut got), SLP_OK);
        assert_eq!(got, t, "interrupted inside set_atomic(false)");
        assert!(!AFTER_CLEAR.load(std::sync::atomic::Ordering::Relaxed));
        slp_tasklet_release(got);
        slp_tasklet_release(t);
        slp_scheduler_shutdown();
    })
    .join()
    .unwrap();
}
