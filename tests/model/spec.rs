//! The reference model: single-thread Stackless semantics as SPEC.md §1-§5.1, §5.3 and
//! include/slp.h state them, written plainly (a VecDeque for the run queue, VecDeques for
//! channel waiters and buffers), independently of the library's code.
//!
//! The run queue is `queue`, a ring read from its front: `queue[0]` is the head, the tasklet
//! that runs (or runs next); "append" puts a tasklet at the tail, i.e. just before the head
//! (`push_back`); `schedule` rotates by one. The main tasklet (tid 0) is in the ring like any
//! other tasklet, except while it is inside slp_run*, when it is out of the ring (SPEC §4.1).
//!
//! Tasklet programs are interpreted here exactly as the real tasklets interpret them
//! (tests/model/real.rs): each action is a call; when the call returns, an event is recorded;
//! SLP_E_KILLED and user codes end the program unless it catches them.

// One branch per rule, in the order SPEC states them, even where two rules give the same status.
#![allow(clippy::if_same_then_else)]

use std::collections::VecDeque;

use crate::case::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Fresh,
    Started,
    Dead,
}

/// An item in a channel: a value or a user exception (send_exception).
#[derive(Clone, Copy, Debug)]
enum Item {
    Val(u64),
    Exc(i32, u64),
}

/// What a call returns.
#[derive(Clone, Copy, Debug)]
struct Res {
    st: i32,
    val: u64,
}

fn res(st: i32) -> Res {
    Res { st, val: 0 }
}

/// The call a started tasklet that is not running is suspended in, which decides what that
/// call returns when the tasklet resumes.
#[derive(Clone, Copy, Debug)]
enum Susp {
    None,
    /// schedule, schedule_remove, tasklet_run, tasklet_switch, kill/throw that switched:
    /// returns the pending delivery, or OK.
    Switch,
    /// A channel operation waiting for a partner: returns the pending delivery (kill, throw),
    /// or what the partner / a shutdown left in `xfer`.
    Blocked,
    /// A channel operation that completed and then switched to its partner (preference,
    /// schedule_all): returns its own result; a delivery that arrived meanwhile stays pending
    /// for the next blocking call (the header: a send that returns SLP_E_KILLED did not send).
    /// Also slp_tasklet_set_atomic(false) interrupted by the watchdog (returns true, the old
    /// value; a kill meanwhile stays pending).
    Completed(Res),
    /// A receive that completed and then switched to its partner: returns the item (a user
    /// exception's data is recorded when the call returns), with a select's tag added.
    CompletedItem(Item, u64),
    /// The main tasklet inside slp_run*.
    Run,
}

/// What a blocked tasklet gets from its partner or a shutdown.
#[derive(Clone, Copy, Debug)]
enum Xfer {
    /// A sender's value was taken.
    Taken,
    /// A receiver got an item.
    Got(Item),
    /// slp_channel_shutdown woke it.
    Closed,
}

#[derive(Clone, Debug)]
struct MT {
    life: Life,
    prog: usize,
    pc: usize,
    susp: Susp,
    /// The channel it waits on (a selector: one of them; it waits on all its cases').
    blocked: Option<usize>,
    xfer: Option<Xfer>,
    /// A selector's case that a partner (or a shutdown) completed.
    sel_case: Option<usize>,
    /// A send_sequence in progress.
    seq: Option<Seq>,
    /// slp_tasklet_set_atomic.
    atomic: bool,
    /// A delivery for its pending or next blocking call: (code, exception data); data None =
    /// an uncaught error of another tasklet (main only), which carries no data.
    pending: Option<(i32, Option<u64>)>,
    block_trap: bool,
    exc: u64,
    /// The case released its handle: the tasklet can no longer be named.
    released: bool,
}

#[derive(Clone, Copy, Debug)]
struct Waiter {
    tid: usize,
    send: bool,
    item: Item,
    /// A selector's entry: its case index.
    case: Option<usize>,
}

/// A send_sequence in progress: value `k` of `n` is being sent on channel `c`.
#[derive(Clone, Copy, Debug)]
struct Seq {
    c: usize,
    k: usize,
    n: usize,
    pc: usize,
}

/// The header (slp_run_watchdog, slp_tasklet_set_atomic), SPEC §3 and §6 say that an
/// interrupt that came due while `atomic` was set fires inside the call that clears it, with
/// no exception for a tasklet that switched away meanwhile; that is what the model does.
/// libslp (since "Watchdog: a deferred interrupt is dropped when its tasklet switches away")
/// drops the deferral at the next switch, as Stackless loses it when the tick count resets.
/// SLP_MODEL_DEFERRAL_DROPPED_ON_SWITCH=1 makes the model do that too (to test the rest while
/// the contract question is open).
pub static DEFERRAL_DROPPED_ON_SWITCH: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The watchdog of a slp_run_watchdog call in progress (ticks).
#[derive(Clone, Debug)]
struct Wd {
    budget: u64,
    soft: bool,
    total: bool,
    /// Ticks used in this slice (TOTAL: in this call).
    used: u64,
    /// The run returns at its next decision (an interrupt happened, or a soft stop is due).
    stop: bool,
    interrupted: Option<usize>,
    /// Tasklets whose budget ran out while atomic: interrupted when they clear it.
    due: Vec<usize>,
}

#[derive(Clone, Debug)]
struct MC {
    waiters: VecDeque<Waiter>,
    buf: VecDeque<Item>,
    cap: usize,
    pref: i32,
    all: bool,
    closing: bool,
    /// The case released its handle: the channel can no longer be used.
    released: bool,
}

impl MC {
    fn balance(&self) -> i32 {
        let mut b = self.buf.len() as i32;
        for w in &self.waiters {
            b += if w.send { 1 } else { -1 };
        }
        b
    }
}

/// The outcome of performing an action for the running tasklet.
enum Out {
    /// The call returned without switching: the caller goes on.
    Done(Res),
    /// The caller switched away (its `susp` says what its call returns when it resumes).
    Switched,
    /// The program returned this value (Return action).
    Ended(i32),
}

/// What the scheduler does next.
enum Next {
    /// The main tasklet's suspended call returns this.
    Main(Res),
    /// Resume (or start) this tasklet.
    Tasklet(usize),
}

pub struct Model<'c> {
    case: &'c Case,
    ts: Vec<MT>,
    queue: VecDeque<usize>,
    chans: Vec<MC>,
    current: usize,
    in_run: bool,
    /// slp_run_n's n (slp_run_for(0) = 1): tasklets switched into at most.
    budget: Option<u32>,
    switched: u32,
    /// An uncaught error that the current run call returns.
    run_error: Option<i32>,
    /// A pending throw to a never-started tasklet: returned by the next slp_run* call.
    deferred: Option<i32>,
    trap: i32,
    /// The watchdog of the slp_run_watchdog call in progress (budget > 0).
    wd: Option<Wd>,
    pub events: Vec<Ev>,
}

impl<'c> Model<'c> {
    pub fn new(case: &'c Case) -> Model<'c> {
        let main = MT {
            life: Life::Started,
            prog: usize::MAX,
            pc: 0,
            susp: Susp::None,
            blocked: None,
            xfer: None,
            sel_case: None,
            seq: None,
            atomic: false,
            pending: None,
            block_trap: false,
            exc: 0,
            released: false,
        };
        Model {
            case,
            ts: vec![main],
            queue: VecDeque::from([0]),
            chans: case
                .chans
                .iter()
                .map(|c| MC {
                    waiters: VecDeque::new(),
                    buf: VecDeque::new(),
                    cap: c.capacity as usize,
                    pref: c.preference.clamp(-1, 1),
                    all: c.schedule_all,
                    closing: false,
                    released: false,
                })
                .collect(),
            current: 0,
            in_run: false,
            budget: None,
            switched: 0,
            run_error: None,
            deferred: None,
            trap: 0,
            wd: None,
            events: Vec::new(),
        }
    }

    /// Which program a tasklet runs (for printing).
    pub fn prog_of(&self, tid: usize) -> Option<usize> {
        self.ts.get(tid).filter(|_| tid != 0).map(|t| t.prog)
    }

    pub fn tasklet_count(&self) -> usize {
        self.ts.len()
    }

    // ----- the main tasklet's steps ---------------------------------------------------------

    /// The main tasklet performs op `i`; everything that runs meanwhile is simulated.
    pub fn step(&mut self, i: usize) {
        let act = self.case.ops[i];
        assert_eq!(self.current, 0);
        assert_eq!(
            self.queue.front(),
            Some(&0),
            "main runs at the head of the queue"
        );
        let mut r = match self.perform(0, i, act) {
            Out::Done(r) => r,
            Out::Ended(_) => unreachable!("main has no Return"),
            Out::Switched => loop {
                match self.next() {
                    Next::Main(r) => break r,
                    Next::Tasklet(t) => self.run_tasklet(t),
                }
            },
        };
        if matches!(act, Act::RunWd(..)) && r.st != OK {
            r.val = u64::MAX; // *interrupted is written only on SLP_OK
        }
        self.current = 0;
        assert_eq!(
            self.queue.front(),
            Some(&0),
            "main resumes at the head of the queue"
        );
        self.record(0, i, r);
        if let Act::RunWd(_, _, reinsert) = act {
            if r.st == OK && r.val != 0 {
                self.after_interrupt(r.val as usize, reinsert);
            }
        }
    }

    /// The caller got interrupted tasklet `t` (a new reference): it re-inserts it or not,
    /// then releases that reference — the last one if the case released its handle, which
    /// kills a paused tasklet (pending) so that it can clean up.
    fn after_interrupt(&mut self, t: usize, reinsert: bool) {
        assert!(!self.in_queue(t) && self.ts[t].blocked.is_none());
        if reinsert {
            self.queue.push_back(t);
        } else if self.ts[t].released {
            self.ts[t].pending = Some((E_KILLED, None));
            self.queue.push_back(t);
        }
    }

    /// The state main sees now.
    pub fn snapshot(&self) -> Snap {
        Snap {
            runcount: self.queue.len() as i32,
            switch_trap: self.trap,
            main_exc: self.ts[0].exc,
            tasklets: (0..self.ts.len())
                .map(|t| {
                    if self.ts[t].released {
                        RELEASED_FLAGS
                    } else {
                        self.flags(t)
                    }
                })
                .collect(),
            chans: self
                .chans
                .iter()
                .map(|c| {
                    if c.released {
                        RELEASED_CHAN
                    } else {
                        ChanState {
                            balance: c.balance(),
                            closing: c.closing,
                            closed: c.closing && c.balance() == 0,
                            preference: c.pref,
                            schedule_all: c.all,
                            queue: c.waiters.front().map(|w| w.tid),
                        }
                    }
                })
                .collect(),
            arg_freed: self
                .ts
                .iter()
                .enumerate()
                .map(|(t, m)| (t != 0 && m.life == Life::Dead) as u32)
                .collect(),
        }
    }

    fn in_queue(&self, t: usize) -> bool {
        self.queue.contains(&t)
    }

    fn flags(&self, t: usize) -> Flags {
        let m = &self.ts[t];
        let alive = m.life != Life::Dead;
        let blocked = m.blocked.is_some();
        let q = self.in_queue(t);
        Flags {
            alive,
            blocked,
            scheduled: alive && (q || blocked),
            paused: alive && !q && !blocked && self.current != t,
        }
    }

    fn record(&mut self, tid: usize, pc: usize, r: Res) {
        let exc = if r.st > 0 { self.ts[tid].exc } else { 0 };
        self.events.push(Ev::Act {
            tid,
            pc,
            st: r.st,
            val: r.val,
            exc,
        });
    }

    // ----- dispatch -------------------------------------------------------------------------

    /// Who runs after the running tasklet switched away (it has arranged the queue).
    fn next(&mut self) -> Next {
        if self.in_run {
            // §4.1: the run returns with an uncaught error, when nothing is runnable (§5.3
            // rule 1: blockers stay blocked), or when its budget of switches is spent.
            let stop = if let Some(e) = self.run_error.take() {
                Some(e)
            } else if self.wd.as_ref().is_some_and(|w| w.stop) {
                Some(OK)
            } else if self.queue.is_empty() {
                Some(OK)
            } else if self.budget.is_some_and(|n| self.switched >= n) {
                Some(OK)
            } else {
                None
            };
            if let Some(st) = stop {
                // Main takes its place just before the tasklet that would have run next, so
                // that one runs first in the next call.
                self.in_run = false;
                self.budget = None;
                self.queue.push_front(0);
                self.ts[0].susp = Susp::None;
                self.current = 0;
                let mut r = res(st);
                if let Some(w) = self.wd.take() {
                    // *interrupted: written only on SLP_OK (the tasklet or NULL).
                    r.val = if st == OK {
                        w.interrupted.map_or(0, |t| t as u64)
                    } else {
                        assert!(w.interrupted.is_none());
                        u64::MAX
                    };
                }
                return Next::Main(r);
            }
            self.switched += 1;
            if let Some(w) = &mut self.wd {
                // A switch into a tasklet: a new slice (unless one budget covers the call).
                if !w.total {
                    w.used = 0;
                }
                if DEFERRAL_DROPPED_ON_SWITCH.load(std::sync::atomic::Ordering::Relaxed) {
                    w.due.clear();
                }
            }
            return Next::Tasklet(self.queue[0]);
        }
        match self.queue.front().copied() {
            None => {
                // §5.3 rules 2-3: main is blocked (or paused) outside slp_run and nothing on
                // the thread can run: its call returns SLP_E_DEADLOCK (or what is pending
                // for it), it leaves what it waited on and is runnable again.
                let mut r = match self.ts[0].pending.take() {
                    Some(p) => self.deliver(0, p),
                    None => res(E_DEADLOCK),
                };
                self.ts[0].xfer = None;
                self.ts[0].sel_case = None;
                if let Some(q) = self.ts[0].seq.take() {
                    r.val = q.k as u64;
                }
                self.unblock(0);
                self.ts[0].susp = Susp::None;
                self.queue.push_back(0);
                self.current = 0;
                Next::Main(r)
            }
            Some(0) => {
                self.current = 0;
                let r = self.resume_result(0);
                if self.ts[0].seq.is_some() {
                    return match self.seq_continue(0, Some(r)) {
                        Out::Done(r) => Next::Main(r),
                        Out::Switched => self.next(),
                        Out::Ended(_) => unreachable!(),
                    };
                }
                Next::Main(r)
            }
            Some(t) => Next::Tasklet(t),
        }
    }

    /// A pending delivery reaches tasklet `t`'s call: its code, with the exception data
    /// recorded for slp_exception_data.
    fn deliver(&mut self, t: usize, (code, data): (i32, Option<u64>)) -> Res {
        if code > 0 {
            if let Some(d) = data {
                self.ts[t].exc = d;
            }
        }
        res(code)
    }

    /// `take_item` for a select (`tag`: its index) or a plain receive (0).
    fn take_item_tag(&mut self, t: usize, item: Item, tag: u64) -> Res {
        match item {
            Item::Val(v) => Res {
                st: OK,
                val: v | tag,
            },
            Item::Exc(code, d) => {
                self.ts[t].exc = d;
                Res { st: code, val: tag }
            }
        }
    }

    /// What the call tasklet `t` is suspended in returns, now that it resumes.
    fn resume_result(&mut self, t: usize) -> Res {
        let susp = std::mem::replace(&mut self.ts[t].susp, Susp::None);
        match susp {
            Susp::Switch => match self.ts[t].pending.take() {
                Some(p) => self.deliver(t, p),
                None => res(OK),
            },
            Susp::Blocked => {
                assert!(self.ts[t].blocked.is_none(), "a blocked tasklet resumed");
                let x = self.ts[t].xfer.take();
                let tag = self.ts[t].sel_case.take().map_or(0, select_tag);
                match self.ts[t].pending.take() {
                    Some(p) => self.deliver(t, p),
                    None => match x.expect("a waiter resumed without a partner") {
                        Xfer::Taken => Res { st: OK, val: tag },
                        Xfer::Got(item) => self.take_item_tag(t, item, tag),
                        Xfer::Closed => Res {
                            st: E_CLOSED,
                            val: tag,
                        },
                    },
                }
            }
            Susp::Completed(r) => r,
            Susp::CompletedItem(item, tag) => self.take_item_tag(t, item, tag),
            Susp::None | Susp::Run => {
                panic!("tasklet {t} resumed but was not suspended ({susp:?})")
            }
        }
    }

    /// Runs tasklet `t` (the head of the queue) until it switches away or ends.
    fn run_tasklet(&mut self, t: usize) {
        assert_eq!(self.queue.front(), Some(&t));
        self.current = t;
        if self.ts[t].life == Life::Fresh {
            self.ts[t].life = Life::Started;
            self.events.push(Ev::Start(t));
        } else {
            let mut r = self.resume_result(t);
            if self.ts[t].seq.is_some() {
                match self.seq_continue(t, Some(r)) {
                    Out::Done(r2) => r = r2,
                    Out::Switched => return,
                    Out::Ended(_) => unreachable!(),
                }
            }
            let pc = self.ts[t].pc;
            self.record(t, pc, r);
            if let Some(rc) = self.reaction(t, r) {
                return self.end(t, rc);
            }
            self.ts[t].pc += 1;
        }
        loop {
            let prog = &self.case.progs[self.ts[t].prog];
            let pc = self.ts[t].pc;
            let Some(act) = prog.acts.get(pc).copied() else {
                return self.end(t, OK);
            };
            match self.perform(t, pc, act) {
                Out::Done(r) => {
                    self.record(t, pc, r);
                    if let Some(rc) = self.reaction(t, r) {
                        return self.end(t, rc);
                    }
                    self.ts[t].pc += 1;
                }
                Out::Switched => return,
                Out::Ended(rc) => return self.end(t, rc),
            }
        }
    }

    /// How a program reacts to a call's status: Some(rc) ends it.
    fn reaction(&self, t: usize, r: Res) -> Option<i32> {
        let p = &self.case.progs[self.ts[t].prog];
        if r.st == E_KILLED && !p.catch_kill {
            Some(E_KILLED)
        } else if r.st > 0 && !p.catch_exc {
            Some(r.st)
        } else {
            None
        }
    }

    /// Tasklet `t`'s function returned `rc`.
    fn end(&mut self, t: usize, rc: i32) {
        self.events.push(Ev::End(t, rc));
        assert_eq!(
            self.queue.front(),
            Some(&t),
            "the running tasklet ends at the head"
        );
        self.queue.pop_front();
        self.ts[t].life = Life::Dead;
        if rc != OK && rc != E_KILLED {
            self.uncaught(rc);
        }
    }

    /// §3: an uncaught error goes to the tasklet waiting in slp_run (the run returns it) or,
    /// outside a run, to the main tasklet, which runs next and whose call returns it. As in
    /// Stackless (tasklet_end: the exception is passed to main with a switch to it), a blocked
    /// or paused main is inserted just before the tasklet that would have run next, and a main
    /// that is already runnable is switched to where it stands (the queue rotates to it, as
    /// for tasklet_run).
    fn uncaught(&mut self, rc: i32) {
        if self.in_run {
            if self.run_error.is_none() {
                self.run_error = Some(rc);
            }
        } else {
            self.ts[0].pending = Some((rc, None));
            if self.in_queue(0) {
                self.rotate_to(0);
            } else {
                self.unblock(0);
                self.queue.push_front(0);
            }
        }
    }

    /// Takes `t` off the channel it waits on (balance follows).
    fn unblock(&mut self, t: usize) {
        if self.ts[t].blocked.take().is_some() {
            // A selector waits on every channel of its enabled cases.
            for ch in &mut self.chans {
                ch.waiters.retain(|w| w.tid != t);
            }
        }
    }

    /// Takes waiter `pos` of channel `c` to pair it: it leaves every channel it waits on (a
    /// selector leaves its other cases' channels at once: their balances are back).
    fn take_waiter(&mut self, c: usize, pos: usize) -> Waiter {
        let w = self.chans[c].waiters.remove(pos).unwrap();
        self.unblock(w.tid);
        self.ts[w.tid].sel_case = w.case;
        w
    }

    fn rotate_to(&mut self, t: usize) {
        let i = self
            .queue
            .iter()
            .position(|&x| x == t)
            .expect("rotate to a queued tasklet");
        self.queue.rotate_left(i);
    }

    // ----- actions --------------------------------------------------------------------------

    /// The tasklet `w` names for `x`; None (the action is skipped) if it does not exist yet
    /// or its handle was released.
    fn who(&self, x: usize, w: Who) -> Option<usize> {
        match w {
            Who::Main => Some(0),
            Who::Me => Some(x),
            Who::T(k) => {
                let k = k as usize;
                (k >= 1 && k < self.ts.len() && !self.ts[k].released).then_some(k)
            }
        }
    }

    /// The channel `c` names; None (skipped) once released.
    fn ch(&self, c: u8) -> Option<usize> {
        let c = c as usize % self.chans.len();
        (!self.chans[c].released).then_some(c)
    }

    /// The running tasklet `x` left the queue by itself (schedule_remove, switch): if nothing
    /// references it any more it is killed, pending, instead of being lost (SPEC §3; header of
    /// slp_schedule_remove).
    fn paused_self(&mut self, x: usize) {
        if x != 0 && self.ts[x].released {
            self.ts[x].pending = Some((E_KILLED, None));
            self.queue.push_back(x);
        }
    }

    /// Performs action `act` (step `pc`) for the running tasklet `x`.
    fn perform(&mut self, x: usize, pc: usize, act: Act) -> Out {
        use Out::Done;
        match act {
            Act::Send(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.send(x, c, Item::Val(value_of(x, pc)))
            }
            Act::SendExc(c, code) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.send(x, c, Item::Exc(code, data_of(x, pc)))
            }
            Act::Receive(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.receive(x, c)
            }
            Act::Schedule => {
                // Alone, it returns at once — except in a budgeted run, where yielding counts
                // as a switch into the tasklet again (so slp_run_n(n) returns).
                let limited = self.in_run && (self.budget.is_some() || self.wd.is_some());
                if self.queue.len() == 1 && !limited {
                    return Done(res(OK));
                }
                if self.trap > 0 {
                    return Done(res(E_SWITCH_TRAP));
                }
                self.queue.rotate_left(1);
                self.ts[x].susp = Susp::Switch;
                Out::Switched
            }
            Act::ScheduleRemove => {
                if self.trap > 0 {
                    return Done(res(E_SWITCH_TRAP));
                }
                if x == 0 && self.queue.len() == 1 {
                    // Header: main outside slp_run with nothing else able to run.
                    return Done(res(E_DEADLOCK));
                }
                self.queue.pop_front();
                self.paused_self(x);
                self.ts[x].susp = Susp::Switch;
                Out::Switched
            }
            Act::Insert(w) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                let m = &self.ts[t];
                if m.life == Life::Dead {
                    Done(res(E_DEAD))
                } else if m.blocked.is_some() {
                    Done(res(E_STATE))
                } else if self.in_queue(t) {
                    Done(res(OK))
                } else if t == 0 && self.in_run {
                    Done(res(E_STATE))
                } else {
                    self.queue.push_back(t);
                    Done(res(OK))
                }
            }
            Act::Remove(w) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                let m = &self.ts[t];
                if m.life == Life::Dead {
                    Done(res(E_DEAD))
                } else if t == x {
                    Done(res(E_STATE))
                } else if m.blocked.is_some() {
                    Done(res(E_STATE))
                } else {
                    self.queue.retain(|&y| y != t);
                    Done(res(OK))
                }
            }
            Act::RunT(w) | Act::Switch(w) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                let m = &self.ts[t];
                if m.life == Life::Dead {
                    return Done(res(E_DEAD));
                }
                if t == x {
                    return Done(res(OK));
                }
                if m.blocked.is_some() || (t == 0 && self.in_run) {
                    return Done(res(E_STATE));
                }
                if self.trap > 0 {
                    return Done(res(E_SWITCH_TRAP));
                }
                if !self.in_queue(t) {
                    self.queue.push_back(t);
                }
                self.rotate_to(t);
                if matches!(act, Act::Switch(_)) {
                    // The caller is paused.
                    self.queue.retain(|&y| y != x);
                    self.paused_self(x);
                }
                self.ts[x].susp = Susp::Switch;
                Out::Switched
            }
            Act::Kill(w, pending) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                self.throw(x, t, E_KILLED, None, pending)
            }
            Act::Throw(w, code, pending) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                self.throw(x, t, code, Some(data_of(x, pc)), pending)
            }
            Act::SetPref(c, p) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].pref = p.clamp(-1, 1);
                Done(res(OK))
            }
            Act::SetSchedAll(c, on) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].all = on;
                Done(res(OK))
            }
            Act::Close(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].closing = true;
                Done(res(OK))
            }
            Act::Open(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].closing = false;
                Done(res(OK))
            }
            Act::Shutdown(c) => {
                // Close, then wake every waiter with SLP_E_CLOSED (appended in FIFO order);
                // the caller continues.
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].closing = true;
                let woken: Vec<Waiter> = self.chans[c].waiters.drain(..).collect();
                for w in woken {
                    if self.ts[w.tid].blocked.is_none() {
                        continue; // a selector with two cases here: woken by the first
                    }
                    self.unblock(w.tid);
                    self.ts[w.tid].sel_case = w.case;
                    self.ts[w.tid].xfer = Some(Xfer::Closed);
                    self.queue.push_back(w.tid);
                }
                Done(res(OK))
            }
            Act::BlockTrap(w, on) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                let old = std::mem::replace(&mut self.ts[t].block_trap, on);
                Done(Res {
                    st: OK,
                    val: old as u64,
                })
            }
            Act::SwitchTrap(d) => {
                let old = self.trap;
                self.trap += d;
                Done(Res {
                    st: OK,
                    val: old as u32 as u64,
                })
            }
            Act::Spawn(p, paused) => {
                if self.ts.len() > MAX_TASKLETS {
                    return Done(res(SKIP));
                }
                let t = self.ts.len();
                self.ts.push(MT {
                    life: Life::Fresh,
                    prog: p as usize % self.case.progs.len(),
                    pc: 0,
                    susp: Susp::None,
                    blocked: None,
                    xfer: None,
                    sel_case: None,
                    seq: None,
                    atomic: false,
                    pending: None,
                    block_trap: false,
                    exc: 0,
                    released: false,
                });
                if !paused {
                    self.queue.push_back(t);
                }
                Done(Res {
                    st: OK,
                    val: t as u64,
                })
            }
            Act::Run | Act::RunN(_) | Act::RunFor0 | Act::RunWd(..) => {
                // *interrupted is written only on SLP_OK (NULL unless a tasklet was
                // interrupted).
                let wd = matches!(act, Act::RunWd(..));
                let fail = |st: i32| Res {
                    st,
                    val: if wd && st != OK { u64::MAX } else { 0 },
                };
                if x != 0 {
                    // Flat scheduling: only the main tasklet runs the scheduler.
                    return Done(fail(E_STATE));
                }
                if let Some(d) = self.deferred.take() {
                    return Done(fail(d));
                }
                if let Some(p) = self.ts[0].pending.take() {
                    let r = self.deliver(0, p);
                    return Done(fail(r.st));
                }
                if self.queue.len() == 1 {
                    return Done(res(OK));
                }
                if self.trap > 0 {
                    return Done(fail(E_SWITCH_TRAP));
                }
                if let Act::RunWd(budget, flags, _) = act {
                    // Budget 0: no limit, exactly slp_run.
                    if budget > 0 {
                        self.wd = Some(Wd {
                            budget: budget as u64,
                            soft: flags & WD_SOFT != 0,
                            total: flags & WD_TOTAL != 0,
                            used: 0,
                            stop: false,
                            interrupted: None,
                            due: Vec::new(),
                        });
                    }
                }
                self.queue.pop_front();
                self.in_run = true;
                self.budget = match act {
                    Act::RunN(n) => Some(n),
                    Act::RunFor0 => Some(1),
                    _ => None,
                };
                self.switched = 0;
                self.run_error = None;
                self.ts[0].susp = Susp::Run;
                Out::Switched
            }
            Act::Release(w) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                if t == 0 || self.ts[t].released {
                    return Done(res(SKIP));
                }
                self.ts[t].released = true;
                let paused = !self.in_queue(t) && self.ts[t].blocked.is_none() && t != self.current;
                match self.ts[t].life {
                    Life::Dead => {}
                    // Never started and in no queue: discarded without running.
                    Life::Fresh if paused => self.ts[t].life = Life::Dead,
                    // Started and paused: killed, pending, so that it can clean up.
                    Life::Started if paused => {
                        self.ts[t].pending = Some((E_KILLED, None));
                        self.queue.push_back(t);
                    }
                    // Runnable, blocked or running: the runtime holds it.
                    _ => {}
                }
                Done(res(OK))
            }
            Act::ReleaseChan(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.chans[c].released = true;
                Done(res(OK))
            }
            Act::Query(w) => {
                let Some(t) = self.who(x, w) else {
                    return Done(res(SKIP));
                };
                let f = self.flags(t);
                Done(Res {
                    st: OK,
                    val: encode_query(f, self.current == t, self.queue.len() as i32),
                })
            }
            Act::Return(rc) => Out::Ended(rc),
            Act::Tick(n) => self.tick(x, n as u64),
            Act::SetAtomic(on) => {
                let old = std::mem::replace(&mut self.ts[x].atomic, on);
                let due = self
                    .wd
                    .as_ref()
                    .is_some_and(|w| x != 0 && w.due.contains(&x));
                if !on && old && due {
                    // The interrupt deferred by atomic fires inside the call that clears it;
                    // the call returns true (the old value) when the tasklet is resumed.
                    let done = Res { st: OK, val: 1 };
                    return self.interrupt(x, Susp::Completed(done), done);
                }
                Done(Res {
                    st: OK,
                    val: old as u64,
                })
            }
            Act::SendPoll(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                match self.try_send(x, c, Item::Val(value_of(x, pc)), 0, true) {
                    Some(o) => o,
                    None => Done(res(self.poll_fail(c))),
                }
            }
            Act::RecvPoll(c) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                match self.try_receive(x, c, 0, true) {
                    Some(o) => o,
                    None => Done(res(self.poll_fail(c))),
                }
            }
            Act::SendSeq(c, n) => {
                let Some(c) = self.ch(c) else {
                    return Done(res(SKIP));
                };
                self.ts[x].seq = Some(Seq {
                    c,
                    k: 0,
                    n: n as usize,
                    pc,
                });
                self.seq_continue(x, None)
            }
            Act::Select(cases, n, poll) => self.select(x, pc, &cases[..n as usize], poll),
        }
    }

    /// A poll that found nothing to pair: SLP_E_CLOSED on a closing channel, else
    /// SLP_E_TIMEOUT; nothing changes (no block_trap, no pending delivery: it never blocks).
    fn poll_fail(&self, c: usize) -> i32 {
        if self.chans[c].closing {
            E_CLOSED
        } else {
            E_TIMEOUT
        }
    }

    /// send_sequence: sends value `k` onwards; `last` is what the send of value `k` returned
    /// (None: value `k` is not sent yet). The call returns OK with n, or the first failing
    /// send's status with the number sent before it.
    fn seq_continue(&mut self, x: usize, last: Option<Res>) -> Out {
        let mut q = self.ts[x].seq.take().expect("a send_sequence in progress");
        if let Some(r) = last {
            if r.st != OK {
                return Out::Done(Res {
                    st: r.st,
                    val: q.k as u64,
                });
            }
            q.k += 1;
        }
        loop {
            if q.k == q.n {
                return Out::Done(Res {
                    st: OK,
                    val: q.n as u64,
                });
            }
            match self.send(x, q.c, Item::Val(value_k(x, q.pc, q.k))) {
                Out::Done(r) if r.st == OK => q.k += 1,
                Out::Done(r) => {
                    return Out::Done(Res {
                        st: r.st,
                        val: q.k as u64,
                    })
                }
                Out::Switched => {
                    self.ts[x].seq = Some(q);
                    return Out::Switched;
                }
                Out::Ended(_) => unreachable!(),
            }
        }
    }

    /// slp_select (SPEC §5.5): the first ready case in array order completes exactly like a
    /// plain send or receive (a poll: like a poll, never switching); none ready: a poll
    /// returns SLP_E_TIMEOUT, else the caller waits on every enabled case.
    fn select(&mut self, x: usize, pc: usize, cases: &[SelCase], poll: bool) -> Out {
        use Out::Done;
        let mut enabled = Vec::new();
        for (i, k) in cases.iter().enumerate() {
            // A released channel is passed as NULL.
            let Some(c) = k.chan.and_then(|c| self.ch(c)) else {
                continue;
            };
            let item = Item::Val(value_k(x, pc, i));
            let tag = select_tag(i);
            let r = if k.send {
                self.try_send(x, c, item, tag, poll)
            } else {
                self.try_receive(x, c, tag, poll)
            };
            if let Some(o) = r {
                return o;
            }
            if self.chans[c].closing {
                // Closing with nothing to pair: ready, completes with SLP_E_CLOSED.
                return Done(Res {
                    st: E_CLOSED,
                    val: tag,
                });
            }
            enabled.push((i, c, k.send, item));
        }
        if poll {
            return Done(res(E_TIMEOUT));
        }
        if self.ts[x].block_trap {
            return Done(res(E_WOULD_BLOCK));
        }
        if enabled.is_empty() {
            return Done(res(E_DEADLOCK));
        }
        if let Some(p) = self.ts[x].pending.take() {
            let r = self.deliver(x, p);
            return Done(r);
        }
        if self.trap > 0 {
            return Done(res(E_SWITCH_TRAP));
        }
        if !self.in_run && self.queue.len() == 1 {
            return Done(res(E_DEADLOCK));
        }
        assert_eq!(self.queue.front(), Some(&x));
        self.queue.pop_front();
        for &(i, c, send, item) in &enabled {
            self.chans[c].waiters.push_back(Waiter {
                tid: x,
                send,
                item,
                case: Some(i),
            });
        }
        self.ts[x].blocked = Some(enabled[0].1);
        self.ts[x].susp = Susp::Blocked;
        Out::Switched
    }

    /// slp_tick(n) by the running tasklet `x`.
    fn tick(&mut self, x: usize, n: u64) -> Out {
        let atomic = self.ts[x].atomic;
        let active = x != 0 && self.in_run;
        let Some(w) = self.wd.as_mut().filter(|_| active) else {
            return Out::Done(res(OK)); // outside a watchdog run, or main: nothing
        };
        if w.stop {
            return Out::Done(res(OK)); // a soft stop is due: the tasklet goes on
        }
        w.used += n;
        if w.used < w.budget {
            return Out::Done(res(OK));
        }
        if atomic {
            // Deferred until the tasklet clears atomic.
            if !w.due.contains(&x) {
                w.due.push(x);
            }
            return Out::Done(res(OK));
        }
        // Resumed: the tick returns OK, or what was delivered meanwhile.
        self.interrupt(x, Susp::Switch, res(OK))
    }

    /// The running tasklet `x` used its budget: soft, the run returns at its next switch (the
    /// call returns `soft` now); hard, it leaves the queue (paused, alive), the run returns it
    /// as a new reference, and the call is suspended in `susp` until it is resumed.
    fn interrupt(&mut self, x: usize, susp: Susp, soft: Res) -> Out {
        // switch_trap does not hold an interrupt back: like a tasklet's end (after which the
        // run switches on even under switch_trap), preemption is not a switch the tasklet
        // asks for, and slp_tick documents no SLP_E_SWITCH_TRAP. (The contract does not say;
        // the generator puts no preemption point in a switch_trap section, but a tasklet
        // that ends inside one leaves the trap set.)
        let w = self.wd.as_mut().expect("a watchdog run");
        w.due.retain(|&t| t != x);
        w.stop = true;
        if w.soft {
            return Out::Done(soft);
        }
        w.interrupted = Some(x);
        assert_eq!(self.queue.front(), Some(&x));
        self.queue.pop_front();
        self.ts[x].susp = susp;
        Out::Switched
    }

    /// kill (code = SLP_E_KILLED, no data) and throw.
    fn throw(&mut self, x: usize, t: usize, code: i32, data: Option<u64>, pending: bool) -> Out {
        use Out::Done;
        let kill = code == E_KILLED;
        if self.ts[t].life == Life::Dead {
            return Done(res(if kill { OK } else { E_DEAD }));
        }
        if t == x {
            // Killing (throwing to) the current tasklet returns the code to the caller.
            if let Some(d) = data {
                self.ts[x].exc = d;
            }
            return Done(res(code));
        }
        if self.ts[t].life == Life::Fresh {
            // Never started: ended without running. A throw's code is reported like an
            // uncaught error: by this call when not pending, by the next slp_run when pending.
            self.ts[t].life = Life::Dead;
            self.queue.retain(|&y| y != t);
            if kill {
                return Done(res(OK));
            }
            if pending {
                if self.deferred.is_none() {
                    self.deferred = Some(code);
                }
                return Done(res(OK));
            }
            return Done(res(code));
        }
        if !pending && self.trap > 0 {
            return Done(res(E_SWITCH_TRAP));
        }
        // A blocked target leaves its channel (balance corrected); its pending or next
        // blocking call returns the code.
        self.unblock(t);
        self.ts[t].xfer = None;
        self.ts[t].sel_case = None;
        if matches!(self.ts[t].susp, Susp::Blocked) {
            self.ts[t].susp = Susp::Switch;
        }
        self.ts[t].pending = Some((code, data));
        if !self.in_queue(t) {
            self.queue.push_back(t);
        }
        if pending {
            return Done(res(OK));
        }
        // Switch to the target now; the caller keeps its place.
        self.rotate_to(t);
        self.ts[x].susp = Susp::Switch;
        Out::Switched
    }

    /// The caller would block on channel `c` (no partner, no room).
    fn block(&mut self, x: usize, c: usize, w: Waiter) -> Out {
        use Out::Done;
        if self.ts[x].block_trap {
            return Done(res(E_WOULD_BLOCK));
        }
        if self.chans[c].closing {
            return Done(res(E_CLOSED));
        }
        if let Some(p) = self.ts[x].pending.take() {
            let r = self.deliver(x, p);
            return Done(r);
        }
        if self.trap > 0 {
            return Done(res(E_SWITCH_TRAP));
        }
        if !self.in_run && self.queue.len() == 1 {
            // §5.3 rule 2 (main blocks, nothing else runnable) and rule 4 (the last runnable
            // tasklet blocks while main is blocked outside slp_run): SLP_E_DEADLOCK, nothing
            // changes.
            return Done(res(E_DEADLOCK));
        }
        assert_eq!(self.queue.front(), Some(&x));
        self.queue.pop_front();
        self.chans[c].waiters.push_back(w);
        self.ts[x].blocked = Some(c);
        self.ts[x].susp = Susp::Blocked;
        Out::Switched
    }

    /// A transfer with waiting partner `p` completed; the caller's call returns `r`. The
    /// partner becomes runnable and the preference decides who runs (§5.1 tables).
    fn wake_partner(&mut self, x: usize, p: usize, partner_first: bool, all: bool, r: Susp) -> Out {
        if all {
            // Both appended: the partner now, the caller by keeping its place; the next
            // runnable runs.
            self.queue.push_back(p);
            self.queue.rotate_left(1);
            self.ts[x].susp = r;
            Out::Switched
        } else if partner_first {
            // The partner runs at once, the caller after a full turn.
            self.queue.insert(1, p);
            self.queue.rotate_left(1);
            self.ts[x].susp = r;
            Out::Switched
        } else {
            // The caller continues; the partner is appended.
            self.queue.push_back(p);
            Out::Done(self.resume_result_of(x, r))
        }
    }

    fn resume_result_of(&mut self, x: usize, r: Susp) -> Res {
        match r {
            Susp::Completed(r) => r,
            Susp::CompletedItem(item, tag) => self.take_item_tag(x, item, tag),
            _ => unreachable!(),
        }
    }

    /// The non-blocking part of a send (`tag`: a select's index): to the first waiting
    /// receiver, or into the buffer; None when it would block. A poll never switches: the
    /// partner is appended whatever the preference (and schedule_all).
    fn try_send(&mut self, x: usize, c: usize, item: Item, tag: u64, poll: bool) -> Option<Out> {
        let ch = &self.chans[c];
        if let Some(pos) = ch.waiters.iter().position(|w| !w.send) {
            let first = ch.pref < 0 && !poll;
            let all = ch.all && !poll;
            if (first || all) && self.trap > 0 {
                return Some(Out::Done(res(E_SWITCH_TRAP)));
            }
            let w = self.take_waiter(c, pos);
            self.ts[w.tid].xfer = Some(Xfer::Got(item));
            let done = Susp::Completed(Res { st: OK, val: tag });
            return Some(self.wake_partner(x, w.tid, first, all, done));
        }
        if !ch.closing && ch.buf.len() < ch.cap {
            self.chans[c].buf.push_back(item);
            return Some(Out::Done(Res { st: OK, val: tag }));
        }
        None
    }

    fn send(&mut self, x: usize, c: usize, item: Item) -> Out {
        if let Some(o) = self.try_send(x, c, item, 0, false) {
            return o;
        }
        self.block(
            x,
            c,
            Waiter {
                tid: x,
                send: true,
                item,
                case: None,
            },
        )
    }

    /// The non-blocking part of a receive: a buffered item (a waiting sender refills the
    /// buffer) or the first waiting sender's; None when it would block.
    fn try_receive(&mut self, x: usize, c: usize, tag: u64, poll: bool) -> Option<Out> {
        let ch = &self.chans[c];
        let sender = ch.waiters.iter().position(|w| w.send);
        if ch.buf.is_empty() && sender.is_none() {
            return None;
        }
        let Some(pos) = sender else {
            // From the buffer, nobody to wake.
            let item = self.chans[c].buf.pop_front().unwrap();
            return Some(Out::Done(self.take_item_tag(x, item, tag)));
        };
        let first = ch.pref > 0 && !poll;
        let all = ch.all && !poll;
        if (first || all) && self.trap > 0 {
            return Some(Out::Done(res(E_SWITCH_TRAP)));
        }
        let w = self.take_waiter(c, pos);
        let ch = &mut self.chans[c];
        let item = if let Some(front) = ch.buf.pop_front() {
            // The buffer's first item; the waiting sender's item refills the buffer.
            ch.buf.push_back(w.item);
            front
        } else {
            w.item
        };
        self.ts[w.tid].xfer = Some(Xfer::Taken);
        Some(self.wake_partner(x, w.tid, first, all, Susp::CompletedItem(item, tag)))
    }

    fn receive(&mut self, x: usize, c: usize) -> Out {
        if let Some(o) = self.try_receive(x, c, 0, false) {
            return o;
        }
        self.block(
            x,
            c,
            Waiter {
                tid: x,
                send: false,
                item: Item::Val(0),
                case: None,
            },
        )
    }
}
