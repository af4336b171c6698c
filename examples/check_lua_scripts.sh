#!/usr/bin/env bash
# check_lua_scripts.sh PROGRAM - checks examples/lua_scripts.c beyond lua_scripts.expected.
#
# CTest runs it (see examples/CMakeLists.txt) next to the plain comparison with
# lua_scripts.expected. It checks that
#   1. the output for examples/scripts does not change from run to run (5 runs): nothing in it
#      may depend on timing, only on frames, the game clock and Lua's instruction counts;
#   2. scripts that try to survive a kill cannot: one that catches the kill's Lua error with
#      pcall in a loop, one that does so inside a coroutine; both are killed once they have
#      overrun their budget in 20 frames in a row, and the program ends;
#   3. a script that waits on the channel forever is killed when the level ends (frame 100);
#   4. a script with a syntax error is reported and left out, the others run;
#   5. a directory that does not exist is an error (exit status 1), not a crash.
set -euo pipefail

prog=${1:?usage: check_lua_scripts.sh PROGRAM}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/lua_scripts_check.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "check_lua_scripts: FAILED: $*" >&2
    exit 1
}

# ---- 1. the shipped scripts, 5 runs --------------------------------------------------------
for run in 1 2 3 4 5; do
    rc=0
    "$prog" "$here/scripts" > "$work/actual" 2> "$work/stderr" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$work/stderr" >&2; fail "run $run: exit status $rc"; }
    [ ! -s "$work/stderr" ] || { cat "$work/stderr" >&2; fail "run $run: wrote to stderr"; }
    diff -u "$here/lua_scripts.expected" "$work/actual" ||
        fail "run $run: output differs from lua_scripts.expected"
done
echo "check_lua_scripts: examples/scripts: 5 runs, output as expected"

# ---- 2-4. scripts that misbehave -----------------------------------------------------------
dir=$work/tricky
mkdir "$dir"
cat > "$dir/broken.lua" <<'LUA'
print("this never runs" -- a syntax error: the closing parenthesis is missing
LUA
cat > "$dir/stubborn.lua" <<'LUA'
-- catches every error, the kill's included, and loops again
while true do
  pcall(function() while true do end end)
end
LUA
cat > "$dir/stubborn_coroutine.lua" <<'LUA'
-- the same inside a coroutine (coroutines inherit the watchdog's hook)
local co = coroutine.wrap(function()
  while true do
    pcall(function() while true do end end)
  end
end)
co()
LUA
cat > "$dir/waiter.lua" <<'LUA'
print("waiting for a value nobody sends")
print(receive())
LUA

rc=0
timeout 60 "$prog" "$dir" > "$work/tricky.out" 2> "$work/tricky.err" || rc=$?
show() { echo "--- stdout:"; cat "$work/tricky.out"; echo "--- stderr:"; cat "$work/tricky.err"; }
[ "$rc" -eq 0 ] || { show >&2; fail "misbehaving scripts: exit status $rc"; }
expect() {
    grep -qxF -- "$1" "$work/$2" || { show >&2; fail "misbehaving scripts: no line '$1' in $2"; }
}
expect "3 scripts: stubborn stubborn_coroutine waiter; 10 ms per frame, a slice is 10 ticks of 1000 Lua instructions" tricky.out
expect "frame 20  stubborn overran its budget in 20 frames in a row: killing it" tricky.out
expect "frame 20  stubborn_coroutine overran its budget in 20 frames in a row: killing it" tricky.out
expect "[frame 20] script stubborn unwound after its kill" tricky.out
expect "[frame 20] script stubborn_coroutine unwound after its kill" tricky.out
expect "level over: killing waiter" tricky.out
expect "[frame 100] script waiter unwound after its kill" tricky.out
expect "summary after 100 frames (1000 ms of game time):" tricky.out
expect "  stubborn   killed    interrupted 20 times  sent 0, received 0" tricky.out
expect "  stubborn_coroutine killed    interrupted 20 times  sent 0, received 0" tricky.out
expect "  waiter     killed    interrupted  0 times  sent 0, received 0" tricky.out
grep -q "^host: cannot load .*/broken.lua: broken.lua:2: ')' expected (to close '(' at line 1) near <eof>\$" \
    "$work/tricky.err" || { show >&2; fail "misbehaving scripts: the syntax error is not reported"; }
echo "check_lua_scripts: misbehaving scripts: killed or reported, as expected"

# ---- 5. a directory that does not exist ----------------------------------------------------
rc=0
"$prog" "$work/does-not-exist" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "missing directory: exit status $rc, expected 1"
echo "check_lua_scripts: missing directory: exit status 1, as expected"
