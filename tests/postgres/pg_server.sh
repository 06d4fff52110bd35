#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests.
#
#   tests/postgres/pg_server.sh start STATE_DIR   # prints the postgresql:// URL, writes STATE_DIR/url
#   tests/postgres/pg_server.sh stop STATE_DIR    # stops it and deletes its data
#
# The cluster lives in a fresh temporary folder, listens on a unix socket in that folder and on
# a free loopback port, and checks passwords on TCP (scram-sha-256) so tests can try a wrong
# one. Run as root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Text sorts by the en-US ICU collation, as on a typical production server ("a" < "B"), so a
# query that needs bytewise order must say so. Durability is switched off: the data is deleted when the tests end.
set -euo pipefail

ACTION=${1:-}
STATE_DIR=${2:-}
if [[ -z "$ACTION" || -z "$STATE_DIR" ]]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi

find_bin() {
  local candidate
  for candidate in "${PG_BINDIR:-}" /usr/lib/postgresql/*/bin; do
    if [[ -n "$candidate" && -x "$candidate/initdb" && -x "$candidate/pg_ctl" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  echo "pg_server.sh: no PostgreSQL server binaries (initdb, pg_ctl) found; install the" \
       "'postgresql' package (scripts/install-deps.sh)" >&2
  return 1
}

# Runs a command as the server's user: `postgres` when we are root, else ourselves.
as_server_user() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop_server() {
  local data_dir
  [[ -f "$STATE_DIR/data_dir" ]] || return 0
  data_dir=$(cat "$STATE_DIR/data_dir")
  if [[ -f "$data_dir/pgdata/postmaster.pid" ]]; then
    as_server_user "$BIN/pg_ctl" -D "$data_dir/pgdata" -m immediate -w stop > /dev/null 2>&1 || true
  fi
  rm -rf "$data_dir"
  rm -f "$STATE_DIR/data_dir" "$STATE_DIR/url"
}

BIN=$(find_bin)
mkdir -p "$STATE_DIR"

case "$ACTION" in
  stop)
    stop_server
    exit 0
    ;;
  start) ;;
  *)
    echo "pg_server.sh: unknown action '$ACTION' (start or stop)" >&2
    exit 2
    ;;
esac

stop_server  # a server a crashed earlier run left behind
DATA_DIR=$(mktemp -d /tmp/songd-pg-XXXXXX)
echo "$DATA_DIR" > "$STATE_DIR/data_dir"
chmod 755 "$DATA_DIR"
if [[ $(id -u) -eq 0 ]]; then
  if ! id postgres > /dev/null 2>&1; then
    echo "pg_server.sh: running as root needs the 'postgres' user (the postgresql package" \
         "creates it)" >&2
    exit 1
  fi
  chown postgres: "$DATA_DIR"
fi

USER_NAME=songd
DB_NAME=songd_test
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '+/=')
PWFILE="$DATA_DIR/pwfile"
echo "$PASSWORD" > "$PWFILE"
[[ $(id -u) -eq 0 ]] && chown postgres: "$PWFILE"
chmod 600 "$PWFILE"

if ! as_server_user "$BIN/initdb" -D "$DATA_DIR/pgdata" -U "$USER_NAME" --pwfile="$PWFILE" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    --locale-provider=icu --icu-locale=en-US --no-sync \
    > "$DATA_DIR/initdb.log" 2>&1; then
  echo "pg_server.sh: initdb failed:" >&2
  cat "$DATA_DIR/initdb.log" >&2
  exit 1
fi
rm -f "$PWFILE"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A port found free can be taken before the server binds it: try a few.
started=0
for attempt in 1 2 3 4 5; do
  PORT=$(free_port)
  if as_server_user "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" -l "$DATA_DIR/server.log" -w -t 60 \
      -o "-k $DATA_DIR -h 127.0.0.1 -p $PORT -c fsync=off -c synchronous_commit=off \
          -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB" \
      start > /dev/null 2>&1; then
    started=1
    break
  fi
done
if [[ $started -ne 1 ]]; then
  echo "pg_server.sh: postgres did not start; its log:" >&2
  cat "$DATA_DIR/server.log" >&2 || true
  exit 1
fi

if ! as_server_user "$BIN/psql" -h "$DATA_DIR" -p "$PORT" -U "$USER_NAME" -d postgres -q \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB_NAME" > "$DATA_DIR/createdb.log" 2>&1; then
  echo "pg_server.sh: cannot create the test database:" >&2
  cat "$DATA_DIR/createdb.log" >&2
  exit 1
fi

URL="postgresql://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/$DB_NAME"
echo "$URL" > "$STATE_DIR/url.tmp"
mv "$STATE_DIR/url.tmp" "$STATE_DIR/url"
echo "$URL"
