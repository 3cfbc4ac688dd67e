#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh [--no-asan] [--no-plots] [--save] [poolbench arguments] — the real benchmark run (the test suite
# only runs a smoke pass). It builds poolbench in Release (build/release) and, for the ASan comparison, again
# with clang -fsanitize=address (build/bench-asan); runs the ASan build's malloc baseline on pair64 and
# live10k; runs the Release build on every workload and mode (or the ones named), handing it ASan's figures
# so its targets table can compare; and draws the plots with gnuplot (scripts/bench-plot.sh). Output in
# build/bench: results.txt (the tables), results.json, results.tsv, asan.json, ratio.svg, scale.svg. --save
# also copies them into bench/results/, where bench/README.md shows them. --ops, --runs, --seed and --shrink
# apply to both runs; other arguments go to the Release run only. bench/README.md explains every figure.
set -Eeuo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

asan=1 plots=1 save=0
common=() rest=()
while [ $# -gt 0 ]; do
    case $1 in
    --no-asan) asan=0 ;;
    --no-plots) plots=0 ;;
    --save) save=1 ;;
    --ops | --runs | --seed | --shrink)
        [ $# -ge 2 ] || { echo "bench.sh: $1 needs a value" >&2; exit 2; }
        common+=("$1" "$2")
        shift
        ;;
    *) rest+=("$1") ;;
    esac
    shift
done

packages=(cmake make gcc libc6-dev libcmocka-dev pkg-config)
[ $asan -eq 0 ] || packages+=(clang libclang-rt-dev)
[ $plots -eq 0 ] || packages+=(gnuplot-nox)
./scripts/ensure-debs.sh "${packages[@]}"

out=build/bench
mkdir -p "$out"
cmake --preset release >/dev/null
cmake --build --preset release --target poolbench --parallel "$(nproc)"

asan_args=()
if [ $asan -eq 1 ]; then
    cmake -S . -B build/bench-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
        -DPOOLSIM_SANITIZE=address -DPOOLSIM_BUILD_TESTS=OFF >/dev/null
    cmake --build build/bench-asan --target poolbench --parallel "$(nproc)"
    echo "== ASan's allocator (clang -fsanitize=address, the malloc baseline) =="
    ASAN_OPTIONS=detect_leaks=0 build/bench-asan/bench/poolbench --mode malloc ${common[@]+"${common[@]}"} \
        --json "$out/asan.json" --tsv "$out/asan.tsv" pair64 live10k
    while IFS=$'\t' read -r workload mode _ value _ _ _ rss; do
        [ "$mode" != malloc ] || asan_args+=(--asan "$workload=$value:$rss")
    done <"$out/asan.tsv"
    echo
fi

echo "== poolsim, mode by mode, against malloc =="
start=$SECONDS
build/release/bench/poolbench ${common[@]+"${common[@]}"} ${asan_args[@]+"${asan_args[@]}"} \
    --json "$out/results.json" --tsv "$out/results.tsv" ${rest[@]+"${rest[@]}"} | tee "$out/results.txt"
echo "bench.sh: the Release run took $((SECONDS - start)) s"

if [ $plots -eq 1 ]; then
    ./scripts/bench-plot.sh "$out/results.tsv" "$out"
fi
if [ $save -eq 1 ]; then
    mkdir -p bench/results
    for f in results.txt results.json asan.json ratio.svg scale.svg; do
        [ ! -f "$out/$f" ] || cp "$out/$f" bench/results/
    done
    echo "bench.sh: copied into bench/results/"
fi
echo "bench.sh: tables in $out/results.txt, JSON in $out/results.json, plots in $out/*.svg"
