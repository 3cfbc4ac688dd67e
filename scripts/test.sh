#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test.sh [--quick] [--no-windows] — the README's test command and CI's: installs the Debian packages it
# needs when they are missing, then runs each stage in its own build directory (CMakePresets.json): gcc and
# clang with warnings as errors, clang with ASan+UBSan, clang with ThreadSanitizer on every test but those
# labelled "notsan", the freestanding check of the core, the sample
# driver built as a .sys with and without poolsim and checked (scripts/check-driver.sh), a consumer
# project built against an install (CMake package and pkg-config), the libFuzzer harness against its model for
# FUZZ_SECONDS (default 60; scripts/fuzz.sh), the mingw-w64 cross build whose tests run under Wine with a
# cmocka built from Debian's source, and last every test under Valgrind's memcheck (scripts/valgrind.sh).
# It stops at the first failure and ends
# with one line: "poolsim: N passed, 0 failed". --quick runs the gcc stage only; --no-windows skips Wine.
set -Eeuo pipefail

quick=0
windows=1
for arg in "$@"; do
    case $arg in
    --quick) quick=1 ;;
    --no-windows) windows=0 ;;
    *)
        echo "usage: $0 [--quick] [--no-windows]" >&2
        exit 2
        ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
jobs=$(nproc)

packages=(cmake make gcc libc6-dev libcmocka-dev pkg-config)
if [ $quick -eq 0 ]; then
    packages+=(clang libclang-rt-dev mingw-w64 valgrind)
    if [ $windows -eq 1 ]; then
        packages+=(wine wine64 dpkg-dev)
    fi
fi
./scripts/ensure-debs.sh "${packages[@]}"
mkdir -p build

stage=setup
trap 'echo "test.sh: FAILED in stage $stage" >&2' ERR
total=0
summary=()

# run_preset PRESET LABEL [START [CTEST-ARGS...]]: configure, build and ctest one preset of
# CMakePresets.json; the stage's time counts from START (default: now).
run_preset() {
    local preset=$1 label=$2 start=${3:-$SECONDS} log=build/ctest-$1.log count
    shift $(($# < 3 ? $# : 3))
    stage=$label
    printf '\n== %s: configure and build (build/%s) ==\n' "$label" "$preset"
    cmake --preset "$preset"
    cmake --build --preset "$preset" --parallel "$jobs"
    ctest --preset "$preset" -j "$jobs" "$@" 2>&1 | tee "$log"
    count=$(sed -nE 's/.*tests passed, 0 tests failed out of ([0-9]+).*/\1/p' "$log")
    [ -n "$count" ] || { echo "test.sh: no ctest result line in $log" >&2; false; }
    total=$((total + count))
    printf '== %s: %d tests passed ==\n' "$label" "$count"
    summary+=("$(printf '%-13s %4d tests  %4ds' "$label" "$count" $((SECONDS - start)))")
}

run_preset dev gcc

if [ $quick -eq 0 ]; then
    run_preset clang clang
    run_preset asan asan+ubsan

    # ThreadSanitizer over every test but those with label "notsan": the fault trap of Force IRQL checking
    # and special pool longjmps out of signal handlers, which TSan does not follow (tests/CMakeLists.txt).
    run_preset tsan tsan "$SECONDS" -LE notsan

    stage=freestanding
    start=$SECONDS
    printf '\n== freestanding: core built with -ffreestanding -nostdinc ==\n'
    ./scripts/check-freestanding.sh
    summary+=("$(printf '%-13s %10s  %4ds' freestanding ok $((SECONDS - start)))")

    stage=driver
    start=$SECONDS
    printf '\n== driver: the sample .sys with poolsim and without (mingw-w64 kernel build, build/driver) ==\n'
    cmake --preset driver
    cmake --build --preset driver --parallel "$jobs"
    ./scripts/check-driver.sh build/driver
    summary+=("$(printf '%-13s %10s  %4ds' driver ok $((SECONDS - start)))")

    stage=consumer
    start=$SECONDS
    printf '\n== consumer: find_package(poolsim) and pkg-config against an install ==\n'
    rm -rf build/install build/consumer
    cmake --install build/dev --prefix build/install
    cmake -S tests/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$repo/build/install"
    cmake --build build/consumer
    build/consumer/poolsim_consumer
    pc_dir=$(dirname "$(find "$repo/build/install" -name poolsim.pc)")
    pc_flags=$(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs --static poolsim)
    echo "pkg-config --cflags --libs --static poolsim: $pc_flags"
    # shellcheck disable=SC2086 # the flags are words
    gcc tests/consumer/main.c $pc_flags -o build/consumer/poolsim_consumer_pc
    build/consumer/poolsim_consumer_pc
    summary+=("$(printf '%-13s %10s  %4ds' consumer ok $((SECONDS - start)))")

    # The libFuzzer harness against its model (docs/fuzzing.md): the seeds, then FUZZ_SECONDS (default 60) of
    # fuzzing with one process. A longer campaign: ./scripts/fuzz.sh SECONDS [WORKERS].
    stage=fuzz
    start=$SECONDS
    printf '\n== fuzz: fuzz_pool against its model (build/fuzz) ==\n'
    ./scripts/fuzz.sh "${FUZZ_SECONDS:-60}" 1 2>&1 | tee build/fuzz.log
    execs=$(sed -nE 's/^fuzz\.sh: ([0-9]+) executions.*/\1/p' build/fuzz.log)
    [ -n "$execs" ] || { echo "test.sh: no execution count in build/fuzz.log" >&2; false; }
    summary+=("$(printf '%-13s %10s  %4ds  (%s executions)' fuzz ok $((SECONDS - start)) "$execs")")

    if [ $windows -eq 1 ]; then
        stage=windows
        start=$SECONDS
        printf '\n== windows: cmocka for mingw-w64 from the Debian source package ==\n'
        ./scripts/build-cmocka-win.sh build/deps
        export POOLSIM_CMOCKA_WIN=$repo/build/deps/cmocka-win
        # The same prefix as the mingw test preset. No display is needed: the tests are console programs.
        export WINEPREFIX=$repo/build/wine WINEDEBUG=-all WINEDLLOVERRIDES=mscoree,mshtml=
        unset DISPLAY WAYLAND_DISPLAY
        if [ ! -f "$WINEPREFIX/system.reg" ]; then
            echo "test.sh: creating the Wine prefix $WINEPREFIX"
            # Without wine32, wineboot reports that it cannot start the 32-bit rundll32: harmless.
            wineboot --init >build/wineboot.log 2>&1 || { cat build/wineboot.log >&2; false; }
            wineserver --wait
        fi
        run_preset mingw windows "$start"
        wineserver --wait
    fi

    # ---- Valgrind (scripts/valgrind.sh): every test but the novalgrind ones under memcheck, zero errors,
    # every top-level process's heap freed. Its own build directory, build/valgrind; logs in build/valgrind/logs.
    stage=valgrind
    start=$SECONDS
    printf '\n== valgrind: the tests, the demo and the bench smoke run under memcheck (build/valgrind) ==\n'
    ./scripts/valgrind.sh 2>&1 | tee build/valgrind.log
    count=$(sed -nE 's/^valgrind: ([0-9]+) passed, 0 failed.*/\1/p' build/valgrind.log)
    [ -n "$count" ] || { echo "test.sh: no valgrind result line in build/valgrind.log" >&2; false; }
    total=$((total + count))
    summary+=("$(printf '%-13s %4d tests  %4ds' valgrind "$count" $((SECONDS - start)))")
fi

printf '\n== summary ==\n'
printf '  %s\n' "${summary[@]}"
echo "poolsim: $total passed, 0 failed"
