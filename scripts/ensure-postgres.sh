#!/usr/bin/env bash
# Start the local PostgreSQL cluster(s) if they are installed but stopped.
# Harmless when already running or when PostgreSQL is not installed at all.
# Prints the URL the tests should use, or nothing.
set -u
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  exit 0
fi
pg_lsclusters --no-header 2>/dev/null | while read -r version cluster port status _; do
  if [ "$status" != "online" ] && [ "$status" != "online,recovery" ]; then
    echo "starting PostgreSQL $version/$cluster" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start >&2 || true
  fi
done
port=$(pg_lsclusters --no-header 2>/dev/null | awk '$4 ~ /^online/ {print $3; exit}')
[ -n "$port" ] || exit 0
for _ in $(seq 1 30); do
  if pg_isready -q -h 127.0.0.1 -p "$port"; then
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    exit 0
  fi
  sleep 1
done
echo "PostgreSQL did not become ready on port $port" >&2
