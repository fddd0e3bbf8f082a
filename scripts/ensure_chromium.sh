#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing and apt-get is usable.
# Without it the browser tests skip (locally) or fail (CI sets SUBSPACE_KIT_REQUIRE_BROWSER=1).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "NOTE: /usr/bin/chromium not found and apt-get needs root: browser tests will be skipped." >&2
  echo "      sudo apt-get install --no-install-recommends chromium   # to run them" >&2
fi
