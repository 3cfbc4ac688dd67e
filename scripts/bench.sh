#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh [poolbench arguments] — the real benchmark run (the test suite only runs a smoke pass): builds
# poolbench in Release (build/release) and runs it, writing the table to stdout and the JSON to
# build/bench/results.json. Run it on a quiet machine; bench/README.md explains every figure.
set -Eeuo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
./scripts/ensure-debs.sh cmake make gcc libc6-dev libcmocka-dev pkg-config
cmake --preset release >/dev/null
cmake --build --preset release --target poolbench --parallel "$(nproc)"
mkdir -p build/bench
build/release/bench/poolbench --json build/bench/results.json "$@"
echo "bench.sh: JSON in build/bench/results.json"
