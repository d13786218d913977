#!/bin/bash
# Runs INSIDE the booted Debian container (systemd as PID 1), started by
# packaging/ci/deb-machine-test.sh through nsenter. Installs, exercises, upgrades and
# purges the cms package, and fails loudly on the first check that does not hold.
#
#   deb-machine-inside.sh OLD.deb NEW.deb PROFILE.toml
set -euo pipefail
old_deb=$1
new_deb=$2
profile=$3
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8
export SYSTEMD_PAGER='' SYSTEMD_COLORS=0

n=0
step() {
    n=$((n + 1))
    echo
    echo "---- [container $n] $*"
}
fail() {
    echo "FAIL (container): $*" >&2
    echo "---- journal of cms.service:" >&2
    journalctl -u cms --no-pager -n 60 >&2 || true
    exit 1
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.5 s; never waits unbounded.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local i
    for ((i = 0; i < secs * 2; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    fail "$what: not true after ${secs}s"
}
# journal_has TEXT: the cms.service journal contains TEXT. (Not `journalctl | grep -q`:
# with pipefail, grep exiting early makes journalctl die of SIGPIPE and the test lie.)
journal_has() {
    local log
    log=$(journalctl -u cms --no-pager -o cat)
    [[ $log == *"$1"* ]]
}
json_field() { # json_field KEY: first "KEY": value of `cms status --json`
    cms status --json | sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -1
}
has_complete_interval() { [ -n "$(json_field last_complete_interval)" ] && [ "$(json_field last_complete_interval)" != null ]; }
main_pid() { systemctl show -p MainPID --value cms; }
check_runs_as_cms() {
    local pid user
    pid=$(main_pid)
    [ "$pid" -gt 0 ] || fail "cms.service has no main process"
    user=$(ps -o user= -p "$pid" | tr -d ' ')
    [ "$user" = cms ] || fail "the collector runs as '$user', not cms"
    echo "main process $pid runs as user $user"
}

step "install $(basename "$old_deb") on a fresh system"
dpkg -i "$old_deb"
wait_for 30 "cms.service active" systemctl is-active --quiet cms
systemctl --no-pager status cms | head -12 || true
check_runs_as_cms
# Type=notify: `active` is only reached after the collector sent READY=1 (database open,
# checkpoint recovered); before that the unit is `activating`.
[ "$(systemctl show -p Type --value cms)" = notify ] || fail "unit is not Type=notify"
[ "$(systemctl show -p ActiveState --value cms)" = active ] || fail "cms.service not active (not ready)"
journal_has "collector ready" || fail "no 'collector ready' in the journal"
echo "cms.service is active (READY=1 received)"

step "user, directories, conffile, documentation"
getent passwd cms | grep -q ':/var/lib/cms:/usr/sbin/nologin$' || fail "user cms: $(getent passwd cms)"
getent group cms >/dev/null || fail "no group cms"
[ "$(stat -c '%U:%G %a' /var/lib/cms)" = "cms:cms 700" ] || fail "/var/lib/cms is $(stat -c '%U:%G %a' /var/lib/cms)"
[ -f /var/lib/cms/cms.db ] || fail "no database in /var/lib/cms"
[[ "$(dpkg-query -W -f='${Conffiles}\n' cms)" == *" /etc/cms/cms.toml "* ]] || fail "/etc/cms/cms.toml is not a conffile"
for f in /usr/bin/cms /usr/bin/cms-linksim /usr/share/man/man1/cms.1.gz /usr/share/man/man1/cms-linksim.1.gz \
    /usr/share/doc/cms/changelog.Debian.gz /usr/share/doc/cms/copyright /usr/share/doc/cms/install.md; do
    [ -f "$f" ] || fail "missing $f"
done
[ "$(stat -c '%U:%G %a' /etc/cms/site.key)" = "cms:cms 600" ] ||
    fail "/etc/cms/site.key is $(stat -c '%U:%G %a' /etc/cms/site.key 2>&1), not cms:cms 600"
[ "$(tr -d '\n' </etc/cms/site.key | wc -c)" -eq 96 ] || fail "/etc/cms/site.key is not 48 bytes of hex"
key_sum=$(sha256sum </etc/cms/site.key)
scratch_cc=$(mktemp)
cms --config /etc/cms/cms.toml check-config | tee "$scratch_cc"
grep -q "site key /etc/cms/site.key (backups authenticated)" "$scratch_cc" ||
    fail "check-config does not use the site key created at install"
echo "user cms, /var/lib/cms cms:cms 0700, site key cms:cms 0600, conffile and docs in place"

step "systemd-analyze verify and security of the installed unit"
out=$(systemd-analyze verify /usr/lib/systemd/system/cms.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "systemd-analyze verify: clean"
systemd-analyze security --no-pager cms | tail -1
systemd-analyze security --offline=true /usr/lib/systemd/system/cms.service | tail -1

step "collect from cms-linksim on loopback (profile $(basename "$profile"))"
# The default configuration connects ACD 1 to 127.0.0.1:5001. 4 h of switch time at
# 300x is 48 s: enough to close intervals before, during and after the upgrade below.
systemd-run --quiet --unit=cms-linksim-ci --collect --property=Type=exec \
    /usr/bin/cms-linksim --profile "$profile" --listen A=127.0.0.1:5001 \
    --speed 300 --duration 4h --wait-links 1 --wait-timeout 60
wait_for 45 "an interval is complete in the database" has_complete_interval
cms status
cms gaps
before_complete=$(json_field last_complete_interval)
before_seq=$(json_field last_seq)
echo "collected: last complete interval $before_complete, last seq $before_seq"

step "backup and restore"
# Back up the live database while the service runs (as the service user, who owns
# it), verify the file, restore it into a scratch server's data directory and
# compare: every interval complete in both must agree.
scratch=$(mktemp -d /var/tmp/cms-restore.XXXXXX)
chown cms:cms "$scratch"
runuser -u cms -- cms --config /etc/cms/cms.toml backup --out "$scratch/ci.backup"
[ -s "$scratch/ci.backup" ] || fail "backup wrote nothing"
runuser -u cms -- cms verify "$scratch/ci.backup" | tee "$scratch/verify.txt"
grep -q "authenticated (MAC verified)" "$scratch/verify.txt" || fail "the backup is not authenticated by default"
printf 'server_id = "cms-ci-peer"\ndata_dir = "%s/data"\nsite_key_file = "/etc/cms/site.key"\n[[acd]]\nid = 1\nswitch = "127.0.0.1:5001"\n' \
    "$scratch" >"$scratch/peer.toml"
runuser -u cms -- cms --config "$scratch/peer.toml" restore "$scratch/ci.backup"
runuser -u cms -- cms --config "$scratch/peer.toml" status
runuser -u cms -- cms --config "$scratch/peer.toml" compare /var/lib/cms/cms.db ||
    fail "the restored copy differs from the live database"
rm -rf "$scratch"

step "watchdog: a collector stopped with SIGSTOP is restarted by systemd"
[ "$(systemctl show -p WatchdogUSec --value cms)" = 1min ] ||
    fail "cms.service has WatchdogUSec=$(systemctl show -p WatchdogUSec --value cms), not 1min"
journal_has "systemd watchdog on" || fail "the collector did not start its watchdog"
# A drop-in shortens the watchdog to 5 s so the test waits seconds, not a minute; it
# is removed again below. The mechanism is the same at any WatchdogSec.
mkdir -p /run/systemd/system/cms.service.d
printf '[Service]\nWatchdogSec=5s\n' >/run/systemd/system/cms.service.d/ci-watchdog.conf
systemctl daemon-reload
systemctl restart cms
wait_for 30 "cms.service active with the 5 s watchdog" systemctl is-active --quiet cms
stopped_pid=$(main_pid)
# Alive while not stopped: three watchdog periods pass without a restart.
sleep 15
[ "$(main_pid)" = "$stopped_pid" ] || fail "the watchdog restarted a collector that was not stalled"
kill -STOP "$stopped_pid"
echo "collector $stopped_pid stopped with SIGSTOP"
restarted() { [ "$(main_pid)" != "$stopped_pid" ] && [ "$(main_pid)" -gt 0 ] && systemctl is-active --quiet cms; }
# 5 s watchdog + 10 s TimeoutAbortSec (SIGABRT waits on a stopped process) + 2 s
# RestartSec + start-up.
wait_for 45 "systemd to restart the stopped collector" restarted
journal_has "Watchdog timeout" || fail "no watchdog timeout in the journal"
echo "restarted by the watchdog: main process $(main_pid)"
rm /run/systemd/system/cms.service.d/ci-watchdog.conf
systemctl daemon-reload
systemctl restart cms
wait_for 30 "cms.service active after the watchdog test" systemctl is-active --quiet cms

step "reinstall the same version (maintainer scripts are idempotent)"
echo "# local edit kept across upgrades (CI marker)" >>/etc/cms/cms.toml
dpkg -i "$old_deb"
wait_for 30 "cms.service active after reinstall" systemctl is-active --quiet cms
check_runs_as_cms

step "upgrade to $(basename "$new_deb"): restarts the service, keeps data and configuration"
old_pid=$(main_pid)
dpkg -i --force-confold "$new_deb"
echo "installed: $(dpkg-query -W -f='${Version}' cms)"
[ "$(dpkg-query -W -f='${Version}' cms)" = "$(dpkg-deb -f "$new_deb" Version)" ] || fail "upgrade did not install the new version"
wait_for 30 "cms.service active after upgrade" systemctl is-active --quiet cms
new_pid=$(main_pid)
[ "$new_pid" != "$old_pid" ] || fail "the service was not restarted by the upgrade (pid $old_pid)"
echo "restarted: pid $old_pid -> $new_pid"
check_runs_as_cms
grep -q "CI marker" /etc/cms/cms.toml || fail "the upgrade lost the local edit of /etc/cms/cms.toml"
[ "$(sha256sum </etc/cms/site.key)" = "$key_sum" ] || fail "the reinstall or upgrade replaced /etc/cms/site.key"
[ "$(json_field last_seq)" -ge "$before_seq" ] || fail "data lost: last seq $(json_field last_seq) < $before_seq"
advanced() { [ "$(json_field last_complete_interval)" != "$before_complete" ]; }
wait_for 45 "collection resumed after the upgrade (an interval after $before_complete)" advanced
cms status
echo "collection resumed: last complete interval $(json_field last_complete_interval)"
systemctl stop cms-linksim-ci 2>/dev/null || true

step "remove: service stopped cleanly, configuration, user and data kept"
dpkg -r cms
journal_has "stopping: checkpointing" || fail "no clean shutdown (checkpoint) in the journal"
! systemctl is-active --quiet cms || fail "cms.service still active after remove"
[ ! -e /usr/bin/cms ] || fail "/usr/bin/cms still there after remove"
[ -f /etc/cms/cms.toml ] || fail "remove deleted the configuration"
getent passwd cms >/dev/null || fail "remove deleted the user"
echo "removed; /etc/cms/cms.toml, user cms and /var/lib/cms kept"

step "purge: configuration and user removed, data kept"
dpkg -P cms
[ ! -e /etc/cms ] || fail "/etc/cms still there after purge"
! getent passwd cms >/dev/null || fail "user cms still there after purge"
! getent group cms >/dev/null || fail "group cms still there after purge"
[ -f /var/lib/cms/cms.db ] || fail "purge removed the database without CMS_PURGE_DATA=yes"
[ ! -e /usr/lib/systemd/system/cms.service ] || fail "unit still installed"
! [ -e /etc/systemd/system/multi-user.target.wants/cms.service ] || fail "unit still enabled"
echo "purged; /var/lib/cms/cms.db kept"

step "install again over the kept data, then purge with CMS_PURGE_DATA=yes"
dpkg -i "$new_deb"
wait_for 30 "cms.service active on the kept data" systemctl is-active --quiet cms
check_runs_as_cms
[ "$(stat -c '%U' /var/lib/cms/cms.db)" = cms ] || fail "kept database not re-owned by the new cms user"
[ -n "$(json_field last_complete_interval)" ] || fail "the kept data is not visible after reinstall"
CMS_PURGE_DATA=yes dpkg -P cms
[ ! -e /var/lib/cms ] || fail "CMS_PURGE_DATA=yes did not remove /var/lib/cms"
echo "purged with data"

echo
echo "container checks: all passed"
