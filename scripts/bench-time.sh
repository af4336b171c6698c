#!/usr/bin/env bash
# scripts/bench-time.sh: time-and-preemption benchmark (benches/time.c): slp_tick, slp_select,
# sleep lateness beside Boost.Fiber (benches/peers/sleep_storm_fiber.cpp), and timer
# arm+cancel among many pending timers, each beside its baseline in the same run. Builds the
# release library with cargo, compiles the C program and the C++ peer against it and runs it,
# pinned to one CPU.
#
#   bash scripts/bench-time.sh            full sizes (about a minute)
#   bash scripts/bench-time.sh --quick    tiny sizes, a few seconds (CI: fails on errors only)
#
# Boost.Fiber comes from Debian's libboost-fiber-dev, installed here when missing (as root or
# through passwordless sudo, like scripts/ensure-tools.sh); set SLP_BENCH_NO_PEER=1 to run
# without the peer. SLP_BENCH_CPU=N pins to CPU N (default: 1 when there are 2 CPUs or more,
# else 0); SLP_BENCH_CPU= (empty) does not pin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/ensure-tools.sh
. scripts/ensure-tools.sh
slp_require_rust
slp_ensure_tools cc=gcc taskset=util-linux

peer=
if [ -z "${SLP_BENCH_NO_PEER:-}" ]; then
    command -v c++ >/dev/null 2>&1 || slp_ensure_tools c++=g++
    slp_ensure_files /usr/include/boost/fiber/all.hpp=libboost-fiber-dev
    peer=yes
fi

cargo build --release --quiet
out=${TMPDIR:-/tmp}/slp-bench-time.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT INT TERM
# The library's SONAME is libslp.so.0; cargo writes only libslp.so.
ln -sf "$root/target/release/libslp.so" "$out/libslp.so.0"
${CC:-cc} -O2 -fPIC -shared -Wall -Wextra "$root/benches/time_noop.c" -o "$out/libslp_bench_noop.so"
${CC:-cc} -O2 -Wall -Wextra -I"$root/include" "$root/benches/time.c" \
    -L"$root/target/release" -L"$out" -lslp -lslp_bench_noop -lpthread -lm \
    -Wl,-rpath,"$out" -o "$out/time"
args=("$@")
if [ -n "$peer" ]; then
    ${CXX:-c++} -O2 -Wall -Wextra "$root/benches/peers/sleep_storm_fiber.cpp" \
        -lboost_fiber -lboost_context -o "$out/sleep_storm_fiber"
    args+=(--peer "$out/sleep_storm_fiber")
fi

cpus=$(nproc)
cpu=${SLP_BENCH_CPU-$([ "$cpus" -ge 2 ] && echo 1 || echo 0)}
echo "machine: $cpus CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "versions: $(rustc --version), $(${CC:-cc} --version | head -n 1)${peer:+, Boost $(dpkg-query -W -f '${Version}' libboost-fiber-dev 2>/dev/null || echo '?')}"
pin=()
if [ -n "$cpu" ]; then
    echo "pinned: taskset -c $cpu"
    pin=(taskset -c "$cpu")
fi
"${pin[@]}" "$out/time" "${args[@]}"
