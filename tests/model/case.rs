//! Cases for the model-based test: what the main tasklet does, what each tasklet's program does,
//! the channels they share; a generator driven by any source of choices (a seeded PRNG for the
//! test, fuzz bytes for the fuzz target), and a readable printout.
//!
//! Shared by `tests/model.rs` and `fuzz/fuzz_targets/model.rs` (included with `#[path]`).

use std::fmt;

/// At most this many tasklets per case (besides main); a creation beyond it is skipped.
pub const MAX_TASKLETS: usize = 10;

/// Status recorded for an action whose target does not exist (yet): nothing was called.
pub const SKIP: i32 = i32::MIN;

// Status values (the same numbers as include/slp.h; the model must not borrow the library's).
pub const OK: i32 = 0;
pub const E_STATE: i32 = -3;
pub const E_DEADLOCK: i32 = -5;
pub const E_CLOSED: i32 = -6;
pub const E_KILLED: i32 = -7;
pub const E_TIMEOUT: i32 = -8;
pub const E_WOULD_BLOCK: i32 = -9;
pub const E_SWITCH_TRAP: i32 = -10;
pub const E_DEAD: i32 = -11;

pub fn status_name(s: i32) -> String {
    match s {
        0 => "OK".into(),
        -1 => "E_INVALID".into(),
        -2 => "E_NOMEM".into(),
        -3 => "E_STATE".into(),
        -4 => "E_WRONG_THREAD".into(),
        -5 => "E_DEADLOCK".into(),
        -6 => "E_CLOSED".into(),
        -7 => "E_KILLED".into(),
        -8 => "E_TIMEOUT".into(),
        -9 => "E_WOULD_BLOCK".into(),
        -10 => "E_SWITCH_TRAP".into(),
        -11 => "E_DEAD".into(),
        -12 => "E_PANIC".into(),
        SKIP => "skipped (no such tasklet or channel)".into(),
        s if s > 0 => format!("user code {s}"),
        s => format!("status {s}"),
    }
}

// ----- sources of choices -------------------------------------------------------------------

/// Where the generator's choices come from.
pub trait Source {
    /// A number in `0..n` (0 when `n <= 1`).
    fn below(&mut self, n: u32) -> u32;
    /// True with probability `pct` percent.
    fn chance(&mut self, pct: u32) -> bool {
        self.below(100) < pct
    }
}

/// splitmix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Source for Rng {
    fn below(&mut self, n: u32) -> u32 {
        if n <= 1 {
            0
        } else {
            (self.next_u64() % n as u64) as u32
        }
    }
}

/// Choices read from fuzz bytes; 0 once they run out (so every input makes a finite case).
#[allow(dead_code)]
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

#[allow(dead_code)]
impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes { data, pos: 0 }
    }
    fn byte(&mut self) -> u32 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b as u32
    }
}

impl Source for Bytes<'_> {
    fn below(&mut self, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let v = if n <= 256 {
            self.byte()
        } else {
            self.byte() | self.byte() << 8
        };
        v % n
    }
}

// ----- what a case is -----------------------------------------------------------------------

/// Whom an action targets. `T(k)` is the k-th tasklet created in the case (1-based, in
/// creation order, by main or by a tasklet); if it does not exist yet the action is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Main,
    Me,
    T(u8),
}

/// One action: a main-tasklet operation or a step of a tasklet's program. Channels are indices
/// (modulo the number of channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Send(u8),
    SendExc(u8, i32),
    Receive(u8),
    Schedule,
    ScheduleRemove,
    Insert(Who),
    Remove(Who),
    RunT(Who),
    Switch(Who),
    Kill(Who, bool),
    Throw(Who, i32, bool),
    SetPref(u8, i32),
    SetSchedAll(u8, bool),
    Close(u8),
    Open(u8),
    Shutdown(u8),
    BlockTrap(Who, bool),
    SwitchTrap(i32),
    /// Create a tasklet running program `p` (paused or appended).
    Spawn(u8, bool),
    Run,
    RunN(u32),
    /// slp_run_for(0): exactly one tasklet runs.
    RunFor0,
    /// Drop the case's reference to a tasklet (SPEC §3 ownership): it cannot be targeted any
    /// more; unreferenced and paused, it is discarded (never started) or killed (pending).
    Release(Who),
    /// Drop the case's reference to a channel: it cannot be used any more; it stays alive
    /// while tasklets wait on it.
    ReleaseChan(u8),
    /// Record flags of a tasklet and runcount (tasklet programs only).
    Query(Who),
    /// slp_run_watchdog(budget, flags, &t) (ticks; flags from WD_SOFT | WD_TOTAL); when it
    /// hands back an interrupted tasklet, the caller re-inserts it (true) or not, then
    /// releases the reference it got.
    RunWd(u8, u8, bool),
    /// slp_tick(n).
    Tick(u8),
    /// slp_tasklet_set_atomic(slp_current(), on): records the old value.
    SetAtomic(bool),
    /// slp_channel_send_timeout(c, v, 0): a poll.
    SendPoll(u8),
    /// slp_channel_receive_timeout(c, &v, 0): a poll.
    RecvPoll(u8),
    /// slp_channel_send_sequence(c, values, n, &sent): records *sent.
    SendSeq(u8, u8),
    /// slp_select over the first `n` cases, blocking (false) or as a poll (true, timeout 0);
    /// records *index and the received value (see `select_val`).
    Select([SelCase; 3], u8, bool),
    /// End the tasklet's function with this return value (tasklet programs only).
    Return(i32),
}

/// One case of a select: a send or a receive on a channel; `chan` None is a NULL channel (a
/// disabled case; a released channel is passed as NULL too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelCase {
    pub send: bool,
    pub chan: Option<u8>,
}

/// slp_run_watchdog flags the cases use (never SLP_WATCHDOG_TIME: real time).
pub const WD_SOFT: u8 = 2;
pub const WD_TOTAL: u8 = 4;

impl Act {
    /// Every channel index the action names (for the shrinker's channel removal).
    pub fn for_each_chan(&mut self, mut f: impl FnMut(&mut u8)) {
        match self {
            Act::Send(x)
            | Act::SendExc(x, _)
            | Act::Receive(x)
            | Act::SetPref(x, _)
            | Act::SetSchedAll(x, _)
            | Act::Close(x)
            | Act::Open(x)
            | Act::Shutdown(x)
            | Act::SendPoll(x)
            | Act::RecvPoll(x)
            | Act::SendSeq(x, _) => f(x),
            Act::Select(cs, n, _) => {
                for c in cs.iter_mut().take(*n as usize) {
                    if let Some(x) = &mut c.chan {
                        f(x)
                    }
                }
            }
            _ => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub acts: Vec<Act>,
    /// On SLP_E_KILLED: keep going (as catching TaskletExit does) instead of returning it.
    pub catch_kill: bool,
    /// On a user code (thrown or sent as an exception): keep going instead of returning it
    /// (an uncaught error).
    pub catch_exc: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChanSpec {
    pub capacity: u32,
    pub preference: i32,
    pub schedule_all: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub chans: Vec<ChanSpec>,
    pub progs: Vec<Program>,
    /// What the main tasklet does, one step at a time.
    pub ops: Vec<Act>,
}

/// The value sent by action `pc` of tasklet `tid` (main: tid 0, pc = op index): unique per case.
pub fn value_of(tid: usize, pc: usize) -> u64 {
    ((tid as u64 + 1) << 32) | (pc as u64 + 1) << 4 | 0x8
}

/// The value of select case `i` (a send case) or of value `k` of a send_sequence.
pub fn value_k(tid: usize, pc: usize, k: usize) -> u64 {
    value_of(tid, pc) + k as u64
}

/// What a select records: the index written (i + 1 in the top byte; 0 when not written) and
/// the value a receive case received.
pub fn select_tag(i: usize) -> u64 {
    (i as u64 + 1) << 56
}

/// The exception data passed by action `pc` of tasklet `tid`.
pub fn data_of(tid: usize, pc: usize) -> u64 {
    value_of(tid, pc) | 0x4
}

// ----- what is observed ---------------------------------------------------------------------

/// One observable event. Both executors produce these; they must match exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A tasklet's function started.
    Start(usize),
    /// A call made by `tid` (main: 0) at program step `pc` (main: op index) returned `st`;
    /// `val` is the received value (receive OK), the new tid (spawn), the encoded flags
    /// (query); `exc` is slp_exception_data() when `st` > 0.
    Act {
        tid: usize,
        pc: usize,
        st: i32,
        val: u64,
        exc: u64,
    },
    /// A tasklet's function returned `rc`.
    End(usize, i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    pub alive: bool,
    pub blocked: bool,
    pub scheduled: bool,
    pub paused: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChanState {
    pub balance: i32,
    pub closing: bool,
    pub closed: bool,
    pub preference: i32,
    pub schedule_all: bool,
    /// The first waiter (slp_channel_queue), as a tid.
    pub queue: Option<usize>,
}

/// What the snapshot says for a tasklet whose handle the case released (it cannot be asked).
pub const RELEASED_FLAGS: Flags = Flags {
    alive: false,
    blocked: false,
    scheduled: false,
    paused: false,
};
/// The same for a released channel.
pub const RELEASED_CHAN: ChanState = ChanState {
    balance: i32::MIN,
    closing: false,
    closed: false,
    preference: 0,
    schedule_all: false,
    queue: None,
};

/// The state seen by the main tasklet after each of its operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snap {
    pub runcount: i32,
    pub switch_trap: i32,
    pub main_exc: u64,
    /// Indexed by tid (0 = main).
    pub tasklets: Vec<Flags>,
    pub chans: Vec<ChanState>,
    /// How many times each tasklet's `arg_free` ran (exactly once when it is dead).
    pub arg_freed: Vec<u32>,
}

/// Encodes a query's answer: flags of the target, whether it is current, and runcount.
pub fn encode_query(f: Flags, is_current: bool, runcount: i32) -> u64 {
    (f.alive as u64)
        | (f.blocked as u64) << 1
        | (f.scheduled as u64) << 2
        | (f.paused as u64) << 3
        | (is_current as u64) << 4
        | ((runcount as u32 as u64) << 8)
}

// ----- generator ----------------------------------------------------------------------------

fn who_t(s: &mut dyn Source) -> Who {
    // Small ids are the ones most likely to exist.
    let k = if s.chance(70) {
        1 + s.below(4)
    } else {
        1 + s.below(MAX_TASKLETS as u32)
    };
    Who::T(k as u8)
}

fn who_any(s: &mut dyn Source, main_ok: bool) -> Who {
    match s.below(10) {
        0 => Who::Me,
        1 if main_ok => Who::Main,
        _ => who_t(s),
    }
}

fn code(s: &mut dyn Source) -> i32 {
    [7, 42, 1000][s.below(3) as usize]
}

fn chan(s: &mut dyn Source, nch: u32) -> u8 {
    s.below(nch) as u8
}

fn pref(s: &mut dyn Source) -> i32 {
    // Mostly -1..1; sometimes out of range (clamped).
    if s.chance(10) {
        [-5, 3][s.below(2) as usize]
    } else {
        s.below(3) as i32 - 1
    }
}

fn kill_target(s: &mut dyn Source) -> Who {
    if s.chance(92) {
        who_t(s)
    } else {
        Who::Me
    }
}

/// An operation of the main tasklet.
fn main_op(s: &mut dyn Source, nch: u32, nprog: u32) -> Act {
    match s.below(122) {
        0..=14 => Act::Spawn(s.below(nprog) as u8, s.chance(10)),
        15..=28 => match s.below(10) {
            0..=5 => Act::Run,
            6..=8 => Act::RunN(1 + s.below(3)),
            _ => Act::RunFor0,
        },
        29..=33 => Act::Schedule,
        34..=35 => Act::ScheduleRemove,
        36..=40 => Act::Send(chan(s, nch)),
        41..=45 => Act::Receive(chan(s, nch)),
        46..=47 => Act::SendExc(chan(s, nch), code(s)),
        48..=51 => Act::Insert(who_t(s)),
        52..=53 => Act::Remove(who_t(s)),
        54..=57 => Act::RunT(who_t(s)),
        58..=60 => Act::Switch(who_t(s)),
        61..=66 => Act::Kill(kill_target(s), s.chance(50)),
        67..=70 => Act::Throw(kill_target(s), code(s), s.chance(50)),
        71..=73 => Act::SetPref(chan(s, nch), pref(s)),
        74..=75 => Act::SetSchedAll(chan(s, nch), s.chance(50)),
        76 => Act::Close(chan(s, nch)),
        77..=80 => Act::Open(chan(s, nch)),
        81..=82 => Act::Shutdown(chan(s, nch)),
        83..=84 => Act::BlockTrap(if s.chance(50) { Who::Me } else { who_t(s) }, s.chance(60)),
        85..=87 => Act::Release(who_t(s)),
        88 => Act::ReleaseChan(chan(s, nch)),
        89..=99 => Act::Run,
        100..=109 => run_wd(s),
        110..=111 => Act::SendPoll(chan(s, nch)),
        112..=113 => Act::RecvPoll(chan(s, nch)),
        114..=118 => select(s, nch),
        119..=120 => Act::SendSeq(chan(s, nch), s.below(4) as u8),
        // slp_tick from the main tasklet: does nothing.
        _ => Act::Tick(s.below(4) as u8),
    }
}

fn run_wd(s: &mut dyn Source) -> Act {
    let budget = if s.chance(8) { 0 } else { 1 + s.below(4) as u8 };
    let flags = [0, 0, WD_SOFT, WD_TOTAL, WD_SOFT | WD_TOTAL][s.below(5) as usize];
    Act::RunWd(budget, flags, s.chance(70))
}

/// Whether a select may have a send case and a receive case on the same channel. Off by
/// default: libslp recurses without end (stack overflow, the process aborts) when such a
/// select has to wait (SLP_MODEL_SELECT_BOTH_WAYS=1 turns it on; the model handles it).
pub static SELECT_BOTH_WAYS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn select(s: &mut dyn Source, nch: u32) -> Act {
    let n = 1 + s.below(3) as u8;
    let mut cs = [SelCase {
        send: false,
        chan: None,
    }; 3];
    let both = SELECT_BOTH_WAYS.load(std::sync::atomic::Ordering::Relaxed);
    for i in 0..n as usize {
        let mut send = s.chance(50);
        let chan = if s.chance(12) {
            None
        } else {
            Some(chan(s, nch))
        };
        if !both && chan.is_some() {
            if let Some(e) = cs[..i].iter().find(|e| e.chan == chan) {
                send = e.send;
            }
        }
        cs[i] = SelCase { send, chan };
    }
    Act::Select(cs, n, s.chance(30))
}

/// A step of a tasklet's program.
fn tasklet_act(s: &mut dyn Source, nch: u32, nprog: u32) -> Act {
    match s.below(125) {
        0..=17 => Act::Send(chan(s, nch)),
        18..=35 => Act::Receive(chan(s, nch)),
        36..=40 => Act::SendExc(chan(s, nch), code(s)),
        41..=49 => Act::Schedule,
        50..=52 => Act::ScheduleRemove,
        53..=55 => Act::Insert(who_any(s, true)),
        56..=57 => Act::Remove(kill_target(s)),
        58..=60 => Act::RunT(who_any(s, true)),
        61..=62 => Act::Switch(who_any(s, true)),
        63..=67 => Act::Kill(kill_target(s), s.chance(50)),
        68..=70 => Act::Throw(kill_target(s), code(s), s.chance(50)),
        71..=72 => Act::SetPref(chan(s, nch), pref(s)),
        73 => Act::SetSchedAll(chan(s, nch), s.chance(50)),
        74 => Act::Close(chan(s, nch)),
        75..=77 => Act::Open(chan(s, nch)),
        78 => Act::Shutdown(chan(s, nch)),
        79..=80 => Act::BlockTrap(
            if s.chance(60) {
                Who::Me
            } else {
                who_any(s, true)
            },
            s.chance(60),
        ),
        81..=83 => Act::Spawn(s.below(nprog) as u8, s.chance(15)),
        84..=85 => Act::Release(if s.chance(80) { who_t(s) } else { Who::Me }),
        86 => Act::ReleaseChan(chan(s, nch)),
        87..=92 => Act::Query(who_any(s, true)),
        93..=97 => Act::Return([0, 0, E_KILLED, 42, 7, E_DEADLOCK][s.below(6) as usize]),
        98..=99 => {
            if s.chance(50) {
                Act::Run
            } else {
                Act::RunN(1 + s.below(2))
            }
        }
        100..=105 => tick(s),
        106..=108 => Act::SetAtomic(s.chance(50)),
        109..=110 => Act::SendPoll(chan(s, nch)),
        111..=112 => Act::RecvPoll(chan(s, nch)),
        113..=119 => select(s, nch),
        120..=122 => Act::SendSeq(chan(s, nch), s.below(4) as u8),
        _ => run_wd(s),
    }
}

fn tick(s: &mut dyn Source) -> Act {
    Act::Tick(s.below(4) as u8)
}

fn gen_program(s: &mut dyn Source, nch: u32, nprog: u32) -> Program {
    let len = s.below(11) as usize;
    // Half the programs tick often (a long loop under a watchdog).
    let tick_pct = if s.chance(50) { 0 } else { 50 };
    let mut acts = Vec::new();
    while acts.len() < len {
        if s.chance(2) {
            // A switch_trap section: +1, one or two actions, -1 (no preemption points in it:
            // the contract does not say what an interrupt under switch_trap does).
            acts.push(Act::SwitchTrap(1));
            for _ in 0..1 + s.below(2) {
                let mut a = tasklet_act(s, nch, nprog);
                while matches!(a, Act::Tick(_) | Act::SetAtomic(_)) {
                    a = tasklet_act(s, nch, nprog);
                }
                acts.push(a);
            }
            acts.push(Act::SwitchTrap(-1));
            continue;
        }
        if s.chance(4) {
            // An atomic section (the seed's critical section): ticks in it defer an interrupt.
            acts.push(Act::SetAtomic(true));
            for _ in 0..1 + s.below(3) {
                let a = if s.chance(50) {
                    tick(s)
                } else {
                    tasklet_act(s, nch, nprog)
                };
                acts.push(a);
            }
            acts.push(Act::SetAtomic(false));
            continue;
        }
        let a = if s.chance(tick_pct) {
            tick(s)
        } else {
            tasklet_act(s, nch, nprog)
        };
        acts.push(a);
    }
    Program {
        acts,
        catch_kill: s.chance(25),
        catch_exc: s.chance(25),
    }
}

/// A random case.
pub fn gen_case(s: &mut dyn Source) -> Case {
    let nch = 1 + s.below(3);
    let chans = (0..nch)
        .map(|_| ChanSpec {
            capacity: if s.chance(20) { 1 + s.below(2) } else { 0 },
            preference: s.below(3) as i32 - 1,
            schedule_all: s.chance(15),
        })
        .collect();
    let nprog = 1 + s.below(5);
    let progs = (0..nprog).map(|_| gen_program(s, nch, nprog)).collect();
    let nops = 1 + s.below(40) as usize;
    let mut ops: Vec<Act> = Vec::new();
    // Start with a few tasklets more often than not.
    for _ in 0..s.below(4) {
        ops.push(Act::Spawn(s.below(nprog) as u8, s.chance(10)));
    }
    while ops.len() < nops {
        if s.chance(2) {
            ops.push(Act::SwitchTrap(1));
            for _ in 0..1 + s.below(2) {
                let a = main_op(s, nch, nprog);
                ops.push(a);
            }
            ops.push(Act::SwitchTrap(-1));
            continue;
        }
        let a = main_op(s, nch, nprog);
        ops.push(a);
    }
    Case { chans, progs, ops }
}

// ----- printing -----------------------------------------------------------------------------

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Main => write!(f, "main"),
            Who::Me => write!(f, "self"),
            Who::T(k) => write!(f, "t{k}"),
        }
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pend = |p: &bool| if *p { "pending" } else { "now" };
        let chn = |c: &Option<u8>| match c {
            Some(c) => format!("c{c}"),
            None => "NULL".to_string(),
        };
        match self {
            Act::RunWd(b, fl, re) => {
                let mut names = Vec::new();
                if fl & WD_SOFT != 0 {
                    names.push("SOFT");
                }
                if fl & WD_TOTAL != 0 {
                    names.push("TOTAL");
                }
                let names = if names.is_empty() {
                    "0".to_string()
                } else {
                    names.join("|")
                };
                write!(
                    f,
                    "slp_run_watchdog({b}, {names}) then {} the interrupted tasklet",
                    if *re { "insert+release" } else { "release" }
                )
            }
            Act::Tick(n) => write!(f, "tick {n}"),
            Act::SetAtomic(on) => write!(f, "set_atomic self {on}"),
            Act::SendPoll(c) => write!(f, "send_poll c{c}"),
            Act::RecvPoll(c) => write!(f, "receive_poll c{c}"),
            Act::SendSeq(c, n) => write!(f, "send_sequence c{c} {n} values"),
            Act::Select(cs, n, poll) => {
                let v: Vec<String> = cs
                    .iter()
                    .take(*n as usize)
                    .map(|k| format!("{} {}", if k.send { "send" } else { "recv" }, chn(&k.chan)))
                    .collect();
                write!(
                    f,
                    "select [{}]{}",
                    v.join(", "),
                    if *poll { " poll" } else { "" }
                )
            }
            Act::Send(c) => write!(f, "send c{c}"),
            Act::SendExc(c, code) => write!(f, "send_exception c{c} code {code}"),
            Act::Receive(c) => write!(f, "receive c{c}"),
            Act::Schedule => write!(f, "schedule"),
            Act::ScheduleRemove => write!(f, "schedule_remove"),
            Act::Insert(w) => write!(f, "insert {w}"),
            Act::Remove(w) => write!(f, "remove {w}"),
            Act::RunT(w) => write!(f, "tasklet_run {w}"),
            Act::Switch(w) => write!(f, "tasklet_switch {w}"),
            Act::Kill(w, p) => write!(f, "kill {w} {}", pend(p)),
            Act::Throw(w, c, p) => write!(f, "throw {w} code {c} {}", pend(p)),
            Act::SetPref(c, p) => write!(f, "set_preference c{c} {p}"),
            Act::SetSchedAll(c, on) => write!(f, "set_schedule_all c{c} {on}"),
            Act::Close(c) => write!(f, "close c{c}"),
            Act::Open(c) => write!(f, "open c{c}"),
            Act::Shutdown(c) => write!(f, "shutdown c{c}"),
            Act::BlockTrap(w, on) => write!(f, "set_block_trap {w} {on}"),
            Act::SwitchTrap(d) => write!(f, "switch_trap({d:+})"),
            Act::Spawn(p, paused) => {
                write!(
                    f,
                    "new tasklet running p{p}{}",
                    if *paused { " (PAUSED)" } else { "" }
                )
            }
            Act::Run => write!(f, "slp_run"),
            Act::RunN(n) => write!(f, "slp_run_n({n})"),
            Act::RunFor0 => write!(f, "slp_run_for(0)"),
            Act::Release(w) => write!(f, "release {w}"),
            Act::ReleaseChan(c) => write!(f, "release c{c}"),
            Act::Query(w) => write!(f, "query {w}"),
            Act::Return(c) => write!(f, "return {c}"),
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channels:")?;
        for (i, c) in self.chans.iter().enumerate() {
            write!(f, " c{i}(")?;
            if c.capacity > 0 {
                write!(f, "capacity {}, ", c.capacity)?;
            }
            write!(
                f,
                "pref {}{})",
                c.preference,
                if c.schedule_all { ", schedule_all" } else { "" }
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "programs (tasklet t<k> is the k-th tasklet created, by main or by a tasklet):"
        )?;
        for (i, p) in self.progs.iter().enumerate() {
            let mut flags = Vec::new();
            if p.catch_kill {
                flags.push("catches kill");
            }
            if p.catch_exc {
                flags.push("catches user codes");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            let acts: Vec<String> = p.acts.iter().map(|a| a.to_string()).collect();
            writeln!(
                f,
                "  p{i}{flags}: {}",
                if acts.is_empty() {
                    "(nothing)".into()
                } else {
                    acts.join("; ")
                }
            )?;
        }
        writeln!(f, "main:")?;
        for (i, a) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:2}: {a}")?;
        }
        Ok(())
    }
}

/// A readable line for an event of a case.
pub fn describe_event(case: &Case, e: &Ev, progs_of: &dyn Fn(usize) -> Option<usize>) -> String {
    let who = |tid: usize| {
        if tid == 0 {
            "main".to_string()
        } else {
            format!("t{tid}")
        }
    };
    match e {
        Ev::Start(t) => format!("{} starts", who(*t)),
        Ev::End(t, rc) => format!("{} returns {}", who(*t), status_name(*rc)),
        Ev::Act {
            tid,
            pc,
            st,
            val,
            exc,
        } => {
            let act = if *tid == 0 {
                case.ops.get(*pc).copied()
            } else {
                progs_of(*tid)
                    .and_then(|p| case.progs.get(p))
                    .and_then(|p| p.acts.get(*pc).copied())
            };
            let name = act.map(|a| a.to_string()).unwrap_or_else(|| "?".into());
            let mut s = format!("{} #{pc} {name} -> {}", who(*tid), status_name(*st));
            match act {
                Some(Act::Receive(_) | Act::RecvPoll(_)) if *st == OK => {
                    s.push_str(&format!(" value {val:#x}"))
                }
                Some(Act::Select(..)) => {
                    let i = (val >> 56) as usize;
                    if i > 0 {
                        s.push_str(&format!(" index {}", i - 1));
                    }
                    let v = val & ((1 << 56) - 1);
                    if v != 0 {
                        s.push_str(&format!(" value {v:#x}"));
                    }
                }
                Some(Act::SendSeq(..)) => s.push_str(&format!(" sent {}", *val as i64)),
                Some(Act::RunWd(..)) if *st == OK => {
                    if *val == 0 {
                        s.push_str(" interrupted NULL")
                    } else {
                        s.push_str(&format!(" interrupted t{val}"))
                    }
                }
                Some(Act::SetAtomic(_)) => s.push_str(&format!(" (was {})", *val != 0)),
                Some(Act::Spawn(..)) if *st == OK => s.push_str(&format!(" = t{val}")),
                Some(Act::BlockTrap(..)) => s.push_str(&format!(" (was {})", *val != 0)),
                Some(Act::SwitchTrap(_)) => {
                    s.push_str(&format!(" (level was {})", *val as u32 as i32))
                }
                Some(Act::Query(_)) if *st == OK => {
                    let bits = [
                        (1, "alive"),
                        (2, "blocked"),
                        (4, "scheduled"),
                        (8, "paused"),
                        (16, "current"),
                    ];
                    let names: Vec<&str> = bits
                        .iter()
                        .filter(|(b, _)| val & b != 0)
                        .map(|(_, n)| *n)
                        .collect();
                    s.push_str(&format!(
                        " [{}] runcount {}",
                        names.join(" "),
                        (val >> 8) as u32 as i32
                    ));
                }
                _ => {}
            }
            if *st > 0 {
                s.push_str(&format!(" exception data {exc:#x}"));
            }
            s
        }
    }
}
