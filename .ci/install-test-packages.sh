#!/usr/bin/env bash
# Install the Debian packages some tests need beyond Python: `chromium`, for the headless
# screenshot of the audit's HTML report (tests/audit/test_html_screenshot.py).
#
# Idempotent: packages already installed are left alone, and `apt-get update` runs only when
# something is missing.  Not root, or not a Debian/apt system: says why and exits 0, so CI jobs
# without it simply skip those tests (they skip with a reason).
#
# Usage: .ci/install-test-packages.sh
set -euo pipefail

PACKAGES=(chromium)

say() { echo "install-test-packages: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "not root (uid $(id -u)): skipping; run as root to install: ${PACKAGES[*]}"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    say "apt-get/dpkg-query not found (not a Debian-based system): skipping"
    exit 0
fi

missing() {   # prints the packages of "$@" that are not installed
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

mapfile -t need < <(missing "${PACKAGES[@]}")
if [ ${#need[@]} = 0 ]; then
    say "all test packages already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
say "installing: ${need[*]}"
apt-get update -q
apt-get install -y -q "${need[@]}"
mapfile -t still < <(missing "${PACKAGES[@]}")
if [ ${#still[@]} -gt 0 ]; then
    say "could not install: ${still[*]}"
    exit 1
fi
say "installed: ${need[*]}"
