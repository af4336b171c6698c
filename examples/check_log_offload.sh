#!/usr/bin/env bash
# check_log_offload.sh PROGRAM - checks examples/log_offload.c: no log line is lost, reordered
# or changed by handing the lines to the logging thread.
#
# Run by CTest (see examples/CMakeLists.txt). For several sizes - no steps at all, one step,
# fewer steps than the channel holds, more than it holds (so that main may find it full and
# block) - it runs the program into a fresh directory and checks that it exits 0, that
# log_sync.txt (written with fwrite + fflush on the main thread) has exactly STEPS lines
# "step <n> fnv1a64 <hash>" with n = 0, 1, 2, ... in order, that log_offload.txt (written by
# the logger thread) is byte for byte the same file, and that the program says its logger
# wrote every line. The first lines' hashes are checked against known values. The timings
# and the ratio are printed by the program but never checked: they depend on the machine.
# A directory that does not exist must give exit status 1, not a hang or a crash.
set -euo pipefail

prog=${1:?usage: check_log_offload.sh PROGRAM}
work=$(mktemp -d "${TMPDIR:-/tmp}/log_offload_check.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "check_log_offload: FAILED: $*" >&2
    exit 1
}

check_run() {
    local steps=$1 run=$2
    local dir=$work/out-$steps-$run
    mkdir -p "$dir"
    local rc=0
    "$prog" "$steps" "$dir" > "$dir/stdout" 2> "$dir/stderr" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$dir/stdout" "$dir/stderr" >&2
        fail "$steps steps (run $run): exit status $rc"
    fi
    [ -s "$dir/stderr" ] && { cat "$dir/stderr" >&2; fail "$steps steps (run $run): unexpected stderr"; }
    for f in log_sync.txt log_offload.txt; do
        [ -f "$dir/$f" ] || fail "$steps steps (run $run): $f missing"
    done
    local lines
    lines=$(wc -l < "$dir/log_sync.txt")
    [ "$lines" -eq "$steps" ] || fail "$steps steps (run $run): log_sync.txt has $lines lines"
    # Every line well formed, numbered 0, 1, 2, ... in order.
    awk '{ if ($0 !~ /^step [0-9]+ fnv1a64 [0-9a-f]+$/ || length($2) != 8 || length($4) != 16 || $2 + 0 != NR - 1) {
               printf "line %d: %s\n", NR, $0; exit 1 } }' "$dir/log_sync.txt" ||
        fail "$steps steps (run $run): log_sync.txt is not the numbered lines in order"
    if ! cmp "$dir/log_sync.txt" "$dir/log_offload.txt"; then
        diff "$dir/log_sync.txt" "$dir/log_offload.txt" | head -20 >&2 || true
        fail "$steps steps (run $run): log_offload.txt differs from log_sync.txt"
    fi
    grep -q "^logger: $steps lines in " "$dir/stdout" ||
        { cat "$dir/stdout" >&2; fail "$steps steps (run $run): the logger's count is not $steps"; }
    grep -q '^ratio sync / offload' "$dir/stdout" ||
        { cat "$dir/stdout" >&2; fail "$steps steps (run $run): no ratio printed"; }
    # The first hashes do not depend on the number of steps.
    local known=('step 00000000 fnv1a64 e17322a7c9547275'
                 'step 00000001 fnv1a64 afbbf282012621b6'
                 'step 00000002 fnv1a64 3d2524d66c276dfc')
    local want
    want=$(printf '%s\n' "${known[@]:0:$((steps < 3 ? steps : 3))}")
    [ "$(head -n 3 "$dir/log_offload.txt")" = "$want" ] ||
        fail "$steps steps (run $run): the first lines are not the known ones"
    grep -E '^(ratio|\(B\) offload, main loop|logger)' "$dir/stdout" | sed 's/^/    /'
}

for steps in 0 1 3 300 1500; do
    for run in 1 2; do
        check_run "$steps" "$run"
    done
    echo "check_log_offload: $steps steps: 2 runs, both logs complete, in order and identical"
done

# ---- a directory that does not exist: an error, not a hang or a crash -------------------------
rc=0
"$prog" 10 "$work/does-not-exist" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "missing directory: exit status $rc, expected 1"
echo "check_log_offload: missing directory: exit status 1, as expected"

# ---- a bad step count: a usage error ---------------------------------------------------------
rc=0
"$prog" ten "$work" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "bad step count: exit status $rc, expected 1"
echo "check_log_offload: bad step count: exit status 1, as expected"
