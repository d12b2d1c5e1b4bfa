#!/usr/bin/env bash
# A real Unleash server (npm package unleash-server, pinned in scripts/unleash/package-lock.json) on
# loopback, against the local PostgreSQL, in its own database. Used by the flag tests and for trying
# the `unleash` flag provider by hand. Authentication type "none": never expose it.
#
#   scripts/unleash-server.sh install   # npm ci into $UNLEASH_HOME (skipped when already installed)
#   scripts/unleash-server.sh start     # install if needed, start, wait until healthy (no-op if running)
#   scripts/unleash-server.sh stop      # stop the server this script started
#   scripts/unleash-server.sh status    # exit 0 when it answers /health
#   scripts/unleash-server.sh url       # print its base URL
#
# Environment: UNLEASH_PORT (4247), UNLEASH_HOME (<repo>/.unleash, git-ignored), UNLEASH_DB_HOST
# (127.0.0.1), UNLEASH_DB_PORT (5432), UNLEASH_DB_USER (postgres), UNLEASH_DB_PASSWORD (empty),
# UNLEASH_DB_NAME (unleash_test; created when missing), UNLEASH_START_TIMEOUT seconds (120).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SOURCE="$REPO/scripts/unleash"
HOME_DIR="${UNLEASH_HOME:-$REPO/.unleash}"
PORT="${UNLEASH_PORT:-4247}"
URL="http://127.0.0.1:$PORT"
PID_FILE="$HOME_DIR/server-$PORT.pid"
LOG_FILE="$HOME_DIR/server-$PORT.log"

say() { echo "unleash-server: $*" >&2; }

healthy() {
    node -e 'fetch(process.argv[1], {signal: AbortSignal.timeout(2000)})
        .then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$URL/health" 2>/dev/null
}

installed() {
    [ -f "$HOME_DIR/node_modules/unleash-server/package.json" ] \
        && cmp -s "$SOURCE/package-lock.json" "$HOME_DIR/package-lock.json"
}

install() {
    command -v node >/dev/null || { say "node is not installed (Node 20 or newer is needed)"; exit 1; }
    command -v npm >/dev/null || { say "npm is not installed"; exit 1; }
    if installed; then
        return 0
    fi
    say "installing unleash-server into $HOME_DIR (npm ci)"
    mkdir -p "$HOME_DIR"
    cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$HOME_DIR/"
    # unleash-server 8 declares node>=22 but runs on Node 20; engine-strict stays off so npm only warns.
    (cd "$HOME_DIR" && npm ci --omit=dev --no-audit --no-fund --loglevel=error --engine-strict=false)
}

start() {
    if healthy; then
        say "already running at $URL"
        return 0
    fi
    install
    cp "$SOURCE/server.mjs" "$HOME_DIR/server.mjs"
    say "starting at $URL (log: $LOG_FILE)"
    rm -f "$PID_FILE"
    cd "$HOME_DIR"
    UNLEASH_PORT="$PORT" UNLEASH_PID_FILE="$PID_FILE" NODE_NO_WARNINGS=1 nohup node server.mjs >"$LOG_FILE" 2>&1 &
    local pid=$!
    cd - >/dev/null
    local deadline=$((SECONDS + ${UNLEASH_START_TIMEOUT:-120}))
    while [ $SECONDS -lt $deadline ]; do
        if healthy; then
            say "up at $URL"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the server exited; last lines of $LOG_FILE:"
            tail -n 30 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    say "not healthy after ${UNLEASH_START_TIMEOUT:-120}s; last lines of $LOG_FILE:"
    tail -n 30 "$LOG_FILE" >&2 || true
    exit 1
}

stop() {
    if [ ! -f "$PID_FILE" ]; then
        say "no server started by this script on port $PORT"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    fi
    rm -f "$PID_FILE"
    say "stopped"
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) healthy ;;
    url) echo "$URL" ;;
    *) say "usage: $0 install|start|stop|status|url"; exit 2 ;;
esac
