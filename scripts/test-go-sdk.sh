#!/usr/bin/env bash
# The Go SDK's suite: gofmt, go vet and go test in sdks/go (the shared
# conformance scenario against real servers it starts on 127.0.0.1).
# Installs Debian's golang-go when `go` is missing (as root; otherwise it says
# how and fails). Standard library only: nothing is downloaded by `go`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v go >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-go-sdk: no Go toolchain; install Debian's golang-go (sudo apt-get install golang-go)" >&2
    exit 1
  fi
  echo "test-go-sdk: installing golang-go" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends golang-go >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends golang-go >&2; }
fi

cd "$root/sdks/go"
export GOCACHE="${GOCACHE:-$root/sdks/go/.gocache/build}"
export GOPATH="${GOPATH:-$root/sdks/go/.gocache/path}"
export GOPROXY=off GOFLAGS=-mod=readonly GOTOOLCHAIN=local GOWORK=off GO111MODULE=on
export JUSTSTORAGE_BIN="${JUSTSTORAGE_BIN:-$root/.venv/bin/juststorage}"
echo "test-go-sdk: $(go version)" >&2

unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
  echo "test-go-sdk: not gofmt-clean:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./... "$@"
