#!/usr/bin/env bash
# Install Debian's chromium (for the console's browser tests) when it is missing.
# Only with apt-get and as root or with a working passwordless sudo; otherwise it
# does nothing and the browser tests skip locally (they fail in CI: CI=true).
# Never downloads a browser from anywhere but the system's package sources.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no apt-get; the browser tests will skip" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  echo "ensure-chromium: not root and no passwordless sudo; the browser tests will skip" >&2
  exit 0
fi
echo "ensure-chromium: installing chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2 \
  || { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends chromium chromium-driver >&2; } \
  || echo "ensure-chromium: apt-get failed; the browser tests will skip" >&2
exit 0
