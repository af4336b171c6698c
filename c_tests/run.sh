#!/bin/sh
# c_tests/run.sh - build and run the C test programs against target/release/libslp.so.
#   c_tests/run.sh [name...]        e.g. c_tests/run.sh channel deadlock   (default: all)
#   VALGRIND=1 c_tests/run.sh       run each program under valgrind (memcheck, leaks; fair thread
#                                   scheduling, so a spinning thread cannot starve a timed waiter)
#   CC=clang c_tests/run.sh         other compiler; CXX for test_cxx.cpp
# Exits non-zero if any program fails to build or reports a failed check.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
lib="${SLP_LIB_DIR:-$root/target/release}"
out="${OUT:-$root/target/c_tests}"
cc="${CC:-cc}"
cxx="${CXX:-c++}"
mkdir -p "$out"
if [ ! -e "$lib/libslp.so" ]; then
    echo "run.sh: $lib/libslp.so missing: run 'cargo build --release' first" >&2
    exit 2
fi
# The library's SONAME is libslp.so.0 and cargo only writes libslp.so: give the loader the
# name it looks for (the CMake build does the same in build/lib).
[ -e "$lib/libslp.so.0" ] || ln -sf libslp.so "$lib/libslp.so.0"
names="$*"
if [ -z "$names" ]; then
    for f in "$root"/c_tests/test_*.c "$root"/c_tests/test_*.cpp; do
        [ -e "$f" ] || continue
        n=$(basename "$f"); n=${n#test_}; n=${n%.c}; n=${n%.cpp}
        names="$names $n"
    done
fi
failed=""
for n in $names; do
    src="$root/c_tests/test_$n.c"
    if [ -e "$src" ]; then
        $cc -std=c11 -Wall -Wextra -g -I"$root/include" -I"$root/c_tests" "$src" \
            -L"$lib" -lslp -lpthread -o "$out/test_$n" || { failed="$failed $n(build)"; continue; }
    else
        src="$root/c_tests/test_$n.cpp"
        $cxx -std=c++17 -Wall -Wextra -g -I"$root/include" -I"$root/c_tests" "$src" \
            -L"$lib" -lslp -lpthread -o "$out/test_$n" || { failed="$failed $n(build)"; continue; }
    fi
    echo "=== test_$n"
    if [ "${VALGRIND:-0}" = 1 ]; then
        LD_LIBRARY_PATH="$lib" SLP_TEST_TIMEOUT="${SLP_TEST_TIMEOUT:-300}" \
            valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            "$out/test_$n" > "$out/test_$n.log" 2>&1
    else
        LD_LIBRARY_PATH="$lib" "$out/test_$n" > "$out/test_$n.log" 2>&1
    fi
    rc=$?
    grep -E '^FAIL|^==[0-9]+== .*(lost|Invalid|uninitialised|Mismatched)' "$out/test_$n.log"
    grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/test_$n.log" | tail -n 1
    [ $rc -eq 0 ] || failed="$failed $n"
done
if [ -n "$failed" ]; then
    echo "FAILED:$failed (logs in $out)"
    exit 1
fi
echo "all C test programs passed"
