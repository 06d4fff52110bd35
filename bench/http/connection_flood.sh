#!/usr/bin/env bash
# The connection-flood measurement (bench/http/README.md): starts one `songd serve`
# (ENGINE=tone, loopback, a throw-away folder) with the open-file limit raised, runs
# songd_connection_flood against it, stops it. Usage:
#   bench/http/connection_flood.sh [build-dir] [-- extra songd_connection_flood arguments]
set -euo pipefail
build=${1:-build}
shift || true
[[ "${1:-}" == "--" ]] && shift
songd="$build/songd"
flood="$build/bench/songd_connection_flood"
[[ -x "$songd" && -x "$flood" ]] || { echo "build songd and songd_connection_flood first" >&2; exit 2; }

dir=$(mktemp -d /tmp/songd-flood-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

# The server's own limit: as high as the hard limit allows (songd also raises soft to hard).
ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n); MAX_CONNECTIONS default = that minus min(1024, limit/4)"
ENGINE=tone HOST=127.0.0.1 PORT=$port LOG_FORMAT=json LOG_LEVEL=warning ENABLE_RATE_LIMIT=false \
  HTTP_READ_TIMEOUT=300 OUTPUT_DIR="$dir/output" DATABASE_URL="sqlite:$dir/songd.db" \
  "$songd" serve 2>"$dir/songd.log" &
pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$flood" --port "$port" --pid "$pid" "$@"
echo "songd log lines: $(wc -l < "$dir/songd.log"); warnings:"
grep -o '"event":"[a-z_]*"' "$dir/songd.log" | sort | uniq -c | head
