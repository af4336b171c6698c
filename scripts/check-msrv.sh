#!/usr/bin/env bash
# Checks that the rust-version in Cargo.toml (libslp's minimum supported Rust version, MSRV)
# is true, with the toolchain at hand (no older toolchain is needed):
#   1. no package in Cargo.lock (dependencies, build and dev dependencies, every platform's)
#      declares a rust-version above ours: cargo would refuse to build it with our MSRV;
#   2. clippy's incompatible_msrv lint, on the library, tests, benches and build.rs: no standard
#      library item (function, method, type, const use) stabilised after our rust-version is
#      used. Only that lint can fail this step: every other warning and clippy lint is allowed.
#
# Limits: the lint knows the standard library's stability attributes, not language features
# (syntax such as `&raw const` or `unsafe extern` blocks), and it only sees items newer than
# our rust-version and at most as new as the toolchain running it. Only a build with the MSRV
# toolchain itself proves everything.
#
# Usage: scripts/check-msrv.sh   (needs cargo and clippy; adds clippy through rustup if missing)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

fail() {
    echo "check-msrv: $*" >&2
    exit 1
}
# Both checks run and report; the script fails at the end if either failed.
failures=()

# "1.82" -> "1.82.0", so that versions written with two or three components compare equal.
norm() {
    awk -F. '{ printf "%d.%d.%d\n", $1, ($2 == "" ? 0 : $2), ($3 == "" ? 0 : $3) }' <<<"$1"
}
# True when version $1 is strictly above version $2.
version_gt() {
    local a b
    a=$(norm "$1")
    b=$(norm "$2")
    [ "$a" != "$b" ] && [ "$(printf '%s\n%s\n' "$a" "$b" | sort -V | tail -n 1)" = "$a" ]
}

# `name version rust-version` of the [package] of a Cargo.toml (rust-version "-" if none).
# Manifests in the registry are normalized by `cargo publish`: no workspace inheritance.
package_info() {
    awk '
        /^[[:space:]]*\[/ { in_pkg = ($0 ~ /^[[:space:]]*\[package\][[:space:]]*$/) ; next }
        in_pkg && /^[[:space:]]*(name|version|rust-version)[[:space:]]*=/ {
            key = $0; sub(/[[:space:]]*=.*/, "", key); gsub(/[[:space:]]/, "", key)
            val = $0; sub(/^[^=]*=[[:space:]]*"/, "", val); sub(/".*/, "", val)
            v[key] = val
        }
        END { printf "%s %s %s\n", v["name"], v["version"], (v["rust-version"] == "" ? "-" : v["rust-version"]) }
    ' "$1"
}

root_manifest="$(pwd -P)/Cargo.toml"
read -r name _ msrv < <(package_info "$root_manifest")
[ "$name" = slp ] || fail "could not read the [package] of $root/Cargo.toml"
[ "$msrv" != - ] || fail "Cargo.toml has no rust-version"
echo "check-msrv: libslp's rust-version is $msrv; $(cargo --version)"

# ---- 1. every package in Cargo.lock ----------------------------------------------------------
# cargo metadata (without --filter-platform) lists every package of Cargo.lock and fetches
# their sources; --locked fails if Cargo.lock is not up to date with Cargo.toml.
manifests=$(cargo metadata --format-version 1 --locked |
    grep -o '"manifest_path":"[^"]*"' | sed 's/^"manifest_path":"//; s/"$//')
[ -n "$manifests" ] || fail "cargo metadata listed no packages"
count=0
highest="-"
highest_pkg=""
too_new=()
while IFS= read -r manifest; do
    [ "$manifest" != "$root_manifest" ] || continue
    [ -f "$manifest" ] || fail "$manifest: no such file"
    read -r dep_name dep_version dep_rv < <(package_info "$manifest")
    count=$((count + 1))
    [ "$dep_rv" != - ] || continue
    if [ "$highest" = - ] || version_gt "$dep_rv" "$highest"; then
        highest=$dep_rv
        highest_pkg="$dep_name $dep_version"
    elif [ "$(norm "$dep_rv")" = "$(norm "$highest")" ]; then
        highest_pkg="$highest_pkg, $dep_name $dep_version"
    fi
    if version_gt "$dep_rv" "$msrv"; then
        too_new+=("$dep_name $dep_version (rust-version $dep_rv)")
    fi
done <<<"$manifests"
echo "check-msrv: $count packages in Cargo.lock; highest rust-version $highest ($highest_pkg)"
if [ ${#too_new[@]} -gt 0 ]; then
    echo "check-msrv: these packages in Cargo.lock need a newer Rust than rust-version = \"$msrv\":" >&2
    printf '    %s\n' "${too_new[@]}" >&2
    echo "check-msrv: raise rust-version in Cargo.toml, or depend on older versions of them" >&2
    failures+=("${#too_new[@]} package(s) in Cargo.lock need a newer Rust")
fi

# ---- 2. clippy's incompatible_msrv lint --------------------------------------------------------
if ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || fail "clippy is not installed (rustup component add clippy)"
    rustup component add clippy
fi
# --release: the build dependencies (cbindgen) and build-script output are then shared with
# `cargo test --release`. The lint reads rust-version from Cargo.toml.
if ! cargo clippy --locked --all-targets --release -- \
        -A warnings -A clippy::all -D clippy::incompatible_msrv; then
    failures+=("cargo clippy failed: standard library items newer than Rust $msrv are used (clippy::incompatible_msrv above), or the code does not build")
fi

if [ ${#failures[@]} -gt 0 ]; then
    printf 'check-msrv: FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "check-msrv: ok (rust-version $msrv)"
