#!/usr/bin/env bash
# Prepares a machine for the lazy-filesystem tests (tests/lazyfs_tool.rs,
# tests/power_cut.rs; docs/lazyfs.md). Idempotent: safe to run before every test run.
#
# The tests mount with mount(2) as root through the `fuser` crate (no libfuse, no
# pkg-config needed at build time). They need /dev/fuse; fuse3 brings fusermount3, which
# is used to clean up a mount a crashed test left behind (`fusermount3 -u DIR`).
set -euo pipefail

if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi
if [ ! -e /dev/fuse ]; then
    echo "lazyfs ci-setup: /dev/fuse is missing (no FUSE module, or not passed to this container);" >&2
    echo "lazyfs ci-setup: the power-cut tests will say so and skip unless CMS_REQUIRE_FUSE is set" >&2
    exit 0
fi
if ! command -v fusermount3 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q fuse3 >/dev/null; }
    else
        echo "lazyfs ci-setup: fusermount3 missing and cannot install fuse3 (not root or no apt-get); the tests do not need it" >&2
    fi
fi
echo "lazyfs ci-setup: /dev/fuse present, $(command -v fusermount3 || echo 'no fusermount3')"
