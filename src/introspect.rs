//! Introspection in the core: the text dump of a thread's tasklets (`slp_dump`), written
//! straight into the caller's buffer without allocating, and readable by a debugger while the
//! process is stopped anywhere (it applies no pending request and never waits for a lock).

use std::fmt::{self, Write};

use crate::channel;
use crate::sched::Scheduler;
use crate::tasklet::{State, Tasklet};

/// `'name' (0x…)` or `0x…`.
struct Label(*mut Tasklet);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: dumped tasklets are live tasklets of the dumping thread.
        match unsafe { &(*self.0).name } {
            Some(n) if !n.as_bytes().is_empty() => {
                write!(f, "'{}' ({:p})", String::from_utf8_lossy(n.as_bytes()), self.0)
            }
            _ => write!(f, "{:p}", self.0),
        }
    }
}

/// One line per tasklet, after the header: running first, then the run queue in order, then
/// main when it waits, then the blocked and paused tasklets (never-started ones included).
///
/// # Safety
/// On the scheduler's own thread.
unsafe fn lines(s: &Scheduler, w: &mut dyn Write) -> Result<usize, fmt::Error> {
    let mut n = 0;
    let running = s.running();
    writeln!(w, "  * {} running", Label(running))?;
    n += 1;
    for t in s.queue.iter() {
        if t != running {
            writeln!(w, "    {} runnable", Label(t))?;
            n += 1;
        }
    }
    let main = s.main;
    if running != main && !s.queue.contains(main) {
        if (*main).is_blocked() {
            writeln!(w, "    {} {}", Label(main), channel::DescribeWait(main))?;
        } else if s.run.active() {
            writeln!(w, "    {} waiting in slp_run", Label(main))?;
        } else {
            writeln!(w, "    {} paused", Label(main))?;
        }
        n += 1;
    }
    for t in s.tasklets.iter() {
        // (A tasklet re-bound to another thread stays listed until this thread drains the
        // message that moves it.)
        if t != running && !s.queue.contains(t) && s.owns(&*t) {
            match (*t).state() {
                State::Blocked => writeln!(w, "    {} {}", Label(t), channel::DescribeWait(t))?,
                State::Runnable => writeln!(w, "    {} runnable (woken by another thread)", Label(t))?,
                State::Fresh => writeln!(w, "    {} paused (never started)", Label(t))?,
                _ => writeln!(w, "    {} paused", Label(t))?,
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Discards what it is given, counting the lines.
struct Sink;
impl Write for Sink {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// Writes the dump of `s` (or the "no scheduler" line) into `w`.
///
/// # Safety
/// On the scheduler's own thread.
pub unsafe fn dump(s: Option<&Scheduler>, w: &mut dyn Write) -> fmt::Result {
    let Some(s) = s else {
        return writeln!(w, "thread {}: no libslp scheduler on this thread", crate::sched::thread_id());
    };
    let count = lines(s, &mut Sink)?;
    writeln!(
        w,
        "thread {}: {} tasklet{}, runcount {}",
        s.shared.thread_id,
        count,
        if count == 1 { "" } else { "s" },
        s.queue.len()
    )?;
    lines(s, w).map(|_| ())
}

/// A `fmt::Write` into a C buffer of `size` bytes: keeps what fits (always NUL-terminated when
/// `size > 0`) and counts the bytes the whole text needs.
pub struct CBuf {
    buf: *mut u8,
    size: usize,
    len: usize,
}

impl CBuf {
    /// # Safety
    /// `buf` is valid for `size` bytes of writes (or null with `size == 0`).
    pub unsafe fn new(buf: *mut u8, size: usize) -> CBuf {
        CBuf { buf, size, len: 0 }
    }
    /// Bytes the whole text needs, NUL included.
    pub fn needed(&self) -> usize {
        self.len + 1
    }
    /// NUL-terminates what was kept.
    pub fn finish(&mut self) {
        if self.size > 0 {
            let at = self.len.min(self.size - 1);
            // SAFETY: `at < size`.
            unsafe { *self.buf.add(at) = 0 };
        }
    }
}

impl Write for CBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.size > 0 && self.len < self.size - 1 {
            let room = self.size - 1 - self.len;
            let n = s.len().min(room);
            // SAFETY: `len + n <= size - 1` bytes stay inside the buffer.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.buf.add(self.len), n) };
        }
        self.len += s.len();
        Ok(())
    }
}
