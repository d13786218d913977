#!/bin/bash
# The packaging stage of CI (issue #6): builds the Debian package and the Windows MSI
# and proves each installs, runs the service, collects from a simulated switch,
# upgrades and uninstalls cleanly. Called by .ci/run; runnable by hand as root:
#
#   packaging/ci/run-packaging.sh
#
# Stages, in order (each prints its duration; the first failure stops the run with a
# non-zero exit and a FAILED line; nothing is skipped silently):
#   setup          apt packages, cargo-deb, the rustup Windows target (installs only what
#                  is missing)
#   build-linux    cargo test --release --no-run: the release binaries the test suite runs
#                  (a no-op after .ci/run's test build; `cargo build --release --bins` would
#                  compile the tree again, its features not unified with the dev-dependencies')
#   deb            packaging/deb/build-deb.sh: the .deb, and a rebuilt one with a bumped
#                  version for the upgrade test
#   lintian        lintian --pedantic, failing on errors and warnings; overrides shown
#   unit-security  systemd-analyze security --offline=true of packaging/systemd/cms.service:
#                  prints the exposure score, fails above CMS_MAX_EXPOSURE (default 2.0)
#   machine-cache  packaging/ci/deb-machine-test.sh --prepare: the debootstrap tree, cached
#   deb-machine    packaging/ci/deb-machine-test.sh: debootstrap (cached) + systemd-nspawn
#                  boot; install, systemd-analyze verify, collect, upgrade, remove, purge
#   build-windows  cargo build --release --bins --target x86_64-pc-windows-gnu (mingw-w64)
#   msi            packaging/wix/build-msi.sh: the MSI, and one with a bumped version
#   wine-unit      the crate's unit tests for the Windows target, run under Wine
#   wine-msi       packaging/ci/wine-msi-test.sh: install, service RUNNING, collect, Stop,
#                  major upgrade, uninstall, under Wine
#
# With stage names as arguments, only those run, in the order given (.ci/prefetch.sh runs
# `setup machine-cache` in the background while the CPU is busy with clippy):
#
#   packaging/ci/run-packaging.sh setup machine-cache
#
# Environment: CMS_PKG_CACHE (default /var/cache/cms-ci) holds the debootstrap tree
# between runs. Needs root (debootstrap, systemd-nspawn, network namespaces).
set -uo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR=never WINEDEBUG=-all
out=target/packaging
mkdir -p "$out"
triple=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar

crate_version=$(sed -n 's/^version = "\([^"]*\)"/\1/p' Cargo.toml | head -1)
msi_version=$(echo "$crate_version" | sed -n 's/^\([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p')
msi_upgrade_version=$(echo "$msi_version" | awk -F. '{print $1 "." $2 "." $3 + 1}')

summary=()
total_start=$(date +%s.%N)

# stage NAME FUNCTION: runs FUNCTION in a subshell with `set -e`, prints its duration.
stage() {
    local name=$1 fn=$2 t0 t1 secs rc
    echo
    echo "==== packaging stage $name"
    t0=$(date +%s.%N)
    (set -e; "$fn")
    rc=$?
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    if [ "$rc" != 0 ]; then
        summary+=("$(printf '%-14s FAILED after %6ss' "$name" "$secs")")
        echo
        echo "==== packaging stage $name FAILED (exit $rc) after ${secs}s"
        print_summary
        echo "PACKAGING FAILED in stage $name" >&2
        exit 1
    fi
    summary+=("$(printf '%-14s ok     %6ss' "$name" "$secs")")
    echo "==== packaging stage $name: ok in ${secs}s"
}
print_summary() {
    local total
    total=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    echo
    echo "==== packaging stage timings"
    printf '  %s\n' "${summary[@]}"
    echo "  total          ${total}s"
}

apt_packages=(
    debootstrap systemd-container systemd lintian help2man man-db
    gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 msitools wixl wine wine64
    iproute2 util-linux
)
s_setup() {
    [ "$(id -u)" = 0 ] || { echo "run-packaging.sh needs root (debootstrap, systemd-nspawn, unshare)"; exit 1; }
    local missing=() p
    for p in "${apt_packages[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "apt packages: all present"
    fi
    if ! command -v cargo-deb >/dev/null; then
        cargo install cargo-deb --locked --version '^3.8'
    fi
    cargo deb --version
    [[ $'\n'"$(rustup target list --installed)"$'\n' == *$'\n'"$triple"$'\n'* ]] || rustup target add "$triple"
    wine --version
    wixl --version
}

# The packages hold the binaries the tests ran: `cargo test` builds target/release/cms,
# cms-linksim and cms-asterisk for the integration tests, with the dependencies' features
# unified with the dev-dependencies'; `cargo build --bins` would build other ones (and
# take minutes on CI for the same code).
s_build_linux() {
    cargo test --release --locked --no-run
    ls -l target/release/cms target/release/cms-linksim target/release/cms-asterisk
}

s_deb() {
    local deb v
    deb=$(packaging/deb/build-deb.sh --no-build | tail -1)
    echo "$deb" >"$out/deb-v1.path"
    v=$(dpkg-deb -f "$deb" Version)
    packaging/deb/build-deb.sh --no-build --deb-version "$v+ci1" --out "$out/upgrade-test" | tail -1 >"$out/deb-v2.path"
    echo "built $deb and, for the upgrade test, $(cat "$out/deb-v2.path")"
    dpkg-deb -I "$deb" | sed -n '/Package:/,$p'
    dpkg-deb -c "$deb" | awk '{print $1, $6}'
}
deb_v1() { cat "$out/deb-v1.path"; }
deb_v2() { cat "$out/deb-v2.path"; }

s_lintian() {
    # The gate: any error or warning not overridden fails. (lintian warns about running
    # as root; that is the CI sandbox.)
    lintian --pedantic --display-info --fail-on error,warning "$(deb_v1)"
    echo "lintian: no errors or warnings"
    # The overridden tags, each with its reason in packaging/deb/lintian-overrides.
    # A separate run: with --show-overrides lintian 2.116 exits 2 even when clean.
    echo "overridden (packaging/deb/lintian-overrides):"
    lintian --pedantic --display-info --show-overrides "$(deb_v1)" 2>/dev/null | grep '^O:' || true
}

s_unit_security() {
    local report score
    report=$(systemd-analyze security --offline=true --no-pager packaging/systemd/cms.service 2>&1)
    echo "$report" | grep -v '^✓' || true
    score=$(echo "$report" | sed -n 's/.*Overall exposure level for cms.service: \([0-9.]*\).*/\1/p')
    [ -n "$score" ] || { echo "could not read the exposure score"; exit 1; }
    echo "systemd-analyze security exposure score: $score (limit ${CMS_MAX_EXPOSURE:-2.0})"
    awk -v s="$score" -v m="${CMS_MAX_EXPOSURE:-2.0}" 'BEGIN {exit !(s <= m)}' ||
        { echo "exposure $score is above ${CMS_MAX_EXPOSURE:-2.0}: the unit lost hardening"; exit 1; }
    echo "(systemd-analyze verify runs on the installed unit in stage deb-machine)"
}

s_machine_cache() { packaging/ci/deb-machine-test.sh --prepare; }

s_deb_machine() { packaging/ci/deb-machine-test.sh "$(deb_v1)" "$(deb_v2)"; }

s_build_windows() { cargo build --release --locked --bins --target "$triple"; }

s_msi() {
    local m
    m=$(packaging/wix/build-msi.sh --no-build --version "$msi_version" | tail -1)
    echo "$m ($(stat -c %s "$m") bytes)"
    packaging/wix/build-msi.sh --no-build --version "$msi_upgrade_version" --out "$out/upgrade-test" | tail -1
    for t in Component ServiceInstall ServiceControl CustomAction Upgrade; do
        echo "-- MSI table $t"
        msiinfo export "$m" "$t" | tail -n +4
    done
}

s_wine_unit() {
    # Release profile: shares the dependencies built by build-windows instead of
    # compiling them all again for the dev profile (the Linux CI runs these tests in
    # the dev profile, with debug assertions).
    export WINEPREFIX=$PWD/$out/wine-unit-prefix WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
    packaging/ci/wine-prefix.sh "$WINEPREFIX"
    trap 'wineserver -k 2>/dev/null || true' EXIT
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine cargo test --release --locked --lib --target "$triple"
    wineserver -k 2>/dev/null || true
    rm -rf "$WINEPREFIX" # ~700 MB; kept only when the tests fail
}

s_wine_msi() {
    packaging/ci/wine-msi-test.sh "$out/cms-$msi_version-x64.msi" \
        "$out/upgrade-test/cms-$msi_upgrade_version-x64.msi" "$out/wine-msi-prefix"
}

all_stages=(setup build-linux deb lintian unit-security machine-cache deb-machine
    build-windows msi wine-unit wine-msi)
chosen=("$@")
[ ${#chosen[@]} -gt 0 ] || chosen=("${all_stages[@]}")
for name in "${chosen[@]}"; do
    [[ " ${all_stages[*]} " == *" $name "* ]] ||
        { echo "run-packaging.sh: no stage '$name' (stages: ${all_stages[*]})" >&2; exit 2; }
done

echo "packaging CI for cms $crate_version (MSI $msi_version, upgrade test $msi_upgrade_version): ${chosen[*]}"
for name in "${chosen[@]}"; do
    stage "$name" "s_${name//-/_}"
done
print_summary
echo "packaging: stages passed: ${chosen[*]}"
