//! Stack-overflow reports (SPEC §8): a fault in the guard page of the running tasklet's stack
//! prints "libslp: stack overflow in tasklet '<name>' (stack size N bytes)" to stderr and
//! aborts (SIGABRT) instead of dying with a bare SIGSEGV. Any other fault goes to the handler
//! that was installed before libslp's (the host's, or the default action).
//!
//! The handler runs on an alternate signal stack (a fault from stack overflow has no stack left
//! to run on): libslp gives each thread that creates a scheduler one, unless the host already
//! installed its own.

use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crate::stack::page_size;

/// Size of the alternate signal stack libslp installs per thread.
const ALT_STACK_SIZE: usize = 64 * 1024;
/// Faults this far below the guard page are still reported as overflows (a large frame can
/// step over the guard page).
const BELOW_GUARD_SLACK: usize = 64 * 1024;

static INSTALLED: Once = Once::new();
static HAVE_PREV: AtomicBool = AtomicBool::new(false);
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

/// Installs the process-wide SIGSEGV/SIGBUS handler (once).
pub fn install_handler() {
    INSTALLED.call_once(|| unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        // SAFETY: written once here, before the handler can run, and only read afterwards.
        let ok_segv = libc::sigaction(libc::SIGSEGV, &sa, ptr::addr_of_mut!(PREV_SEGV).cast()) == 0;
        let ok_bus = libc::sigaction(libc::SIGBUS, &sa, ptr::addr_of_mut!(PREV_BUS).cast()) == 0;
        HAVE_PREV.store(ok_segv && ok_bus, Ordering::Release);
    });
}

/// The calling thread's alternate signal stack, if libslp installed it.
pub struct AltStack {
    mem: *mut libc::c_void,
}

impl AltStack {
    /// Gives the calling thread an alternate signal stack unless it has one already.
    pub fn install() -> Option<AltStack> {
        unsafe {
            let mut old: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(ptr::null(), &mut old) != 0 || old.ss_flags & libc::SS_DISABLE == 0 {
                return None; // the host has one (or we cannot tell): keep it
            }
            let len = ALT_STACK_SIZE + page_size();
            let mem = libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if mem == libc::MAP_FAILED {
                return None;
            }
            let ss = libc::stack_t {
                ss_sp: mem,
                ss_flags: 0,
                ss_size: len,
            };
            if libc::sigaltstack(&ss, ptr::null_mut()) != 0 {
                libc::munmap(mem, len);
                return None;
            }
            Some(AltStack { mem })
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        unsafe {
            let ss = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            libc::sigaltstack(&ss, ptr::null_mut());
            libc::munmap(self.mem, ALT_STACK_SIZE + page_size());
        }
    }
}

/// A fixed buffer for composing the report without allocating (the handler must be
/// async-signal-safe).
struct Msg {
    buf: [u8; 512],
    len: usize,
}

impl Msg {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
    fn push_num(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    unsafe {
        let addr = (*info).si_addr() as usize;
        if let Some((lo, hi, t)) = crate::sched::running_guard_range() {
            if addr >= lo.saturating_sub(BELOW_GUARD_SLACK) && addr < hi {
                let mut m = Msg { buf: [0; 512], len: 0 };
                m.push(b"libslp: stack overflow in ");
                match &(*t).name {
                    Some(n) if !n.as_bytes().is_empty() => {
                        m.push(b"tasklet '");
                        m.push(n.as_bytes());
                        m.push(b"'");
                    }
                    _ => m.push(b"an unnamed tasklet"),
                }
                m.push(b" (stack size ");
                m.push_num((*t).stack_size);
                m.push(b" bytes; raise it with slp_tasklet_options.stack_size or slp_set_default_stack_size)\n");
                libc::write(2, m.buf.as_ptr().cast(), m.len);
                libc::abort();
            }
        }
        chain(sig, info, ctx);
    }
}

/// Hands a fault that is not a tasklet stack overflow to the previous handler.
///
/// # Safety
/// Called from the fault handler with the arguments the kernel passed it.
unsafe fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let prev: *const libc::sigaction = if sig == libc::SIGBUS {
        ptr::addr_of!(PREV_BUS).cast()
    } else {
        ptr::addr_of!(PREV_SEGV).cast()
    };
    let h = if HAVE_PREV.load(Ordering::Acquire) { (*prev).sa_sigaction } else { libc::SIG_DFL };
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action; returning re-runs the faulting instruction, which then
        // kills the process the usual way (core dump included).
        libc::signal(sig, libc::SIG_DFL);
        return;
    }
    if (*prev).sa_flags & libc::SA_SIGINFO != 0 {
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(h);
        f(sig, info, ctx);
    } else {
        let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
        f(sig);
    }
}
