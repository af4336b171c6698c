//! x86-64: the registers a debugger needs to unwind a suspended tasklet.

/// The instruction pointer, stack pointer and frame pointer at the call site (inlined into
/// the switch path, so they describe the frame that suspends). Three register reads.
#[inline(always)]
pub(crate) fn current_context() -> [usize; 3] {
    let (pc, sp, fp): (usize, usize, usize);
    // SAFETY: reads registers only (no memory, no stack, flags preserved). The captured pc is
    // the next instruction and sp the stack pointer at it, so a debugger can unwind from this
    // point with the function's CFI.
    unsafe {
        std::arch::asm!(
            "lea {pc}, [rip]",
            "mov {sp}, rsp",
            "mov {fp}, rbp",
            pc = out(reg) pc,
            sp = out(reg) sp,
            fp = out(reg) fp,
            options(nomem, nostack, preserves_flags)
        );
    }
    [pc, sp, fp]
}

// The calling thread's scheduler pointer, in initial-exec TLS.
//
// Rust's `thread_local!` compiles, in a shared library, to the general-dynamic model: every
// access calls `__tls_get_addr` (about 9% of a tasklet switch in libslp.so). This variable is
// declared in assembly so that it can be read in the initial-exec model: one load of its
// offset from the GOT and one %fs-relative load, inlined. The shared library then uses
// static TLS (DF_STATIC_TLS): 8 bytes of glibc's surplus, which covers libraries loaded with
// dlopen after start-up too. Linked statically into a program, the linker relaxes it further
// (local-exec). Hidden: not exported.
std::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl slp_tls_sched",
    ".hidden slp_tls_sched",
    ".type slp_tls_sched, @object",
    ".size slp_tls_sched, 8",
    "slp_tls_sched:",
    ".zero 8",
    ".popsection",
);

/// The calling thread's scheduler pointer (null before its first use and after teardown).
#[inline(always)]
pub(crate) fn tls_sched() -> *mut u8 {
    let p: *mut u8;
    // SAFETY: reads this thread's own 8-byte TLS slot (always present: static TLS is set up
    // before any code of the thread runs); no stack, flags preserved.
    unsafe {
        std::arch::asm!(
            "mov {p}, qword ptr [rip + slp_tls_sched@GOTTPOFF]",
            "mov {p}, qword ptr fs:[{p}]",
            p = out(reg) p,
            options(nostack, readonly, preserves_flags)
        );
    }
    p
}

/// Sets the calling thread's scheduler pointer.
#[inline(always)]
pub(crate) fn set_tls_sched(v: *mut u8) {
    // SAFETY: writes this thread's own TLS slot; nothing else aliases it.
    unsafe {
        std::arch::asm!(
            "mov {o}, qword ptr [rip + slp_tls_sched@GOTTPOFF]",
            "mov qword ptr fs:[{o}], {v}",
            o = out(reg) _,
            v = in(reg) v,
            options(nostack, preserves_flags)
        );
    }
}

/// A valgrind client request (the documented magic instruction sequence, which does nothing
/// outside valgrind: the result is then `default`).
#[inline(always)]
fn valgrind_request(default: usize, args: &[usize; 6]) -> usize {
    let r: usize;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi unchanged; the flags do
    // change) and xchg rbx, rbx changes nothing; under valgrind the sequence reads `args` and
    // writes rdx.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") default => r,
            inout("rdi") 0usize => _,
            in("rax") args.as_ptr(),
            options(nostack) // the rotations change CF and OF
        );
    }
    r
}

/// Marks `len` bytes at `addr` inaccessible for valgrind's memcheck (no-op otherwise).
#[inline(always)]
pub(crate) fn valgrind_mem_noaccess(addr: usize, len: usize) {
    valgrind_request(0, &[0x4D43_0000, addr, len, 0, 0, 0]);
}

/// Marks `len` bytes at `addr` writable but undefined for memcheck (no-op otherwise).
#[inline(always)]
pub(crate) fn valgrind_mem_undefined(addr: usize, len: usize) {
    valgrind_request(0, &[0x4D43_0001, addr, len, 0, 0, 0]);
}
