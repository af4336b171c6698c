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
