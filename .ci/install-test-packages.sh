#!/usr/bin/env bash
# Install the Debian packages some tests need beyond Python: `chromium`, for the headless
# screenshot of the audit's HTML report (tests/audit/test_html_screenshot.py).
# Not root, or not Debian: says why and exits 0 (those tests then skip with a reason).
# How: .ci/install-debian-packages.sh.
#
# Usage: .ci/install-test-packages.sh
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-packages.sh" test chromium
