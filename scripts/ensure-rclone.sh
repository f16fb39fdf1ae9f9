#!/usr/bin/env bash
# Install Debian's rclone for the S3 gateway's client tests (tests/s3) when it is
# missing and apt-get may run: as root, or through sudo without a password.
# Never fails: without rclone those tests skip locally, saying why, and fail in CI.
set -u
command -v rclone >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-rclone: rclone is missing and apt-get is not here; the rclone tests will skip" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "ensure-rclone: rclone is missing; install it with: sudo apt-get install rclone" >&2
  exit 0
fi
echo "ensure-rclone: installing Debian's rclone" >&2
export DEBIAN_FRONTEND=noninteractive
install=("${as_root[@]}" apt-get install -y -qq --no-install-recommends rclone)
"${install[@]}" >&2 2>/dev/null \
  || { "${as_root[@]}" apt-get update -qq >&2 && "${install[@]}" >&2; } \
  || echo "ensure-rclone: installing rclone failed; the rclone tests will skip" >&2
exit 0
