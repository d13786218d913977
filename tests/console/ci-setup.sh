#!/usr/bin/env bash
# Prepares a machine for the console's browser test (tests/console.rs; docs/console.md):
# installs Debian's `chromium` when it is missing. Idempotent: safe before every run.
#
# The test drives `chromium --headless` (--dump-dom and --screenshot) against a real
# `cms collect`; without a chromium it skips loudly, unless CMS_REQUIRE_CHROMIUM=1 (CI).
# fonts-dejavu-core gives the screenshots readable glyphs on a minimal system.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "console ci-setup: $(chromium --version 2>/dev/null || echo chromium) present"
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null \
        || { apt-get update -q >/dev/null \
             && apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
    echo "console ci-setup: installed $(chromium --version 2>/dev/null || echo chromium)"
else
    echo "console ci-setup: chromium missing and cannot install it (not root or no apt-get);" >&2
    echo "console ci-setup: the browser test will say so and skip unless CMS_REQUIRE_CHROMIUM is set" >&2
fi
