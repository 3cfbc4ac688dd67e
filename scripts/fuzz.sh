#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh [SECONDS] [WORKERS] — builds the libFuzzer harness fuzz/fuzz_pool (clang, -fsanitize=fuzzer with
# ASan + UBSan, preset "fuzz", build/fuzz) and runs a campaign: first every seed of fuzz/corpus once, then
# SECONDS (default 120) of fuzzing by WORKERS processes (default 1, at most 2) that share the corpus
# build/fuzz/corpus (seeds plus what earlier campaigns found). It prints the executions run and exits non-zero
# on any crash, sanitizer report or oracle failure, naming the saved input (build/fuzz/artifacts/<run>/) and how to
# replay it. docs/fuzzing.md says more. FUZZ_MAX_LEN (default 2048) bounds the input size.
set -Eeuo pipefail

seconds=${1:-120}
workers=${2:-1}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [WORKERS]" >&2; exit 2 ;; esac
case $workers in 1 | 2) ;; *) echo "fuzz.sh: WORKERS is 1 or 2 (the machine has 2 cores)" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
./scripts/ensure-debs.sh cmake make clang libclang-rt-dev

printf '== fuzz: configure and build (build/fuzz) ==\n'
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --parallel "$workers"
bin=$repo/build/fuzz/fuzz/fuzz_pool
work=$repo/build/fuzz
corpus=$work/corpus
artifacts=$work/artifacts/$(date +%Y%m%d-%H%M%S) # this run's: earlier ones stay where they were
logs=$work/logs
mkdir -p "$corpus" "$artifacts"
rm -rf "$logs"
mkdir -p "$logs"
cp -n fuzz/corpus/* "$corpus/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
max_len=${FUZZ_MAX_LEN:-2048}
common=(-max_len="$max_len" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$artifacts/" -print_final_stats=1)

failed() {
    local log=$1
    echo "fuzz.sh: FAILED; the end of $log:" >&2
    grep -E 'ORACLE FAILURE|ERROR: (Address|Undefined|Leak)Sanitizer|runtime error|ERROR: libFuzzer' -A12 "$log" |
        head -60 >&2 || tail -40 "$log" >&2
    for a in "$artifacts"/*; do
        [ -e "$a" ] || continue
        echo "fuzz.sh: saved input $a; replay: $bin $a (FUZZ_POOL_TRACE=1 prints each operation)" >&2
    done
    exit 1
}

printf '\n== fuzz: the %d seeds of fuzz/corpus ==\n' "$(ls fuzz/corpus | wc -l)"
if ! "$bin" "${common[@]}" -runs=0 fuzz/corpus >"$logs/seeds.log" 2>&1; then
    failed "$logs/seeds.log"
fi

printf '\n== fuzz: %d s, %d worker(s), corpus build/fuzz/corpus (%d inputs) ==\n' "$seconds" "$workers" \
    "$(ls "$corpus" | wc -l)"
status=0
if [ "$workers" -eq 1 ]; then
    "$bin" "${common[@]}" -max_total_time="$seconds" "$corpus" >"$logs/fuzz-0.log" 2>&1 || status=$?
else
    # -jobs runs each worker as its own process with its own log (fuzz-N.log in the current directory).
    (cd "$logs" && "$bin" "${common[@]}" -max_total_time="$seconds" -jobs="$workers" -workers="$workers" \
        "$corpus" >"$logs/jobs.log" 2>&1) || status=$?
fi

runs=0
for log in "$logs"/fuzz-*.log; do
    if grep -qE 'ORACLE FAILURE|ERROR: (Address|Undefined|Leak)Sanitizer|runtime error|ERROR: libFuzzer' "$log"; then
        failed "$log"
    fi
    n=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
    [ -n "$n" ] || n=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -1)
    [ -n "$n" ] || { echo "fuzz.sh: no execution count in $log" >&2; tail -20 "$log" >&2; exit 1; }
    runs=$((runs + n))
done
if [ "$status" -ne 0 ] || ls "$artifacts" | grep -q .; then
    failed "$logs/fuzz-0.log"
fi
rmdir "$artifacts" 2>/dev/null || true
echo "fuzz.sh: $runs executions in $seconds s ($workers worker(s)), corpus $(ls "$corpus" | wc -l) inputs, no failure"
