#!/usr/bin/env bash
# JustStorage against its peers (nginx WebDAV, OpenStack Swift) with one load client,
# bench/peers/objbench.py, back to back on this machine (bench/peers/README.md);
# then the ratios JustStorage / peer.
#
#   bash bench/peers.sh            # REPEAT=1 by default; REPEAT=3 like RESULTS.md
#   OBJBENCH_ARGS="--n 50 --large-count 1 --large-size 1MiB --list-n 100" PEERS_SETTLE_S=0 \
#       bash bench/peers.sh        # a quick check that every leg runs (figures mean nothing)
#
# Each target is freshly started on empty data under /tmp, measured, and stopped:
# JustStorage by the PID we started; nginx and Swift with their own stop scripts.
# Everything listens on 127.0.0.1 only. Results: $OUT (default
# /tmp/peers-results-js). Several minutes; the machine is shared and noisy, so read
# the ratios of one run, not lone absolute figures.
#
# No data is deleted while a target runs or just before one: on ext4 without a
# journal a new file's inode allocation steps over every inode freed in the last
# 60 s one by one (docs/performance.md has the profile). So leftovers of earlier
# runs are wiped first, then `sync` and $PEERS_SETTLE_S seconds (default 65) let
# that window pass, and every target's data is removed only at the end.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PEERS="${PEERS:-$HERE/peers}"
OUT="${OUT:-/tmp/peers-results-js}"
VENV="${VENV:-/tmp/peers-venv}"
REPEAT="${REPEAT:-1}"
JS_PY="$ROOT/.venv/bin/python"
JS_DATA_ALL=()  # removed at exit, not between targets (see above)
SETTLE_S="${PEERS_SETTLE_S:-65}"
read -r -a EXTRA <<<"${OBJBENCH_ARGS:-}"  # more objbench options, for every target
# More small-object sizes: per size, one more objbench pass of the small workload
# alone (`--workloads small --size S`) on each target, results in <target>-<run>-<S>.json;
# the kit's client is used as it is. Empty: 4 KiB only.
read -r -a SMALL_SIZES <<<"${PEERS_SMALL_SIZES-32KiB}"
# The peers' ports (their start scripts read the same variables).
export NGINX_PORT="${NGINX_PORT:-8081}" SWIFT_PROXY_PORT="${SWIFT_PROXY_PORT:-8080}"

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    for dir in "${JS_DATA_ALL[@]}"; do rm -rf "$dir"; done
    NGINX_WIPE=1 "$PEERS/nginx/stop.sh" >/dev/null 2>&1 || true
    SWIFT_WIPE=1 "$PEERS/swift/stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.txt

# ------------------------------------------------------------------ setup
if ! command -v nginx >/dev/null || ! command -v swift-proxy-server >/dev/null \
    || ! command -v memcached >/dev/null; then
    log "apt-get update (the start scripts then install what is missing)"
    apt-get update >/dev/null
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import aiohttp' 2>/dev/null; then
    log "creating $VENV with aiohttp for the load client"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q aiohttp
fi
PY="$VENV/bin/python"
[ -x "$JS_PY" ] || { log "$JS_PY missing: run make install first"; exit 1; }

{
    echo "nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); $(uname -r)"
    echo "client: $("$PY" --version 2>&1), aiohttp $("$PY" -c 'import aiohttp; print(aiohttp.__version__)')"
    echo "nginx: $(nginx -v 2>&1 || echo '(installed by start.sh)')"
} | tee "$OUT/machine.txt"

# ------------------------------------------------------------------ settle
NGINX_WIPE=1 "$PEERS/nginx/stop.sh"  # leftovers of an earlier run
SWIFT_WIPE=1 "$PEERS/swift/stop.sh"
sync
log "waiting ${SETTLE_S}s for ext4's recently-deleted-inode window to pass (PEERS_SETTLE_S)"
sleep "$SETTLE_S"

# ------------------------------------------------------------------ JustStorage
# Started, measured and stopped by bench/objbench_juststorage.py (the launcher the
# tests use); a failed run leaves no JSON, and the ratios say so.
for i in $(seq "$REPEAT"); do
    JS_DATA="$(mktemp -d /tmp/peers-juststorage.XXXXXX)"
    JS_DATA_ALL+=("$JS_DATA")
    sync
    (cd "$ROOT" && "$JS_PY" -m bench.objbench_juststorage --python "$PY" \
        --objbench "$PEERS/objbench.py" --data-root "$JS_DATA" --out "$OUT" --run "$i" -- "${EXTRA[@]}") || true
    for size in "${SMALL_SIZES[@]}"; do
        (cd "$ROOT" && "$JS_PY" -m bench.objbench_juststorage --python "$PY" \
            --objbench "$PEERS/objbench.py" --data-root "$JS_DATA" --out "$OUT" --run "$i-$size" \
            -- "${EXTRA[@]}" --workloads small --size "$size") || true
    done
done

# ------------------------------------------------------------------ nginx
sync
"$PEERS/nginx/start.sh"
for i in $(seq "$REPEAT"); do
    timeout 300 "$PY" "$PEERS/objbench.py" --target nginx --url "http://127.0.0.1:$NGINX_PORT" \
        --json "$OUT/nginx-$i.json" "${EXTRA[@]}" | tee "$OUT/nginx-$i.txt" || true
    for size in "${SMALL_SIZES[@]}"; do
        timeout 300 "$PY" "$PEERS/objbench.py" --target nginx --url "http://127.0.0.1:$NGINX_PORT" \
            --json "$OUT/nginx-$i-$size.json" "${EXTRA[@]}" --workloads small --size "$size" \
            | tee "$OUT/nginx-$i-$size.txt" || true
    done
done
"$PEERS/nginx/stop.sh"  # its data goes at exit

# ------------------------------------------------------------------ swift
sync
"$PEERS/swift/start.sh"
for i in $(seq "$REPEAT"); do
    timeout 400 "$PY" "$PEERS/objbench.py" --target swift \
        --auth-url "http://127.0.0.1:$SWIFT_PROXY_PORT/auth/v1.0" --user test:tester --key testing \
        --json "$OUT/swift-$i.json" "${EXTRA[@]}" | tee "$OUT/swift-$i.txt" || true
    for size in "${SMALL_SIZES[@]}"; do
        timeout 400 "$PY" "$PEERS/objbench.py" --target swift \
            --auth-url "http://127.0.0.1:$SWIFT_PROXY_PORT/auth/v1.0" --user test:tester --key testing \
            --json "$OUT/swift-$i-$size.json" "${EXTRA[@]}" --workloads small --size "$size" \
            | tee "$OUT/swift-$i-$size.txt" || true
    done
done
"$PEERS/swift/stop.sh"  # its data goes at exit

# ------------------------------------------------------------------ ratios
"$PY" "$HERE/peer_ratios.py" "$OUT"
