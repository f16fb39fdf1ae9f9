#!/usr/bin/env bash
# The TypeScript SDK's tests (sdks/typescript): node --test over the shared conformance
# scenario against real servers, plus its unit tests. Needs Node.js >= 20 and npm;
# installs Debian's nodejs + npm when they are missing and we are root.
# The server binary: $JUSTSTORAGE_BIN, default <repo>/.venv/bin/juststorage (make install).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null || [ "$(node_major)" -lt 20 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "test-typescript-sdk: installing nodejs and npm (Debian packages)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "test-typescript-sdk: Node.js >= 20 and npm are needed (found node $(node --version 2>/dev/null || echo none));" \
             "install them (e.g. apt-get install nodejs npm) or run as root to have this script do it" >&2
        exit 1
    fi
fi
if [ "$(node_major)" -lt 20 ]; then
    echo "test-typescript-sdk: Node.js >= 20 is needed, found $(node --version)" >&2
    exit 1
fi

export JUSTSTORAGE_BIN="${JUSTSTORAGE_BIN:-$ROOT/.venv/bin/juststorage}"
if [ ! -x "$JUSTSTORAGE_BIN" ]; then
    echo "test-typescript-sdk: no server binary at $JUSTSTORAGE_BIN (run make install, or set JUSTSTORAGE_BIN)" >&2
    exit 1
fi

cd sdks/typescript
npm ci --quiet --no-audit --no-fund
npm run --silent build
npm test
