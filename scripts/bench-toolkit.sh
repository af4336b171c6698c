#!/bin/sh
# scripts/bench-toolkit.sh: the threads toolkit (Signal wake-up across threads, Lock
# uncontended and contended, Till lateness) beside pthread baselines measured in the same run
# (benches/toolkit.c). Builds the release library with cargo, compiles the C program against it.
#
#   sh scripts/bench-toolkit.sh            full run (a few seconds)
#   sh scripts/bench-toolkit.sh --quick    tiny sizes (CI: fails only on errors, never on timing)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet
out=${TMPDIR:-/tmp}/slp-bench-toolkit.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT INT TERM
ln -sf "$root/target/release/libslp.so" "$out/libslp.so.0"
${CC:-cc} -O2 -Wall -Wextra -I"$root/include" "$root/benches/toolkit.c" \
    -L"$root/target/release" -lslp -lpthread -Wl,-rpath,"$out" -o "$out/toolkit"
"$out/toolkit" "$@"
