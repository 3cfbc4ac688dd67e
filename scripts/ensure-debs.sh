#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ensure-debs.sh PACKAGE... — installs the Debian packages of the list that are not installed yet, with
# one apt-get update first, and does nothing (no network, no root) when all are there. Shared by the
# README's commands (scripts/test.sh, scripts/demo.sh) so a fresh Debian machine needs no manual setup.
set -euo pipefail

missing=()
for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-debs: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-debs: not root; run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
