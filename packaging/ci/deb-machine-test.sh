#!/bin/bash
# Fresh-machine test of the Debian package: a minimal Debian bookworm (debootstrap,
# cached), booted with systemd-nspawn (systemd as PID 1, private network with only
# loopback), in which packaging/ci/deb-machine-inside.sh installs, exercises, upgrades
# and purges the package.
#
#   deb-machine-test.sh OLD.deb NEW.deb
#   deb-machine-test.sh --prepare      only make sure the cached debootstrap tree exists
#                                      (.ci/prefetch.sh runs it in the background early)
#
# Cache: $CMS_PKG_CACHE (default /var/cache/cms-ci) keeps the pristine debootstrap tree;
# each run boots a throw-away copy under target/packaging/machine/. Needs root,
# debootstrap, systemd-container (systemd-nspawn), util-linux (nsenter).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${CMS_PKG_CACHE:-/var/cache/cms-ci}
suite=bookworm
include=systemd,systemd-sysv,dbus,adduser,procps,iproute2,man-db
key="$suite minbase $include"
base="$cache/$suite-minbase-v2"
work=$PWD/target/packaging/machine
root=$work/root
machine=cms-ci-$$

# The mirror this machine's own apt uses (deb822 URIs: or a one-line `deb` entry), so
# the test works wherever apt works; deb.debian.org otherwise.
mirror() {
    local m
    m=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)
    [ -n "$m" ] || m=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -m1 '/debian/\?$' || true)
    echo "${m:-http://deb.debian.org/debian}"
}

prepare_tree() {
    if [ -f "$base.stamp" ] && [ "$(cat "$base.stamp")" = "$key" ] && [ -x "$base/lib/systemd/systemd" ]; then
        echo "debootstrap tree: cached in $base"
    else
        m=$(mirror)
        echo "debootstrap tree: creating $base from $m (cached for later runs)"
        mkdir -p "$cache"
        rm -rf "$base.tmp" "$base" "$base.stamp"
        debootstrap --variant=minbase --include="$include" "$suite" "$base.tmp" "$m" >"$cache/debootstrap.log" 2>&1 || {
            tail -30 "$cache/debootstrap.log" >&2
            echo "FAIL: debootstrap $suite from $m (log: $cache/debootstrap.log)" >&2
            exit 1
        }
        # A pristine tree: no machine id, so every boot of a copy is a first boot.
        rm -f "$base.tmp/etc/machine-id" "$base.tmp/var/lib/dbus/machine-id"
        mv "$base.tmp" "$base"
        echo "$key" >"$base.stamp"
    fi
}

prepare_tree
if [ "${1:-}" = --prepare ]; then exit 0; fi
old_deb=$(realpath "$1")
new_deb=$(realpath "$2")

rm -rf "$work"
mkdir -p "$work"
cp -a --reflink=auto "$base" "$root"
echo cms-ci >"$root/etc/hostname"
: >"$root/etc/machine-id"
mkdir -p "$root/root/ci"
cp "$old_deb" "$new_deb" packaging/ci/deb-machine-inside.sh profiles/tiny.toml "$root/root/ci/"

# --register=no and --keep-unit: this host may have no systemd/machined to register
# with (nspawn otherwise fails: "Failed to open system bus"). --private-network: the
# container gets only its own loopback, so port 5001 is free and nothing leaves it.
systemd-nspawn --quiet --boot --directory="$root" --machine="$machine" \
    --register=no --keep-unit --private-network >"$work/console.log" 2>&1 &
nspawn=$!
cleanup() {
    local rc=$?
    if kill -0 "$nspawn" 2>/dev/null; then
        [ -n "${leader:-}" ] && nsenter -t "$leader" -m -u -i -n -p -r -w systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 60); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.5; done
        kill "$nspawn" 2>/dev/null || true
        wait "$nspawn" 2>/dev/null || true
    fi
    # The booted copy (~300 MB) is kept only for a post-mortem of a failed run.
    if [ "$rc" = 0 ] && ! kill -0 "$nspawn" 2>/dev/null; then rm -rf "$root"; else echo "container tree kept: $root (console: $work/console.log)" >&2; fi
}
trap cleanup EXIT

# The container's PID 1 is systemd: a descendant of nspawn whose comm is "systemd" and
# whose parent is not a systemd (that would be a user manager inside).
leader=
for _ in $(seq 60); do
    for p in $(pgrep -P "$nspawn" 2>/dev/null) $(pgrep -P "$(pgrep -P "$nspawn" | head -1)" 2>/dev/null); do
        if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ]; then leader=$p; break 2; fi
    done
    kill -0 "$nspawn" 2>/dev/null || break
    sleep 0.5
done
if [ -z "$leader" ]; then
    tail -40 "$work/console.log" >&2
    echo "FAIL: systemd-nspawn did not boot the container (console: $work/console.log)" >&2
    exit 1
fi
inside() { nsenter -t "$leader" -m -u -i -n -p -r -w "$@"; }
state=$(timeout 90 nsenter -t "$leader" -m -u -i -n -p -r -w systemctl is-system-running --wait 2>/dev/null || true)
echo "container booted (leader pid $leader): system $state"
case "$state" in
running | degraded) ;;
*)
    tail -40 "$work/console.log" >&2
    echo "FAIL: the container did not finish booting (state '$state')" >&2
    exit 1
    ;;
esac
[ "$state" = running ] || inside systemctl --failed --no-pager || true

inside /usr/bin/env -i TERM=dumb /bin/bash /root/ci/deb-machine-inside.sh \
    "/root/ci/$(basename "$old_deb")" "/root/ci/$(basename "$new_deb")" /root/ci/tiny.toml
