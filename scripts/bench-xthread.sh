#!/bin/sh
# scripts/bench-xthread.sh: cross-thread ping-pong benchmark (benches/xthread.c, SPEC §11):
# libslp channels between two OS threads beside a raw pthread mutex+condvar ping-pong, in the
# same run. Builds the release library with cargo, compiles the C program against it, runs it.
#
#   sh scripts/bench-xthread.sh [ROUND_TRIPS]        (default 50000)
#   XTHREAD_VARIANTS=main,run_wait XTHREAD_PLACEMENTS=free,split sh scripts/bench-xthread.sh
#                                                    a subset (see benches/xthread.c)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
out=${TMPDIR:-/tmp}/slp-bench-xthread.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT INT TERM
# The library's SONAME is libslp.so.0; cargo writes only libslp.so.
ln -sf "$root/target/release/libslp.so" "$out/libslp.so.0"
${CC:-cc} -O2 -Wall -Wextra -I"$root/include" "$root/benches/xthread.c" \
    -L"$root/target/release" -lslp -lpthread -Wl,-rpath,"$out" -o "$out/xthread"
"$out/xthread" "$@"
