#!/usr/bin/env bash
# scripts/bench-chart.sh: an SVG chart of the side-by-side suite's results
# (scripts/bench-suite.sh): per workload, grouped bars of the median time per operation of
# libslp, Go and Boost.Fiber, and the workload's raw baseline where it has one (grey: raw
# corosensei switch beside yield, pthread condvar beside xthread_parked and signal, pthread
# mutex beside lock); log-scale y axis in ns. Only the ns_* metrics are drawn (sleep lateness
# and memory per tasklet are in the table bench-suite.sh prints).
#
#   bash scripts/bench-chart.sh [RESULTS.tsv [OUT.svg]]
#       defaults: benches/results/suite.tsv, docs/benchmarks.svg
#   SLP_CHART_TITLE="..."   replaces the title (e.g. to mark a --quick run)
#
# Uses gnuplot (Debian's gnuplot-nox, installed here when missing, like scripts/ensure-tools.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/ensure-tools.sh
. "$root/scripts/ensure-tools.sh"

in=${1:-$root/benches/results/suite.tsv}
svg=${2:-$root/docs/benchmarks.svg}
[ $# -le 2 ] || { echo "usage: bench-chart.sh [RESULTS.tsv [OUT.svg]]" >&2; exit 2; }
[ -r "$in" ] || { echo "bench-chart: cannot read $in (run scripts/bench-suite.sh first)" >&2; exit 1; }
[ "$(head -n 1 "$in" | cut -f 1-5)" = "$(printf 'workload\tmetric\timplementation\tmedian\tvalues')" ] ||
    { echo "bench-chart: $in is not a bench-suite.sh results file" >&2; exit 1; }
slp_ensure_tools gnuplot=gnuplot-nox

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slp-bench-chart.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# One row per (workload, ns_* metric), in the file's order: label, then libslp, Go,
# Boost.Fiber, baseline medians ("-" where there is none); the largest number of rounds seen.
awk -F '\t' -v data="$tmp/data" -v meta="$tmp/meta" '
NR == 1 || $2 !~ /^ns_/ { next }
{
    key = $1 SUBSEP $2
    if (!(key in seen)) { seen[key] = 1; order[++n] = key; wl[n] = $1; me[n] = $2; per[$1]++ }
    med[key, $3] = $4
    r = split($5, all, ",")
    if (r > rounds) rounds = r
}
END {
    split("libslp go boost_fiber baseline", impls, " ")
    for (i = 1; i <= n; i++) {
        label = wl[i]
        if (per[wl[i]] > 1) { m = me[i]; sub(/^ns_per_/, "", m); label = label " (" m ")" }
        printf "\"%s\"", label > data
        for (j = 1; j <= 4; j++) {
            k = order[i] SUBSEP impls[j]
            printf "\t%s", ((k in med) ? med[k] : "-") > data
        }
        printf "\n" > data
    }
    printf "%d %d\n", n, rounds > meta
}' "$in"
read -r rows rounds <"$tmp/meta"
[ "$rows" -gt 0 ] || { echo "bench-chart: no ns_* results in $in" >&2; exit 1; }
# The y range: whole decades around the smallest and largest value, with room above the
# tallest bar for its label.
read -r ymin ymax < <(awk -F '\t' '{ for (i = 2; i <= 5; i++) if ($i != "-" && $i > 0) {
        if (lo == "" || $i < lo) lo = $i; if ($i > hi) hi = $i } }
    END { printf "%g %g\n", 10 ^ int(log(lo) / log(10) - (lo < 1 ? 1 : 0)), 10 ^ (int(log(hi * 4) / log(10)) + 1) }' "$tmp/data")

title=${SLP_CHART_TITLE:-"libslp beside Go and Boost.Fiber: time per operation, median of $rounds round(s) (log scale, lower is better)"}
width=$((320 + rows * 64))
[ "$width" -ge 900 ] || width=900
[ "$width" -ge $((${#title} * 9 + 80)) ] || width=$((${#title} * 9 + 80)) # room for the title
# A series is drawn only when it has a value somewhere (no empty Go column while developing).
cols=()
plot=
col=2
for s in 'libslp|#d95f02' 'Go|#00a5cf' 'Boost.Fiber|#7570b3' 'baseline|#b0b0b0'; do
    if awk -F '\t' -v c="$col" '$c != "-" { found = 1 } END { exit !found }' "$tmp/data"; then
        xtic=
        [ -n "$plot" ] || xtic=":xtic(1)"
        plot+="${plot:+, }\"$tmp/data\" using $col$xtic title \"${s%%|*}\" lc rgb \"${s#*|}\""
        cols+=("$col")
    fi
    col=$((col + 1))
done
# Each bar's value above it (bar i of k in a cluster sits at x + (i - (k-1)/2) / (k + gap)).
k=${#cols[@]}
for i in "${!cols[@]}"; do
    plot+=", \"$tmp/data\" using (\$0 + ($i - ($k - 1) / 2.0) / ($k + 1)):${cols[$i]}:(lab(\$${cols[$i]}))"
    plot+=" with labels rotate by 90 left offset 0,0.3 font \",9\" tc rgb \"#444444\" notitle"
done
case $svg in
*.png) terminal="pngcairo size $width,560 noenhanced font \"sans,11\" background \"#ffffff\"" ;;
*) terminal="svg size $width,560 dynamic noenhanced font \"sans,13\" background \"#ffffff\"" ;;
esac
mkdir -p "$(dirname "$svg")"
gnuplot <<EOF
set encoding utf8
set terminal $terminal
set output "$tmp/chart"
set title "$title" font ",15" offset 0,1.5
set datafile separator "\t"
set datafile missing "-"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#333333"
set boxwidth 1
set logscale y
set yrange [$ymin:$ymax]
set ytics ("0.1 ns" 0.1, "1 ns" 1, "10 ns" 10, "100 ns" 100, "1 µs" 1000, "10 µs" 10000, \
           "100 µs" 100000, "1 ms" 1000000, "10 ms" 10000000, "100 ms" 100000000)
set mytics 10
set grid ytics mytics lc rgb "#dddddd" lw 1, lc rgb "#f0f0f0" lw 1
set ylabel "time per operation (bar labels in ns, k = 1000 ns)"
set xtics nomirror rotate by -30 offset -1,0 scale 0
set ytics nomirror
set border 3
set tmargin 5
set key at graph 0.5, graph 1.01 center bottom horizontal maxrows 1 samplen 2 width 2
set label "baseline: raw corosensei resume+suspend beside yield, pthread mutex+condvar beside xthread_parked and signal, pthread mutex beside lock" \
    at screen 0.01, screen 0.025 left font ",10" tc rgb "#555555"
lab(v) = v >= 10000 ? sprintf("%.0fk", v / 1000) : v >= 1000 ? sprintf("%.1fk", v / 1000) : \
         v >= 10 ? sprintf("%.0f", v) : sprintf("%.1f", v)
set bmargin 7
plot $plot
EOF
mv "$tmp/chart" "$svg"
echo "bench-chart: wrote $svg ($rows rows from $in)"
