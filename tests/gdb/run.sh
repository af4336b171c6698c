#!/bin/sh
# tests/gdb/run.sh - checks tools/gdb/slp.py: gdb (batch mode) debugs tests/gdb/target.c,
# lists its tasklets (`slp tasklets`), prints the backtraces of suspended ones (`slp bt`) on
# two threads, checks the refusals and that every register comes back, and continues the
# program to its normal end.
#
#   tests/gdb/run.sh [TARGET]
#
# TARGET: the target program already built (CTest passes the one CMake built); without it,
# target.c is built here with -g -O0 against target/release/libslp.so (run
# `cargo build --release` first). Skips (exit 0) when gdb is not installed. The gdb session's
# output is kept in $OUT/gdb.log (OUT defaults to target/gdb_test, or the directory of TARGET).
set -u
if ! command -v gdb >/dev/null 2>&1; then
    echo "SKIP: gdb is not installed, tools/gdb/slp.py is not tested (apt-get install gdb)"
    exit 0
fi
root=$(cd "$(dirname "$0")/../.." && pwd)

fail() {
    echo "FAIL: $*" >&2
    [ -n "${log:-}" ] && [ -f "$log" ] && echo "(gdb session log: $log)" >&2
    exit 1
}

if [ $# -ge 1 ]; then
    target=$1
    [ -x "$target" ] || fail "$target is not an executable"
    out=${OUT:-$(dirname "$target")}
else
    lib="$root/target/release"
    [ -e "$lib/libslp.so" ] || fail "$lib/libslp.so missing: run 'cargo build --release' first"
    # The library's SONAME is libslp.so.0; cargo only writes libslp.so.
    [ -e "$lib/libslp.so.0" ] || ln -sf libslp.so "$lib/libslp.so.0"
    out=${OUT:-$root/target/gdb_test}
    mkdir -p "$out"
    target="$out/gdb_target"
    ${CC:-cc} -std=c11 -Wall -Wextra -g -O0 -I"$root/include" "$root/tests/gdb/target.c" \
        -L"$lib" -Wl,-rpath,"$lib" -lslp -lpthread -o "$target" || fail "could not build target.c"
fi
mkdir -p "$out"
log="$out/gdb.log"

gdb -batch -ex 'python import sys; print("python", sys.version.split()[0])' >/dev/null 2>&1 ||
    fail "this gdb has no Python support; tools/gdb/slp.py needs it"

echo "gdb: $(gdb --version | head -n 1); target: $target"
timeout=${SLP_GDB_TIMEOUT:-300}
if command -v timeout >/dev/null 2>&1; then to="timeout $timeout"; else to=""; fi
# -nx: no ~/.gdbinit; the script is sourced the way a user would.
$to gdb -batch -nx -ex "source $root/tools/gdb/slp.py" -x "$root/tests/gdb/commands.gdb" \
    "$target" >"$log" 2>&1
rc=$?
cat "$log"
echo "---- gdb exited with status $rc"

grep -q 'ptrace: Operation not permitted' "$log" &&
    fail "gdb may not trace processes here (ptrace: Operation not permitted; container without CAP_SYS_PTRACE, or kernel.yama.ptrace_scope)"
[ $rc -eq 0 ] || fail "gdb exited with status $rc (a command failed, or the session timed out after ${timeout}s)"

# The checks made inside the session.
if grep -q '^CHECK FAILED' "$log"; then
    grep '^CHECK FAILED' "$log" >&2
    fail "checks failed in the gdb session"
fi
grep -q '^CHECKS: [0-9]* ok, 0 failed$' "$log" || fail "the gdb session did not reach its last check"
# The same essentials, checked here on the raw output too.
for s in "receiver  blocked receiving on channel 0x" "parked    paused" "yielder   runnable" \
    "w_receiver  blocked receiving on channel 0x" " in level_two (" " in level_one (" \
    " in worker_level_two (" "target: all done"; do
    grep -qF -- "$s" "$log" || fail "the output lacks \"$s\""
done
grep -qE '^\[Inferior 1 \(process [0-9]+\) exited normally\]$' "$log" ||
    fail "the program did not exit normally after the slp commands"
grep -q 'COULD NOT RESTORE' "$log" && fail "slp bt could not restore the registers"
echo "PASS: $(grep -c '^CHECK ok' "$log") checks in the gdb session, program exited normally"
exit 0
