#!/usr/bin/env bash
# scripts/bench-suite.sh: libslp side by side with Go and Boost.Fiber (and raw baselines) on
# the same workloads. Every implementation is a program with the same command line,
# `PROG WORKLOAD N`, printing `RESULT <workload> <metric> <value>` lines (the protocol:
# benches/suite.c's header comment has the workloads):
#
#   libslp       benches/suite.c              (C, the public header only)
#   Go           benches/peers/suite.go       (Debian's golang-go)
#   Boost.Fiber  benches/peers/suite_fiber.cpp (Debian's libboost-fiber-dev)
#   baseline     benches/raw_switch.rs (raw corosensei resume+suspend, beside yield) and the
#                pthread rows of suite.c: condvar (beside xthread_parked and signal), mutex
#                (beside lock)
#
# Builds the release library (cargo), suite.c, raw_switch (`cargo bench --no-run`) and the
# peers; runs every (workload, implementation) pair ROUNDS times, interleaved round by round
# (round 1: yield libslp, Go, Boost.Fiber, baseline; spawn_batch libslp, ...; round 2: ...), so
# that load or clock drift hits all of them alike; single-thread workloads are pinned to one
# CPU with taskset. Writes the results as TSV (workload, metric, implementation, median, every
# value in round order) and prints a Markdown table (also written next to the TSV, .md).
#
#   bash scripts/bench-suite.sh                 full sizes, 5 rounds (at most ~10 min on 2 vCPUs)
#   bash scripts/bench-suite.sh --quick         tiny sizes, 1 round, well under a minute (CI:
#                                               fails on errors only, never on timing)
#   options: --out FILE (default benches/results/suite.tsv), --rounds N,
#            --only yield,ring,... (a subset of the workloads), --chart SVG (then runs
#            scripts/bench-chart.sh on the results)
#
# Environment: SLP_BENCH_NO_PEERS=1 runs without Go and Boost.Fiber (nothing installed for
# them); SLP_BENCH_CPU=N pins single-thread workloads to CPU N (default: 1 when there are 2
# CPUs or more, else 0; SLP_BENCH_CPU= (empty) does not pin). A missing peer source file is
# skipped with a message. Missing tools (gcc, taskset, golang-go, g++, libboost-fiber-dev,
# gnuplot-nox for --chart) are installed with apt-get like scripts/ensure-tools.sh does.
#
# A program that exits 3 ("unsupported workload") leaves its cell empty; any other failure
# (non-zero exit, a missing or malformed RESULT line, a run over the time limit) fails the
# script.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/ensure-tools.sh
. scripts/ensure-tools.sh

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}

quick=
rounds=
out=benches/results/suite.tsv
only=
chart=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift ;;
    --rounds=*) rounds=${1#*=} ;;
    --out) out=${2:?--out needs a file}; shift ;;
    --out=*) out=${1#*=} ;;
    --only) only=${2:?--only needs workloads}; shift ;;
    --only=*) only=${1#*=} ;;
    --chart) chart=${2:?--chart needs a file}; shift ;;
    --chart=*) chart=${1#*=} ;;
    -h | --help) usage ;;
    *) echo "bench-suite: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$rounds" ]; then
    rounds=$([ -n "$quick" ] && echo 1 || echo 5)
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench-suite: --rounds must be a positive integer" >&2; exit 2; }

# ---- the workloads -------------------------------------------------------------------------
# name, threads (1: pinned to one CPU), full N, --quick N, metrics (one ending in * is reported
# by libslp only), baseline program's workload (- for none). Full sizes: ring and many as the
# protocol says; the others sized so that the slowest implementation takes a few seconds at
# most per run.
workloads=(
    "yield          1 2000000  20000  ns_per_switch                          raw_switch"
    "spawn_batch    1 1000000  2000   ns_per_tasklet                         -"
    "spawn_one      1 1000000  5000   ns_per_tasklet                         -"
    "pingpong       1 1000000  10000  ns_per_message                         -"
    "ring           1 10000000 20000  ns_per_hop                             -"
    "xthread_parked 2 20000    500    ns_per_round_trip                      condvar"
    "xthread_busy   2 20000    500    ns_per_round_trip                      -"
    "many           1 1000000  2000   ns_per_tasklet,kib_rss_per_tasklet,kib_rss_per_tasklet_after_end*,kib_rss_per_tasklet_after_decay* -"
    "sleep          1 200      2      lateness_median_us,lateness_p99_us     -"
    "tick           1 50000000 100000 ns_per_tick                            -"
    "select2        1 5000000  20000  ns_per_select,ns_per_receive           -"
    "signal         2 20000    500    ns_per_round_trip                      condvar"
    "lock           2 2000000  20000  ns_per_acquire                         mutex"
    "idle           1 3000     300    us_cpu_in_wait*                        -"
)
impls=(libslp go boost_fiber baseline)
declare -A impl_title=([libslp]=libslp [go]=Go [boost_fiber]=Boost.Fiber [baseline]=baseline)
declare -A baseline_title=(
    [raw_switch]="raw corosensei resume+suspend (benches/raw_switch.rs)"
    [condvar]="pthread mutex+condvar ping-pong between two threads"
    [mutex]="pthread mutex, two threads hammering"
)
run_limit=$([ -n "$quick" ] && echo 120 || echo 600) # seconds per program run

if [ -n "$only" ]; then
    for w in ${only//,/ }; do
        found=
        for row in "${workloads[@]}"; do
            [ "${row%% *}" = "$w" ] && found=1
        done
        [ -n "$found" ] || { echo "bench-suite: --only: unknown workload '$w'" >&2; exit 2; }
    done
fi
selected() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }

# ---- tools and builds ----------------------------------------------------------------------
slp_require_rust
slp_ensure_tools cc=gcc taskset=util-linux timeout=coreutils
[ -z "$chart" ] || slp_ensure_tools gnuplot=gnuplot-nox

go_src=benches/peers/suite.go
fiber_src=benches/peers/suite_fiber.cpp
use_go=
use_fiber=
if [ -n "${SLP_BENCH_NO_PEERS:-}" ]; then
    echo "bench-suite: SLP_BENCH_NO_PEERS is set: Go and Boost.Fiber skipped" >&2
else
    if [ -f "$go_src" ]; then
        slp_ensure_tools go=golang-go
        use_go=1
    else
        echo "bench-suite: $go_src not found: the Go column stays empty" >&2
    fi
    if [ -f "$fiber_src" ]; then
        command -v "${CXX:-c++}" >/dev/null 2>&1 || slp_ensure_tools c++=g++
        slp_ensure_files /usr/include/boost/fiber/all.hpp=libboost-fiber-dev
        use_fiber=1
    else
        echo "bench-suite: $fiber_src not found: the Boost.Fiber column stays empty" >&2
    fi
fi

bin=${TMPDIR:-/tmp}/slp-bench-suite.$$
mkdir -p "$bin"
trap 'rm -rf "$bin"' EXIT INT TERM

echo "bench-suite: building (cargo build --release, suite.c, raw_switch${use_go:+, Go peer}${use_fiber:+, Boost.Fiber peer})" >&2
cargo build --release --quiet
# The library's SONAME is libslp.so.0; cargo writes only libslp.so.
ln -sf "$root/target/release/libslp.so" "$bin/libslp.so.0"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -I"$root/include" "$root/benches/suite.c" \
    -L"$root/target/release" -lslp -lpthread -Wl,-rpath,"$bin" -o "$bin/suite"
raw_switch=$(cargo bench --quiet --bench raw_switch --no-run --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$raw_switch" ] || { echo "bench-suite: cannot find the raw_switch bench binary" >&2; exit 1; }
if [ -n "$use_go" ]; then
    # Standard library only (GOTOOLCHAIN=local: never fetch another toolchain); a build cache
    # in the temporary directory when there is no HOME for the default one.
    [ -n "${HOME:-}" ] || [ -n "${GOCACHE:-}" ] || export GOCACHE=$bin/go-build
    (cd "$root/benches/peers" && GOTOOLCHAIN=local go build -o "$bin/suite_go" suite.go)
fi
if [ -n "$use_fiber" ]; then
    ${CXX:-c++} -std=c++17 -O2 -Wall -Wextra "$root/$fiber_src" -lboost_fiber -lboost_context \
        -lpthread -o "$bin/suite_fiber"
fi

# ---- machine and versions ------------------------------------------------------------------
cpus=$(nproc)
cpu=${SLP_BENCH_CPU-$([ "$cpus" -ge 2 ] && echo 1 || echo 0)}
pin=()
pinning="not pinned"
if [ -n "$cpu" ]; then
    pin=(taskset -c "$cpu")
    pinning="pinned with \`taskset -c $cpu\`"
fi
machine="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $cpus CPUs, Linux $(uname -r)"
versions="$(rustc --version), $(${CC:-cc} --version | head -n 1)"
[ -z "$use_go" ] || versions+=", $(go version)"
[ -z "$use_fiber" ] || versions+=", $(${CXX:-c++} --version | head -n 1), Boost $(dpkg-query -W -f '${Version}' libboost-fiber-dev 2>/dev/null || echo '?')"

# ---- running -------------------------------------------------------------------------------
declare -A values       # "workload|metric|impl" -> values in round order, space-separated
declare -A unsupported  # "workload|impl" -> 1 once the program exited 3

# num X: X as a plain decimal (6 significant digits, no exponent).
num() { awk -v x="$1" 'BEGIN { x += 0; if (x >= 100000) printf "%.0f", x; else if (x >= 0.001 || x == 0) printf "%.6g", x; else printf "%.9f", x }'; }

# run_one WORKLOAD IMPL N PINNED METRICS BASELINE: runs one program once and records its
# metrics; sets $ran to the values printed (for the progress line).
run_one() {
    local w=$1 impl=$2 n=$3 pinned=$4 metrics=$5 base=$6 prog name
    case $impl in
    libslp) prog=$bin/suite; name=$w ;;
    go) prog=$bin/suite_go; name=$w ;;
    boost_fiber) prog=$bin/suite_fiber; name=$w ;;
    baseline)
        name=$base
        if [ "$base" = raw_switch ]; then prog=$raw_switch; else prog=$bin/suite; fi
        ;;
    esac
    local cmd=("$prog" "$name" "$n")
    [ "$pinned" != 1 ] || cmd=("${pin[@]}" "${cmd[@]}")
    local o=$bin/out e=$bin/err rc=0
    timeout "$run_limit" "${cmd[@]}" >"$o" 2>"$e" || rc=$?
    if [ "$rc" -eq 3 ]; then
        unsupported["$w|$impl"]=1
        ran="-"
        return 0
    fi
    if [ "$rc" -ne 0 ]; then
        echo >&2
        [ "$rc" -ne 124 ] || echo "bench-suite: timed out after ${run_limit}s" >&2
        echo "bench-suite: FAILED (exit $rc): ${cmd[*]}" >&2
        sed 's/^/  | /' "$e" "$o" >&2
        exit 1
    fi
    ran=
    local m v got
    for m in ${metrics//,/ }; do
        # A metric marked with * is libslp's only (the peers have no such thing).
        case $m in *'*') [ "$impl" = libslp ] || continue; m=${m%'*'} ;; esac
        got=$(awk -v w="$name" -v m="$m" '$1 == "RESULT" && $2 == w && $3 == m { print $4; c++ }
            END { if (c != 1) exit 1 }' "$o") || {
            echo >&2
            echo "bench-suite: FAILED: '${cmd[*]}' printed no single 'RESULT $name $m <value>' line" >&2
            sed 's/^/  | /' "$o" "$e" >&2
            exit 1
        }
        if ! [[ $got =~ ^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
            echo "bench-suite: FAILED: '${cmd[*]}': 'RESULT $name $m $got' is not a decimal number" >&2
            exit 1
        fi
        v=$(num "$got")
        values["$w|$m|$impl"]+="${values["$w|$m|$impl"]:+ }$v"
        ran+="${ran:+/}$v"
    done
}

available() {
    case $1 in
    libslp) return 0 ;;
    go) [ -n "$use_go" ] ;;
    boost_fiber) [ -n "$use_fiber" ] ;;
    baseline) [ "$2" != - ] ;;
    esac
}

echo "machine: $machine" >&2
echo "versions: $versions" >&2
echo "rounds: $rounds$([ -n "$quick" ] && echo ' (--quick sizes)'); single-thread workloads $pinning" >&2
start=$(date +%s)
for ((r = 1; r <= rounds; r++)); do
    for row in "${workloads[@]}"; do
        read -r w threads full_n quick_n metrics base <<<"$row"
        selected "$w" || continue
        n=$([ -n "$quick" ] && echo "$quick_n" || echo "$full_n")
        line="[round $r/$rounds] $w N=$n:"
        for impl in "${impls[@]}"; do
            available "$impl" "$base" || continue
            [ -z "${unsupported["$w|$impl"]:-}" ] || continue
            run_one "$w" "$impl" "$n" "$([ "$threads" = 1 ] && echo 1 || echo 0)" "$metrics" "$base"
            line+=" $impl $ran"
        done
        echo "$line" >&2
    done
done
echo "bench-suite: all runs done in $(($(date +%s) - start)) s" >&2

# ---- results -------------------------------------------------------------------------------
median() { num "$(tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.9f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')"; }
# fmt VALUE: a table cell (3 significant digits or so, no exponent).
fmt() { awk -v x="$1" 'BEGIN { if (x >= 100) printf "%.0f", x; else if (x >= 10) printf "%.1f", x; else if (x >= 1) printf "%.2f", x; else printf "%.3f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'; }

mkdir -p "$(dirname "$out")"
md=${out%.tsv}.md
[ "$md" != "$out" ] || md=$out.md
tsv_tmp=$bin/results.tsv
md_tmp=$bin/results.md
printf 'workload\tmetric\timplementation\tmedian\tvalues\n' >"$tsv_tmp"
{
    echo "machine: $machine"
    echo
    echo "versions: $versions"
    echo
    echo "median of $rounds round(s)$([ -n "$quick" ] && echo ' with --quick sizes (not for comparison)'), interleaved round by round; single-thread workloads $pinning. Ratios: libslp / the other (below 1: libslp lower, i.e. better: every metric is a cost)."
    echo
    echo "| workload | metric | N | libslp | Go | Boost.Fiber | baseline | libslp/Go | libslp/Boost.Fiber | libslp/baseline |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$md_tmp"
used_baselines=" "
for row in "${workloads[@]}"; do
    read -r w threads full_n quick_n metrics base <<<"$row"
    selected "$w" || continue
    n=$([ -n "$quick" ] && echo "$quick_n" || echo "$full_n")
    for m in ${metrics//,/ }; do
        m=${m%'*'}
        declare -A med=()
        cells=()
        for impl in "${impls[@]}"; do
            vs=${values["$w|$m|$impl"]:-}
            if [ -n "$vs" ]; then
                med[$impl]=$(median <<<"$vs")
                printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$m" "$impl" "${med[$impl]}" "${vs// /,}" >>"$tsv_tmp"
                cells+=("$(fmt "${med[$impl]}")")
            else
                med[$impl]=
                cells+=("")
            fi
        done
        if [ -n "${med[baseline]}" ]; then
            cells[3]+=" ($base)"
            used_baselines+="$base "
        fi
        for impl in go boost_fiber baseline; do
            if [ -n "${med[libslp]}" ] && [ -n "${med[$impl]}" ]; then
                cells+=("$(ratio "${med[libslp]}" "${med[$impl]}")")
            else
                cells+=("")
            fi
        done
        printf '| %s | %s | %s | %s |\n' "$w" "$m" "$n" "$(IFS='|'; echo "${cells[*]}" | sed 's/|/ | /g')" >>"$md_tmp"
        unset med
    done
done
if [ "$used_baselines" != " " ]; then
    {
        echo
        for b in raw_switch condvar mutex; do
            case $used_baselines in *" $b "*) echo "- baseline ($b): ${baseline_title[$b]}" ;; esac
        done
    } >>"$md_tmp"
fi
mv "$tsv_tmp" "$out"
cp "$md_tmp" "$md"
echo
cat "$md"
echo
echo "results: $out (TSV), $md (this table)"
if [ -n "$chart" ]; then
    bash "$root/scripts/bench-chart.sh" "$out" "$chart"
fi
