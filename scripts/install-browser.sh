#!/usr/bin/env bash
# Make a headless Chromium available for the report's browser tests (tests/html, marker "browser").
#
# Installs Debian's chromium and chromium-driver with apt-get when they are missing and this
# runs as root; otherwise prints why the browser tests will be skipped. Idempotent: when the
# browser is already there it only says so. (Playwright's own browser download does not work
# on every machine; the tests drive this system Chromium through the playwright package.)
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium || have chromium-browser; then
  echo "install-browser: chromium present ($(command -v chromium || command -v chromium-browser))"
  exit 0
fi
if ! have apt-get; then
  echo "install-browser: SKIP - no chromium and no apt-get on this machine; browser tests will be skipped" \
       "(install Chromium and set EPOCHSCOPE_CHROMIUM=/path/to/chromium to run them)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: SKIP - chromium is missing and installing it needs root" \
       "(run: sudo apt-get install -y chromium chromium-driver); browser tests will be skipped"
  exit 0
fi
echo "install-browser: installing chromium and chromium-driver with apt-get (takes a minute or two)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/tmp/install-browser.log 2>&1; then
  echo "install-browser: SKIP - apt-get failed (see /tmp/install-browser.log); browser tests will be skipped"
  exit 0
fi
echo "install-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
