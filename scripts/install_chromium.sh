#!/usr/bin/env bash
# Install Debian's chromium for the browser tests and the web screenshot (idempotent).
# Needs root and apt-get (CI runs as root on Debian). Playwright's own browser download
# is not used: the tests point the Python playwright package at /usr/bin/chromium.
set -euo pipefail
if [[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install_chromium: needs root (apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "[setup] installing Debian's chromium for the browser tests" >&2
apt-get update -q >/dev/null
apt-get install -y -q chromium >/dev/null
/usr/bin/chromium --version >&2
