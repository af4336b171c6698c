//! Runs a case against libslp through its C ABI (`slp::ffi::*`): real tasklets whose function
//! (`tasklet_main`, an `extern "C" fn`) interprets their program and records events, exactly as
//! the model does.
//!
//! One case at a time per thread: the state lives in thread-locals, and no borrow of it is
//! held across a libslp call (a call may switch to another tasklet that records events too).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr;

use slp::channel::select::SelectCase;
use slp::channel::Channel;
use slp::ffi::channel::*;
use slp::ffi::scheduler::*;
use slp::ffi::tasklet::*;
use slp::tasklet::Tasklet;

use crate::case::*;

struct Rt {
    case: Case,
    /// Program of each tasklet (index = tid; 0 = main, unused).
    progs: Vec<usize>,
    /// Handles (index = tid); [0] is the main tasklet (borrowed, never released).
    handles: Vec<*mut Tasklet>,
    chans: Vec<*mut Channel>,
    /// Handles the case released (index = tid / channel index): never touched again.
    released: Vec<bool>,
    chan_released: Vec<bool>,
    events: Vec<Ev>,
    /// Things that must never happen whatever the semantics (the running tasklet is not
    /// slp_current(), ...).
    problems: Vec<String>,
}

thread_local! {
    static RT: RefCell<Option<Rt>> = const { RefCell::new(None) };
    /// arg_free calls per tid (kept apart from RT: arg_free runs inside libslp calls).
    static FREED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The case is over: tasklets that libslp resumes (to kill them) return at once.
    static TEARDOWN: Cell<bool> = const { Cell::new(false) };
}

fn with<R>(f: impl FnOnce(&mut Rt) -> R) -> R {
    RT.with(|r| {
        f(r.borrow_mut()
            .as_mut()
            .expect("no case is running on this thread"))
    })
}

fn push_ev(e: Ev) {
    with(|rt| rt.events.push(e));
}

fn problem(msg: String) {
    with(|rt| rt.problems.push(msg));
}

unsafe extern "C" fn free_arg(arg: *mut c_void) {
    let tid = *Box::from_raw(arg as *mut usize);
    FREED.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() <= tid {
            f.resize(tid + 1, 0);
        }
        f[tid] += 1;
    });
}

/// Checks that libslp agrees that `tid` is the running tasklet.
unsafe fn check_current(tid: usize) {
    let h = with(|rt| rt.handles[tid]);
    let cur = slp_current();
    if cur != h || !slp_tasklet_is_current(h) {
        let who = with(|rt| rt.handles.iter().position(|&x| x == cur));
        problem(format!("t{tid} is running but slp_current() is {who:?}"));
    }
}

/// The function of every tasklet: interprets its program.
unsafe extern "C" fn tasklet_main(arg: *mut c_void) -> i32 {
    let tid = *(arg as *const usize);
    if TEARDOWN.get() {
        return E_KILLED;
    }
    push_ev(Ev::Start(tid));
    check_current(tid);
    let mut pc = 0;
    loop {
        let (act, catch_kill, catch_exc) = with(|rt| {
            let p = &rt.case.progs[rt.progs[tid]];
            (p.acts.get(pc).copied(), p.catch_kill, p.catch_exc)
        });
        let Some(act) = act else {
            push_ev(Ev::End(tid, OK));
            return OK;
        };
        if let Act::Return(rc) = act {
            push_ev(Ev::End(tid, rc));
            return rc;
        }
        let (st, val) = perform(tid, pc, act);
        if TEARDOWN.get() {
            return E_KILLED;
        }
        let exc = if st > 0 {
            slp_exception_data() as u64
        } else {
            0
        };
        check_current(tid);
        push_ev(Ev::Act {
            tid,
            pc,
            st,
            val,
            exc,
        });
        if (st == E_KILLED && !catch_kill) || (st > 0 && !catch_exc) {
            push_ev(Ev::End(tid, st));
            return st;
        }
        pc += 1;
    }
}

/// The tid `w` names for `x` (None: skipped, as in the model).
fn who_tid(x: usize, w: Who) -> Option<usize> {
    with(|rt| match w {
        Who::Main => Some(0),
        Who::Me => Some(x),
        Who::T(k) => {
            let k = k as usize;
            (k >= 1 && k < rt.handles.len() && !rt.released[k]).then_some(k)
        }
    })
}

fn who(x: usize, w: Who) -> Option<*mut Tasklet> {
    who_tid(x, w).map(|t| with(|rt| rt.handles[t]))
}

fn chan_index(c: u8) -> Option<usize> {
    with(|rt| {
        let c = c as usize % rt.chans.len();
        (!rt.chan_released[c]).then_some(c)
    })
}

fn flags(t: *mut Tasklet) -> Flags {
    unsafe {
        Flags {
            alive: slp_tasklet_alive(t),
            blocked: slp_tasklet_blocked(t),
            scheduled: slp_tasklet_scheduled(t),
            paused: slp_tasklet_paused(t),
        }
    }
}

/// Performs `act` (step `pc`) as tasklet `x` (0 = main): one libslp call. Returns the status
/// and the value the model records with it.
unsafe fn perform(x: usize, pc: usize, act: Act) -> (i32, u64) {
    macro_rules! target {
        ($w:expr) => {
            match who(x, $w) {
                Some(t) => t,
                None => return (SKIP, 0),
            }
        };
    }
    let chan = |c: u8| -> Option<*mut Channel> { chan_index(c).map(|c| with(|rt| rt.chans[c])) };
    macro_rules! chan {
        ($c:expr) => {
            match chan($c) {
                Some(ch) => ch,
                None => return (SKIP, 0),
            }
        };
    }
    match act {
        Act::Send(c) => (
            slp_channel_send(chan!(c), value_of(x, pc) as *mut c_void),
            0,
        ),
        Act::SendExc(c, code) => (
            slp_channel_send_exception(chan!(c), code, data_of(x, pc) as *mut c_void),
            0,
        ),
        Act::Receive(c) => {
            let mut out: *mut c_void = ptr::null_mut();
            let st = slp_channel_receive(chan!(c), &mut out);
            (st, if st == OK { out as u64 } else { 0 })
        }
        Act::Schedule => (slp_schedule(), 0),
        Act::ScheduleRemove => (slp_schedule_remove(), 0),
        Act::Insert(w) => (slp_tasklet_insert(target!(w)), 0),
        Act::Remove(w) => (slp_tasklet_remove(target!(w)), 0),
        Act::RunT(w) => (slp_tasklet_run(target!(w)), 0),
        Act::Switch(w) => (slp_tasklet_switch(target!(w)), 0),
        Act::Kill(w, pending) => (slp_tasklet_kill(target!(w), pending), 0),
        Act::Throw(w, code, pending) => (
            slp_tasklet_throw(target!(w), code, data_of(x, pc) as *mut c_void, pending),
            0,
        ),
        Act::SetPref(c, p) => {
            slp_channel_set_preference(chan!(c), p);
            (OK, 0)
        }
        Act::SetSchedAll(c, on) => {
            slp_channel_set_schedule_all(chan!(c), on);
            (OK, 0)
        }
        Act::Close(c) => (slp_channel_close(chan!(c)), 0),
        Act::Open(c) => (slp_channel_open(chan!(c)), 0),
        Act::Shutdown(c) => (slp_channel_shutdown(chan!(c)), 0),
        Act::BlockTrap(w, on) => (OK, slp_tasklet_set_block_trap(target!(w), on) as u64),
        Act::SwitchTrap(d) => (OK, slp_switch_trap(d) as u32 as u64),
        Act::Spawn(p, paused) => {
            let tid = with(|rt| rt.handles.len());
            if tid > MAX_TASKLETS {
                return (SKIP, 0);
            }
            let prog = with(|rt| p as usize % rt.case.progs.len());
            let arg = Box::into_raw(Box::new(tid)) as *mut c_void;
            let mut opts: slp_tasklet_options = std::mem::zeroed();
            slp_tasklet_options_init(&mut opts);
            opts.arg_free = Some(free_arg);
            opts.flags = if paused { SLP_TASKLET_PAUSED } else { 0 };
            let mut out: *mut Tasklet = ptr::null_mut();
            // Creating switches nowhere: the handle is recorded before the tasklet can run.
            let st = slp_tasklet_new_ex(Some(tasklet_main), arg, &opts, &mut out);
            if st == OK {
                with(|rt| {
                    rt.handles.push(out);
                    rt.progs.push(prog);
                    rt.released.push(false);
                });
            } else {
                drop(Box::from_raw(arg as *mut usize));
                problem(format!("slp_tasklet_new_ex failed: {st}"));
            }
            (st, tid as u64)
        }
        Act::Run => (slp_run(), 0),
        Act::RunN(n) => (slp_run_n(n), 0),
        Act::RunFor0 => (slp_run_for(0), 0),
        Act::Release(w) => {
            let Some(t) = who_tid(x, w) else {
                return (SKIP, 0);
            };
            if t == 0 || with(|rt| rt.released[t]) {
                return (SKIP, 0);
            }
            let h = with(|rt| {
                rt.released[t] = true;
                rt.handles[t]
            });
            slp_tasklet_release(h);
            (OK, 0)
        }
        Act::ReleaseChan(c) => {
            let Some(c) = chan_index(c) else {
                return (SKIP, 0);
            };
            let h = with(|rt| {
                rt.chan_released[c] = true;
                rt.chans[c]
            });
            slp_channel_release(h);
            (OK, 0)
        }
        Act::Query(w) => {
            let t = target!(w);
            let f = flags(t);
            (
                OK,
                encode_query(f, slp_tasklet_is_current(t), slp_runcount()),
            )
        }
        Act::Return(_) => unreachable!("handled by the interpreter"),
        Act::RunWd(budget, flags, reinsert) => {
            let sentinel = 0x5e1ec7e0 as *mut Tasklet;
            let mut t = sentinel;
            let st = slp_run_watchdog(budget as u64, flags as u32, &mut t);
            if st != OK {
                if t != sentinel {
                    problem(format!(
                        "slp_run_watchdog returned {} but wrote *interrupted",
                        status_name(st)
                    ));
                }
                return (st, u64::MAX);
            }
            if t.is_null() {
                return (OK, 0);
            }
            // The last match: a freed tasklet's address may have been reused by a later one.
            let tid = with(|rt| rt.handles.iter().rposition(|&h| h == t));
            let Some(tid) = tid else {
                problem("slp_run_watchdog returned an unknown tasklet".into());
                return (OK, u64::MAX - 1);
            };
            if reinsert {
                let s = slp_tasklet_insert(t);
                if s != OK {
                    problem(format!(
                        "inserting the interrupted t{tid} returned {}",
                        status_name(s)
                    ));
                }
            }
            slp_tasklet_release(t);
            (OK, tid as u64)
        }
        Act::Tick(n) => (slp_tick(n as u32), 0),
        Act::SetAtomic(on) => (OK, slp_tasklet_set_atomic(slp_current(), on) as u64),
        Act::SendPoll(c) => (
            slp_channel_send_timeout(chan!(c), value_of(x, pc) as *mut c_void, 0),
            0,
        ),
        Act::RecvPoll(c) => {
            let mut out: *mut c_void = ptr::null_mut();
            let st = slp_channel_receive_timeout(chan!(c), &mut out, 0);
            (st, if st == OK { out as u64 } else { 0 })
        }
        Act::SendSeq(c, n) => {
            let ch = chan!(c);
            let values: Vec<*mut c_void> = (0..n as usize)
                .map(|k| value_k(x, pc, k) as *mut c_void)
                .collect();
            let mut sent = usize::MAX;
            // The call holds its own reference: the case may release its handle meanwhile.
            slp_channel_retain(ch);
            let st = slp_channel_send_sequence(ch, values.as_ptr(), n as usize, &mut sent);
            slp_channel_release(ch);
            (st, sent as u64)
        }
        Act::Select(cases, n, poll) => {
            const UNWRITTEN: u64 = 0x5e1ec7ed;
            let n = n as usize;
            let mut arr: Vec<SelectCase> = cases[..n]
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    // A released channel is passed as NULL (a disabled case).
                    let ch = k.chan.and_then(chan).unwrap_or(ptr::null_mut());
                    SelectCase {
                        op: if k.send {
                            SLP_SELECT_SEND
                        } else {
                            SLP_SELECT_RECEIVE
                        },
                        channel: ch,
                        signal: ptr::null_mut(),
                        value: if k.send { value_k(x, pc, i) } else { UNWRITTEN } as *mut c_void,
                    }
                })
                .collect();
            let held: Vec<*mut Channel> = arr
                .iter()
                .map(|c| c.channel)
                .filter(|c| !c.is_null())
                .collect();
            for &ch in &held {
                slp_channel_retain(ch);
            }
            let mut index = usize::MAX;
            let st = slp_select(arr.as_mut_ptr(), n, if poll { 0 } else { -1 }, &mut index);
            for &ch in &held {
                slp_channel_release(ch);
            }
            let mut val = 0;
            if index != usize::MAX {
                if index >= n {
                    problem(format!("slp_select wrote index {index} for {n} cases"));
                    return (st, u64::MAX);
                }
                val = select_tag(index);
            }
            for (i, c) in arr.iter().enumerate() {
                let v = c.value as u64;
                if cases[i].send {
                    if v != value_k(x, pc, i) {
                        problem(format!("slp_select changed send case {i}'s value"));
                    }
                } else if index == i && st == OK {
                    val |= v;
                } else if v != UNWRITTEN {
                    problem(format!(
                        "slp_select wrote receive case {i}'s value (status {}, index {index})",
                        status_name(st)
                    ));
                }
            }
            (st, val)
        }
    }
}

/// A case running against libslp on this thread.
pub struct Real {
    taken: usize,
}

impl Real {
    /// Sets the case up: the channels, the main tasklet's handle. The thread must have no
    /// scheduler left from a previous case (see `finish`).
    pub fn start(case: &Case) -> Real {
        TEARDOWN.set(false);
        FREED.with(|f| f.borrow_mut().clear());
        let main = slp_main();
        let chans: Vec<*mut Channel> = case
            .chans
            .iter()
            .map(|c| unsafe {
                let mut o: slp_channel_options = std::mem::zeroed();
                slp_channel_options_init(&mut o);
                o.capacity = c.capacity;
                o.preference = c.preference;
                o.schedule_all = c.schedule_all;
                let mut ch = ptr::null_mut();
                assert_eq!(slp_channel_new_ex(&o, &mut ch), OK);
                ch
            })
            .collect();
        RT.with(|r| {
            *r.borrow_mut() = Some(Rt {
                case: case.clone(),
                progs: vec![usize::MAX],
                handles: vec![main],
                released: vec![false],
                chan_released: vec![false; chans.len()],
                chans,
                events: Vec::new(),
                problems: Vec::new(),
            })
        });
        Real { taken: 0 }
    }

    /// The main tasklet performs op `i`.
    pub fn step(&mut self, i: usize) {
        let act = with(|rt| rt.case.ops[i]);
        unsafe {
            let (st, val) = perform(0, i, act);
            let exc = if st > 0 {
                slp_exception_data() as u64
            } else {
                0
            };
            check_current(0);
            push_ev(Ev::Act {
                tid: 0,
                pc: i,
                st,
                val,
                exc,
            });
        }
    }

    /// Events recorded since the last call.
    pub fn new_events(&mut self) -> Vec<Ev> {
        with(|rt| {
            let v = rt.events[self.taken..].to_vec();
            self.taken = rt.events.len();
            v
        })
    }

    pub fn all_events(&self) -> Vec<Ev> {
        with(|rt| rt.events.clone())
    }

    pub fn problems(&self) -> Vec<String> {
        with(|rt| rt.problems.clone())
    }

    pub fn snapshot(&self) -> Snap {
        let (handles, chans, released, chan_released) = with(|rt| {
            (
                rt.handles.clone(),
                rt.chans.clone(),
                rt.released.clone(),
                rt.chan_released.clone(),
            )
        });
        unsafe {
            let freed = FREED.with(|f| f.borrow().clone());
            Snap {
                runcount: slp_runcount(),
                switch_trap: slp_switch_trap(0),
                main_exc: slp_exception_data() as u64,
                tasklets: handles
                    .iter()
                    .zip(&released)
                    .map(|(&t, &r)| if r { RELEASED_FLAGS } else { flags(t) })
                    .collect(),
                chans: chans
                    .iter()
                    .zip(&chan_released)
                    .map(|(&c, &r)| {
                        if r {
                            return RELEASED_CHAN;
                        }
                        let q = slp_channel_queue(c);
                        let queue = if q.is_null() {
                            None
                        } else {
                            // The last match: a freed (released, dead) tasklet's address may
                            // have been reused by a later one; a waiter is alive.
                            let tid = handles.iter().rposition(|&h| h == q).unwrap_or(usize::MAX);
                            slp_tasklet_release(q);
                            Some(tid)
                        };
                        ChanState {
                            balance: slp_channel_balance(c),
                            closing: slp_channel_closing(c),
                            closed: slp_channel_closed(c),
                            preference: slp_channel_preference(c),
                            schedule_all: slp_channel_schedule_all(c),
                            queue,
                        }
                    })
                    .collect(),
                arg_freed: (0..handles.len())
                    .map(|t| freed.get(t).copied().unwrap_or(0))
                    .collect(),
            }
        }
    }

    /// Ends the case: shuts the thread's scheduler down (every tasklet is killed; tasklets
    /// resumed for that return at once), then releases every handle and channel. Checks that
    /// every tasklet is dead and that each `arg_free` ran exactly once.
    pub fn finish(self) -> Result<(), String> {
        TEARDOWN.set(true);
        let mut errors = Vec::new();
        let st = slp_scheduler_shutdown();
        if st != OK {
            errors.push(format!(
                "slp_scheduler_shutdown returned {}",
                status_name(st)
            ));
        }
        let rt = RT
            .with(|r| r.borrow_mut().take())
            .expect("a case is running");
        unsafe {
            for (tid, &t) in rt.handles.iter().enumerate().skip(1) {
                if !rt.released[tid] && slp_tasklet_alive(t) {
                    errors.push(format!("t{tid} is alive after slp_scheduler_shutdown"));
                }
            }
            for (tid, &t) in rt.handles.iter().enumerate().skip(1) {
                if !rt.released[tid] {
                    slp_tasklet_release(t);
                }
            }
            for (c, &ch) in rt.chans.iter().enumerate() {
                if !rt.chan_released[c] {
                    slp_channel_release(ch);
                }
            }
        }
        let freed = FREED.with(|f| std::mem::take(&mut *f.borrow_mut()));
        for tid in 1..rt.handles.len() {
            let n = freed.get(tid).copied().unwrap_or(0);
            if n != 1 {
                errors.push(format!("arg_free of t{tid} ran {n} times"));
            }
        }
        TEARDOWN.set(false);
        drop(rt);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}
