#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries for the warehouse test (tests/warehouse.rs)
# when they are missing. The test starts its own throwaway cluster (initdb + pg_ctl in a
# temporary directory, as the `postgres` user when run as root): no service is started
# here, and the package's own cluster, if apt creates one, is stopped and left alone.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "tests/pg/ci-setup.sh: $(ls -d /usr/lib/postgresql/*/bin | head -1) present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "tests/pg/ci-setup.sh: PostgreSQL is missing and this is not root: install the" \
        "'postgresql' package, or the warehouse test skips (fails with CMS_REQUIRE_POSTGRES=1)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package's postinst would start a cluster service; policy-rc.d 101 forbids that.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
ls -d /usr/lib/postgresql/*/bin/initdb
