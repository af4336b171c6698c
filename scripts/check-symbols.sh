#!/usr/bin/env bash
# Checks a built libslp shared library:
#   - its dynamic symbol table exports only slp_* symbols (lists the offenders otherwise),
#   - it exports at least the slp_* functions that every build has,
#   - its SONAME is libslp.so.<major> (major from Cargo.toml: libslp.so.0 for 0.x).
#
# Usage: scripts/check-symbols.sh [path/to/libslp.so ...]   (default: target/release/libslp.so)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -gt 0 ] || set -- "$root/target/release/libslp.so"

for tool in nm readelf; do
    command -v "$tool" >/dev/null || { echo "check-symbols: '$tool' not found (apt-get install binutils)" >&2; exit 2; }
done

version=$(sed -n 's/^version *= *"\([0-9][0-9]*\)\..*/\1/p' "$root/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "check-symbols: no version in $root/Cargo.toml" >&2; exit 2; }
want_soname="libslp.so.$version"

status=0
for lib in "$@"; do
    bad=0
    if [ ! -f "$lib" ]; then
        echo "check-symbols: $lib: no such file (build the library first)" >&2
        status=1
        continue
    fi
    # Defined dynamic symbols, without the version suffix (name@@VERSION).
    symbols=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u)
    exported=$(grep -c '^slp_' <<<"$symbols" || true)
    offenders=$(grep -v '^slp_' <<<"$symbols" || true)
    if [ -n "$offenders" ]; then
        echo "check-symbols: $lib exports $(wc -l <<<"$offenders") symbol(s) outside slp_*:" >&2
        while IFS= read -r sym; do echo "    $sym" >&2; done <<<"$offenders"
        bad=1
    fi
    for required in slp_version slp_status_str slp_last_error slp_tasklet_new slp_run slp_channel_new; do
        if ! grep -qx "$required" <<<"$symbols"; then
            echo "check-symbols: $lib does not export $required" >&2
            bad=1
        fi
    done
    soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    if [ "$soname" != "$want_soname" ]; then
        echo "check-symbols: $lib has SONAME '${soname:-<none>}', expected '$want_soname'" >&2
        bad=1
    fi
    if [ "$bad" -eq 0 ]; then
        echo "check-symbols: $lib: $exported symbols, all slp_*; SONAME $soname"
    else
        status=1
    fi
done
exit "$status"
