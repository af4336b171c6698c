//! Channel queue internals (waiters, balance, buffer), driven through the C API.
use super::*;
use crate::status::*;
use crate::ffi::channel::*;
use crate::ffi::scheduler::*;
use crate::ffi::tasklet::*;

unsafe extern "C" fn receiver(ch: *mut c_void) -> i32 {
    let mut v = ptr::null_mut();
    match slp_channel_receive(ch as *mut Channel, &mut v) {
        E_CLOSED => OK, // the channel-iteration idiom ends here
        s => s,
    }
}
unsafe extern "C" fn sender(ch: *mut c_void) -> i32 {
    slp_channel_send(ch as *mut Channel, 7usize as *mut c_void)
}

#[test]
fn waiters_are_fifo_and_balance_is_derived() {
    unsafe {
        let ch = new(0, -1, false).unwrap();
        let mut ts = [ptr::null_mut(); 3];
        for t in ts.iter_mut() {
            assert_eq!(slp_tasklet_new(Some(receiver), ch as *mut c_void, t), OK);
        }
        assert_eq!(slp_run(), OK);
        assert_eq!(balance(ch), -3);
        let first = queue(ch);
        assert_eq!(first, ts[0]);
        crate::tasklet::release(first);
        // Killing the middle waiter removes it and corrects the balance.
        assert_eq!(slp_tasklet_kill(ts[1], true), OK);
        assert_eq!(balance(ch), -2);
        assert_eq!(shutdown(ch), OK);
        assert_eq!(balance(ch), 0);
        assert!(closed(ch));
        assert_eq!(slp_run(), OK);
        for t in ts {
            assert!(!slp_tasklet_alive(t));
            slp_tasklet_release(t);
        }
        release(ch);
    }
}

#[test]
fn buffer_counts_in_balance_and_refills_from_blocked_senders() {
    unsafe {
        let ch = new(1, -1, false).unwrap();
        let mut a = ptr::null_mut();
        let mut b = ptr::null_mut();
        slp_tasklet_new(Some(sender), ch as *mut c_void, &mut a);
        slp_tasklet_new(Some(sender), ch as *mut c_void, &mut b);
        assert_eq!(slp_run(), OK);
        // a's value is buffered, b waits: balance 2.
        assert_eq!(balance(ch), 2);
        assert!(!slp_tasklet_alive(a));
        assert!(slp_tasklet_blocked(b));
        let mut v = ptr::null_mut();
        assert_eq!(receive(ch, &mut v, -1), OK);
        assert_eq!(v as usize, 7);
        // b's value moved into the buffer and b was woken.
        assert_eq!(balance(ch), 1);
        assert!(!slp_tasklet_blocked(b));
        assert_eq!(slp_run(), OK);
        assert_eq!(receive(ch, &mut v, -1), OK);
        assert_eq!(balance(ch), 0);
        slp_tasklet_release(a);
        slp_tasklet_release(b);
        release(ch);
    }
}
