#!/bin/bash
# Creates a fresh, throw-away Wine prefix for the CI tests and leaves a persistent
# wineserver running in it (stop it with `WINEPREFIX=... wineserver -k`).
#
#   wine-prefix.sh PREFIX_DIR
#
# - Persistent wineserver: keeps services.exe, and with it the cms service, alive
#   between the separate wine commands of a test. Without it Wine tears its services
#   down as soon as the last ordinary process exits, and msiexec's StartServices fails.
# - Started only after `wineboot --init` has finished and its server has exited:
#   started earlier, the prefix ends up with two services.exe processes, and a service
#   created through one is unknown to the other (msiexec: "failed to open service", 1060).
# - bcryptprimitives.dll: Wine 8 lacks it, and Rust's std imports ProcessPrng from it;
#   a stub built from packaging/ci/bcryptprimitives-stub.c goes into this prefix only.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$(realpath -m "$1")
export WINEPREFIX=$prefix WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
WINEPREFIX=$prefix wineserver -k 2>/dev/null || true
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
wineboot --init >/dev/null 2>&1
wineserver -k 2>/dev/null || true
wineserver -w
wineserver -p
wineboot >/dev/null 2>&1
x86_64-w64-mingw32-gcc -O2 -shared -s -o "$prefix/drive_c/windows/system32/bcryptprimitives.dll" \
    packaging/ci/bcryptprimitives-stub.c -ladvapi32
echo "wine prefix $prefix ready ($(wine --version))"
