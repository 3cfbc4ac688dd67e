#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-driver.sh [BUILD_DIR] — checks the sample driver that `cmake --preset driver` builds (default build
# directory: build/driver; examples/driver/CMakeLists.txt lists the files in driver-files.txt):
#   1. eapwt_checked.sys and eapwt_free.sys are PE32+ images for the native subsystem, entered at DriverEntry,
#      with base relocations, and their import tables name only ntoskrnl.exe and HAL.dll;
#   2. checked (POOLSIM_ENABLED=1): the driver's objects call the core and import no pool routine (what the
#      core itself references is checked by scripts/check-freestanding.sh; here it links with -nostdlib);
#   3. free (POOLSIM_ENABLED=0): no poolsim symbol in the driver's objects nor in the .sys, whose objects import
#      the WDK pool routines directly, and xtag.c's code, relocations and data are identical to xtag.c
#      compiled without its `#include <poolsim/shim.h>` line;
#   4. off, the shim defines no macro but POOLSIM_ENABLED, POOLSIM_DRIVER_INIT/UNLOAD, its include guard and
#      the POOL_FLAGS declarations mingw-w64's DDK lacks: no WDK routine is redefined (gcc -E -dM);
#   5. routines.c (every redirected routine): on, no object imports a pool routine; off, each is imported.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build/driver}
list=$build/examples/driver/driver-files.txt
[ -f "$list" ] || { echo "check-driver: $list not found (cmake --preset driver && cmake --build --preset driver)" >&2; exit 1; }
cc=x86_64-w64-mingw32-gcc
objdump=x86_64-w64-mingw32-objdump
nm=x86_64-w64-mingw32-nm

# files KEY: the paths listed for KEY in driver-files.txt.
files() { sed -n "s/^$1 //p" "$list"; }
fail() {
    echo "check-driver: FAILED: $*" >&2
    exit 1
}
checks=0
ok() {
    checks=$((checks + 1))
    echo "  ok  $*"
}

# Every routine the shim redirects; the ...Zero and ...Uninitialized wrappers are inline in the WDK, the others
# ntoskrnl.exe exports.
pool_routines='ExAllocatePool|ExAllocatePoolWithTag|ExAllocatePoolWithQuota|ExAllocatePoolWithQuotaTag|ExAllocatePoolWithTagPriority|ExAllocatePool2|ExAllocatePool3|ExAllocatePoolZero|ExAllocatePoolQuotaZero|ExAllocatePoolPriorityZero|ExAllocatePoolUninitialized|ExAllocatePoolQuotaUninitialized|ExAllocatePoolPriorityUninitialized|ExFreePool|ExFreePoolWithTag|ExFreePool2|ExQueryPoolBlockSize'

# ---- 1. The images ------------------------------------------------------------------------------------
for key in checked_sys free_sys; do
    sys=$(files $key)
    name=$(basename "$sys")
    [ -f "$sys" ] || fail "$sys was not built"
    headers=$("$objdump" -p "$sys")
    grep -qE '^Magic[[:space:]]+020b[[:space:]]+\(PE32\+\)' <<<"$headers" || fail "$name is not PE32+"
    grep -qE '^Subsystem[[:space:]]+00000001[[:space:]]+\(NT native\)' <<<"$headers" || fail "$name: subsystem is not native"
    entry=$(sed -nE 's/^AddressOfEntryPoint[[:space:]]+0*([0-9a-f]+)$/\1/p' <<<"$headers")
    base=$(sed -nE 's/^ImageBase[[:space:]]+0*([0-9a-f]+)$/\1/p' <<<"$headers")
    driver_entry=$("$nm" "$sys" | sed -nE 's/^0*([0-9a-f]+) T DriverEntry$/\1/p')
    if [ -z "$driver_entry" ] || [ $((0x$base + 0x$entry)) -ne $((0x$driver_entry)) ]; then
        fail "$name: the entry point is not DriverEntry"
    fi
    # The kernel loads a driver at any address: relocations must not be stripped (an image whose code is all
    # RIP-relative has none to keep).
    characteristics=$(sed -nE 's/^Characteristics[[:space:]]+0x([0-9a-f]+)$/\1/p' <<<"$headers")
    [ $((0x$characteristics & 1)) -eq 0 ] || fail "$name: relocations stripped"
    grep -qE '^[[:space:]]+DYNAMIC_BASE$' <<<"$headers" || fail "$name: not DYNAMIC_BASE"
    relocs=$(sed -nE 's/^Entry 5 [0-9a-f]+ ([0-9a-f]+) Base Relocation Directory.*/\1/p' <<<"$headers")
    dlls=$(sed -nE 's/^[[:space:]]*DLL Name: (.*)$/\1/p' <<<"$headers" | sort -u | paste -sd ' ')
    bad=$(sed -nE 's/^[[:space:]]*DLL Name: (.*)$/\1/p' <<<"$headers" | grep -vixE 'ntoskrnl\.exe|hal\.dll' || true)
    [ -z "$bad" ] || fail "$name imports from $bad"
    grep -qi 'DLL Name: ntoskrnl.exe' <<<"$headers" || fail "$name does not import ntoskrnl.exe"
    ok "$name: PE32+, native subsystem, entry DriverEntry, DYNAMIC_BASE with 0x$relocs bytes of relocations, imports only from: $dlls"
done

# undefined OBJECTS...: the symbols the objects reference and do not define.
undefined() {
    comm -23 <("$nm" -u "$@" | awk 'NF == 2 { print $2 }' | sort -u) \
        <("$nm" --defined-only "$@" | awk 'NF == 3 { print $3 }' | sort -u)
}

# ---- 2. Checked: the driver's calls go to the core ----------------------------------------------------
read -ra checked_objs <<<"$(files checked_objs)"
refs=$(undefined "${checked_objs[@]}")
if ! grep -qx poolsim_pool_alloc <<<"$refs" || ! grep -qx poolsim_pool_free <<<"$refs"; then
    fail "checked: the driver's objects do not call poolsim_pool_alloc/poolsim_pool_free"
fi
bad=$(grep -xE "__imp_($pool_routines)" <<<"$refs" || true)
[ -z "$bad" ] || fail "checked: the driver's objects import pool routines themselves: $bad"
ok "checked: xtag.c and driver.c call poolsim_pool_alloc/poolsim_pool_free and import no pool routine"


# ---- 3. Free: no poolsim in the driver, the same code as without the shim ----------------------------
read -ra free_objs <<<"$(files free_objs)"
free_sys=$(files free_sys)
bad=$("$nm" "${free_objs[@]}" "$free_sys" | grep -i poolsim || true)
[ -z "$bad" ] || fail "free: poolsim symbols in the driver: $bad"
refs=$(undefined "${free_objs[@]}")
for routine in ExAllocatePoolWithTag ExFreePoolWithTag ExFreePool; do
    grep -qx "__imp_$routine" <<<"$refs" || fail "free: the driver's objects do not import $routine"
done
ok "free: no poolsim symbol in the objects or the .sys; the objects import ExAllocatePoolWithTag, ExFreePoolWithTag, ExFreePool"

# dump OBJECT: code with relocations, then the contents of every section that is not debug information.
dump() {
    local sections
    sections=$("$objdump" -h "$1" | awk '/^ *[0-9]+ / { name = $2; getline; if ($0 !~ /DEBUGGING/) print "-j", name }')
    "$objdump" -d -r "$1" | tail -n +4
    # shellcheck disable=SC2086 # the -j options are words
    "$objdump" -s $sections "$1" | tail -n +4
    "$nm" "$1" | grep -v ' N '
}
with_shim=$(printf '%s\n' "${free_objs[@]}" | grep '/xtag\.c\.obj$')
without_shim=$(files noshim_objs)
if ! diff <(dump "$with_shim") <(dump "$without_shim") >"$build/xtag-shim.diff"; then
    cat "$build/xtag-shim.diff" >&2
    fail "free: xtag.c with <poolsim/shim.h> differs from xtag.c without it (diff above)"
fi
lines=$(dump "$with_shim" | wc -l)
ok "free: xtag.c's code, relocations, data and symbols are identical with and without <poolsim/shim.h> ($lines lines of objdump)"

# ---- 4. Off, the shim redefines no WDK routine -------------------------------------------------------
read -ra include_dirs <<<"$(files include)"
ddk=$(files ddk_include)
macros() {
    printf '#include <ntddk.h>\n%s\n' "$1" |
        "$cc" -E -dM -x c - "${include_dirs[@]/#/-I}" -isystem "$ddk" "${@:2}" | sort
}
added=$(comm -13 <(macros '') <(macros '#include <poolsim/shim.h>'))
allowed='#define (POOLSIM_SHIM_H|POOLSIM_ENABLED|POOLSIM_DRIVER_INIT\(\)|POOLSIM_DRIVER_UNLOAD\(\)|POOLSIM_POOL2_H|POOLSIM_POOL2_EXTENSION_|POOL_FLAG_[A-Z0-9_]+|POOL_EXTENDED_PARAMETER_[A-Z_]+|SECURE_POOL_FLAGS_[A-Z]+|MM_ANY_NODE_OK)( .*)?'
bad=$(grep -vxE "$allowed" <<<"$added" || true)
if [ -z "$added" ] || [ -n "$bad" ]; then
    fail "off, <poolsim/shim.h> defines more than allowed: $bad"
fi
grep -qE '^#define POOLSIM_DRIVER_INIT\(\) STATUS_SUCCESS$' <<<"$added" || fail "off, POOLSIM_DRIVER_INIT() is not STATUS_SUCCESS"
on=$(comm -13 <(macros '') <(macros '#include <poolsim/shim.h>' -DPOOLSIM_ENABLED=1))
for routine in ${pool_routines//|/ }; do
    grep -qE "^#define $routine\(" <<<"$on" || fail "on, <poolsim/shim.h> does not redirect $routine"
done
ok "off, the shim adds $(wc -l <<<"$added") macros, none over a WDK routine; on, it redirects all $(tr '|' '\n' <<<"$pool_routines" | wc -l) pool routines"

# ---- 5. Every redirected routine, both modes ----------------------------------------------------------
read -ra objs <<<"$(files routines_on_objs)"
refs=$(undefined "${objs[@]}")
bad=$(grep -xE "__imp_($pool_routines)" <<<"$refs" || true)
[ -z "$bad" ] || fail "routines.c on imports $bad"
read -ra objs <<<"$(files routines_off_objs)"
refs=$(undefined "${objs[@]}")
for routine in ExAllocatePool ExAllocatePoolWithTag ExAllocatePoolWithQuota ExAllocatePoolWithQuotaTag \
    ExAllocatePoolWithTagPriority ExAllocatePool2 ExAllocatePool3 ExFreePool ExFreePoolWithTag ExFreePool2 \
    ExQueryPoolBlockSize; do
    grep -qx "__imp_$routine" <<<"$refs" || fail "routines.c off does not import $routine"
done
ok "routines.c: on, every pool routine goes to the core; off, each is imported from the kernel"

echo "check-driver: $checks checks passed"
