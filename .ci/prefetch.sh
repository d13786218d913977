#!/usr/bin/env bash
# The network-bound set-up of every CI stage, which .ci/run starts in the background while
# fmt and clippy keep the CPU busy. Every step is its stage's own idempotent set-up, so a
# stage run later (or by hand) installs only what is still missing, and a failure here is
# repeated, with its message, by the stage that needs the thing.
#
#   .ci/prefetch.sh DIR
#
# Two phases, each leaving DIR/PHASE.rc (its exit code) when it ends:
#   tests      what the test suite needs: FUSE, PostgreSQL, Chromium;
#   packaging  cargo-deb, cargo-fuzz and the Windows target (CPU: overlaps clippy and the
#              test build), then the packaging stage's apt packages and its debootstrap
#              tree (network and disk), all done before the tests start running in a
#              normal run.
# apt takes its lock: nothing else may run apt-get while this runs.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=$1
mkdir -p "$dir"
rm -f "$dir"/*.rc
t0=$(date +%s)
step() { echo; echo "--- prefetch: $1 (+$(($(date +%s) - t0)) s)"; }

phase_tests() {
    set -e
    step "FUSE (tests/lazyfs/ci-setup.sh)"
    bash tests/lazyfs/ci-setup.sh
    step "PostgreSQL (tests/pg/ci-setup.sh)"
    bash tests/pg/ci-setup.sh
    step "Chromium (tests/console/ci-setup.sh)"
    bash tests/console/ci-setup.sh
}
phase_packaging() {
    set -e
    step "cargo-fuzz (fuzz/ci.sh --setup)"
    bash fuzz/ci.sh --setup
    step "packaging set-up and the debootstrap tree (packaging/ci/run-packaging.sh)"
    bash packaging/ci/run-packaging.sh setup machine-cache
}

(phase_tests)
echo $? >"$dir/tests.rc"
(phase_packaging)
echo $? >"$dir/packaging.rc"
step "done"
