#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL server for governor's storage tests, on 127.0.0.1 only.
#
#   scripts/postgres-test-server.sh          # start; prints the line to export
#   scripts/postgres-test-server.sh stop     # stop it (the data directory stays)
#   scripts/postgres-test-server.sh destroy  # stop it and delete the data directory
#
# Then:  export GOVERNOR_TEST_POSTGRES_URL=...  &&  .venv/bin/pytest tests/storage
#
# Needs the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`; macOS:
# `brew install postgresql`). Settings: GOVERNOR_PG_DIR (data directory, default
# /tmp/governor-pg), GOVERNOR_PG_PORT (default 55432). Authentication is `trust` on 127.0.0.1:
# a test server, never a production one. Run as root, it runs the server as the `postgres` user.
set -euo pipefail

DIR="${GOVERNOR_PG_DIR:-/tmp/governor-pg}"
PORT="${GOVERNOR_PG_PORT:-55432}"
DB="governor_test"
USER_NAME="governor"
URL="postgresql+psycopg://${USER_NAME}@127.0.0.1:${PORT}/${DB}"

find_bindir() {
    if command -v pg_ctl >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v pg_ctl)")"; return; fi
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/pg_ctl" ]; then
        pg_config --bindir; return
    fi
    local newest
    newest="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$newest" ] && [ -x "$newest/pg_ctl" ]; then echo "$newest"; return; fi
    echo "error: PostgreSQL server binaries not found (pg_ctl, initdb)." >&2
    echo "       Debian/Ubuntu: sudo apt-get install postgresql   macOS: brew install postgresql" >&2
    exit 1
}

BIN="$(find_bindir)"

# initdb refuses to run as root: run the server as `postgres` then.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            echo "error: running as root and there is no 'postgres' user to run the server as" >&2
            exit 1
        fi
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() { as_owner "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; }

case "${1:-start}" in
    stop)
        if running; then as_owner "$BIN/pg_ctl" -D "$DIR" -m fast stop; else echo "not running"; fi
        exit 0
        ;;
    destroy)
        if [ -d "$DIR" ] && running; then as_owner "$BIN/pg_ctl" -D "$DIR" -m fast stop; fi
        rm -rf "$DIR"
        echo "removed $DIR"
        exit 0
        ;;
    start) ;;
    *)
        echo "usage: $0 [start|stop|destroy]" >&2
        exit 2
        ;;
esac

if [ ! -f "$DIR/PG_VERSION" ]; then
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$DIR"; fi
    chmod 700 "$DIR"
    as_owner "$BIN/initdb" -D "$DIR" -U "$USER_NAME" --auth=trust --encoding=UTF8 \
        --no-instructions >"$DIR.initdb.log" 2>&1 || {
        cat "$DIR.initdb.log" >&2
        exit 1
    }
fi

if ! running; then
    # fsync and synchronous_commit off: a test server, losing it on power loss is fine.
    as_owner "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 30 start -o \
        "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
        >/dev/null || {
        echo "error: the server did not start; its log:" >&2
        tail -n 30 "$DIR/server.log" >&2
        exit 1
    }
fi

if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" "$DB"
fi

echo "PostgreSQL is running on 127.0.0.1:$PORT (data: $DIR). For the storage tests:"
echo "export GOVERNOR_TEST_POSTGRES_URL=$URL"
