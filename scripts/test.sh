#!/usr/bin/env bash
# scripts/test.sh: builds libslp and runs every test, on a fresh Debian machine too.
#
#   bash scripts/test.sh
#
# Needs Rust (cargo) and a C compiler; installs cmake, pkg-config, make, g++ and binutils with
# apt-get when they are missing (as root). Steps:
#   1. cargo test --release                  Rust unit tests
#   2. scripts/check-msrv.sh                 rust-version in Cargo.toml is true: no package in
#                                             Cargo.lock needs a newer Rust, no std API newer
#                                             than it is used (clippy::incompatible_msrv)
#   3. cmake configure + build in build/      RelWithDebInfo: the release library through cargo
#                                             (which also fails if the checked-in include/slp.h
#                                             is stale), C tests, header checks (C11, C++17),
#                                             examples
#   4. ctest --output-on-failure             C tests, header checks, examples
#   5. Debug build in build-debug/            the library with cargo's dev profile (Rust debug
#                                             assertions and overflow checks on), its C tests,
#                                             header checks and examples, through ctest
#   6. scripts/check-symbols.sh              only slp_* exported, SONAME libslp.so.<major>
#   7. cmake --install into a temporary prefix, and check the installed files
#   8. tests/consumer against the installed package with find_package (shared and static)
#   9. tests/consumer against the installed package with pkg-config (shared and static)
#  10. examples/ against the installed package (builds them, runs them through ctest;
#      examples/lua_scripts.c only when Lua 5.4 is installed: Debian liblua5.4-dev)
#
# Environment: SLP_BUILD_DIR (default build), SLP_DEBUG_BUILD_DIR (default <SLP_BUILD_DIR>-debug),
# SLP_JOBS (default nproc), SLP_KEEP_TMP=1 keeps the temporary install prefix and builds,
# SLP_REQUIRE_LUA=1 fails (instead of skipping examples/lua_scripts.c) when Lua 5.4 is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=scripts/ensure-tools.sh
. "$root/scripts/ensure-tools.sh"

build_dir=${SLP_BUILD_DIR:-build}
case $build_dir in /*) ;; *) build_dir="$root/$build_dir" ;; esac
debug_build_dir=${SLP_DEBUG_BUILD_DIR:-$build_dir-debug}
case $debug_build_dir in /*) ;; *) debug_build_dir="$root/$debug_build_dir" ;; esac
jobs=${SLP_JOBS:-$(nproc 2>/dev/null || echo 2)}
# The header check in build.rs must compare, never rewrite.
unset SLP_BLESS_HEADER

section_name="setup"
sections_passed=0
section_start=$SECONDS
work=""

section() {
    section_name=$1
    section_start=$SECONDS
    printf '\n==== [%d] %s ====\n' "$((sections_passed + 1))" "$1"
}

passed() {
    sections_passed=$((sections_passed + 1))
    printf -- '---- ok: %s (%d s)\n' "$section_name" "$((SECONDS - section_start))"
}

on_exit() {
    local rc=$?
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "${SLP_KEEP_TMP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
            echo "temporary files kept in $work"
        else
            rm -rf "$work"
        fi
    fi
    if [ "$rc" -ne 0 ]; then
        printf '\n==== FAILED: %s (exit status %d) ====\n' "$section_name" "$rc"
        echo "test.sh: $sections_passed passed, 1 failed"
    fi
    exit "$rc"
}
trap on_exit EXIT

fail() {
    echo "error: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
section "tools"
slp_require_rust
command -v cc >/dev/null 2>&1 || fail "no C compiler (cc) found: apt-get install gcc"
slp_ensure_tools cmake=cmake pkg-config=pkgconf make=make c++=g++ nm=binutils readelf=binutils
version=$(slp_cargo_version "$root")
[ -n "$version" ] || fail "could not read the version from Cargo.toml"
major=${version%%.*}
echo "libslp $version; $(cargo --version); $(cmake --version | head -n 1); $(cc --version | head -n 1)"
work=$(mktemp -d "${TMPDIR:-/tmp}/slp-test.XXXXXX")
passed

# ---------------------------------------------------------------------------------------------
section "Rust unit tests: cargo test --release"
cargo test --release
passed

# ---------------------------------------------------------------------------------------------
section "minimum supported Rust version: scripts/check-msrv.sh"
"$root/scripts/check-msrv.sh"
passed

# ---------------------------------------------------------------------------------------------
# The main pass tests the library as it ships: CMAKE_BUILD_TYPE RelWithDebInfo selects cargo's
# release profile (any build type but Debug does), the one that is installed below.
section "CMake build in ${build_dir#"$root"/} (release library via cargo + header check, C tests, examples)"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLP_BUILD_TESTS=ON \
    -DSLP_BUILD_EXAMPLES=ON -USLP_CARGO_PROFILE
cmake --build "$build_dir" --parallel "$jobs"
cmp "$build_dir/lib/libslp.so.$version" "$root/target/release/libslp.so" ||
    fail "$build_dir/lib/libslp.so.$version is not cargo's release build (target/release/libslp.so)"
passed

# ---------------------------------------------------------------------------------------------
section "CTest: C tests, header checks (C11, C++17, static), examples"
(cd "$build_dir" && ctest --output-on-failure --no-tests=error)
passed

# ---------------------------------------------------------------------------------------------
section "Debug build in ${debug_build_dir#"$root"/}: C tests against the dev-profile library (Rust debug assertions on)"
# CMAKE_BUILD_TYPE Debug selects cargo's dev profile (target/debug): debug assertions, overflow
# checks and the standard library's precondition checks are compiled into libslp, so a broken
# internal invariant panics (SLP_E_PANIC at the C boundary, a failed test) instead of going
# unnoticed. The same C tests, header checks and examples as above, run against that library.
cmake -S "$root" -B "$debug_build_dir" -DCMAKE_BUILD_TYPE=Debug -DSLP_BUILD_TESTS=ON \
    -DSLP_BUILD_EXAMPLES=ON -USLP_CARGO_PROFILE
cmake --build "$debug_build_dir" --parallel "$jobs"
debug_lib="$debug_build_dir/lib/libslp.so.$version"
# The staged libraries are cargo's dev-profile output, and they carry debug-only code: core's
# `precondition_check` functions exist only where debug assertions are on.
cmp "$debug_lib" "$root/target/debug/libslp.so" ||
    fail "$debug_lib is not cargo's dev-profile build (target/debug/libslp.so)"
cmp "$debug_build_dir/lib/libslp.a" "$root/target/debug/libslp.a" ||
    fail "$debug_build_dir/lib/libslp.a is not cargo's dev-profile build (target/debug/libslp.a)"
nm "$debug_lib" | grep precondition_check >/dev/null ||
    fail "$debug_lib has no debug-assertion code (no core precondition_check): not a debug build?"
if nm "$build_dir/lib/libslp.so.$version" | grep precondition_check >/dev/null; then
    fail "the release library $build_dir/lib/libslp.so.$version has debug-assertion code"
fi
echo "staged: $debug_lib = target/debug/libslp.so ($(stat -c %s "$debug_lib") bytes; release: $(stat -c %s "$build_dir/lib/libslp.so.$version") bytes)"
(cd "$debug_build_dir" && ctest --output-on-failure --no-tests=error)
"$root/scripts/check-symbols.sh" "$debug_lib"
passed

# ---------------------------------------------------------------------------------------------
section "exported symbols and SONAME"
"$root/scripts/check-symbols.sh" "$build_dir/lib/libslp.so.$version"
passed

# ---------------------------------------------------------------------------------------------
section "cmake --install into a temporary prefix"
prefix="$work/prefix"
cmake --install "$build_dir" --prefix "$prefix"
pc=$(find "$prefix" -name slp.pc -print -quit)
[ -n "$pc" ] || fail "slp.pc was not installed"
libdir=$(dirname "$(dirname "$pc")")
if [ ! -f "$libdir/libslp.so.$version" ] || [ -L "$libdir/libslp.so.$version" ]; then
    fail "$libdir/libslp.so.$version is missing or not a regular file"
fi
[ "$(readlink "$libdir/libslp.so.$major")" = "libslp.so.$version" ] ||
    fail "$libdir/libslp.so.$major is not a symlink to libslp.so.$version"
[ "$(readlink "$libdir/libslp.so")" = "libslp.so.$major" ] ||
    fail "$libdir/libslp.so is not a symlink to libslp.so.$major"
[ -f "$libdir/libslp.a" ] || fail "$libdir/libslp.a is missing"
cmp "$root/include/slp.h" "$prefix/include/slp.h" || fail "installed slp.h differs from include/slp.h"
for f in slpConfig.cmake slpConfigVersion.cmake; do
    [ -f "$libdir/cmake/slp/$f" ] || fail "$libdir/cmake/slp/$f is missing"
done
"$root/scripts/check-symbols.sh" "$libdir/libslp.so.$version"
(cd "$prefix" && find . \( -type f -o -type l \) | sort)
passed

# ---------------------------------------------------------------------------------------------
section "consumer against the installed package: find_package(slp)"
cmake -S "$root/tests/consumer" -B "$work/consumer-cmake" -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/consumer-cmake" --parallel "$jobs"
"$work/consumer-cmake/consumer"
"$work/consumer-cmake/consumer_static"
if readelf -d "$work/consumer-cmake/consumer_static" | grep -q 'NEEDED.*libslp'; then
    fail "consumer_static (slp::slp_static) depends on libslp.so"
fi
readelf -d "$work/consumer-cmake/consumer" | grep -q "NEEDED.*\[libslp.so.$major\]" ||
    fail "consumer (slp::slp) does not load libslp.so.$major"
passed

# ---------------------------------------------------------------------------------------------
section "consumer against the installed package: pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[ "$(pkg-config --modversion slp)" = "$version" ] || fail "pkg-config --modversion slp is not $version"
echo "pkg-config --cflags --libs slp: $(pkg-config --cflags --libs slp)"
# shellcheck disable=SC2046  # word splitting of pkg-config's output is intended
cc "$root/tests/consumer/main.c" $(pkg-config --cflags --libs slp) -o "$work/consumer-pc"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/consumer-pc"
# Static: the archive itself plus Libs.private.
static_libs=()
for word in $(pkg-config --static --libs-only-l slp); do
    [ "$word" = -lslp ] || static_libs+=("$word")
done
echo "pkg-config --static --libs-only-l slp, less -lslp: ${static_libs[*]}"
# shellcheck disable=SC2046
cc "$root/tests/consumer/main.c" $(pkg-config --cflags slp) "$libdir/libslp.a" "${static_libs[@]}" \
    -o "$work/consumer-pc-static"
"$work/consumer-pc-static"
passed

# ---------------------------------------------------------------------------------------------
section "examples against the installed package"
cmake -S "$root/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$work/examples" --parallel "$jobs"
(cd "$work/examples" && ctest --output-on-failure --no-tests=error)
passed

printf '\n==== all %d sections passed ====\n' "$sections_passed"
echo "test.sh: $sections_passed passed, 0 failed"
