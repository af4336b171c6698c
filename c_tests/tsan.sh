#!/bin/sh
# c_tests/tsan.sh - the cross-thread C tests under ThreadSanitizer, library included.
#
#   c_tests/tsan.sh [name...]      default: threads xthread stress
#
# The library is rebuilt with `cargo +nightly -Zsanitizer=thread` into target/tsan (std stays
# the prebuilt, uninstrumented one: -Cunsafe-allow-abi-mismatch=sanitizer), so every access
# libslp makes (channels, run queues, inboxes, deadlock accounting, tasklet state read from
# other threads) is checked, and its parking_lot locks and atomics are understood. The C tests
# are compiled with gcc -fsanitize=thread and linked with the TSan runtime that ships with
# that Rust toolchain (one runtime for both). c_tests/tsan.supp lists the only suppression
# (frees ordered by an acquire fence, which TSan does not model). Tasklet stack switches are
# not annotated for TSan; they stay within one OS thread, which is all the race detector
# needs (only its reported call stacks can look odd).
# SLP_STRESS_VALUES (default 20000 here) sizes test_stress. Exits non-zero on any report or
# failed check.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
out="${OUT:-$root/target/tsan}"
toolchain="${SLP_TSAN_TOOLCHAIN:-nightly}"
names="${*:-threads xthread stress}"
triple=x86_64-unknown-linux-gnu
mkdir -p "$out/bin"

sysroot=$(rustc "+$toolchain" --print sysroot) || { echo "tsan.sh: no $toolchain toolchain (rustup toolchain install $toolchain)" >&2; exit 2; }
rt="$sysroot/lib/rustlib/$triple/lib/librustc-${toolchain%%-*}_rt.tsan.a"
[ -e "$rt" ] || rt=$(ls "$sysroot/lib/rustlib/$triple/lib/"librustc-*_rt.tsan.a 2>/dev/null | head -n 1)
[ -n "$rt" ] && [ -e "$rt" ] || { echo "tsan.sh: the $toolchain toolchain has no TSan runtime" >&2; exit 2; }

echo "tsan.sh: building libslp with -Zsanitizer=thread ($(rustc "+$toolchain" --version))"
# --target keeps build.rs (cbindgen) uninstrumented.
RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer --cfg slp_no_block_cache" \
    cargo "+$toolchain" build --release --quiet --target "$triple" --target-dir "$out/cargo" \
    --manifest-path "$root/Cargo.toml" || exit 1
lib="$out/cargo/$triple/release"
[ -e "$lib/libslp.so.0" ] || ln -sf libslp.so "$lib/libslp.so.0"

failed=""
for n in $names; do
    src="$root/c_tests/test_$n.c"
    gcc -std=c11 -Wall -Wextra -g -O1 -fsanitize=thread -I"$root/include" -I"$root/c_tests" -c "$src" \
        -o "$out/bin/test_$n.o" &&
        gcc "$out/bin/test_$n.o" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive -L"$lib" -lslp \
            -lpthread -ldl -lm -lrt -lstdc++ -o "$out/bin/test_$n" || { failed="$failed $n(build)"; continue; }
    echo "=== test_$n (ThreadSanitizer)"
    LD_LIBRARY_PATH="$lib" SLP_TEST_SLOW=1 SLP_TEST_TIMEOUT="${SLP_TEST_TIMEOUT:-300}" \
        SLP_STRESS_VALUES="${SLP_STRESS_VALUES:-20000}" \
        TSAN_OPTIONS="suppressions=$root/c_tests/tsan.supp exitcode=66 halt_on_error=0 history_size=4 ${TSAN_OPTIONS:-}" \
        "$out/bin/test_$n" > "$out/bin/test_$n.log" 2>&1
    rc=$?
    grep -E '^FAIL|^SUMMARY: ThreadSanitizer' "$out/bin/test_$n.log" | sort | uniq -c
    grep -E '^ThreadSanitizer: reported' "$out/bin/test_$n.log"
    grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/bin/test_$n.log" | tail -n 1
    [ $rc -eq 0 ] || failed="$failed $n"
done
if [ -n "$failed" ]; then
    echo "FAILED under ThreadSanitizer:$failed (logs in $out/bin)"
    exit 1
fi
echo "all ThreadSanitizer runs clean"
