#!/bin/sh
# c_tests/asan.sh - the C tests under AddressSanitizer + UndefinedBehaviorSanitizer, library
# included.
#
#   c_tests/asan.sh [name...]      default: every C test program (c_tests/test_*.c, *.cpp)
#
# The library is rebuilt with `cargo +nightly -Zsanitizer=address --features sanitizer` into
# target/asan (std stays the prebuilt, uninstrumented one: -Cunsafe-allow-abi-mismatch=
# sanitizer; --target keeps build.rs uninstrumented), so every load and store libslp makes is
# checked. It is also built with -Cdebug-assertions=on, the Rust side's counterpart of UBSan:
# integer overflow checks, debug_assert!s, and the standard library's checks of unsafe
# preconditions (alignment, null, overlapping copies, slice bounds) in the code compiled here;
# a failed one panics, which the C API turns into SLP_E_PANIC ("panicked at" in the log
# fails the run).
# The `sanitizer` feature makes corosensei announce each tasklet stack switch to ASan
# (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber) and unpoison a stack
# before it is reused, so ASan always knows which stack is current: tasklet frames on the
# mmap'd stacks get redzones and use-after-return checks like any thread's frames.
# The C tests are compiled with gcc -fsanitize=address,undefined -fno-sanitize-recover=all
# and linked with the ASan runtime that ships with that Rust toolchain (it carries the UBSan
# handlers too): ONE runtime, of the same LLVM as the library's instrumentation. -rdynamic
# exports its interceptors and entry points to libslp.so.
#
# Options (each report ends the program with a non-zero status; no suppressions):
#   detect_leaks=1                   LeakSanitizer at exit.
#   detect_stack_use_after_return=1  frames live on ASan's "fake stacks" and are poisoned on
#                                    return: a tasklet writing through a pointer into a frame
#                                    that has returned (on any stack) is reported. Works with
#                                    the fiber annotations (each tasklet gets its own fake
#                                    stack). Cost: corosensei 0.3.4 never frees the fake stack
#                                    of a tasklet that ended (its last
#                                    __sanitizer_start_switch_fiber passes a non-NULL
#                                    fake_stack_save), so every tasklet that ran keeps ~45 KiB
#                                    of RSS and ~0.8 MiB of address space until exit.
#   max_uar_stack_size_log=16        64 KiB fake stacks instead of one sized for a 256 KiB
#                                    stack (~5.7 MiB of address space each): test_scheduler's
#                                    10,000 tasklets otherwise push the process past the size
#                                    at which ASan's own forks (symbolizer) fail with ENOMEM.
#   handle_segv=0 for test_overflow only: it checks that a fault which is not a tasklet stack
#                                    overflow still kills the process with SIGSEGV once
#                                    libslp's handler passed it on to the handler installed
#                                    before it; under ASan that would be ASan's own handler
#                                    (report "SEGV on unknown address", exit 66). The
#                                    overflow report itself is checked either way.
#   UBSAN print_stacktrace=1:halt_on_error=1
# SLP_TEST_SLOW=1 scales the thread tests' waits and watchdogs (as under TSan and valgrind):
# their 20 s watchdogs are too tight for an instrumented build on a busy 2-CPU machine.
# SLP_STRESS_VALUES (default 20000 here) sizes test_stress. ASAN_OPTIONS / UBSAN_OPTIONS from
# the environment are appended (they win). Exits non-zero on any report or failed check.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out="${OUT:-$root/target/asan}"
toolchain="${SLP_ASAN_TOOLCHAIN:-nightly}"
names="$*"
if [ -z "$names" ]; then
    for f in "$root"/c_tests/test_*.c "$root"/c_tests/test_*.cpp; do
        [ -e "$f" ] || continue
        n=$(basename "$f"); n=${n#test_}; n=${n%.c}; n=${n%.cpp}
        names="$names $n"
    done
fi
triple=x86_64-unknown-linux-gnu
mkdir -p "$out/bin"

sysroot=$(rustc "+$toolchain" --print sysroot) || { echo "asan.sh: no $toolchain toolchain (rustup toolchain install $toolchain)" >&2; exit 2; }
rt="$sysroot/lib/rustlib/$triple/lib/librustc-${toolchain%%-*}_rt.asan.a"
[ -e "$rt" ] || rt=$(ls "$sysroot/lib/rustlib/$triple/lib/"librustc-*_rt.asan.a 2>/dev/null | head -n 1)
[ -n "$rt" ] && [ -e "$rt" ] || { echo "asan.sh: the $toolchain toolchain has no ASan runtime" >&2; exit 2; }

echo "asan.sh: building libslp with -Zsanitizer=address -Cdebug-assertions=on ($(rustc "+$toolchain" --version))"
# --target keeps build.rs (cbindgen) uninstrumented.
RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer --cfg slp_no_block_cache -Cdebug-assertions=on" \
    cargo "+$toolchain" build --release --quiet --features sanitizer --target "$triple" \
    --target-dir "$out/cargo" --manifest-path "$root/Cargo.toml" || exit 1
lib="$out/cargo/$triple/release"
[ -e "$lib/libslp.so.0" ] || ln -sf libslp.so "$lib/libslp.so.0"

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# The Rust toolchain's runtime has no C++ part of UBSan (__ubsan_handle_dynamic_type_cache_miss),
# so C++ goes without the vptr check (the other UBSan checks stay).
sanxx="$san -fno-sanitize=vptr"
failed=""
for n in $names; do
    src="$root/c_tests/test_$n.c"
    if [ -e "$src" ]; then
        gcc -std=c11 -Wall -Wextra -g -O1 $san -I"$root/include" -I"$root/c_tests" -c "$src" \
            -o "$out/bin/test_$n.o" || { failed="$failed $n(build)"; continue; }
    else
        src="$root/c_tests/test_$n.cpp"
        g++ -std=c++17 -Wall -Wextra -g -O1 $sanxx -I"$root/include" -I"$root/c_tests" -c "$src" \
            -o "$out/bin/test_$n.o" || { failed="$failed $n(build)"; continue; }
    fi
    g++ "$out/bin/test_$n.o" -rdynamic -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
        -L"$lib" -lslp -lpthread -ldl -lm -lrt -o "$out/bin/test_$n" || { failed="$failed $n(build)"; continue; }
    asan_opts="detect_leaks=1:detect_stack_use_after_return=1:max_uar_stack_size_log=16:exitcode=66"
    [ "$n" = overflow ] && asan_opts="$asan_opts:handle_segv=0"
    echo "=== test_$n (AddressSanitizer + UBSan)"
    LD_LIBRARY_PATH="$lib" SLP_TEST_SLOW=1 SLP_TEST_TIMEOUT="${SLP_TEST_TIMEOUT:-300}" \
        SLP_STRESS_VALUES="${SLP_STRESS_VALUES:-20000}" \
        ASAN_OPTIONS="$asan_opts:${ASAN_OPTIONS:-}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}" \
        "$out/bin/test_$n" > "$out/bin/test_$n.log" 2>&1
    rc=$?
    grep -E '^FAIL|^==[0-9]+==ERROR|^SUMMARY: |runtime error:|panicked at' "$out/bin/test_$n.log"
    grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/bin/test_$n.log" | tail -n 1
    if [ $rc -ne 0 ]; then
        echo "test_$n: exit status $rc"; failed="$failed $n"
    elif grep -qE '^==[0-9]+==ERROR: |runtime error:|panicked at' "$out/bin/test_$n.log"; then
        echo "test_$n: a sanitizer report or a Rust panic in the log"; failed="$failed $n"
    fi
done
if [ -n "$failed" ]; then
    echo "FAILED under AddressSanitizer + UBSan:$failed (logs in $out/bin)"
    exit 1
fi
echo "all AddressSanitizer + UBSan runs clean"
