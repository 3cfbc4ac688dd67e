#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench-plot.sh RESULTS.tsv OUTDIR — draws poolbench's figures as SVG with gnuplot (Debian's gnuplot-nox):
#   ratio.svg  time per operation / malloc's, one bar per mode (each one more feature), per workload; the
#              floor model's bar where it ran (pair64, live10k) and the ASan bar where scripts/bench.sh
#              measured it
#   scale.svg  ns per operation against live blocks (the scale workloads), one line per mode
# scripts/bench.sh calls it after each run; it reads only the TSV poolbench writes with --tsv.
set -Eeuo pipefail
[ $# -eq 2 ] || { echo "usage: $0 RESULTS.tsv OUTDIR" >&2; exit 2; }
tsv=$1 out=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/ensure-debs.sh" gnuplot-nox
mkdir -p "$out"

modes="tags +guards +sites +quarantine +special +forceirql floor asan"
workloads="pair64 live10k big dpc threads2 scale10k scale1m"

# table ROWS COLS FIELD KEY MATCH: a matrix of column FIELD of the TSV over its rows whose workload matches
# MATCH; rows named by column KEY (1: workload, 3: live blocks), in the order ROWS gives or, for ROWS "*", in
# the TSV's; columns in the order COLS gives, those without any figure left out; '-' where one is missing.
table() {
    awk -F'\t' -v rows="$1" -v cols="$2" -v field="$3" -v key="$4" -v match_="$5" '
        NR > 1 && $1 ~ match_ {
            v[$key, $2] = $field; has[$2] = 1
            if (!($key in seen)) { seen[$key] = 1; order[++n] = $key }
        }
        END {
            nr = rows == "*" ? n : split(rows, r, " ")
            if (rows == "*") for (i = 1; i <= n; i++) r[i] = order[i]
            nc = split(cols, c, " ")
            printf "x"; for (j = 1; j <= nc; j++) if (c[j] in has) printf "\t%s", c[j]; printf "\n"
            for (i = 1; i <= nr; i++) {
                if (!(r[i] in seen)) continue
                printf "%s", r[i]
                for (j = 1; j <= nc; j++) if (c[j] in has) printf "\t%s", ((r[i], c[j]) in v) ? v[r[i], c[j]] : "-"
                printf "\n"
            }
        }' "$tsv"
}

table "$workloads" "$modes" 5 1 . >"$out/ratio.dat"
table "*" "malloc tags +guards +sites +quarantine +special +forceirql" 4 3 '^scale' >"$out/scale.dat"

ncols=$(head -1 "$out/ratio.dat" | awk -F'\t' '{ print NF }')
gnuplot <<EOF
set terminal svg size 1000,520 dynamic noenhanced font "sans,12" background rgb "white"
set datafile separator "\t"
set datafile missing "-"
set output "$out/ratio.svg"
set title "poolsim: time per operation / malloc's (log scale); each bar to +forceirql switches one more feature on"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set logscale y 2
set yrange [0.25:*]
set ylabel "x malloc"
set arrow from graph 0, first 1 to graph 1, first 1 nohead dashtype 2 linewidth 1.5
set grid ytics
set key outside right top
plot for [i=2:$ncols] "$out/ratio.dat" using i:xtic(1) title columnheader(i)
EOF

if [ "$(wc -l <"$out/scale.dat")" -gt 1 ]; then
    gnuplot <<EOF
set terminal svg size 900,520 dynamic noenhanced font "sans,12" background rgb "white"
set datafile separator "\t"
set datafile missing "-"
set output "$out/scale.svg"
set title "ns per operation (free a random block, allocate 16..256 B) against live blocks"
set logscale xy
set xlabel "live blocks"
set ylabel "ns/op"
set format x "%.0s%c"
set grid
set key outside right top
plot for [i=2:$(head -1 "$out/scale.dat" | awk -F'\t' '{ print NF }')] "$out/scale.dat" using 1:i with linespoints pointsize 1.2 title columnheader(i)
EOF
fi
echo "bench-plot.sh: $out/ratio.svg $out/scale.svg"
