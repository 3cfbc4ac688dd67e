#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# valgrind.sh — every test, the demo (demo_eapwt: the walkthrough scripts/demo.sh runs), the driver demo and
# the bench smoke run under Valgrind's memcheck: the valgrind preset (gcc, Debug, no sanitizer) runs each
# through POOLSIM_TEST_LAUNCHER with --error-exitcode=1, --leak-check=full and definite, indirect and
# possible leaks counted as errors, one log per process in build/valgrind/logs. Then every top-level process
# must have freed its whole heap ("in use at exit: 0 bytes"), so nothing of poolsim's own memory survives
# poolsim_shutdown. Installs valgrind when it is missing; prints one line: "valgrind: N passed, ...".
#
# Not run: the tests labelled novalgrind (tests/CMakeLists.txt says why: Force IRQL checking single-steps
# with the x86 trap flag, which Valgrind does not emulate). No suppression file: none is needed.
#
# Forks: the fault sweep (src/wdm/sweep.c) runs each run in a forked child without exec. Valgrind follows a
# fork without being asked (--trace-children only concerns exec, and stays off: no test execs anything), so
# each child is checked too and writes its own log. A child with errors exits with --error-exitcode, and the
# sweep counts that run as crashed, failing its test. A child exits with the parent's heap in use (_exit,
# no shutdown), so the heap check applies to top-level processes only. One child crashes on purpose
# (test_fault_sweep_isolates_crashes: a NULL write in crashing_body); its log shows that one error.
set -Eeuo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
jobs=$(nproc)
"$repo/scripts/ensure-debs.sh" cmake make gcc libc6-dev libcmocka-dev pkg-config valgrind

logs=build/valgrind/logs
cmake --preset valgrind
cmake --build --preset valgrind --parallel "$jobs"
rm -rf "$logs"
mkdir -p "$logs"
ctest --preset valgrind -j "$jobs" 2>&1 | tee build/ctest-valgrind.log
count=$(sed -nE 's/.*tests passed, 0 tests failed out of ([0-9]+).*/\1/p' build/ctest-valgrind.log)
[ -n "$count" ] || { echo "valgrind.sh: no ctest result line in build/ctest-valgrind.log" >&2; exit 1; }
excluded=$(ctest --test-dir build/valgrind -N -L novalgrind | sed -nE 's/^ *Test +#[0-9]+: +([^ ]+).*/\1/p' |
    tr '\n' ' ')

# One line per process log: pid, parent pid, bytes in use at exit, errors, command.
summary=$(awk '
    FNR == 1 { if (pid != "") print pid, ppid, inuse, errors, cmd; pid = ""; ppid = ""; inuse = "?"; errors = "?"; cmd = "?" }
    /== Command: / { pid = $1; gsub(/=/, "", pid); sub(/.*== Command: /, ""); cmd = $0 }
    /== Parent PID: / { ppid = $NF }
    /in use at exit: / { inuse = $6; gsub(/,/, "", inuse) }
    /ERROR SUMMARY: / { errors = $4 }
    END { if (pid != "") print pid, ppid, inuse, errors, cmd }' "$logs"/vg.*.log)
bad=$(awk '
    { pids[$1] = 1; line[NR] = $0; ppid[NR] = $2; inuse[NR] = $3; errs[NR] = $4 }
    END {
        for (i = 1; i <= NR; i++)
            if (!(ppid[i] in pids) && (inuse[i] != "0" || errs[i] != "0"))
                print "  top-level process: " line[i]
    }' <<<"$summary")
procs=$(wc -l <<<"$summary")
children=$(awk '{ pids[$1] = 1; p[NR] = $2 } END { n = 0; for (i = 1; i <= NR; i++) n += (p[i] in pids); print n }' \
    <<<"$summary")
child_errors=$(awk '{ pids[$1] = 1; p[NR] = $2; e[NR] = $4 }
    END { n = 0; for (i = 1; i <= NR; i++) if ((p[i] in pids) && e[i] != "0") n++; print n }' <<<"$summary")
if [ -n "$bad" ]; then
    echo "valgrind.sh: processes with errors or heap still in use at exit (pid ppid bytes errors command):" >&2
    echo "$bad" >&2
    echo "valgrind.sh: their logs are $logs/vg.<pid>.log" >&2
    exit 1
fi
echo "valgrind: $count passed, 0 failed; $procs processes ($children forked sweep runs, $child_errors of them" \
    "with errors: the deliberate crash), every top-level heap freed; not run: ${excluded:-none}"
