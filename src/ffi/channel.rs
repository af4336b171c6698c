//! C API: channels (Stackless's `channel`, with carbon's and mo-threads' buffered queues).

use std::ffi::c_void;
use std::ptr;

use super::boundary::nonnull;
use super::{ffi_boundary, ffi_status, slp_status};
use crate::channel::select::{self, SelectCase};
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
///
/// # Safety
/// `opts`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_options_init(opts: *mut slp_channel_options) {
    ffi_boundary!("slp_channel_options_init", {
        if !opts.is_null() {
            opts.write(slp_channel_options {
                struct_size: std::mem::size_of::<slp_channel_options>() as u32,
                preference: -1,
                capacity: 0,
                schedule_all: false,
            });
        }
    })
}

/// Creates a rendezvous channel with preference -1 (`stackless.channel()`). `*out` receives
/// a reference the caller releases with slp_channel_release. Channels may be used from any
/// thread. Returns SLP_OK or SLP_E_INVALID (out is NULL).
///
/// # Safety
/// `out`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_new(out: *mut *mut Channel) -> slp_status {
    slp_channel_new_ex(ptr::null(), out)
}

/// Creates a channel with options (NULL = defaults). Returns SLP_OK or SLP_E_INVALID (out is
/// NULL, opts->struct_size too small).
///
/// # Safety
/// `opts`, `out`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_new_ex(
    opts: *const slp_channel_options,
    out: *mut *mut Channel,
) -> slp_status {
    ffi_status!("slp_channel_new_ex", {
        nonnull(out, "slp_channel_new_ex", "out")?;
        // A thread that makes a channel participates in deadlock detection from now on.
        crate::sched::usable()?;
        let (mut pref, mut cap, mut all) = (-1, 0, false);
        if !opts.is_null() {
            let o = &*opts;
            if (o.struct_size as usize) < std::mem::size_of::<slp_channel_options>() {
                return Err(fail(
                    E_INVALID,
                    "slp_channel_new_ex: opts->struct_size is too small (use slp_channel_options_init)",
                ));
            }
            pref = o.preference;
            cap = o.capacity;
            all = o.schedule_all;
        }
        let Some(ch) = channel::new(cap, pref, all) else {
            return Err(fail(E_NOMEM, "slp_channel_new_ex: out of memory"));
        };
        *out = ch;
        Ok(OK)
    })
}

/// Adds a reference. NULL is ignored. Any thread.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_retain(ch: *mut Channel) {
    ffi_boundary!("slp_channel_retain", {
        if !ch.is_null() {
            channel::retain(ch);
        }
    })
}

/// Drops a reference; NULL is ignored. A channel released while tasklets wait on it stays
/// alive until they are gone (woken, killed or their thread ends).
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_release(ch: *mut Channel) {
    ffi_boundary!("slp_channel_release", {
        if !ch.is_null() {
            channel::release(ch);
        }
    })
}

/// Sends `value` (`channel.send()`); ownership of what it points to passes to the receiver.
/// With a receiver waiting, the value passes and who runs next follows the preference (see
/// slp_channel_options). Without one, a buffered channel with room stores the value;
/// otherwise the caller blocks (balance +1) and the next tasklet runs. A closing channel
/// takes no new buffered values (its queue does not grow).
/// Returns SLP_OK; SLP_E_INVALID (NULL ch); SLP_E_CLOSED (closing channel, no receiver,
/// or shut down while waiting); SLP_E_WOULD_BLOCK (block_trap); SLP_E_SWITCH_TRAP;
/// SLP_E_DEADLOCK (nothing could ever receive: see "Deadlock detection" at the top of this header); SLP_E_KILLED or a user code
/// (the caller was killed or thrown to while it waited; as in Stackless the kill wins even if
/// a receiver took the value just before, so the value may have been delivered).
/// A receiver waiting on another thread gets the value and is appended to its own thread's
/// run queue (that thread is woken); nothing switches here, whatever the preference.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to; `value`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send(ch: *mut Channel, value: *mut c_void) -> slp_status {
    ffi_status!("slp_channel_send", {
        let ch = nonnull(ch, "slp_channel_send", "ch")?;
        Ok(channel::send(ch, Item::Value(value), -1))
    })
}

/// Receives a value into `*out` (`channel.receive()`), blocking (balance -1) until a sender
/// comes. `*out` is written only on SLP_OK.
/// Returns SLP_OK; a positive user code sent with slp_channel_send_exception (read its data
/// with slp_exception_data()); SLP_E_INVALID (NULL); SLP_E_CLOSED (closing and nothing to
/// receive); SLP_E_WOULD_BLOCK; SLP_E_SWITCH_TRAP; SLP_E_DEADLOCK; SLP_E_KILLED or a thrown
/// code (the caller was killed or thrown to while it waited; as in Stackless the kill wins
/// even if a sender had just handed it a value, which is then lost).
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to; `out`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_receive(ch: *mut Channel, out: *mut *mut c_void) -> slp_status {
    ffi_status!("slp_channel_receive", {
        let ch = nonnull(ch, "slp_channel_receive", "ch")?;
        nonnull(out, "slp_channel_receive", "out")?;
        let mut v = ptr::null_mut();
        let s = channel::receive(ch, &mut v, -1);
        if s == OK {
            *out = v;
        }
        Ok(s)
    })
}

/// Like slp_channel_send, with a deadline: `timeout_ns` < 0 waits without limit (exactly
/// slp_channel_send); 0 polls: the value passes only if a receiver waits or the buffer has
/// room — and a poll never switches: a waiting partner is appended to its run queue whatever
/// the preference — else SLP_E_TIMEOUT and nothing changes; > 0 blocks at most that many nanoseconds of
/// the thread's scheduler clock (see slp_set_clock). On expiry the caller has left the channel
/// (the balance is back) and the value is still the caller's: nobody received it. A main
/// tasklet with a finite timeout never gets SLP_E_DEADLOCK: its thread sleeps until a partner
/// comes or the deadline passes. Any thread, partners on any thread.
/// Returns as slp_channel_send, plus SLP_E_TIMEOUT.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send_timeout(
    ch: *mut Channel,
    value: *mut c_void,
    timeout_ns: i64,
) -> slp_status {
    ffi_status!("slp_channel_send_timeout", {
        let ch = nonnull(ch, "slp_channel_send_timeout", "ch")?;
        Ok(channel::send(ch, Item::Value(value), timeout_ns))
    })
}

/// Like slp_channel_receive, with a deadline (see slp_channel_send_timeout): < 0 waits
/// without limit, 0 polls (SLP_E_TIMEOUT when nothing is there to receive, nothing changed),
/// more than 0 blocks at most that long; on expiry the caller has left the channel and `*out` is not
/// written. Returns as slp_channel_receive, plus SLP_E_TIMEOUT.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to; `out`: NULL or valid for the
/// reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_receive_timeout(
    ch: *mut Channel,
    out: *mut *mut c_void,
    timeout_ns: i64,
) -> slp_status {
    ffi_status!("slp_channel_receive_timeout", {
        let ch = nonnull(ch, "slp_channel_receive_timeout", "ch")?;
        nonnull(out, "slp_channel_receive_timeout", "out")?;
        let mut v = ptr::null_mut();
        let s = channel::receive(ch, &mut v, timeout_ns);
        if s == OK {
            *out = v;
        }
        Ok(s)
    })
}

/// slp_select_case.op: send `value` on `channel`.
pub const SLP_SELECT_SEND: i32 = 1;
/// slp_select_case.op: receive from `channel`; `value` receives the value.
pub const SLP_SELECT_RECEIVE: i32 = 2;
/// slp_select_case.op: wait until `signal` goes (mo-threads Signal): ready once it went; it
/// completes with SLP_OK (`value` untouched).
pub const SLP_SELECT_SIGNAL: i32 = 3;

// The C constants are the core's.
const _: () = assert!(
    SLP_SELECT_SEND == select::SELECT_SEND
        && SLP_SELECT_RECEIVE == select::SELECT_RECEIVE
        && SLP_SELECT_SIGNAL == select::SELECT_SIGNAL
);

/// Waits on several cases until one completes or the timeout passes (Go's select over
/// Stackless channels). A case is *ready* when it could complete without blocking: a receive
/// with a blocked sender or a buffered value, a send with a blocked receiver or buffer room,
/// or a channel case whose channel is closing with nothing to pair (that case completes with
/// SLP_E_CLOSED). The first ready case in array order completes, exactly like a plain send or
/// receive (same preference rules). `*index` is written whenever a case completed: the call
/// returns SLP_OK, a user exception code (a receive case got slp_channel_send_exception; see
/// slp_exception_data) or SLP_E_CLOSED; a receive case's `value` receives the value.
/// A poll (`timeout_ns` 0) never switches: a ready case completes with its partner appended,
/// whatever the preference. Nothing ready: a poll returns SLP_E_TIMEOUT at once; otherwise the caller
/// blocks as a waiter on every enabled case — each channel's balance counts it — until one
/// completes, then leaves the others (their balances back). A send case that did not complete
/// keeps its value (nobody received it). A partner pairing with a waiting selector follows
/// the channel's preference exactly as with a plain waiter; across threads nothing switches
/// locally. The timeout passed: SLP_E_TIMEOUT, nothing changed, `*index` untouched.
/// NULL channels disable their cases; no enabled case and no finite timeout is
/// SLP_E_DEADLOCK, as is a wait nothing could end (see "Deadlock detection"). block_trap,
/// switch_trap, kills and throws apply as to any blocking call; a selector killed from another
/// thread leaves its channels and signals when its own thread applies the kill. The channel
/// callback is
/// not called for select. The idiom for a worker loop (with the threads toolkit): select over
/// a work channel and the thread's please_stop signal.
/// SIGNAL cases are ready once their signal went and complete with SLP_OK; a blocked selector
/// is released by slp_signal_go like any waiter. The idiom for a worker loop: select over a
/// work channel and a stop signal (with the threads toolkit, the thread's please_stop):
/// `slp_select_case c[2] = {{SLP_SELECT_RECEIVE, work, NULL, NULL},
/// {SLP_SELECT_SIGNAL, NULL, stop, NULL}}; while (slp_select(c, 2, -1, &i) == SLP_OK && i == 0)
/// handle(c[0].value);`
/// Returns the above, or SLP_E_INVALID: `index` NULL, `cases` NULL with n > 0, an unknown op,
/// or two cases that send on and receive from the same channel (a selector cannot pair with
/// itself).
///
/// # Safety
/// `cases`: NULL or valid for `n` reads and writes, its channels NULL or live handles the
/// caller holds references to for the whole call; `index`: NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn slp_select(
    cases: *mut SelectCase,
    n: usize,
    timeout_ns: i64,
    index: *mut usize,
) -> slp_status {
    ffi_status!("slp_select", {
        let index = nonnull(index, "slp_select", "index")? as *mut usize;
        if n > 0 {
            nonnull(cases, "slp_select", "cases")?;
        }
        select::validate(cases, n)?;
        Ok(select::select(cases, n, timeout_ns, &mut *index))
    })
}

/// Like slp_channel_send, but the receiver's receive returns `code` (> 0) and its
/// slp_exception_data() returns `data` (`channel.send_exception()`).
/// Returns as slp_channel_send; SLP_E_INVALID if code <= 0.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to; `data`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send_exception(
    ch: *mut Channel,
    code: i32,
    data: *mut c_void,
) -> slp_status {
    ffi_status!("slp_channel_send_exception", {
        let ch = nonnull(ch, "slp_channel_send_exception", "ch")?;
        if code <= 0 {
            return Err(fail(
                E_INVALID,
                format_args!("slp_channel_send_exception: code {code} must be > 0"),
            ));
        }
        Ok(channel::send(ch, Item::Exception(code, data), -1))
    })
}

/// Sends `n` values in order, each like slp_channel_send (`channel.send_sequence()`).
/// `*sent` receives how many values were sent: `n` on SLP_OK, and — the one exception to the
/// rule that out-parameters are written only on success — the count sent before the failing
/// send when a send fails, so the caller knows that `values[*sent..n]` are still its own.
/// It is not written when the arguments are invalid. `values` may be NULL when n is 0.
/// Returns SLP_OK or the first failing send's status; SLP_E_INVALID (NULL ch, sent, or values
/// with n > 0).
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to; `values`, `sent`: NULL or valid for the reads and writes this call documents.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_send_sequence(
    ch: *mut Channel,
    values: *const *mut c_void,
    n: usize,
    sent: *mut usize,
) -> slp_status {
    ffi_status!("slp_channel_send_sequence", {
        let ch = nonnull(ch, "slp_channel_send_sequence", "ch")?;
        nonnull(sent, "slp_channel_send_sequence", "sent")?;
        if n > 0 && values.is_null() {
            return Err(fail(E_INVALID, "slp_channel_send_sequence: values is NULL"));
        }
        for i in 0..n {
            let s = channel::send(ch, Item::Value(*values.add(i)), -1);
            if s != OK {
                *sent = i;
                return Ok(fail(
                    s,
                    format_args!(
                        "slp_channel_send_sequence: stopped after {i} of {n} values: {}",
                        crate::status::LastError
                    ),
                ));
            }
        }
        *sent = n;
        Ok(OK)
    })
}

/// The channel's balance: > 0, that many senders wait (plus buffered values); < 0, that many
/// receivers wait. 0 for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_balance(ch: *const Channel) -> i32 {
    ffi_boundary!("slp_channel_balance", { if ch.is_null() { 0 } else { channel::balance(ch) } })
}

/// The preference: -1 receiver first (default), 0 caller continues, 1 sender first. 0 for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_preference(ch: *const Channel) -> i32 {
    ffi_boundary!("slp_channel_preference", { if ch.is_null() { 0 } else { channel::preference(ch) } })
}

/// Sets the preference, clamped to -1, 0, 1. NULL is ignored.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_set_preference(ch: *mut Channel, preference: i32) {
    ffi_boundary!("slp_channel_set_preference", { if !ch.is_null() { channel::set_preference(ch, preference) } })
}

/// Whether schedule_all is on. False for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_schedule_all(ch: *const Channel) -> bool {
    ffi_boundary!("slp_channel_schedule_all", { !ch.is_null() && channel::schedule_all(ch) })
}

/// Turns schedule_all on or off: when on, a completed transfer appends the partner and the
/// caller schedules (the next runnable tasklet runs). NULL is ignored.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_set_schedule_all(ch: *mut Channel, on: bool) {
    ffi_boundary!("slp_channel_set_schedule_all", { if !ch.is_null() { channel::set_schedule_all(ch, on) } })
}

/// The channel's capacity (0 = rendezvous). 0 for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_capacity(ch: *const Channel) -> u32 {
    ffi_boundary!("slp_channel_capacity", { if ch.is_null() { 0 } else { channel::capacity(ch) } })
}

/// Marks the channel closing (`channel.close()`): waiting tasklets can still be paired, but
/// an operation that would block returns SLP_E_CLOSED. Returns SLP_OK or SLP_E_INVALID.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_close(ch: *mut Channel) -> slp_status {
    ffi_status!("slp_channel_close", {
        let ch = nonnull(ch, "slp_channel_close", "ch")?;
        channel::close(ch);
        Ok(OK)
    })
}

/// Undoes slp_channel_close (`channel.open()`). Returns SLP_OK or SLP_E_INVALID.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_open(ch: *mut Channel) -> slp_status {
    ffi_status!("slp_channel_open", {
        let ch = nonnull(ch, "slp_channel_open", "ch")?;
        channel::open(ch);
        Ok(OK)
    })
}

/// Closes the channel and wakes every waiting tasklet: their send or receive returns
/// SLP_E_CLOSED (values still buffered can be received first). The woken tasklets are
/// appended to their own threads' run queues (other threads are woken); the caller continues.
/// Returns SLP_OK or SLP_E_INVALID.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_shutdown(ch: *mut Channel) -> slp_status {
    ffi_status!("slp_channel_shutdown", {
        let ch = nonnull(ch, "slp_channel_shutdown", "ch")?;
        Ok(channel::shutdown(ch))
    })
}

/// True once slp_channel_close or _shutdown was called (and not reopened). False for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_closing(ch: *const Channel) -> bool {
    ffi_boundary!("slp_channel_closing", { !ch.is_null() && channel::closing(ch) })
}

/// True if the channel is closing and its balance is 0 (`channel.closed`). False for NULL.
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_closed(ch: *const Channel) -> bool {
    ffi_boundary!("slp_channel_closed", { !ch.is_null() && channel::closed(ch) })
}

/// The first waiting tasklet (`channel.queue`): a new reference the caller releases, or NULL
/// when nobody waits (or ch is NULL).
///
/// # Safety
/// `ch`: NULL or a live handle the caller holds a reference to.
#[no_mangle]
pub unsafe extern "C" fn slp_channel_queue(ch: *const Channel) -> *mut Tasklet {
    ffi_boundary!("slp_channel_queue", {
        if ch.is_null() {
            ptr::null_mut()
        } else {
            channel::queue(ch)
        }
    })
}
