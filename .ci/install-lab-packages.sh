#!/usr/bin/env bash
# Install the Debian packages the strongSwan lab needs (shared/lab/strongswan/README.md).
# Not root, or not Debian: says why and exits 0 (the lab tests then skip with a reason).
# How: .ci/install-debian-packages.sh.
#
# Usage: .ci/install-lab-packages.sh
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-packages.sh" lab \
    strongswan-swanctl charon-systemd openssh-server sshpass nftables sudo iputils-ping iproute2 \
    --no-install-recommends libcharon-extra-plugins libstrongswan-extra-plugins
