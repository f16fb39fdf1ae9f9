#!/usr/bin/env bash
# Install Debian's Ceph daemons (radosgw, ceph-mon, ceph-osd) for the tests' second
# real S3 server (tests/support/radosgw.py) when they are missing and apt-get may run:
# as root, or through sudo without a password. Nothing is configured or started here:
# the tests start a throwaway one-node cluster of their own under $TMPDIR, with a
# configuration file of their own (no /etc/ceph, no services).
# Never fails: without the daemons the RGW tests skip locally, saying why, and fail in CI.
set -u
packages=(radosgw ceph-mon ceph-osd)
binaries=(radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool)
missing=0
for binary in "${binaries[@]}"; do
  command -v "$binary" >/dev/null 2>&1 || missing=1
done
[ "$missing" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-radosgw: Ceph's radosgw is missing and apt-get is not here; the RGW tests will skip" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "ensure-radosgw: Ceph's radosgw is missing; install it with:" \
    "sudo apt-get install ${packages[*]}" >&2
  exit 0
fi
echo "ensure-radosgw: installing Debian's ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
install=("${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}")
# apt-get and dpkg talk a lot even with -qq: their output is shown only on failure.
if ! "${install[@]}" >"$log" 2>&1 \
  && ! { "${as_root[@]}" apt-get update -qq >>"$log" 2>&1 && "${install[@]}" >>"$log" 2>&1; }; then
  tail -n 20 "$log" >&2
  echo "ensure-radosgw: installing ${packages[*]} failed; the RGW tests will skip" >&2
fi
rm -f "$log"
exit 0
