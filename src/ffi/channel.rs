//! C API: channels (SPEC §5, §5.1).

use std::ffi::c_void;
use std::ptr;

use super::{guard, require, slp_status, SLP_E_PANIC};
use crate::channel::{self, Channel, Item};
use crate::status::*;
use crate::tasklet::Tasklet;

/// Options for slp_channel_new_ex. Initialise with slp_channel_options_init.
#[repr(C)]
pub struct slp_channel_options {
    /// sizeof(slp_channel_options), set by slp_channel_options_init.
    pub struct_size: u32,
    /// Who runs first when a transfer completes on one thread: -1 the receiver (default), 0
    /// the caller, 1 the sender. Clamped to -1..1.
    pub preference: i32,
    /// 0 (default): a rendezvous channel, a send blocks until a receiver takes the value.
    /// n > 0: a buffered channel holding up to n values (carbon QueueChannel, mo-threads
    /// Queue): a send blocks only when n values are waiting.
    pub capacity: u32,
    /// Stackless `schedule_all`: every transfer appends the partner and schedules the caller.
    pub schedule_all: bool,
}

/// Fills `opts` with the defaults (preference -1, capacity 0, schedule_all false) and sets
/// struct_size. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_options_init(opts: *mut slp_channel_options) {
    if opts.is_null() {
        return;
    }
    opts.write(slp_channel_options {
        struct_size: std::mem::size_of::<slp_channel_options>() as u32,
        preference: -1,
        capacity: 0,
        schedule_all: false,
    });
}

/// Creates a rendezvous channel with preference -1 (`stackless.channel()`). `*out` receives
/// a reference the caller releases with slp_channel_release. Channels may be used from any
/// thread. Returns SLP_OK or SLP_E_INVALID (out is NULL).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_new(out: *mut *mut Channel) -> slp_status {
    slp_channel_new_ex(ptr::null(), out)
}

/// Creates a channel with options (NULL = defaults). Returns SLP_OK or SLP_E_INVALID (out is
/// NULL, opts->struct_size too small).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_new_ex(
    opts: *const slp_channel_options,
    out: *mut *mut Channel,
) -> slp_status {
    require!(out, "slp_channel_new_ex", "out");
    guard!(SLP_E_PANIC, {
        // A thread that makes a channel participates from now on (SPEC §5.3).
        let _ = crate::scheduler::sched();
        let (mut pref, mut cap, mut all) = (-1, 0, false);
        if !opts.is_null() {
            let o = &*opts;
            if (o.struct_size as usize) < std::mem::size_of::<slp_channel_options>() {
                return fail(
                    E_INVALID,
                    "slp_channel_new_ex: opts->struct_size is too small (use slp_channel_options_init)",
                );
            }
            pref = o.preference;
            cap = o.capacity;
            all = o.schedule_all;
        }
        *out = channel::new(cap, pref, all);
        OK
    })
}

/// Adds a reference. NULL is ignored. Any thread.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_retain(ch: *mut Channel) {
    if !ch.is_null() {
        channel::retain(ch);
    }
}

/// Drops a reference; NULL is ignored. A channel released while tasklets wait on it stays
/// alive until they are gone (woken, killed or their thread ends).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_release(ch: *mut Channel) {
    if !ch.is_null() {
        channel::release(ch);
    }
}

/// Sends `value` (`channel.send()`); ownership of what it points to passes to the receiver.
/// With a receiver waiting, the value passes and who runs next follows the preference (see
/// slp_channel_options). Without one, a buffered channel with room stores the value;
/// otherwise the caller blocks (balance +1) and the next tasklet runs. A closing channel
/// takes no new buffered values (its queue does not grow).
/// Returns SLP_OK; SLP_E_INVALID (NULL ch); SLP_E_CLOSED (closing channel, no receiver,
/// or shut down while waiting); SLP_E_WOULD_BLOCK (block_trap); SLP_E_SWITCH_TRAP;
/// SLP_E_DEADLOCK (nothing could ever receive, SPEC §5.3); SLP_E_KILLED or a user code
/// (the caller was killed or thrown to while it waited; as in Stackless the kill wins even if
/// a receiver took the value just before, so the value may have been delivered).
/// A receiver waiting on another thread gets the value and is appended to its own thread's
/// run queue (that thread is woken); nothing switches here, whatever the preference.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send(ch: *mut Channel, value: *mut c_void) -> slp_status {
    require!(ch, "slp_channel_send", "ch");
    guard!(SLP_E_PANIC, channel::send(ch, Item::Value(value)))
}

/// Receives a value into `*out` (`channel.receive()`), blocking (balance -1) until a sender
/// comes. `*out` is written only on SLP_OK.
/// Returns SLP_OK; a positive user code sent with slp_channel_send_exception (read its data
/// with slp_exception_data()); SLP_E_INVALID (NULL); SLP_E_CLOSED (closing and nothing to
/// receive); SLP_E_WOULD_BLOCK; SLP_E_SWITCH_TRAP; SLP_E_DEADLOCK; SLP_E_KILLED or a thrown
/// code (the caller was killed or thrown to while it waited; as in Stackless the kill wins
/// even if a sender had just handed it a value, which is then lost).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_receive(ch: *mut Channel, out: *mut *mut c_void) -> slp_status {
    require!(ch, "slp_channel_receive", "ch");
    require!(out, "slp_channel_receive", "out");
    guard!(SLP_E_PANIC, {
        let mut v = ptr::null_mut();
        let s = channel::receive(ch, &mut v);
        if s == OK {
            *out = v;
        }
        s
    })
}

/// Like slp_channel_send, but the receiver's receive returns `code` (> 0) and its
/// slp_exception_data() returns `data` (`channel.send_exception()`).
/// Returns as slp_channel_send; SLP_E_INVALID if code <= 0.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send_exception(
    ch: *mut Channel,
    code: i32,
    data: *mut c_void,
) -> slp_status {
    require!(ch, "slp_channel_send_exception", "ch");
    if code <= 0 {
        return fail(E_INVALID, format!("slp_channel_send_exception: code {code} must be > 0"));
    }
    guard!(SLP_E_PANIC, channel::send(ch, Item::Exception(code, data)))
}

/// Sends `n` values in order, each like slp_channel_send (`channel.send_sequence()`).
/// `*sent` is set to `n` on SLP_OK; on an error it is not written and slp_last_error() says
/// how many values were sent before it. `values` may be NULL when n is 0.
/// Returns SLP_OK or the first failing send's status; SLP_E_INVALID (NULL ch, sent, or values
/// with n > 0).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send_sequence(
    ch: *mut Channel,
    values: *const *mut c_void,
    n: usize,
    sent: *mut usize,
) -> slp_status {
    require!(ch, "slp_channel_send_sequence", "ch");
    require!(sent, "slp_channel_send_sequence", "sent");
    if n > 0 && values.is_null() {
        return fail(E_INVALID, "slp_channel_send_sequence: values is NULL");
    }
    guard!(SLP_E_PANIC, {
        for i in 0..n {
            let s = channel::send(ch, Item::Value(*values.add(i)));
            if s != OK {
                let msg = format!(
                    "slp_channel_send_sequence: stopped after {i} of {n} values: {}",
                    std::ffi::CStr::from_ptr(crate::status::last_error_ptr()).to_string_lossy()
                );
                return fail(s, msg);
            }
        }
        *sent = n;
        OK
    })
}

/// The channel's balance: > 0, that many senders wait (plus buffered values); < 0, that many
/// receivers wait. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_balance(ch: *const Channel) -> i32 {
    if ch.is_null() {
        return 0;
    }
    channel::balance(ch)
}

/// The preference: -1 receiver first (default), 0 caller continues, 1 sender first. 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_preference(ch: *const Channel) -> i32 {
    if ch.is_null() {
        return 0;
    }
    channel::preference(ch)
}

/// Sets the preference, clamped to -1, 0, 1. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_set_preference(ch: *mut Channel, preference: i32) {
    if !ch.is_null() {
        channel::set_preference(ch, preference)
    }
}

/// Whether schedule_all is on. False for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_schedule_all(ch: *const Channel) -> bool {
    !ch.is_null() && channel::schedule_all(ch)
}

/// Turns schedule_all on or off: when on, a completed transfer appends the partner and the
/// caller schedules (the next runnable tasklet runs). NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_set_schedule_all(ch: *mut Channel, on: bool) {
    if !ch.is_null() {
        channel::set_schedule_all(ch, on)
    }
}

/// The channel's capacity (0 = rendezvous). 0 for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_capacity(ch: *const Channel) -> u32 {
    if ch.is_null() {
        return 0;
    }
    channel::capacity(ch)
}

/// Marks the channel closing (`channel.close()`): waiting tasklets can still be paired, but
/// an operation that would block returns SLP_E_CLOSED. Returns SLP_OK or SLP_E_INVALID.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_close(ch: *mut Channel) -> slp_status {
    require!(ch, "slp_channel_close", "ch");
    guard!(SLP_E_PANIC, {
        channel::close(ch);
        OK
    })
}

/// Undoes slp_channel_close (`channel.open()`). Returns SLP_OK or SLP_E_INVALID.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_open(ch: *mut Channel) -> slp_status {
    require!(ch, "slp_channel_open", "ch");
    guard!(SLP_E_PANIC, {
        channel::open(ch);
        OK
    })
}

/// Closes the channel and wakes every waiting tasklet: their send or receive returns
/// SLP_E_CLOSED (values still buffered can be received first). The woken tasklets are
/// appended to their own threads' run queues (other threads are woken); the caller continues.
/// Returns SLP_OK or SLP_E_INVALID.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_shutdown(ch: *mut Channel) -> slp_status {
    require!(ch, "slp_channel_shutdown", "ch");
    guard!(SLP_E_PANIC, channel::shutdown(ch))
}

/// True once slp_channel_close or _shutdown was called (and not reopened). False for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_closing(ch: *const Channel) -> bool {
    !ch.is_null() && channel::closing(ch)
}

/// True if the channel is closing and its balance is 0 (`channel.closed`). False for NULL.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_closed(ch: *const Channel) -> bool {
    !ch.is_null() && channel::closed(ch)
}

/// The first waiting tasklet (`channel.queue`): a new reference the caller releases, or NULL
/// when nobody waits (or ch is NULL).
#[no_mangle]
pub unsafe extern "C" fn slp_channel_queue(ch: *const Channel) -> *mut Tasklet {
    if ch.is_null() {
        return ptr::null_mut();
    }
    guard!(ptr::null_mut(), channel::queue(ch))
}
