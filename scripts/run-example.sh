#!/usr/bin/env bash
# scripts/run-example.sh: builds libslp, installs it into build/prefix, builds the examples
# against that installed package (find_package(slp)) and runs examples/game_loop.c.
#
#   bash scripts/run-example.sh [game_loop arguments...]
#
# Needs Rust (cargo) and a C compiler; installs cmake and make with apt-get when missing (root).
# Environment: SLP_BUILD_DIR (default build), SLP_JOBS (default nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/ensure-tools.sh
. "$root/scripts/ensure-tools.sh"

build_dir=${SLP_BUILD_DIR:-build}
case $build_dir in /*) ;; *) build_dir="$root/$build_dir" ;; esac
jobs=${SLP_JOBS:-$(nproc 2>/dev/null || echo 2)}
prefix="$build_dir/prefix"

slp_require_rust
command -v cc >/dev/null 2>&1 || { echo "error: no C compiler (cc) found: apt-get install gcc" >&2; exit 1; }
slp_ensure_tools cmake=cmake make=make

echo "==== building libslp (cargo, through CMake) ===="
cmake -S "$root" -B "$build_dir" -DSLP_BUILD_TESTS=OFF -DSLP_BUILD_EXAMPLES=OFF
cmake --build "$build_dir" --parallel "$jobs"

echo "==== installing into $prefix ===="
cmake --install "$build_dir" --prefix "$prefix"

echo "==== building the examples against the installed package ===="
cmake -S "$root/examples" -B "$build_dir/installed-examples" -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$build_dir/installed-examples" --parallel "$jobs"

echo "==== running examples/game_loop ===="
exec "$build_dir/installed-examples/game_loop" "$@"
