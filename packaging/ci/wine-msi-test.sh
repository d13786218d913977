#!/bin/bash
# Tests the Windows installer under Wine: install, the service reaches RUNNING and
# collects from cms-linksim on loopback and serves /livez, /readyz and /metrics on
# 127.0.0.1:9464 (docs/metrics.md), the install created the site key the default
# configuration names (no access for others in the DACL Wine reports; a backup made
# there carries its MAC, verified here and by the Linux cms with a copy of the key), a
# repair (REINSTALL=ALL) keeps the key, Stop takes the checkpointing shutdown path, a
# major upgrade keeps configuration, key and data, uninstall removes service and
# program files but leaves the data and the key.
#
#   wine-msi-test.sh OLD.msi NEW.msi PREFIX_DIR
#
# Needs the Linux build of cms (target/release/cms, stage build-linux) for the check
# that a key made by the MSI authenticates backups between a Windows and a Linux server.
#
# What Wine can and cannot prove about the key's access (docs/install.md says more):
# this Wine stores no security descriptors, only the Unix mode it maps a DACL to, and
# reports a DACL made from that mode; it runs everything as one user with the
# Administrators group and enforces nothing against other accounts; its icacls.exe is
# a stub, so the folder ACLs of cms.wxs are not applied. So the test checks that the
# key was created with a descriptor that lets no one else in (the DACL Wine reports
# names only SYSTEM, Administrators and Wine's own user, where a file the installer
# wrote without one grants Everyone read), not the exact DACL
# D:P(A;;FA;;;SY)(A;;FA;;;BA) that Windows reports.
# Runs in its own network namespace (only loopback: port 5001 is free and nothing
# leaves it) and its own throw-away Wine prefix (packaging/ci/wine-prefix.sh, which also
# adds the test-only bcryptprimitives.dll stub that is never part of the MSI).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${CMS_WINE_NETNS:-}" ]; then
    exec env CMS_WINE_NETNS=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

old_msi=$(realpath "$1")
new_msi=$(realpath "$2")
WINEPREFIX=$(realpath -m "$3")
export WINEPREFIX
export WINEDEBUG=-all WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
profile=$(realpath profiles/tiny.toml)
c=$WINEPREFIX/drive_c
pf="$c/Program Files/cms"
pd=$c/ProgramData/cms
conf='C:\ProgramData\cms\cms.toml'
cms_exe='C:\Program Files\cms\cms.exe'
key=$pd/site.key
linux_cms=$(realpath -m "${CARGO_TARGET_DIR:-target}/release/cms")
[ -x "$linux_cms" ] || { echo "FAIL (wine): no $linux_cms: build it first (stage build-linux)" >&2; exit 1; }

n=0
step() {
    n=$((n + 1))
    echo
    echo "---- [wine $n] $*"
}
fail() {
    echo "FAIL (wine): $*" >&2
    if [ -f "$pd/logs/cms.log" ]; then
        echo "---- C:\\ProgramData\\cms\\logs\\cms.log (tail):" >&2
        tail -30 "$pd/logs/cms.log" >&2
    fi
    exit 1
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...: polls every second; bounded.
    local secs=$1 what=$2
    shift 2
    local i
    for ((i = 0; i < secs; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    fail "$what: not true after ${secs}s"
}
svc_state() { wine sc query cms 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4}'; }
svc_is() { [ "$(svc_state)" = "$1" ]; }
status_json() { wine "$cms_exe" --config "$conf" status --json 2>/dev/null | tr -d '\r'; }
json_field() { status_json | sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" | head -1; }
has_complete_interval() { local v; v=$(json_field last_complete_interval); [ -n "$v" ] && [ "$v" != null ]; }
log_has() { [ -f "$pd/logs/cms.log" ] && [[ "$(cat "$pd/logs/cms.log")" == *"$1"* ]]; }
key_sum() { sha256sum "$key" | cut -d' ' -f1; }
# http_get PATH: the service's answer (status line, headers, body), bounded by 10 s.
http_get() {
    timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9464 &&
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3 &&
        cat <&3' _ "$1" | tr -d '\r'
}
key_kept() { # key_kept WHEN: the key is the one the first install created
    [ -f "$key" ] || fail "$1 removed C:\\ProgramData\\cms\\site.key"
    [ "$(key_sum)" = "$first_key_sum" ] || fail "$1 replaced C:\\ProgramData\\cms\\site.key"
    echo "site key kept by $1 (sha256 $first_key_sum)"
}
ran_in_log() { # ran_in_log LOGNAME ACTION: the MSI log shows the action ran and succeeded
    grep -a -q "$2" "$c/$1.log" || fail "the MSI log $c/$1.log does not show $2 running"
    ! grep -a -E "$2.*(Return value 3|returned 1603)" "$c/$1.log" >/dev/null || fail "$2 failed (log: $c/$1.log)"
}
msiexec() { # msiexec /i|/x FILE LOGNAME [PROPERTY=VALUE...]
    local rc=0
    wine msiexec "$1" "$(winepath -w "$2")" "${@:4}" /qn /l*v "C:\\$3.log" || rc=$?
    # 194 is 3010 (ERROR_SUCCESS_REBOOT_REQUIRED) seen through the 8-bit exit status.
    # Wine's RemoveExistingProducts reports it after the nested uninstall of the old
    # version during a major upgrade; accepted only if no file operation is actually
    # left pending for a reboot.
    if [ "$rc" = 194 ]; then
        local pending
        if pending=$(wine reg query 'HKLM\System\CurrentControlSet\Control\Session Manager' \
            /v PendingFileRenameOperations 2>/dev/null); then
            echo "$pending" >&2
            fail "msiexec $1 $(basename "$2"): reboot required with pending file operations"
        fi
        echo "msiexec $1 $(basename "$2"): 3010 (reboot requested), no pending file operations"
        rc=0
    fi
    if [ "$rc" != 0 ]; then
        grep -a -E "Return value 3|rror" "$c/$3.log" | tail -20 >&2 || true
        fail "msiexec $1 $(basename "$2") exited with $rc (log: $c/$3.log)"
    fi
}
linksim_pid=
cleanup() {
    local rc=$?
    [ -n "$linksim_pid" ] && kill "$linksim_pid" 2>/dev/null || true
    wineserver -k 2>/dev/null || true
    # The prefix (~700 MB) is kept only for a post-mortem of a failed run.
    if [ "$rc" = 0 ]; then rm -rf "$WINEPREFIX"; else echo "Wine prefix kept: $WINEPREFIX" >&2; fi
}
trap cleanup EXIT

step "fresh Wine prefix $WINEPREFIX"
packaging/ci/wine-prefix.sh "$WINEPREFIX" || fail "cannot create the Wine prefix"

step "install $(basename "$old_msi")"
msiexec /i "$old_msi" install-1
wait_for 30 "service cms RUNNING" svc_is RUNNING
wine sc query cms | tr -d '\r'
for f in "$pf/cms.exe" "$pf/cms-linksim.exe" "$pd/cms.toml"; do [ -f "$f" ] || fail "missing $f"; done
[ -d "$pd/data" ] || fail "missing C:\\ProgramData\\cms\\data"
wait_for 20 "log says the service runs" log_has "service running"
[ -f "$pd/data/cms.db" ] || fail "no database in C:\\ProgramData\\cms\\data"
[ ! -e "$pf/bcryptprimitives.dll" ] || fail "the test-only stub DLL was installed by the MSI"
echo "service RUNNING; log in C:\\ProgramData\\cms\\logs\\cms.log:"
head -5 "$pd/logs/cms.log"

step "the install created the site key the configuration names"
[ -f "$key" ] || fail "the install created no C:\\ProgramData\\cms\\site.key"
ran_in_log install-1 CreateSiteKey
[ "$(wc -c <"$key")" = 97 ] && grep -Eqx '[0-9a-f]{96}' "$key" ||
    fail "site.key is not 48 random bytes as hex and a newline: $(head -c 120 "$key" | od -c | head -3)"
first_key_sum=$(key_sum)
shown=$(wine "$cms_exe" --config "$conf" site-key show | tr -d '\r') || fail "cms site-key show"
echo "$shown"
# trustees DACL: the SIDs (or SDDL aliases) its ACEs name.
trustees() { grep -o ';[^;()]*)' <<<"$1" | tr -d ';)' | sort -u | tr '\n' ' '; }
dacl=$(sed -n 's/^  access //p' <<<"$shown")
for t in $(trustees "$dacl"); do
    case $t in
    SY | BA | S-1-5-21-0-0-0-1000) ;; # SYSTEM, Administrators, Wine's one user
    *) fail "site.key's DACL lets $t in: $dacl" ;;
    esac
done
# The control: a file the installer wrote without a descriptor, seen the same way.
mkdir -p "$c/cms-ci"
printf "data_dir = 'data'\r\nsite_key_file = '%s'\r\n" 'C:\Program Files\cms\install.md' >"$c/cms-ci/ctl.toml"
ctl=$(wine "$cms_exe" --config 'C:\cms-ci\ctl.toml' site-key show | tr -d '\r' | sed -n 's/^  access //p')
[[ " $(trustees "$ctl") " == *" WD "* ]] ||
    fail "the control file install.md shows no access for Everyone ($ctl): the DACL check proves nothing"
echo "install.md, written without the key's descriptor: $ctl"
key_id=$(sed -n 's/^  key id \([0-9a-f]\{16\}\)$/\1/p' <<<"$shown")
[ -n "$key_id" ] || fail "cms site-key show printed no key id"
echo "Unix side of the key (Wine maps the DACL to a mode; as root it reads anything): $(stat -c '%A %U' "$key")"
checked=$(wine "$cms_exe" --config "$conf" check-config | tr -d '\r') || fail "cms check-config"
grep -qx '  site key C:\\ProgramData\\cms\\site.key (backups authenticated)' <<<"$checked" ||
    fail "check-config does not say backups are authenticated: $checked"
grep 'site key' <<<"$checked"

step "collect from cms-linksim.exe on loopback"
# From a copy: a simulator still running from Program Files during the upgrade below
# would hold cms-linksim.exe open, and the installer would have to replace it at reboot.
cp "$pf/cms-linksim.exe" "$c/cms-ci/"
wine "$c/cms-ci/cms-linksim.exe" --profile "$(winepath -w "$profile")" --listen A=127.0.0.1:5001 \
    --speed 300 --duration 4h --wait-links 1 --wait-timeout 60 >"$WINEPREFIX/linksim.log" 2>&1 &
linksim_pid=$!
wait_for 60 "an interval is complete in the database" has_complete_interval
wine "$cms_exe" --config "$conf" status | tr -d '\r'

step "the service's HTTP endpoints, as on Linux (docs/metrics.md)"
live=$(http_get /livez) || fail "no answer from http://127.0.0.1:9464/livez"
head -1 <<<"$live" | grep -q '^HTTP/1.1 200' || fail "/livez: $(head -1 <<<"$live")"
ready=$(http_get /readyz) || fail "no answer from /readyz"
head -1 <<<"$ready" | grep -q '^HTTP/1.1 200' || fail "/readyz with the link in data transfer: $ready"
metrics=$(http_get /metrics) || fail "no answer from /metrics"
grep -qx 'cms_link_state{acd="1",state="data_transfer"} 1' <<<"$metrics" ||
    fail "/metrics does not show link 1 in data transfer: $(grep '^cms_link_state' <<<"$metrics")"
offered=$(sed -n 's/^cms_frames_received_total{acd="1",type="call_offered"} \([0-9]*\)$/\1/p' <<<"$metrics")
[ "${offered:-0}" -gt 0 ] || fail "/metrics counts no call_offered frame: $(grep '^cms_frames_received_total' <<<"$metrics" | head -5)"
echo "/livez and /readyz 200; /metrics: link 1 data_transfer, $offered call_offered frames"
before_complete=$(json_field last_complete_interval)
before_seq=$(json_field last_seq)

step "backup and restore, authenticated with the installed site key"
# Back up beside the running service, verify, restore into a scratch server that holds
# a copy of the key (as docs/operations.md says to copy it to the peer) and compare
# with the live database.
mkdir -p "$c/cms-ci-peer"
cp "$key" "$c/cms-ci-peer/site.key"
printf 'server_id = "cms-ci-peer"\r\ndata_dir = "data"\r\nsite_key_file = "site.key"\r\n[[acd]]\r\nid = 1\r\nswitch = "127.0.0.1:5001"\r\n' \
    >"$c/cms-ci-peer/peer.toml"
wine "$cms_exe" --config "$conf" backup --out 'C:\cms-ci-peer\ci.backup' || fail "cms backup"
verified=$(wine "$cms_exe" --config "$conf" verify 'C:\cms-ci-peer\ci.backup' | tr -d '\r') || fail "cms verify"
echo "$verified"
grep -q 'authenticated (MAC verified)' <<<"$verified" || fail "the backup's MAC was not verified with the installed key"
wine "$cms_exe" --config 'C:\cms-ci-peer\peer.toml' restore 'C:\cms-ci-peer\ci.backup' || fail "cms restore"
wine "$cms_exe" --config 'C:\cms-ci-peer\peer.toml' compare 'C:\ProgramData\cms\data\cms.db' ||
    fail "the restored copy differs from the live database"

step "a Linux server with a copy of the key verifies the backup; another key does not"
lin=$WINEPREFIX/linux-peer
mkdir -p "$lin/same" "$lin/other"
install -m 0600 "$key" "$lin/same/site.key"
for d in same other; do printf 'data_dir = "data"\nsite_key_file = "site.key"\n' >"$lin/$d/cms.toml"; done
"$linux_cms" --config "$lin/other/cms.toml" site-key init
"$linux_cms" --config "$lin/same/cms.toml" verify "$c/cms-ci-peer/ci.backup" | grep 'MAC verified' ||
    fail "the Linux cms does not verify the backup with a copy of the MSI's key"
if wrong=$("$linux_cms" --config "$lin/other/cms.toml" verify "$c/cms-ci-peer/ci.backup" 2>&1); then
    fail "a backup verified with a key other than the MSI's: $wrong"
fi
echo "$wrong"
[[ "$wrong" == *"bad MAC"*"file key id $key_id,"* ]] ||
    fail "the refusal does not name the installed key's id $key_id: $wrong"

step "repair (the installed MSI again, every file reinstalled): the site key is kept"
# What `msiexec /fa` does on Windows; Wine's msiexec /f fails (exit 1, no log), so the
# repair is asked for by its properties.
msiexec /i "$old_msi" repair REINSTALL=ALL REINSTALLMODE=vamus
ran_in_log repair CreateSiteKey
wait_for 30 "service cms RUNNING after the repair" svc_is RUNNING
key_kept "the repair"

step "service Stop takes the checkpointing shutdown path; start again"
wine sc stop cms >/dev/null || fail "sc stop cms"
wait_for 30 "service cms STOPPED" svc_is STOPPED
log_has "stop requested by the service control manager" || fail "the Stop control did not reach the collector"
log_has "stopping: checkpointing" || fail "no checkpoint on Stop"
grep -a "stop requested\|stopping: checkpointing\|INFO stopped" "$pd/logs/cms.log" | tail -3
wine sc start cms >/dev/null || fail "sc start cms"
wait_for 30 "service cms RUNNING again" svc_is RUNNING

step "upgrade to $(basename "$new_msi"): configuration and data kept"
printf '# local edit kept across upgrades (CI marker)\r\n' >>"$pd/cms.toml"
msiexec /i "$new_msi" install-2
wait_for 30 "service cms RUNNING after upgrade" svc_is RUNNING
uninstall_keys=$(wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | tr -d '\r')
products=$(grep -c 'DisplayName.*cms call-data collector' <<<"$uninstall_keys" || true)
[ "$products" = 1 ] || fail "$products cms products registered after the upgrade (want 1: major upgrade)"
new_version=$(msiinfo export "$new_msi" Property | tr -d '\r' | awk '$1 == "ProductVersion" {print $2}')
grep -q "DisplayVersion.*REG_SZ.*$new_version\$" <<<"$uninstall_keys" || fail "installed version is not $new_version"
echo "one cms product registered, version $new_version"
grep -q "CI marker" "$pd/cms.toml" || fail "the upgrade replaced the edited C:\\ProgramData\\cms\\cms.toml"
ran_in_log install-2 CreateSiteKey
key_kept "the upgrade"
[ "$(json_field last_seq)" -ge "$before_seq" ] || fail "data lost: last seq $(json_field last_seq) < $before_seq"
advanced() { [ "$(json_field last_complete_interval)" != "$before_complete" ]; }
wait_for 60 "collection resumed after the upgrade" advanced
wine "$cms_exe" --config "$conf" status | tr -d '\r'
kill "$linksim_pid" 2>/dev/null || true
linksim_pid=

step "uninstall: service and program files removed, data and configuration kept"
msiexec /x "$new_msi" uninstall
if wine sc query cms >/dev/null 2>&1 && [ -n "$(svc_state)" ]; then fail "service cms still registered"; fi
[ ! -e "$pf/cms.exe" ] || fail "cms.exe still installed"
[ -f "$pd/data/cms.db" ] || fail "uninstall removed the database"
[ -f "$pd/cms.toml" ] || fail "uninstall removed the configuration"
key_kept "the uninstall"
echo "uninstalled; C:\\ProgramData\\cms kept: $(cd "$pd" && find . -maxdepth 2 | sort | tr '\n' ' ')"

echo
echo "wine checks: all passed"
