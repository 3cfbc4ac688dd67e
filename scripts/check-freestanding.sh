#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-freestanding.sh — proves that the core (src/*.c and src/*.h, not src/prim/ nor src/wdm/) can build
# inside a kernel driver. Step 1 greps every core file's #include lines: only <stddef.h> <stdint.h>
# <stdbool.h> <stdarg.h> <limits.h>, poolsim's own public headers, MSVC's <intrin.h> (compiler intrinsics
# for the WDK build) and quoted local headers are allowed. Step 2 compiles each core .c file for
# x86_64-w64-mingw32 with -ffreestanding -nostdinc and only the compiler's own headers on the include path,
# so any CRT or OS header fails to be found, with warnings as errors and a 1 KiB stack-frame limit. Step 3
# checks what the compiled core needs from outside: only the platform contract (poolsim__prim_*, src/prim/prim.h)
# and memset/memcpy/memcmp/memmove, which every kernel exports, so it links with -nostdlib (the driver build,
# scripts/check-driver.sh, links it into a .sys that way).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cc=x86_64-w64-mingw32-gcc
command -v "$cc" >/dev/null || { echo "check-freestanding: $cc not found (apt-get install mingw-w64)" >&2; exit 1; }

shopt -s nullglob
core_c=(src/*.c)
core_all=(src/*.c src/*.h)
shopt -u nullglob
[ ${#core_c[@]} -gt 0 ] || { echo "check-freestanding: no src/*.c files" >&2; exit 1; }

# ---- Step 1: the include lines ---------------------------------------------------------------------------
allowed='[[:space:]]*#[[:space:]]*include[[:space:]]*(<(stddef|stdint|stdbool|stdarg|limits|intrin)\.h>|<poolsim/(poolsim|export|version)\.h>|"[^"]+")'
bad=$(grep -nE '^[[:space:]]*#[[:space:]]*include' "${core_all[@]}" | grep -vE "^[^:]+:[0-9]+:$allowed" || true)
if [ -n "$bad" ]; then
    echo "check-freestanding: FAILED: core files include headers a kernel build does not have:" >&2
    echo "$bad" >&2
    exit 1
fi

# ---- Step 2: freestanding compile ------------------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# version.h as CMake would generate it, from project(poolsim VERSION x.y.z).
version=$(sed -nE 's/^project\(poolsim VERSION ([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' CMakeLists.txt)
IFS=. read -r major minor patch <<<"$version"
mkdir -p "$tmp/gen/poolsim" "$tmp/end"
sed -e "s/@PROJECT_VERSION_MAJOR@/$major/" -e "s/@PROJECT_VERSION_MINOR@/$minor/" \
    -e "s/@PROJECT_VERSION_PATCH@/$patch/" -e "s/@PROJECT_VERSION@/$version/" \
    cmake/version.h.in >"$tmp/gen/poolsim/version.h"
# mingw-w64's gcc wraps its freestanding headers around the CRT's (#include_next <stddef.h> etc.): end
# that chain in empty files, so gcc's own definitions are all the core gets.
for h in stddef.h stdarg.h limits.h; do : >"$tmp/end/$h"; done
gcc_inc=$("$cc" -print-file-name=include)

failed=0
for f in "${core_c[@]}"; do
    if ! "$cc" -std=c99 -ffreestanding -nostdinc \
        -isystem "$gcc_inc" -isystem "$gcc_inc-fixed" -isystem "$tmp/end" \
        -I include -I "$tmp/gen" -I src -DPOOLSIM_KERNEL=1 \
        -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -Wframe-larger-than=1024 \
        -c "$f" -o "$tmp/$(basename "$f" .c).o"; then
        failed=$((failed + 1))
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "check-freestanding: FAILED: $failed of ${#core_c[@]} core files do not build freestanding" >&2
    exit 1
fi

# ---- Step 3: what the core references -----------------------------------------------------------------------
nm=x86_64-w64-mingw32-nm
objs=("$tmp"/*.o)
external=$(comm -23 <("$nm" -u "${objs[@]}" | awk 'NF == 2 { print $2 }' | sort -u) \
    <("$nm" --defined-only "${objs[@]}" | awk 'NF == 3 { print $3 }' | sort -u))
bad=$(grep -vxE 'poolsim__prim_[a-z_]+|memset|memcpy|memcmp|memmove' <<<"$external" || true)
if [ -n "$bad" ]; then
    echo "check-freestanding: FAILED: the core references symbols outside the platform contract:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "check-freestanding: ${#core_c[@]} core files build freestanding for x86_64-w64-mingw32 and reference only" \
    "$(grep -c '^poolsim__prim_' <<<"$external") poolsim__prim_* functions and $(grep -vc '^poolsim__prim_' <<<"$external") mem* functions"
