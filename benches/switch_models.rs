//! What a tasklet-to-tasklet switch costs in the two dispatch models, measured without the
//! rest of libslp (issue "Performance": measure a direct switch against today's model).
//!
//! 1. **via main** (libslp today): every tasklet is a corosensei coroutine resumed by the
//!    scheduler's loop on the main stack. Tasklet A giving the CPU to B is A's suspend (back
//!    to the loop) plus the loop's resume of B: two stack switches.
//! 2. **direct**: a symmetric switch, A's registers saved on A's stack and B's restored from
//!    B's, one stack switch. This bench's switch is the bare minimum (callee-saved registers and
//!    the stack pointer, x86-64 System V; no MXCSR/x87 control word, no sanitizer or valgrind
//!    hooks, no unwinding across it), so it is a floor, not a design.
//!
//! In both, the switch is made from a non-inlined function, as a scheduler's is (tasklet code
//! calls slp_schedule), which is what makes the CPU mispredict the return after each stack
//! switch. The numbers are ns per tasklet-to-tasklet switch, the median of 5 runs after a
//! warm-up. Run with `cargo bench --bench switch_models`; x86-64 only (elsewhere it says so).

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use std::hint::black_box;
    use std::time::Instant;

    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine, Yielder};

    // slp_bench_swap(save: *mut *mut u8 [rdi], to: *mut u8 [rsi]): pushes the callee-saved
    // registers, stores the stack pointer into *save, loads `to` and pops the registers saved
    // there, then returns on the other stack.
    std::arch::global_asm!(
        ".text",
        ".p2align 4",
        ".globl slp_bench_swap",
        ".hidden slp_bench_swap",
        ".type slp_bench_swap, @function",
        "slp_bench_swap:",
        "push rbp",
        "push rbx",
        "push r12",
        "push r13",
        "push r14",
        "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15",
        "pop r14",
        "pop r13",
        "pop r12",
        "pop rbx",
        "pop rbp",
        "ret",
        ".size slp_bench_swap, . - slp_bench_swap",
    );
    extern "C" {
        fn slp_bench_swap(save: *mut *mut u8, to: *mut u8);
    }

    // The two contexts' saved stack pointers (one thread only).
    static mut A_SP: *mut u8 = std::ptr::null_mut();
    static mut B_SP: *mut u8 = std::ptr::null_mut();

    #[inline(never)]
    fn switch_a_to_b() {
        // SAFETY: B_SP is B's saved stack pointer (a frame slp_bench_swap pushed, or B's
        // initial frame); A's is stored in A_SP before the switch. One thread only.
        unsafe { slp_bench_swap(std::ptr::addr_of_mut!(A_SP), B_SP) };
    }

    #[inline(never)]
    fn switch_b_to_a() {
        // SAFETY: as above, the other way round.
        unsafe { slp_bench_swap(std::ptr::addr_of_mut!(B_SP), A_SP) };
    }

    /// B's body: forever hands the CPU back to A.
    extern "C" fn b_entry() -> ! {
        loop {
            switch_b_to_a();
        }
    }

    fn bench_direct(n: u64) -> f64 {
        // B's stack: 64 KiB, its initial frame laid out as slp_bench_swap's pops expect.
        let mut stack = vec![0u8; 64 * 1024];
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        // SAFETY: writes inside `stack`. The return address sits at top - 16, so that after
        // the `ret` rsp is 8 mod 16, as at any function's entry; six zero registers below.
        let sp = unsafe {
            let ret = (top - 16) as *mut usize;
            *ret = b_entry as *const () as usize;
            let sp = ret.sub(6);
            for i in 0..6 {
                *sp.add(i) = 0;
            }
            sp as *mut u8
        };
        // SAFETY: one thread; B is not running.
        unsafe { B_SP = sp };
        let t0 = Instant::now();
        for _ in 0..n {
            switch_a_to_b(); // A -> B, and B switches straight back: two switches
        }
        let el = t0.elapsed().as_nanos() as f64;
        // B is left suspended forever on `stack` (it owns nothing), then the stack is freed.
        drop(stack);
        el / 2.0
    }

    #[inline(never)]
    fn suspend_in_call(y: &Yielder<(), ()>) {
        y.suspend(());
    }

    fn bench_via_main(n: u64) -> f64 {
        let body = |y: &Yielder<(), ()>, ()| loop {
            suspend_in_call(y);
        };
        let mut a = Coroutine::with_stack(DefaultStack::new(256 * 1024).expect("stack"), body);
        let mut b = Coroutine::with_stack(DefaultStack::new(256 * 1024).expect("stack"), body);
        let t0 = Instant::now();
        for _ in 0..n {
            // main -> A, A -> main -> B, B -> main: two tasklet-to-tasklet switches' worth
            black_box(a.resume(()));
            black_box(b.resume(()));
        }
        t0.elapsed().as_nanos() as f64 / 2.0
    }

    fn measure(n: u64, f: fn(u64) -> f64) -> f64 {
        f(n / 10 + 1);
        let mut v: Vec<f64> = (0..5).map(|_| f(n) / n as f64).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[2]
    }

    pub fn main() {
        let n = std::env::args()
            .skip(1)
            .find(|a| !a.starts_with("--"))
            .and_then(|a| a.parse().ok())
            .unwrap_or(10_000_000u64);
        let mut via = Vec::new();
        let mut direct = Vec::new();
        for _ in 0..3 {
            // interleaved, so that drift hits both alike
            via.push(measure(n, bench_via_main));
            direct.push(measure(n, bench_direct));
        }
        via.sort_by(|a, b| a.partial_cmp(b).unwrap());
        direct.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("tasklet-to-tasklet switch, ns (median of 3 x median of 5, {n} iterations)");
        println!("via main (corosensei suspend + resume)   {:8.2}", via[1]);
        println!("direct (one symmetric switch)            {:8.2}", direct[1]);
        println!("ratio via main / direct                  {:8.2}", via[1] / direct[1]);
    }
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    x86_64::main();
    #[cfg(not(target_arch = "x86_64"))]
    println!("switch_models: x86-64 only");
}
