#!/usr/bin/env bash
# Debian's chromium, for the real-browser check of the HTML report (tests/report/test_html.py fails
# without it when CI is set). Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
echo "installed $(dpkg-query -W -f='chromium ${Version}' chromium)"
