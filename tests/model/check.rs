//! Runs a case against the model and libslp side by side, comparing after every main step;
//! shrinks a failing case; prints a failure readably.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::case::*;
use crate::real::Real;
use crate::spec::Model;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Different events (order, statuses, values).
    Events,
    /// Same events, different state (flags, runcount, balances, arg_free counts, ...).
    State,
    /// The library broke an invariant that holds under any semantics (slp_current()).
    Invariant,
    /// The model panicked (a bug in the model or the test).
    ModelPanic,
    /// The test's own side of the real executor panicked.
    RealPanic,
    /// Tearing the case down failed (a tasklet survived shutdown, arg_free count).
    Teardown,
}

pub struct Failure {
    pub kind: Kind,
    /// The main step after which it was seen (ops.len() for teardown).
    pub step: usize,
    pub detail: String,
    pub model_events: Vec<Ev>,
    pub real_events: Vec<Ev>,
    pub model_snap: Option<Snap>,
    pub real_snap: Option<Snap>,
    model_progs: Vec<Option<usize>>,
}

fn panic_msg(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Statistics of what the cases exercised (from the model's events).
#[derive(Default)]
pub struct Stats {
    pub cases: u64,
    pub steps: u64,
    pub events: u64,
    /// (action name, status) -> count
    pub outcomes: std::collections::BTreeMap<(String, String), u64>,
}

fn act_name(a: &Act) -> String {
    match a {
        Act::RunWd(b, f, _) => format!(
            "slp_run_watchdog{}{}{}",
            if *b == 0 { "(0)" } else { "" },
            if f & WD_SOFT != 0 { "/soft" } else { "" },
            if f & WD_TOTAL != 0 { "/total" } else { "" }
        ),
        Act::SetAtomic(on) => format!("set_atomic({on})"),
        Act::Select(_, _, true) => "select(poll)".into(),
        _ => a.to_string().split(' ').next().unwrap_or("?").to_string(),
    }
}

impl Stats {
    /// Adds what the model does on `case` (a model run is cheap).
    pub fn add(&mut self, case: &Case) {
        let mut model = Model::new(case);
        for i in 0..case.ops.len() {
            model.step(i);
        }
        self.cases += 1;
        self.steps += case.ops.len() as u64;
        self.events += model.events.len() as u64;
        for e in &model.events {
            if let Ev::Act { tid, pc, st, .. } = e {
                let act = if *tid == 0 {
                    case.ops[*pc]
                } else {
                    case.progs[model.prog_of(*tid).unwrap()].acts[*pc]
                };
                let mut st = if *st > 0 {
                    "user code".to_string()
                } else {
                    status_name(*st)
                };
                if let Ev::Act { val, st: OK, .. } = e {
                    match act {
                        Act::RunWd(..) if *val != 0 => st.push_str(" (interrupted)"),
                        Act::SetAtomic(false) if *val != 0 => st.push_str(" (was true)"),
                        _ => {}
                    }
                }
                let name = format!("{}{}", if *tid == 0 { "main " } else { "" }, act_name(&act));
                *self.outcomes.entry((name, st)).or_default() += 1;
            }
        }
    }
}

/// Bumped by every check (a watchdog can tell progress from a hang).
pub static HEARTBEAT: AtomicU64 = AtomicU64::new(0);

/// Runs `case` against both; Err on the first difference.
pub fn check(case: &Case) -> Result<(), Box<Failure>> {
    HEARTBEAT.fetch_add(1, Ordering::Relaxed);
    let mut model = Model::new(case);
    let mut real = Real::start(case);
    let mut seen = 0;
    let fail =
        |model: &Model, real: Real, kind, step, detail: String, snaps: Option<(Snap, Snap)>| {
            let real_events = real.all_events();
            let (model_snap, real_snap) = match snaps {
                Some((m, r)) => (Some(m), Some(r)),
                None => (None, None),
            };
            let teardown = real.finish();
            let detail = match teardown {
                Err(e) if kind != Kind::Teardown => {
                    format!("{detail}\n(teardown also reported: {e})")
                }
                _ => detail,
            };
            Err(Box::new(Failure {
                kind,
                step,
                detail,
                model_events: model.events.clone(),
                real_events,
                model_snap,
                real_snap,
                model_progs: (0..model.tasklet_count().max(MAX_TASKLETS + 1))
                    .map(|t| model.prog_of(t))
                    .collect(),
            }))
        };
    for i in 0..case.ops.len() {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| model.step(i))) {
            return fail(&model, real, Kind::ModelPanic, i, panic_msg(p), None);
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| real.step(i))) {
            return fail(&model, real, Kind::RealPanic, i, panic_msg(p), None);
        }
        let re = real.new_events();
        let me = &model.events[seen..];
        seen = model.events.len();
        let problems = real.problems();
        if !problems.is_empty() {
            return fail(&model, real, Kind::Invariant, i, problems.join("; "), None);
        }
        if me != re.as_slice() {
            let k = me
                .iter()
                .zip(re.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(me.len().min(re.len()));
            return fail(
                &model,
                real,
                Kind::Events,
                i,
                format!("event {} of this step differs", k + 1),
                None,
            );
        }
        let ms = model.snapshot();
        let rs = real.snapshot();
        if ms != rs {
            let d = snap_diff(&ms, &rs);
            return fail(&model, real, Kind::State, i, d, Some((ms, rs)));
        }
    }
    match real.finish() {
        Ok(()) => Ok(()),
        Err(e) => Err(Box::new(Failure {
            kind: Kind::Teardown,
            step: case.ops.len(),
            detail: e,
            model_events: model.events.clone(),
            real_events: Vec::new(),
            model_snap: None,
            real_snap: None,
            model_progs: (0..model.tasklet_count())
                .map(|t| model.prog_of(t))
                .collect(),
        })),
    }
}

fn snap_diff(m: &Snap, r: &Snap) -> String {
    let mut out = Vec::new();
    if m.runcount != r.runcount {
        out.push(format!(
            "runcount: model {} libslp {}",
            m.runcount, r.runcount
        ));
    }
    if m.switch_trap != r.switch_trap {
        out.push(format!(
            "switch_trap: model {} libslp {}",
            m.switch_trap, r.switch_trap
        ));
    }
    if m.main_exc != r.main_exc {
        out.push(format!(
            "main's slp_exception_data(): model {:#x} libslp {:#x}",
            m.main_exc, r.main_exc
        ));
    }
    for t in 0..m.tasklets.len().max(r.tasklets.len()) {
        let (a, b) = (m.tasklets.get(t), r.tasklets.get(t));
        if a != b {
            let name = if t == 0 {
                "main".to_string()
            } else {
                format!("t{t}")
            };
            out.push(format!("{name}: model {a:?} libslp {b:?}"));
        }
    }
    for c in 0..m.chans.len().max(r.chans.len()) {
        let (a, b) = (m.chans.get(c), r.chans.get(c));
        if a != b {
            out.push(format!("c{c}: model {a:?} libslp {b:?}"));
        }
    }
    for t in 0..m.arg_freed.len().max(r.arg_freed.len()) {
        let (a, b) = (m.arg_freed.get(t), r.arg_freed.get(t));
        if a != b {
            out.push(format!("arg_free count of t{t}: model {a:?} libslp {b:?}"));
        }
    }
    out.join("\n")
}

// ----- shrinking ----------------------------------------------------------------------------

/// Whether `case` still fails the same way.
fn still_fails(case: &Case, kind: Kind) -> bool {
    matches!(check(case), Err(f) if f.kind == kind)
}

/// Candidates: the case with ops/actions removed (chunks, then singles), programs and
/// channels removed, and options simplified.
fn candidates(c: &Case) -> Vec<Case> {
    let mut out = Vec::new();
    // Drop chunks of main ops.
    let n = c.ops.len();
    let mut size = n / 2;
    while size >= 1 {
        let mut start = 0;
        while start < n {
            let mut d = c.clone();
            d.ops.drain(start..(start + size).min(n));
            out.push(d);
            start += size;
        }
        size /= 2;
    }
    // Drop a tasklet main creates, renumbering the references to later tasklets (the model
    // tells which tid each creation made; tasklets that tasklets create shift the same way).
    let mut m = Model::new(c);
    let mut created = Vec::new();
    for i in 0..c.ops.len() {
        if catch_unwind(AssertUnwindSafe(|| m.step(i))).is_err() {
            break;
        }
    }
    for e in &m.events {
        if let Ev::Act {
            tid: 0,
            pc,
            st: OK,
            val,
            ..
        } = e
        {
            if matches!(c.ops[*pc], Act::Spawn(..)) {
                created.push((*pc, *val as usize));
            }
        }
    }
    for &(i, k) in created.iter().rev() {
        let mut d = c.clone();
        d.ops.remove(i);
        let renumber = |a: &mut Act| {
            let w = match a {
                Act::Insert(w) | Act::Remove(w) | Act::RunT(w) | Act::Switch(w) => w,
                Act::Kill(w, _) | Act::Throw(w, _, _) | Act::BlockTrap(w, _) => w,
                Act::Release(w) | Act::Query(w) => w,
                _ => return,
            };
            if let Who::T(j) = w {
                let j0 = *j as usize;
                if j0 == k {
                    *j = (MAX_TASKLETS + 1) as u8; // names nobody: skipped
                } else if j0 > k {
                    *j -= 1;
                }
            }
        };
        d.ops.iter_mut().for_each(renumber);
        d.progs
            .iter_mut()
            .for_each(|q| q.acts.iter_mut().for_each(renumber));
        out.push(d);
    }
    // Drop program actions.
    for (p, prog) in c.progs.iter().enumerate() {
        let n = prog.acts.len();
        let mut size = n / 2;
        while size >= 1 {
            let mut start = 0;
            while start < n {
                let mut d = c.clone();
                d.progs[p].acts.drain(start..(start + size).min(n));
                out.push(d);
                start += size;
            }
            size /= 2;
        }
    }
    // Drop a program nobody spawns (indices above it shift down).
    let spawned = |c: &Case, p: usize| {
        let nprog = c.progs.len();
        c.ops
            .iter()
            .chain(c.progs.iter().flat_map(|q| q.acts.iter()))
            .any(|a| matches!(a, Act::Spawn(q, _) if *q as usize % nprog == p))
    };
    if c.progs.len() > 1 {
        for p in 0..c.progs.len() {
            if spawned(c, p) {
                continue;
            }
            let mut d = c.clone();
            let nprog = c.progs.len();
            d.progs.remove(p);
            let remap = |a: &mut Act| {
                if let Act::Spawn(q, _) = a {
                    let qi = *q as usize % nprog;
                    *q = if qi > p { (qi - 1) as u8 } else { qi as u8 };
                }
            };
            d.ops.iter_mut().for_each(remap);
            d.progs
                .iter_mut()
                .for_each(|q| q.acts.iter_mut().for_each(remap));
            out.push(d);
        }
    }
    // Drop a channel nobody uses.
    if c.chans.len() > 1 {
        let nch = c.chans.len();
        let uses = |a: &Act, k: usize| {
            let mut a = *a;
            let mut hit = false;
            a.for_each_chan(|x| hit |= *x as usize % nch == k);
            hit
        };
        for k in 0..nch {
            let used = c
                .ops
                .iter()
                .chain(c.progs.iter().flat_map(|q| q.acts.iter()))
                .any(|a| uses(a, k));
            if used {
                continue;
            }
            let mut d = c.clone();
            d.chans.remove(k);
            let remap = |a: &mut Act| {
                a.for_each_chan(|x| {
                    let xi = *x as usize % nch;
                    *x = if xi > k { (xi - 1) as u8 } else { xi as u8 };
                })
            };
            d.ops.iter_mut().for_each(remap);
            d.progs
                .iter_mut()
                .for_each(|q| q.acts.iter_mut().for_each(remap));
            out.push(d);
        }
    }
    // Simplify the new calls: drop a select case, plain watchdog flags, fewer values.
    let simpler = |a: &Act| -> Vec<Act> {
        match *a {
            Act::Select(cs, n, poll) if n > 1 => (0..n as usize)
                .map(|i| {
                    let mut v: Vec<SelCase> = cs[..n as usize].to_vec();
                    v.remove(i);
                    let mut d = cs;
                    d[..v.len()].copy_from_slice(&v);
                    Act::Select(d, n - 1, poll)
                })
                .collect(),
            Act::RunWd(b, f, r) if f != 0 => [WD_SOFT, WD_TOTAL]
                .iter()
                .filter(|&&bit| f & bit != 0)
                .map(|&bit| Act::RunWd(b, f & !bit, r))
                .collect(),
            Act::SendSeq(ch, n) if n > 1 => vec![Act::SendSeq(ch, n - 1)],
            _ => Vec::new(),
        }
    };
    for (i, a) in c.ops.iter().enumerate() {
        for b in simpler(a) {
            let mut d = c.clone();
            d.ops[i] = b;
            out.push(d);
        }
    }
    for (p, prog) in c.progs.iter().enumerate() {
        for (i, a) in prog.acts.iter().enumerate() {
            for b in simpler(a) {
                let mut d = c.clone();
                d.progs[p].acts[i] = b;
                out.push(d);
            }
        }
    }
    // Simplify options.
    for p in 0..c.progs.len() {
        if c.progs[p].catch_kill {
            let mut d = c.clone();
            d.progs[p].catch_kill = false;
            out.push(d);
        }
        if c.progs[p].catch_exc {
            let mut d = c.clone();
            d.progs[p].catch_exc = false;
            out.push(d);
        }
    }
    for k in 0..c.chans.len() {
        let plain = ChanSpec {
            capacity: 0,
            preference: -1,
            schedule_all: false,
        };
        if c.chans[k] != plain {
            let mut d = c.clone();
            d.chans[k] = plain;
            out.push(d);
        }
    }
    out
}

/// Delta debugging: keeps applying the first simplification that still fails the same way.
pub fn shrink(case: &Case, f: &Failure) -> (Case, usize) {
    let mut best = case.clone();
    best.ops.truncate(f.step + 1);
    if !still_fails(&best, f.kind) {
        best = case.clone();
    }
    let mut tries = 0;
    'outer: loop {
        for d in candidates(&best) {
            tries += 1;
            if still_fails(&d, f.kind) {
                best = d;
                continue 'outer;
            }
        }
        break;
    }
    (best, tries)
}

// ----- printing -----------------------------------------------------------------------------

impl Failure {
    /// A short classification of what differs, to group failures with the same cause.
    pub fn signature(&self, case: &Case) -> String {
        let act_of = |tid: usize, pc: usize| -> String {
            let a = if tid == 0 {
                case.ops.get(pc).copied()
            } else {
                self.model_progs
                    .get(tid)
                    .copied()
                    .flatten()
                    .and_then(|p| case.progs.get(p))
                    .and_then(|p| p.acts.get(pc).copied())
            };
            a.map(|a| act_name(&a)).unwrap_or_else(|| "?".into())
        };
        match self.kind {
            Kind::Events => {
                let pair = self
                    .model_events
                    .iter()
                    .zip(self.real_events.iter())
                    .find(|(a, b)| a != b);
                match pair {
                    Some((
                        Ev::Act {
                            tid,
                            pc,
                            st,
                            val,
                            exc,
                        },
                        Ev::Act {
                            tid: t2,
                            pc: p2,
                            st: s2,
                            val: v2,
                            exc: e2,
                        },
                    )) if tid == t2 && pc == p2 => {
                        let who = if *tid == 0 { "main" } else { "a tasklet" };
                        if st != s2 {
                            format!(
                                "status of {who}'s {}: model {} libslp {}",
                                act_of(*tid, *pc),
                                status_name(*st),
                                status_name(*s2)
                            )
                        } else if val != v2 {
                            format!("value of {who}'s {}", act_of(*tid, *pc))
                        } else if exc != e2 {
                            format!("exception data after {who}'s call")
                        } else {
                            "events".into()
                        }
                    }
                    Some(_) => "order of events (who runs next)".into(),
                    None => "number of events".into(),
                }
            }
            Kind::State => {
                let (Some(m), Some(r)) = (&self.model_snap, &self.real_snap) else {
                    return "state".into();
                };
                let mut parts = Vec::new();
                if m.runcount != r.runcount {
                    parts.push("runcount");
                }
                if m.switch_trap != r.switch_trap {
                    parts.push("switch_trap");
                }
                if m.main_exc != r.main_exc {
                    parts.push("main's exception data");
                }
                if m.tasklets != r.tasklets {
                    parts.push("tasklet flags");
                }
                if m.chans != r.chans {
                    parts.push("channel state");
                }
                if m.arg_freed != r.arg_freed {
                    parts.push("arg_free counts");
                }
                format!("state: {}", parts.join(", "))
            }
            k => format!("{k:?}"),
        }
    }

    pub fn report(&self, case: &Case) -> String {
        let mut s = String::new();
        let progs = |t: usize| self.model_progs.get(t).copied().flatten();
        let kind = match self.kind {
            Kind::Events => "the events differ",
            Kind::State => "the state differs",
            Kind::Invariant => "libslp broke an invariant",
            Kind::ModelPanic => "the MODEL panicked (a bug in the test)",
            Kind::RealPanic => "the real executor panicked (a bug in the test)",
            Kind::Teardown => "tearing the case down failed",
        };
        let step = case
            .ops
            .get(self.step)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "teardown".into());
        let _ = writeln!(
            s,
            "{kind} after main step {} ({step}): {}",
            self.step, self.detail
        );
        let _ = writeln!(s, "{case}");
        let _ = writeln!(
            s,
            "events (model | libslp), '!' marks the first difference:"
        );
        let n = self.model_events.len().max(self.real_events.len());
        let mut marked = false;
        for i in 0..n {
            let a = self.model_events.get(i);
            let b = self.real_events.get(i);
            let da = a
                .map(|e| describe_event(case, e, &progs))
                .unwrap_or_else(|| "-".into());
            let db = b
                .map(|e| describe_event(case, e, &progs))
                .unwrap_or_else(|| "-".into());
            let mark = if a != b && !marked && self.kind == Kind::Events {
                marked = true;
                "!"
            } else {
                " "
            };
            if a == b {
                let _ = writeln!(s, "  {mark} {da}");
            } else {
                let _ = writeln!(s, "  {mark} {da:<60} | {db}");
            }
        }
        if let (Some(m), Some(r)) = (&self.model_snap, &self.real_snap) {
            let _ = writeln!(s, "state after the step:\n{}", snap_diff(m, r));
        }
        s
    }
}
