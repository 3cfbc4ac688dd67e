#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh [ARGS...] — the README's demo command: builds the examples in Release (tests off) in build/demo,
# installing cmake and gcc first when they are missing, then runs the EAPWT walkthrough. No arguments: the
# scripted run; -i: it reads keys from stdin. The build log goes to build/demo.log and is shown on failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/ensure-debs.sh" cmake make gcc libc6-dev

log=$repo/build/demo.log
mkdir -p "$repo/build"
if ! { cmake -S "$repo" -B "$repo/build/demo" -DCMAKE_BUILD_TYPE=Release \
    -DPOOLSIM_BUILD_TESTS=OFF -DPOOLSIM_BUILD_EXAMPLES=ON &&
    cmake --build "$repo/build/demo" --target eapwt --parallel "$(nproc)"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "demo.sh: the build failed (log: $log)" >&2
    exit 1
fi
exec "$repo/build/demo/examples/eapwt" "$@"
