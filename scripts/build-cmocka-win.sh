#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build-cmocka-win.sh BUILD_DIR — build cmocka for Windows (x86-64, static library) from Debian's source
# package and install it into BUILD_DIR/cmocka-win, for the mingw-w64 build of poolsim's tests. The deb-src
# entries are derived from this machine's own apt sources into a private sources file, and apt runs with
# private list and cache directories under BUILD_DIR, so the machine's apt configuration is left untouched
# (no root needed). Nothing is vendored: the source is fetched at test time and the result is cached.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
mkdir -p "$1"
build_dir=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=$build_dir/cmocka-win
work=$build_dir/cmocka-work

if [ -f "$prefix/include/cmocka.h" ] && [ -f "$prefix/lib/libcmocka.a" ]; then
    echo "build-cmocka-win: cached in $prefix"
    exit 0
fi
rm -rf "$work" "$prefix"
mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"

# ---- deb-src entries from the machine's deb entries ---------------------------------------------------
shopt -s nullglob
one_line=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
deb822=(/etc/apt/sources.list.d/*.sources)
shopt -u nullglob
for f in "${one_line[@]}"; do
    if [ -f "$f" ]; then
        sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
    fi
done >"$work/apt/sources.list"
if [ ${#deb822[@]} -gt 0 ]; then
    # deb822: one stanza per paragraph; keep the enabled ones whose Types include deb, as deb-src.
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Types:[^\n]*[[:space:]]deb([[:space:]]|$)/ && !/(^|\n)Enabled:[[:space:]]*no/ {
             sub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print
         }' "${deb822[@]}" >"$work/apt/parts/deb-src.sources"
fi
if ! grep -qs . "$work/apt/sources.list" "$work/apt/parts/deb-src.sources"; then
    echo "build-cmocka-win: no 'deb' entry in /etc/apt to derive a deb-src entry from" >&2
    exit 1
fi

apt_opts=(
    -o "Dir::Etc::SourceList=$work/apt/sources.list"
    -o "Dir::Etc::SourceParts=$work/apt/parts"
    -o "Dir::State::Lists=$work/apt/lists"
    -o "Dir::Cache=$work/apt/cache"
    -o "APT::Sandbox::User=$(id -un)"
)
echo "build-cmocka-win: apt-get update with private deb-src lists in $work/apt"
# A third-party repository without sources must not stop us; a missing cmocka source fails below.
apt-get "${apt_opts[@]}" -q update >"$work/apt-update.log" 2>&1 ||
    echo "build-cmocka-win: warning: apt-get update reported errors, see $work/apt-update.log"
echo "build-cmocka-win: apt-get source cmocka"
(cd "$work/src" && apt-get "${apt_opts[@]}" -q source cmocka >"$work/apt-source.log" 2>&1) || {
    cat "$work/apt-source.log" >&2
    exit 1
}
src=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'cmocka-*')
echo "build-cmocka-win: unpacked $(basename "$src") with its Debian patches"

# ---- Cross-build and install ---------------------------------------------------------------------------
# cmocka 1.1.5 always builds a DLL and adds the static library with WITH_STATIC_LIB; later releases build
# one library and follow BUILD_SHARED_LIBS.
cmake -S "$src" -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$repo/cmake/toolchain-mingw64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DWITH_STATIC_LIB=ON -DBUILD_SHARED_LIBS=OFF \
    -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF \
    >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --parallel >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }
cmake --install "$work/build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log" >&2; exit 1; }

# 1.1.5 installs the DLL, its import library and a config file naming that import library next to
# libcmocka-static.a: keep the static library alone, under the name that -lcmocka and find_library find.
if [ -f "$prefix/lib/libcmocka-static.a" ]; then
    mv "$prefix/lib/libcmocka-static.a" "$prefix/lib/libcmocka.a"
    rm -rf "${prefix:?}/lib/libcmocka.dll.a" "${prefix:?}/bin" "${prefix:?}/lib/cmake"
fi
echo "build-cmocka-win: installed $(basename "$src") for x86_64-w64-mingw32 into $prefix"
