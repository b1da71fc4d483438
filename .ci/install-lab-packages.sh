#!/usr/bin/env bash
# Install the Debian packages the strongSwan lab needs (shared/lab/strongswan/README.md).
#
# Idempotent: packages already installed are left alone, and `apt-get update` runs only
# when something is missing.  Not root, or not a Debian/apt system: says why and exits 0,
# so CI jobs without the lab simply skip it (the lab tests then skip with a reason).
#
# Usage: .ci/install-lab-packages.sh
set -euo pipefail

PACKAGES=(strongswan-swanctl charon-systemd openssh-server sshpass nftables sudo iputils-ping iproute2)
# installed with --no-install-recommends
PACKAGES_NO_RECOMMENDS=(libcharon-extra-plugins libstrongswan-extra-plugins)

say() { echo "install-lab-packages: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
    say "not root (uid $(id -u)): skipping; run as root to install: ${PACKAGES[*]} ${PACKAGES_NO_RECOMMENDS[*]}"
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
    say "all lab packages already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
say "installing: ${need[*]} ${need_nr[*]}"
apt-get update -q
if [ ${#need[@]} -gt 0 ]; then
    apt-get install "${APT_OPTS[@]}" "${need[@]}"
fi
if [ ${#need_nr[@]} -gt 0 ]; then
    apt-get install "${APT_OPTS[@]}" --no-install-recommends "${need_nr[@]}"
fi
mapfile -t still < <(missing "${PACKAGES[@]}" "${PACKAGES_NO_RECOMMENDS[@]}")
if [ ${#still[@]} -gt 0 ]; then
    say "still missing after install: ${still[*]}"
    exit 1
fi
say "done"
