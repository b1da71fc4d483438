#!/usr/bin/env bash
# Install Debian packages for CI jobs: the shared body of .ci/install-lab-packages.sh and
# .ci/install-test-packages.sh.
#
# Idempotent: packages already installed are left alone, and `apt-get update` runs only when
# something is missing.  Not root, or not a Debian/apt system: says why and exits 0, so CI jobs
# without them simply skip the tests that need them (those tests skip with a reason).  Exits 1
# when a package is still missing after the install.
#
# Usage: .ci/install-debian-packages.sh LABEL PACKAGE... [--no-install-recommends PACKAGE...]
#   LABEL names the set in messages ("lab" -> "install-lab-packages: ..."); the packages after
#   --no-install-recommends are installed with that option.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 LABEL PACKAGE... [--no-install-recommends PACKAGE...]" >&2
    exit 2
fi
LABEL=$1
shift
PACKAGES=()
PACKAGES_NO_RECOMMENDS=()
no_recommends=false
for arg in "$@"; do
    if [ "$arg" = --no-install-recommends ]; then
        no_recommends=true
    elif $no_recommends; then
        PACKAGES_NO_RECOMMENDS+=("$arg")
    else
        PACKAGES+=("$arg")
    fi
done
ALL=("${PACKAGES[@]}" "${PACKAGES_NO_RECOMMENDS[@]}")

say() { echo "install-$LABEL-packages: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "not root (uid $(id -u)): skipping; run as root to install: ${ALL[*]}"
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
mapfile -t need_nr < <(missing "${PACKAGES_NO_RECOMMENDS[@]}")
if [ ${#need[@]} = 0 ] && [ ${#need_nr[@]} = 0 ]; then
    say "all $LABEL packages already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
installing=("${need[@]}" "${need_nr[@]}")
say "installing: ${installing[*]}"
apt-get update -q
if [ ${#need[@]} -gt 0 ]; then
    apt-get install "${APT_OPTS[@]}" "${need[@]}"
fi
if [ ${#need_nr[@]} -gt 0 ]; then
    apt-get install "${APT_OPTS[@]}" --no-install-recommends "${need_nr[@]}"
fi
mapfile -t still < <(missing "${ALL[@]}")
if [ ${#still[@]} -gt 0 ]; then
    say "still missing after install: ${still[*]}"
    exit 1
fi
say "installed: ${installing[*]}"
