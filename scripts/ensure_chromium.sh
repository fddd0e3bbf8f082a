#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing and apt-get is usable.
# Without it the browser tests skip (locally) or fail (CI sets SUBSPACE_KIT_REQUIRE_BROWSER=1).
# The tests drive it through Python Playwright with executable_path=/usr/bin/chromium: never
# `playwright install` (it downloads browser builds from outside the package registries).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  for attempt in 1 2 3; do  # a mirror hiccup should not fail CI
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
      break
    fi
    echo "apt-get failed (attempt $attempt); retrying in 10 s" >&2
    sleep 10
  done
  /usr/bin/chromium --headless --no-sandbox --disable-gpu --version 2>/dev/null \
    || { echo "chromium was not installed" >&2; exit 1; }
else
  echo "NOTE: /usr/bin/chromium not found and apt-get needs root: browser tests will be skipped." >&2
  echo "      sudo apt-get install --no-install-recommends chromium   # to run them" >&2
fi
